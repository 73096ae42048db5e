#include "block/loop_device.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "block/file_device.h"
#include "block/testing.h"

namespace ecfs::block {
namespace {

using testing::TempDir;

// Why loop devices cannot be attached here, or "" when they can.
std::string missing_prerequisite() {
  if (geteuid() != 0) return "needs root";
  struct stat st;
  if (::stat("/dev/loop-control", &st) != 0) return "no /dev/loop-control (loop driver)";
  return "";
}

// A block device attribute from sysfs (/sys/block/loopN/`name`).
std::string block_attribute(const std::string& device, const std::string& name) {
  const std::string base = device.substr(device.rfind('/') + 1);
  std::ifstream in("/sys/block/" + base + "/" + name);
  std::string value;
  std::getline(in, value);
  return value;
}

// A loop attribute ("" once the device is detached).
std::string loop_attribute(const std::string& device, const std::string& name) {
  return block_attribute(device, "loop/" + name);
}

bool detached(const std::string& device) {
  for (int i = 0; i < 500; ++i) {
    if (loop_attribute(device, "backing_file").empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class LoopDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = missing_prerequisite(); !why.empty()) GTEST_SKIP() << why;
    image_ = dir_.file("image");
    std::ofstream(image_).close();
    ASSERT_EQ(::truncate(image_.c_str(), 1 << 20), 0);
  }

  TempDir dir_;
  std::string image_;
};

TEST_F(LoopDeviceTest, AttachesTheImageWithAutoclearAndDetachesWhenLetGo) {
  std::string path;
  {
    auto loop = LoopDevice::attach(image_, /*read_only=*/false);
    ASSERT_TRUE(loop) << loop.error().to_string();
    path = loop->path();
    EXPECT_EQ(path.rfind("/dev/loop", 0), 0u) << path;
    EXPECT_EQ(loop_attribute(path, "backing_file"), image_);
    EXPECT_EQ(loop_attribute(path, "autoclear"), "1");
    EXPECT_EQ(block_attribute(path, "ro"), "0");
    // Moving keeps one owner: the moved-from object closes nothing.
    LoopDevice moved = std::move(*loop);
    EXPECT_EQ(moved.path(), path);
    EXPECT_EQ(loop_attribute(path, "backing_file"), image_);
  }
  EXPECT_TRUE(detached(path)) << path << " is still attached after its last opener closed it";
}

// On a block device, discard is BLKDISCARD: through a loop device the
// backing file gives its blocks back.
TEST_F(LoopDeviceTest, DiscardOnTheBlockDeviceReachesTheBackingFile) {
  auto loop = LoopDevice::attach(image_, /*read_only=*/false);
  ASSERT_TRUE(loop) << loop.error().to_string();
  FileDeviceOptions options;
  options.lock = false;
  auto device = open_file_device(loop->path(), options);
  ASSERT_TRUE(device) << device.error().to_string();
  ASSERT_TRUE((*device)->is_block_device());
  ASSERT_TRUE((*device)->write(0, Bytes(1 << 20, 0x5a)));
  ASSERT_TRUE((*device)->flush());
  const auto allocated = [&] {
    struct stat st {};
    EXPECT_EQ(::stat(image_.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  };
  const uint64_t before = allocated();
  ASSERT_GE(before, 1u << 20);
  Status discarded = (*device)->discard(0, 1 << 20);
  if (!discarded && discarded.error().errno_value() == EOPNOTSUPP) {
    GTEST_SKIP() << "this loop device does not discard: " << discarded.error().to_string();
  }
  ASSERT_TRUE(discarded) << discarded.error().to_string();
  EXPECT_LT(allocated(), before);
}

TEST_F(LoopDeviceTest, ReadOnlyAttachesAReadOnlyDevice) {
  auto loop = LoopDevice::attach(image_, /*read_only=*/true);
  ASSERT_TRUE(loop) << loop.error().to_string();
  EXPECT_EQ(block_attribute(loop->path(), "ro"), "1");
}

TEST_F(LoopDeviceTest, AMissingImageIsENOENTNamingIt) {
  auto loop = LoopDevice::attach(dir_.file("missing"), false);
  ASSERT_FALSE(loop);
  EXPECT_EQ(loop.error().errno_value(), ENOENT);
  EXPECT_NE(loop.error().message().find("missing"), std::string::npos);
}

}  // namespace
}  // namespace ecfs::block
