// The atime options (relatime by default, strictatime, noatime, nodiratime)
// through the mount: what a read the daemon serves and a listing do to the
// access time. Reads go to the daemon after the file's cached pages are
// dropped: the kernel marks FUSE inodes S_NOATIME, so reads its page cache
// serves change no access time under any option.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

constexpr time_t kDay = 24 * 60 * 60;

class AtimeTest : public FuseTest {
 protected:
  // A file whose access time is set to `atime_from_now` seconds from now.
  void make_file(const std::string& name, time_t atime_from_now) {
    ASSERT_TRUE(write_file(path(name), pattern(8192, 3)));
    set_atime(path(name), atime_from_now);
  }

  static void set_atime(const std::string& file, time_t from_now) {
    struct timespec times[2];
    times[0].tv_sec = time(nullptr) + from_now;
    times[0].tv_nsec = 0;
    times[1].tv_nsec = UTIME_OMIT;
    ASSERT_EQ(utimensat(AT_FDCWD, file.c_str(), times, 0), 0) << std::strerror(errno);
  }

  // Reads the whole file from the daemon: its clean cached pages dropped
  // first (write-back done by the fsync).
  void read_from_daemon(const std::string& name) {
    const int fd = open(path(name).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(fsync(fd), 0);
    ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    char buffer[8192];
    EXPECT_EQ(read(fd, buffer, sizeof(buffer)), static_cast<ssize_t>(sizeof(buffer)));
    close(fd);
  }

  void list(const std::string& directory) {
    DIR* dir = opendir(path(directory).c_str());
    ASSERT_NE(dir, nullptr) << std::strerror(errno);
    while (readdir(dir) != nullptr) {
    }
    closedir(dir);
  }

  // Whether the access time of `name` is within a minute of now.
  bool accessed_now(const std::string& name) {
    return std::llabs(static_cast<long long>(stat_of(path(name)).st_atime - time(nullptr))) < 60;
  }

  void remount_with(const std::string& options) {
    ASSERT_NO_FATAL_FAILURE(remount({"-o", options}));
  }
};

TEST_F(AtimeTest, RelatimeUpdatesAnAtimeOlderThanTheLastChangeOrADay) {
  ASSERT_NO_FATAL_FAILURE(make_file("old", -2 * kDay));
  ASSERT_NO_FATAL_FAILURE(make_file("recent", 60 * 60));  // later than mtime and ctime
  ASSERT_NO_FATAL_FAILURE(read_from_daemon("old"));
  ASSERT_NO_FATAL_FAILURE(read_from_daemon("recent"));
  EXPECT_TRUE(accessed_now("old"));
  EXPECT_FALSE(accessed_now("recent")) << "relatime updated an atime newer than mtime";
}

TEST_F(AtimeTest, StrictatimeUpdatesOnEveryRead) {
  ASSERT_NO_FATAL_FAILURE(remount_with("strictatime"));
  ASSERT_NO_FATAL_FAILURE(make_file("recent", 60 * 60));
  ASSERT_NO_FATAL_FAILURE(read_from_daemon("recent"));
  EXPECT_TRUE(accessed_now("recent")) << "strictatime left the access time alone";
}

TEST_F(AtimeTest, NoatimeNeverUpdates) {
  ASSERT_NO_FATAL_FAILURE(remount_with("noatime"));
  ASSERT_NO_FATAL_FAILURE(make_file("old", -2 * kDay));
  ASSERT_NO_FATAL_FAILURE(read_from_daemon("old"));
  EXPECT_FALSE(accessed_now("old")) << "noatime updated the access time";
}

TEST_F(AtimeTest, NodiratimeLeavesDirectoriesAloneButNotFiles) {
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(set_atime(path("dir"), -2 * kDay));
  ASSERT_NO_FATAL_FAILURE(list("dir"));
  EXPECT_TRUE(accessed_now("dir")) << "a listing under relatime left an old atime alone";

  ASSERT_NO_FATAL_FAILURE(remount_with("nodiratime"));
  ASSERT_NO_FATAL_FAILURE(set_atime(path("dir"), -2 * kDay));
  ASSERT_NO_FATAL_FAILURE(make_file("dir/file", -2 * kDay));
  ASSERT_NO_FATAL_FAILURE(list("dir"));
  ASSERT_NO_FATAL_FAILURE(read_from_daemon("dir/file"));
  EXPECT_FALSE(accessed_now("dir")) << "nodiratime: a listing updated the directory's atime";
  EXPECT_TRUE(accessed_now("dir/file")) << "nodiratime applies to directories only";
}

TEST_F(AtimeTest, TheKernelShowsTheAtimeFlagsTheDaemonFollows) {
  ASSERT_NO_FATAL_FAILURE(remount_with("strictatime,nodiratime"));
  struct statvfs st = fs_stats();
  EXPECT_EQ(st.f_flag & (ST_NOATIME | ST_RELATIME), 0u) << "strictatime is neither";
  EXPECT_NE(st.f_flag & ST_NODIRATIME, 0u);
  ASSERT_NO_FATAL_FAILURE(remount_with("noatime"));
  st = fs_stats();
  EXPECT_NE(st.f_flag & ST_NOATIME, 0u);
  EXPECT_EQ(st.f_flag & ST_NODIRATIME, 0u);
}

TEST_F(AtimeTest, AUserCannotAskForWhatItsMountCannotShow) {
  ASSERT_NO_FATAL_FAILURE(unmount());
  for (const char* option : {"strictatime", "nodiratime"}) {
    const Outcome refused = cli_test::run_program(
        {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ECFS_BINARY,
         "mount", "-o", option, image_, mountpoint_},
        scratch_.path());
    EXPECT_EQ(refused.exit_status, 2) << option << ": " << refused.describe();
    EXPECT_NE(refused.err.find("needs root"), std::string::npos) << refused.describe();
  }
}

}  // namespace
}  // namespace ecfs::fuse_test
