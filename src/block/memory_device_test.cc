#include "block/memory_device.h"

#include <gtest/gtest.h>

#include "block/testing.h"

namespace ecfs::block {
namespace {

using testing::error_of;
using testing::pattern;
using testing::read_back;

TEST(MemoryDeviceTest, SizeIsRoundedDownToWholeBlocks) {
  EXPECT_EQ(MemoryDevice(3 * kBlockSize + 5).size(), 3 * kBlockSize);
  EXPECT_EQ(MemoryDevice(100).size(), 0u);
  EXPECT_EQ(MemoryDevice(kBlockSize, "named").describe(), "named");
}

TEST(MemoryDeviceTest, IsSparse) {
  // 1 TiB of address space costs only the blocks written.
  MemoryDevice device(1ull << 40);
  ASSERT_TRUE(device.write((1ull << 40) - kBlockSize, pattern(kBlockSize, 1)));
  ASSERT_TRUE(device.write(0, pattern(2 * kBlockSize, 2)));
  EXPECT_EQ(device.allocated_blocks(), 3u);
  EXPECT_EQ(read_back(device, 1ull << 30, kBlockSize), Bytes(kBlockSize, 0));
}

TEST(MemoryDeviceTest, CopiesAreIndependent) {
  MemoryDevice original(16 * kBlockSize);
  const Bytes first = pattern(4 * kBlockSize, 1);
  auto block_of_first = [&](size_t i) {
    return Bytes(first.begin() + i * kBlockSize, first.begin() + (i + 1) * kBlockSize);
  };
  ASSERT_TRUE(original.write(0, first));
  MemoryDevice copy = original;
  EXPECT_TRUE(copy.same_contents(original));
  // Writes to either side after the copy stay on that side.
  ASSERT_TRUE(copy.write(kBlockSize, pattern(kBlockSize, 2)));
  ASSERT_TRUE(original.write(2 * kBlockSize, pattern(kBlockSize, 3)));
  EXPECT_EQ(read_back(original, kBlockSize, kBlockSize), block_of_first(1));
  EXPECT_EQ(read_back(copy, kBlockSize, kBlockSize), pattern(kBlockSize, 2));
  EXPECT_EQ(read_back(copy, 2 * kBlockSize, kBlockSize), block_of_first(2));
  EXPECT_FALSE(copy.same_contents(original));
  EXPECT_EQ(copy.first_different_block(original), 1u);
  // Unaligned writes go through the same copy-on-write path.
  MemoryDevice third = copy;
  ASSERT_TRUE(third.write_at(kBlockSize + 10, Bytes{0xAB}));
  EXPECT_EQ(read_back(copy, kBlockSize, kBlockSize), pattern(kBlockSize, 2));
  EXPECT_EQ(third.first_different_block(copy), 1u);
}

TEST(MemoryDeviceTest, MovedFromKeepsNothingItNeeds) {
  MemoryDevice source(4 * kBlockSize);
  ASSERT_TRUE(source.write(0, pattern(kBlockSize, 4)));
  MemoryDevice target = std::move(source);
  EXPECT_EQ(read_back(target, 0, kBlockSize), pattern(kBlockSize, 4));
}

TEST(MemoryDeviceTest, ByteGranularAccess) {
  MemoryDevice device(4 * kBlockSize);
  const Bytes data = pattern(5000, 5);  // crosses a block boundary at an odd offset
  ASSERT_TRUE(device.write_at(4000, data));
  Bytes out(data.size());
  ASSERT_TRUE(device.read_at(4000, out));
  EXPECT_EQ(out, data);
  EXPECT_EQ(error_of(device.write_at(4 * kBlockSize - 1, Bytes(2))), EINVAL);
  Bytes small(2);
  EXPECT_EQ(error_of(device.read_at(4 * kBlockSize - 1, small)), EINVAL);
  EXPECT_TRUE(device.read_at(4 * kBlockSize - 2, small));
}

TEST(MemoryDeviceTest, ZeroBlocksEqualUnwrittenBlocks) {
  MemoryDevice a(8 * kBlockSize);
  MemoryDevice b(8 * kBlockSize);
  ASSERT_TRUE(a.write(3 * kBlockSize, Bytes(kBlockSize, 0)));
  EXPECT_TRUE(a.same_contents(b));
  EXPECT_TRUE(b.same_contents(a));
  ASSERT_TRUE(b.write_at(7 * kBlockSize + 4095, Bytes{1}));
  EXPECT_EQ(a.first_different_block(b), 7u);
  EXPECT_FALSE(a.same_contents(MemoryDevice(16 * kBlockSize)));  // sizes differ
}

TEST(MemoryDeviceTest, CountsFlushes) {
  MemoryDevice device(kBlockSize);
  EXPECT_EQ(device.flush_count(), 0u);
  ASSERT_TRUE(device.flush());
  ASSERT_TRUE(device.flush());
  EXPECT_EQ(device.flush_count(), 2u);
}

}  // namespace
}  // namespace ecfs::block
