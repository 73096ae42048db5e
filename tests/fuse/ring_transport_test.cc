// FUSE over io_uring (fuse/ring_channel.h) through a real mount: with the
// fuse module's enable_uring on, the daemon takes the ring at INIT and
// serves from it, every operation answers as over /dev/fuse, -o no_io_uring
// keeps to /dev/fuse, and a killed daemon leaves ENOTCONN, not a hang.
//
// The whole FUSE suite also runs a second time with enable_uring on
// (tests/CMakeLists.txt, the tests named io_uring/...), so every other
// end-to-end test covers the ring as well.
#include <dirent.h>
#include <sys/xattr.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "file_io.h"
#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

bool write_parameter(const std::string& value) {
  std::ofstream file(kRingOfferParameter);
  file << value << '\n';
  file.flush();
  return static_cast<bool>(file);
}

// Turns the kernel's FUSE-over-io_uring offer on for the test and back to
// what it was after (the FUSE tests run one at a time).
class RingOffer {
 public:
  RingOffer() {
    saved_ = ring_offer();
    if (saved_) on_ = write_parameter("Y") && ring_offer() == "Y";
  }
  ~RingOffer() {
    if (saved_) write_parameter(*saved_);
  }
  RingOffer(const RingOffer&) = delete;
  RingOffer& operator=(const RingOffer&) = delete;

  // Why the kernel cannot offer the ring here, or "".
  std::string missing() const {
    if (!saved_) return "the kernel has no FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING)";
    if (!on_) return std::string("cannot turn on ") + kRingOfferParameter;
    return "";
  }

 private:
  std::optional<std::string> saved_;
  bool on_ = false;
};

class RingTransportTest : public FuseTest {
 protected:
  void SetUp() override {
    ECFS_SKIP_WITHOUT_FUSE();
    if (const std::string why = offer_.missing(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_NO_FATAL_FAILURE(FuseTest::SetUp());
    ASSERT_NO_FATAL_FAILURE(unmount());
  }

  // Serves the image from a foreground daemon with `options`, logging to
  // log_; the mount shows when this returns.
  void start(const std::vector<std::string>& options = {}) {
    ASSERT_NO_FATAL_FAILURE(daemon_ = start_foreground_daemon(options, log_));
    mounted_ = true;
  }

  // Unmounts, waits for the daemon's clean exit and returns its log.
  std::string stop() {
    EXPECT_NO_FATAL_FAILURE(unmount());
    int status = -1;
    const bool exited =
        wait_until([&] { return waitpid(daemon_, &status, WNOHANG) == daemon_; }, 60s);
    if (!exited) kill(daemon_, SIGKILL);
    EXPECT_TRUE(exited) << "ecfs mount -f did not exit after the unmount";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "daemon status " << status;
    return read_file(log_).value_or("");
  }

  // The count in the daemon's closing "N requests served through io_uring".
  static long served_through_ring(const std::string& log) {
    const std::string marker = " requests served through io_uring";
    const size_t at = log.find(marker);
    if (at == std::string::npos) return -1;
    const size_t start = log.rfind(' ', at - 1);
    return std::stol(log.substr(start + 1, at - start - 1));
  }

  RingOffer offer_;
  std::string log_ = scratch_.file("daemon.log");
  pid_t daemon_ = 0;
};

std::set<std::string> names_in(const std::string& directory) {
  std::set<std::string> names;
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) return names;
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.insert(name);
  }
  closedir(dir);
  return names;
}

