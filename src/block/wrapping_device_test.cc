#include "block/wrapping_device.h"

#include <gtest/gtest.h>

#include <memory>

#include "block/fault_device.h"
#include "block/memory_device.h"
#include "block/recording_device.h"
#include "block/testing.h"

namespace ecfs::block {
namespace {

using testing::error_of;
using testing::pattern;
using testing::read_back;

constexpr uint64_t kSize = 16 * kBlockSize;

// A pass-through that records when it is destroyed, to tell an owned inner
// device (destroyed with its wrapper) from a borrowed one (left alone).
class DestructionProbe final : public WrappingDevice {
 public:
  DestructionProbe(BlockDevice& inner, bool* destroyed)
      : WrappingDevice(inner), destroyed_(destroyed) {}
  ~DestructionProbe() override { *destroyed_ = true; }

 private:
  bool* destroyed_;
};

TEST(WrappingDeviceTest, ForwardsEveryRequestToABorrowedDevice) {
  MemoryDevice memory(kSize, "disk");
  WrappingDevice wrapper(memory);
  EXPECT_FALSE(wrapper.owns_inner());
  EXPECT_EQ(&wrapper.inner(), &memory);
  EXPECT_EQ(wrapper.size(), kSize);
  EXPECT_EQ(wrapper.describe(), "disk");
  ASSERT_TRUE(wrapper.write(kBlockSize, pattern(kBlockSize, 3)));
  EXPECT_EQ(read_back(memory, kBlockSize, kBlockSize), pattern(kBlockSize, 3));
  ASSERT_TRUE(memory.write(0, pattern(kBlockSize, 4)));
  EXPECT_EQ(read_back(wrapper, 0, kBlockSize), pattern(kBlockSize, 4));
  ASSERT_TRUE(wrapper.flush());
  EXPECT_EQ(memory.flush_count(), 1u);
  // The inner device's own checks answer for the wrapper.
  EXPECT_EQ(error_of(wrapper.write(kSize, pattern(kBlockSize, 5))), EINVAL);
  EXPECT_EQ(error_of(wrapper.read(0, MutableByteSpan())), 0);
}

TEST(WrappingDeviceTest, DestroysAnOwnedDeviceAndLeavesABorrowedOne) {
  MemoryDevice memory(kSize);
  bool destroyed = false;
  {
    DestructionProbe borrowed(memory, &destroyed);
    // As BlockDevice&: the deleted copy constructor is a closer match for
    // another WrappingDevice.
    { WrappingDevice wrapper(static_cast<BlockDevice&>(borrowed)); }
    EXPECT_FALSE(destroyed);
  }
  destroyed = false;
  {
    WrappingDevice wrapper(std::make_unique<DestructionProbe>(memory, &destroyed));
    EXPECT_TRUE(wrapper.owns_inner());
    ASSERT_TRUE(wrapper.write(0, pattern(kBlockSize, 1)));
    EXPECT_FALSE(destroyed);
  }
  EXPECT_TRUE(destroyed);
  EXPECT_EQ(read_back(memory, 0, kBlockSize), pattern(kBlockSize, 1));
}

// The decorators built on WrappingDevice keep both ways of holding their
// inner device, and stack.
TEST(WrappingDeviceTest, DecoratorsOwnOrBorrowAndStack) {
  MemoryDevice memory(kSize, "disk");
  bool destroyed = false;
  {
    auto recorder =
        std::make_unique<RecordingDevice>(std::make_unique<DestructionProbe>(memory, &destroyed));
    RecordingDevice& recording = *recorder;
    FaultDevice faulty(std::move(recorder));  // owns the recorder, which owns the probe
    EXPECT_TRUE(faulty.owns_inner());
    EXPECT_TRUE(recording.owns_inner());
    EXPECT_EQ(faulty.describe(), "recording of disk");
    EXPECT_EQ(faulty.size(), kSize);
    ASSERT_TRUE(faulty.write(0, pattern(kBlockSize, 7)));
    faulty.fail_nth(FaultOp::kWrite, 1, EIO);
    EXPECT_EQ(error_of(faulty.write(kBlockSize, pattern(kBlockSize, 8))), EIO);
    EXPECT_EQ(recording.op_count(), 1u);  // the failed write never reached the recorder
    EXPECT_EQ(read_back(faulty, 0, kBlockSize), pattern(kBlockSize, 7));
  }
  EXPECT_TRUE(destroyed);
  FaultDevice borrowing(memory);
  EXPECT_FALSE(borrowing.owns_inner());
  EXPECT_EQ(&borrowing.inner(), &memory);
  EXPECT_EQ(read_back(borrowing, 0, kBlockSize), pattern(kBlockSize, 7));
}

}  // namespace
}  // namespace ecfs::block
