// File handles (name_to_handle_at(2) / open_by_handle_at(2), what an NFS
// server exports): a handle names an inode by number and generation, both
// stable, so it opens the same file while the file exists, also once the
// kernel has forgotten the inode, for an unlinked file still open, and
// after a remount; it is ESTALE once the file is gone.
#include <fcntl.h>

#include <memory>

#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

class FileHandleTest : public FuseTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(FuseTest::SetUp());
    if (geteuid() != 0) GTEST_SKIP() << "open_by_handle_at needs CAP_DAC_READ_SEARCH";
  }

  struct Handle {
    std::unique_ptr<file_handle, decltype(&std::free)> handle{nullptr, &std::free};
  };

  Handle handle_of(const std::string& file) {
    Handle result;
    result.handle.reset(
        static_cast<file_handle*>(std::malloc(sizeof(file_handle) + MAX_HANDLE_SZ)));
    result.handle->handle_bytes = MAX_HANDLE_SZ;
    int mount_id = 0;
    EXPECT_EQ(name_to_handle_at(AT_FDCWD, file.c_str(), result.handle.get(), &mount_id, 0), 0)
        << file << ": " << std::strerror(errno);
    return result;
  }

  // open_by_handle_at through the mount's root: the fd, or -errno.
  int open_handle(const Handle& handle, int flags = O_RDONLY) {
    const int mount_fd = open(mountpoint_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    EXPECT_GE(mount_fd, 0);
    const int fd = open_by_handle_at(mount_fd, handle.handle.get(), flags | O_CLOEXEC);
    const int result = fd >= 0 ? fd : -errno;
    close(mount_fd);
    return result;
  }

  std::string read_handle(const Handle& handle) {
    const int fd = open_handle(handle);
    if (fd < 0) return std::string("error: ") + std::strerror(-fd);
    std::string data(4096, '\0');
    const ssize_t got = read(fd, data.data(), data.size());
    close(fd);
    data.resize(got < 0 ? 0 : static_cast<size_t>(got));
    return data;
  }

  // The kernel forgets every unused inode and dentry, so a handle must be
  // resolved by the daemon.
  static void drop_kernel_caches() {
    sync();
    std::ofstream("/proc/sys/vm/drop_caches") << "2\n";
  }
};

TEST_F(FileHandleTest, AHandleOpensItsFileAfterTheKernelForgotIt) {
  ASSERT_TRUE(write_file(path("file"), "by handle"));
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(path("dir/inner"), "inner"));
  const Handle file = handle_of(path("file"));
  const Handle dir = handle_of(path("dir"));
  const Handle inner = handle_of(path("dir/inner"));
  EXPECT_EQ(read_handle(file), "by handle");
  drop_kernel_caches();
  EXPECT_EQ(read_handle(file), "by handle");
  EXPECT_EQ(read_handle(inner), "inner");
  const int dir_fd = open_handle(dir, O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir_fd, 0) << std::strerror(-dir_fd);
  // The directory's parent is found through "..".
  struct stat parent, root;
  ASSERT_EQ(fstatat(dir_fd, "..", &parent, 0), 0);
  ASSERT_EQ(stat(mountpoint_.c_str(), &root), 0);
  EXPECT_EQ(parent.st_ino, root.st_ino);
  close(dir_fd);
  // A hard link does not change what the handle names.
  ASSERT_EQ(link(path("file").c_str(), path("linked").c_str()), 0);
  ASSERT_EQ(unlink(path("file").c_str()), 0);
  drop_kernel_caches();
  EXPECT_EQ(read_handle(file), "by handle");
}

TEST_F(FileHandleTest, AnUnlinkedFileStillOpenStaysReachableAndThenGoesStale) {
  ASSERT_TRUE(write_file(path("doomed"), "still open"));
  const Handle handle = handle_of(path("doomed"));
  const int keep = open(path("doomed").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(keep, 0);
  ASSERT_EQ(unlink(path("doomed").c_str()), 0);
  drop_kernel_caches();
  EXPECT_EQ(read_handle(handle), "still open");
  close(keep);
  drop_kernel_caches();
  EXPECT_EQ(open_handle(handle), -ESTALE);
}

TEST_F(FileHandleTest, HandlesOutliveARemountAndDeletedFilesGoStale) {
  ASSERT_TRUE(write_file(path("kept"), "kept"));
  ASSERT_TRUE(write_file(path("removed"), "removed"));
  const Handle kept = handle_of(path("kept"));
  const Handle removed = handle_of(path("removed"));
  ASSERT_EQ(unlink(path("removed").c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_handle(kept), "kept");
  EXPECT_EQ(open_handle(removed), -ESTALE);
  // A new file never answers to an old handle, even where the inode number
  // comes again.
  ASSERT_TRUE(write_file(path("new"), "new"));
  EXPECT_EQ(open_handle(removed), -ESTALE);
}

}  // namespace
}  // namespace ecfs::fuse_test