TEST_F(RingTransportTest, EveryKindOfRequestIsAnsweredThroughTheRing) {
  ASSERT_NO_FATAL_FAILURE(start());

  // Data of every shape: empty, one byte, a block, more than one 1 MiB
  // request, with a tail.
  const std::vector<std::pair<std::string, std::string>> files = {
      {"empty", ""},
      {"byte", "x"},
      {"block", pattern(4096, 3)},
      {"large", pattern((3 << 20) + 12345, 4)},
  };
  for (const auto& [name, data] : files) {
    Fd fd(open(path(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
    ASSERT_GE(fd.get(), 0) << name;
    ASSERT_TRUE(pwrite_all(fd.get(), data, 0)) << name;
    ASSERT_EQ(fsync(fd.get()), 0) << name;
  }
  ASSERT_EQ(mkdir(path("dir").c_str(), 0750), 0);
  std::set<std::string> expected_names;
  for (int i = 0; i < 300; ++i) {
    const std::string name = "entry-" + std::to_string(i);
    ASSERT_TRUE(write_file(path("dir/" + name), name));
    expected_names.insert(name);
  }
  ASSERT_EQ(rename(path("dir/entry-0").c_str(), path("dir/renamed").c_str()), 0);
  expected_names.erase("entry-0");
  expected_names.insert("renamed");
  ASSERT_EQ(link(path("block").c_str(), path("dir/hard").c_str()), 0);
  expected_names.insert("hard");
  ASSERT_EQ(symlink("../byte", path("dir/soft").c_str()), 0);
  expected_names.insert("soft");
  ASSERT_EQ(unlink(path("dir/entry-1").c_str()), 0);
  expected_names.erase("entry-1");
  ASSERT_EQ(setxattr(path("byte").c_str(), "user.colour", "blue", 4, 0), 0);
  ASSERT_EQ(truncate(path("large").c_str(), 1 << 20), 0);

  // Everything again from a fresh daemon, so reads and listings come
  // through the ring rather than the kernel's caches.
  std::string log = stop();
  EXPECT_TRUE(has(log, "serving requests through io_uring")) << log;
  // A foreground daemon shares its caller's session (and scheduling
  // group), where pinning the ring's threads pays (ring_channel.h).
  EXPECT_TRUE(has(log, ", pinned)")) << log;
  EXPECT_GT(served_through_ring(log), 300) << log;
  expect_fsck_clean();
  ASSERT_NO_FATAL_FAILURE(start());
  for (const auto& [name, data] : files) {
    const std::string expected = name == "large" ? data.substr(0, 1 << 20) : data;
    EXPECT_EQ(read_file(path(name)), expected) << name;
  }
  EXPECT_EQ(names_in(path("dir")), expected_names);
  EXPECT_EQ(read_file(path("dir/renamed")), "entry-0");
  EXPECT_EQ(stat_of(path("dir/hard")).st_nlink, 2u);
  EXPECT_EQ(read_file(path("dir/soft")), "x");
  char value[16] = {};
  EXPECT_EQ(getxattr(path("byte").c_str(), "user.colour", value, sizeof(value)), 4);
  EXPECT_STREQ(value, "blue");
  EXPECT_EQ(getxattr(path("byte").c_str(), "user.missing", value, sizeof(value)), -1);
  EXPECT_EQ(errno, ENODATA);  // errors travel through the ring too
  EXPECT_EQ(stat_of(path("dir")).st_mode & 07777, 0750u);
  log = stop();
  EXPECT_GT(served_through_ring(log), 10) << log;
}

TEST_F(RingTransportTest, NoIoUringKeepsToDevFuse) {
  ASSERT_NO_FATAL_FAILURE(start({"-o", "no_io_uring"}));
  ASSERT_TRUE(write_file(path("file"), "over /dev/fuse"));
  EXPECT_EQ(read_file(path("file")), "over /dev/fuse");
  const std::string log = stop();
  EXPECT_FALSE(has(log, "io_uring")) << log;
}

TEST_F(RingTransportTest, AKilledDaemonLeavesENOTCONNAndTheCommittedData) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string durable = pattern(300000, 9);
  {
    Fd fd(open(path("durable").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_GE(fd.get(), 0);
    ASSERT_TRUE(pwrite_all(fd.get(), durable, 0));
    ASSERT_EQ(fsync(fd.get()), 0);
  }
  ASSERT_EQ(kill(daemon_, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(daemon_, &status, 0), daemon_);
  expect_dead_mount(path("durable"));
  const auto detached = kernel_test::run_process({"fusermount3", "-u", "-z", mountpoint_});
  ASSERT_TRUE(detached.succeeded()) << detached.err;
  mounted_ = false;
  ASSERT_TRUE(wait_until([&] { return image_unlocked(image_); }, 10s));
  expect_fsck_clean();
  ASSERT_NO_FATAL_FAILURE(start());
  EXPECT_EQ(read_file(path("durable")), durable);
  const std::string log = stop();
  EXPECT_TRUE(has(log, "serving requests through io_uring")) << log;
}

}  // namespace
}  // namespace ecfs::fuse_test
