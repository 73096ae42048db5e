#include "block/io_buffer.h"

#include <gtest/gtest.h>

#include <cstring>

namespace ecfs::block {
namespace {

TEST(IoBufferTest, IsAlignedForDirectIoAndRoundedToWholeAlignmentUnits) {
  IoBuffer buffer(5000);
  EXPECT_TRUE(is_io_aligned(buffer.data()));
  EXPECT_EQ(buffer.size(), 2 * kIoBufferAlignment);
  std::memset(buffer.data(), 0xab, buffer.size());  // all of it is usable (ASan checks)
  EXPECT_EQ(buffer.first(10).size(), 10u);
}

TEST(IoBufferTest, GrowsOnlyWhenAskedForMore) {
  IoBuffer buffer;
  EXPECT_EQ(buffer.size(), 0u);
  buffer.reserve_for_overwrite(kIoBufferAlignment);
  uint8_t* const first = buffer.data();
  buffer.reserve_for_overwrite(100);
  EXPECT_EQ(buffer.data(), first);
  buffer.reserve_for_overwrite(3 * kIoBufferAlignment + 1);
  EXPECT_EQ(buffer.size(), 4 * kIoBufferAlignment);
  EXPECT_TRUE(is_io_aligned(buffer.data()));
}

TEST(IoBufferTest, MisalignedPointersAreRecognized) {
  IoBuffer buffer(kIoBufferAlignment);
  EXPECT_FALSE(is_io_aligned(buffer.data() + 16));
}

}  // namespace
}  // namespace ecfs::block
