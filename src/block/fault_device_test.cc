#include "block/fault_device.h"

#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <thread>
#include <vector>

#include "block/memory_device.h"
#include "block/recording_device.h"
#include "block/testing.h"

namespace ecfs::block {
namespace {

using testing::error_of;
using testing::message_of;
using testing::pattern;
using testing::read_back;

constexpr uint64_t kSize = 64 * kBlockSize;

int count_bit_differences(ByteSpan a, ByteSpan b) {
  int bits = 0;
  for (size_t i = 0; i < a.size(); ++i) bits += std::popcount(static_cast<uint8_t>(a[i] ^ b[i]));
  return bits;
}

class FaultDeviceTest : public ::testing::Test {
 protected:
  MemoryDevice memory_{kSize, "disk"};
  FaultDevice faulty_{memory_};
};

TEST_F(FaultDeviceTest, NthWriteFailsOnceWithTheChosenErrno) {
  faulty_.fail_nth(FaultOp::kWrite, 3, ENOSPC);
  ASSERT_TRUE(faulty_.write(0, pattern(kBlockSize, 1)));
  ASSERT_TRUE(faulty_.write(kBlockSize, pattern(kBlockSize, 2)));
  auto third = faulty_.write(2 * kBlockSize, pattern(kBlockSize, 3));
  EXPECT_EQ(error_of(third), ENOSPC);
  EXPECT_NE(message_of(third).find("disk"), std::string::npos);
  EXPECT_NE(message_of(third).find(std::to_string(2 * kBlockSize)), std::string::npos);
  EXPECT_NE(message_of(third).find("injected"), std::string::npos);
  // Not forwarded: the disk never saw it.
  EXPECT_EQ(read_back(memory_, 2 * kBlockSize, kBlockSize), Bytes(kBlockSize, 0));
  // One-shot: the next write goes through.
  EXPECT_TRUE(faulty_.write(2 * kBlockSize, pattern(kBlockSize, 3)));
  EXPECT_EQ(faulty_.request_count(FaultOp::kWrite), 4u);
  EXPECT_EQ(faulty_.injected_failures(), 1u);
}

TEST_F(FaultDeviceTest, CountsFromWhenTheFaultIsArmed) {
  ASSERT_TRUE(faulty_.write(0, pattern(kBlockSize, 1)));
  ASSERT_TRUE(faulty_.write(0, pattern(kBlockSize, 1)));
  faulty_.fail_nth(FaultOp::kWrite, 1, EIO);
  EXPECT_EQ(error_of(faulty_.write(0, pattern(kBlockSize, 1))), EIO);
}

TEST_F(FaultDeviceTest, NthReadAndFlushFail) {
  faulty_.fail_nth(FaultOp::kRead, 2, EIO);
  faulty_.fail_nth(FaultOp::kFlush, 1, EIO);
  Bytes out(kBlockSize);
  EXPECT_TRUE(faulty_.read(0, out));
  EXPECT_EQ(error_of(faulty_.read(0, out)), EIO);
  EXPECT_TRUE(faulty_.read(0, out));
  EXPECT_EQ(error_of(faulty_.flush()), EIO);
  EXPECT_EQ(memory_.flush_count(), 0u);
  EXPECT_TRUE(faulty_.flush());
  EXPECT_EQ(memory_.flush_count(), 1u);
}

TEST_F(FaultDeviceTest, DeadDiskFailsEveryWriteAfterThePointUntilHealed) {
  faulty_.fail_after(FaultOp::kWrite, 2, EIO);
  EXPECT_TRUE(faulty_.write(0, pattern(kBlockSize, 1)));
  EXPECT_TRUE(faulty_.write(kBlockSize, pattern(kBlockSize, 2)));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(error_of(faulty_.write(2 * kBlockSize, pattern(kBlockSize, 3))), EIO);
  }
  Bytes out(kBlockSize);
  EXPECT_TRUE(faulty_.read(0, out));  // reads are another kind
  EXPECT_TRUE(faulty_.flush());
  EXPECT_EQ(faulty_.injected_failures(), 5u);
  faulty_.heal();
  EXPECT_TRUE(faulty_.write(2 * kBlockSize, pattern(kBlockSize, 3)));
}

TEST_F(FaultDeviceTest, CorruptedReadsFlipOneBitPerBlockOfTheRange) {
  const Bytes data = pattern(4 * kBlockSize, 4);
  ASSERT_TRUE(faulty_.write(0, data));
  // Bytes 100..199 of block 1, and all of blocks 2 and 3.
  faulty_.corrupt_reads(kBlockSize + 100, 100, 42);
  faulty_.corrupt_reads(2 * kBlockSize, 2 * kBlockSize, 7);
  const Bytes first = read_back(faulty_, 0, data.size());
  auto block = [](const Bytes& bytes, int i) {
    return ByteSpan(bytes.data() + i * kBlockSize, kBlockSize);
  };
  EXPECT_EQ(count_bit_differences(block(first, 0), block(data, 0)), 0);
  EXPECT_EQ(count_bit_differences(block(first, 1), block(data, 1)), 1);
  EXPECT_EQ(count_bit_differences(block(first, 2), block(data, 2)), 1);
  EXPECT_EQ(count_bit_differences(block(first, 3), block(data, 3)), 1);
  // The flipped bit of block 1 lies inside the range.
  for (size_t i = 0; i < kBlockSize; ++i) {
    if (first[kBlockSize + i] != data[kBlockSize + i]) {
      EXPECT_GE(i, 100u);
      EXPECT_LT(i, 200u);
    }
  }
  // Rereads agree, also when a read covers only part of the range.
  EXPECT_EQ(read_back(faulty_, 0, data.size()), first);
  const Bytes block1 = read_back(faulty_, kBlockSize, kBlockSize);
  EXPECT_TRUE(std::equal(block1.begin(), block1.end(), first.begin() + kBlockSize));
  // The medium itself is intact: silent corruption is on the read path.
  EXPECT_EQ(read_back(memory_, 0, data.size()), data);
  faulty_.heal();
  EXPECT_EQ(read_back(faulty_, 0, data.size()), data);
}

TEST_F(FaultDeviceTest, PowerCutDropsLaterWritesAndFlushes) {
  MemoryDevice disk(kSize);
  RecordingDevice recorder(disk);
  FaultDevice faulty(recorder);
  faulty.power_cut_after(2);
  EXPECT_FALSE(faulty.power_is_cut());
  ASSERT_TRUE(faulty.write(0, pattern(kBlockSize, 1)));
  ASSERT_TRUE(faulty.flush());  // before the cut: forwarded
  ASSERT_TRUE(faulty.write(kBlockSize, pattern(kBlockSize, 2)));
  EXPECT_TRUE(faulty.power_is_cut());
  // After the cut everything reports success and nothing arrives.
  EXPECT_TRUE(faulty.write(2 * kBlockSize, pattern(kBlockSize, 3)));
  EXPECT_TRUE(faulty.write(0, pattern(kBlockSize, 4)));
  EXPECT_TRUE(faulty.flush());
  EXPECT_EQ(faulty.dropped_writes(), 2u);
  EXPECT_EQ(read_back(disk, 0, kBlockSize), pattern(kBlockSize, 1));
  EXPECT_EQ(read_back(disk, 2 * kBlockSize, kBlockSize), Bytes(kBlockSize, 0));
  // The flush after the cut never reached the recorder: write 2 stays unflushed.
  EXPECT_EQ(recorder.flush_points(), std::vector<size_t>{1});
  EXPECT_EQ(recorder.unflushed_writes(recorder.op_count()), std::vector<size_t>{2});
  faulty.heal();
  EXPECT_FALSE(faulty.power_is_cut());
}

TEST_F(FaultDeviceTest, ImmediatePowerCut) {
  faulty_.power_cut();
  EXPECT_TRUE(faulty_.power_is_cut());
  EXPECT_TRUE(faulty_.write(0, pattern(kBlockSize, 1)));
  EXPECT_TRUE(faulty_.flush());
  EXPECT_EQ(read_back(memory_, 0, kBlockSize), Bytes(kBlockSize, 0));
  EXPECT_EQ(memory_.flush_count(), 0u);
}

TEST_F(FaultDeviceTest, InvalidRequestsAreRefusedBeforeFaults) {
  faulty_.fail_nth(FaultOp::kWrite, 1, EIO);
  EXPECT_EQ(error_of(faulty_.write(1, pattern(kBlockSize, 1))), EINVAL);
  EXPECT_EQ(faulty_.request_count(FaultOp::kWrite), 0u);
  EXPECT_EQ(error_of(faulty_.write(0, pattern(kBlockSize, 1))), EIO);
}

TEST_F(FaultDeviceTest, ExactlyTheNthOfConcurrentWritesFails) {
  faulty_.fail_nth(FaultOp::kWrite, 50, EIO);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 16; ++i) {
        const uint64_t block = static_cast<uint64_t>(t * 16 + i);
        if (!faulty_.write(block * kBlockSize, pattern(kBlockSize, block))) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 1);
  EXPECT_EQ(faulty_.request_count(FaultOp::kWrite), 64u);
}

}  // namespace
}  // namespace ecfs::block
