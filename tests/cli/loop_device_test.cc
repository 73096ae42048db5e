// `ecfs mkfs`, `ecfs fsck` and `ecfs inspect` on a real block device: a
// loop device over a sparse 256 MiB file. The size comes from the device
// (BLKGETSIZE64), not from --size; a second mkfs needs --force; a read-only
// device and a device another opener holds exclusively are refused with a
// clear message. Needs root and loop devices (DESIGN.md: such tests skip
// with a clear message where those are missing). Every device attached is
// detached again, whatever the test's outcome.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli_test_util.h"

namespace ecfs::cli_test {
namespace {

constexpr uint64_t kDeviceSize = 256ull << 20;
constexpr const char* kUuid = "5eb1c0de-1005-4b10-8c0e-0123456789ab";

std::optional<std::string> find_losetup() {
  for (const char* path : {"/usr/sbin/losetup", "/sbin/losetup", "/usr/bin/losetup"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return std::nullopt;
}

// Why loop devices cannot be used here, or "" when they can.
std::string loop_devices_unavailable() {
  if (geteuid() != 0) return "needs root to attach loop devices";
  if (access("/dev/loop-control", F_OK) != 0) return "no /dev/loop-control (no loop driver)";
  if (!find_losetup()) return "losetup (util-linux) is not installed";
  return "";
}

// A loop device attached to `backing` (read-only if asked) for the object's
// lifetime.
class LoopDevice {
 public:
  LoopDevice(const std::string& backing, bool read_only, const std::string& scratch)
      : scratch_(scratch) {
    std::vector<std::string> args = {*find_losetup(), "--find", "--show"};
    if (read_only) args.push_back("--read-only");
    args.push_back(backing);
    const Outcome run = run_program(args, scratch_);
    if (run.exit_status != 0) {
      error_ = "losetup --find --show failed: " + run.describe();
      return;
    }
    path_ = run.out.substr(0, run.out.find('\n'));
  }
  ~LoopDevice() {
    if (path_.empty()) return;
    const Outcome run = run_program({*find_losetup(), "--detach", path_}, scratch_);
    EXPECT_EQ(run.exit_status, 0) << "detaching " << path_ << ": " << run.describe();
  }
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  const std::string& path() const { return path_; }  // empty when attaching failed
  const std::string& error() const { return error_; }

 private:
  std::string scratch_;
  std::string path_;
  std::string error_;
};

class LoopDeviceTest : public EcfsCommandTest {
 protected:
  void SetUp() override {
    if (std::string why = loop_devices_unavailable(); !why.empty()) {
      GTEST_SKIP() << "loop device tests skipped: " << why;
    }
    ASSERT_FALSE(scratch_.path().empty());
    backing_ = scratch_.file("backing");
    { std::ofstream(backing_, std::ios::binary); }
    std::filesystem::resize_file(backing_, kDeviceSize);  // sparse
  }

  // Attaches the backing file; path() is empty when no loop device could
  // be had (all in use, or a container without them): the test skips.
  std::unique_ptr<LoopDevice> attach(bool read_only = false) {
    return std::make_unique<LoopDevice>(backing_, read_only, scratch_.path());
  }

  std::string inspect_json(const std::string& device) {
    const Outcome run = ecfs({"inspect", "--json", device});
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    return run.out;
  }

  std::string backing_;
};

TEST_F(LoopDeviceTest, MkfsFsckInspectUseTheWholeDevice) {
  auto loop = attach();
  if (loop->path().empty()) GTEST_SKIP() << "no loop device: " << loop->error();
  const std::string& device = loop->path();
  ASSERT_EQ(device.rfind("/dev/loop", 0), 0u) << device;

  // No --size: the device's own size.
  const Outcome made = ecfs({"mkfs", device, "--label", "on a loop", "--uuid", kUuid});
  ASSERT_EQ(made.exit_status, 0) << made.describe();
  EXPECT_NE(made.out.find("Filesystem size:    256.00MiB (268435456 bytes)"), std::string::npos)
      << made.out;
  // The commit reached the backing file through the device.
  EXPECT_EQ(read_whole_file(backing_).substr((64 << 10) + 56, 8), "ECFS_SB1");

  const Outcome fsck = ecfs({"fsck", device});
  EXPECT_EQ(fsck.exit_status, 0) << fsck.describe();
  EXPECT_NE(fsck.out.find("no errors found"), std::string::npos) << fsck.out;
  EXPECT_NE(fsck.out.find("(2 copies on the device)"), std::string::npos) << fsck.out;
  EXPECT_EQ(fsck.err, "");  // not a terminal: no progress

  const std::string json = inspect_json(device);
  EXPECT_EQ(query(json, "d['superblock']['total_bytes']"), std::to_string(kDeviceSize));
  EXPECT_EQ(query(json, "d['superblock']['uuid'], d['superblock']['label']"),
            std::string(kUuid) + " on a loop");
  EXPECT_EQ(query(json, "[(c['offset'], c['valid']) for c in d['superblock_copies']]"),
            "[(65536, True), (67108864, True)]");
  EXPECT_EQ(query(json, "d['errors']"), "[]");

  // An ecfs filesystem is overwritten only with --force; --size takes the
  // first bytes of the device, never more than it has.
  const Outcome again = ecfs({"mkfs", device});
  EXPECT_EQ(again.exit_status, 1) << again.describe();
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
  const Outcome too_big = ecfs({"mkfs", device, "--force", "--size", "1G"});
  EXPECT_EQ(too_big.exit_status, 1) << too_big.describe();
  EXPECT_NE(too_big.err.find("exceeds the block device"), std::string::npos) << too_big.err;
  EXPECT_EQ(query(inspect_json(device), "d['superblock']['uuid']"), kUuid);  // untouched

  const Outcome smaller = ecfs({"mkfs", device, "--force", "--size", "96M"});
  ASSERT_EQ(smaller.exit_status, 0) << smaller.describe();
  EXPECT_EQ(query(inspect_json(device), "d['superblock']['total_bytes']"),
            std::to_string(96ull << 20));
  const Outcome fsck_smaller = ecfs({"fsck", "--json", device});
  EXPECT_EQ(fsck_smaller.exit_status, 0) << fsck_smaller.describe();
  EXPECT_EQ(query(fsck_smaller.out, "d['clean'], d['problem_count']"), "True 0");
}

TEST_F(LoopDeviceTest, ReadOnlyDeviceIsCheckedButNotWritten) {
  const Outcome made = ecfs({"mkfs", backing_, "--uuid", kUuid});  // on the file itself
  ASSERT_EQ(made.exit_status, 0) << made.describe();
  auto loop = attach(/*read_only=*/true);
  if (loop->path().empty()) GTEST_SKIP() << "no loop device: " << loop->error();

  const Outcome fsck = ecfs({"fsck", loop->path()});
  EXPECT_EQ(fsck.exit_status, 0) << fsck.describe();
  EXPECT_EQ(query(inspect_json(loop->path()), "d['superblock']['total_bytes']"),
            std::to_string(kDeviceSize));
  // Linux opens a read-only block device for writing and fails each write;
  // mkfs must say why instead of failing part way.
  const Outcome refused = ecfs({"mkfs", loop->path(), "--force"});
  EXPECT_EQ(refused.exit_status, 1) << refused.describe();
  EXPECT_NE(refused.err.find("read-only"), std::string::npos) << refused.err;
  EXPECT_EQ(query(inspect_json(loop->path()), "d['superblock']['uuid']"), kUuid);
}

TEST_F(LoopDeviceTest, DeviceHeldExclusivelyIsRefused) {
  auto loop = attach();
  if (loop->path().empty()) GTEST_SKIP() << "no loop device: " << loop->error();
  ASSERT_EQ(ecfs({"mkfs", loop->path(), "--uuid", kUuid}).exit_status, 0);
  // An exclusive opener (as a mounted filesystem is) keeps mkfs away.
  const int held = open(loop->path().c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
  ASSERT_GE(held, 0) << std::strerror(errno);
  const Outcome refused = ecfs({"mkfs", loop->path(), "--force"});
  close(held);
  EXPECT_EQ(refused.exit_status, 1) << refused.describe();
  EXPECT_NE(refused.err.find("in use"), std::string::npos) << refused.err;
  EXPECT_EQ(query(inspect_json(loop->path()), "d['superblock']['uuid']"), kUuid);
}

}  // namespace
}  // namespace ecfs::cli_test
