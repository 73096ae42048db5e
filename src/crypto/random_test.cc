#include "crypto/random.h"

#include <gtest/gtest.h>

#include <array>

namespace ecfs::crypto {
namespace {

TEST(RandomBytes, FillsAndDiffers) {
  Bytes a(32, 0), b(32, 0);
  ASSERT_TRUE(random_bytes(a));
  ASSERT_TRUE(random_bytes(b));
  // 2^-256 chance of a false failure.
  EXPECT_NE(a, b);
  EXPECT_NE(a, Bytes(32, 0));
}

TEST(RandomBytes, LargeBufferUsesEveryByteValue) {
  Bytes big(1 << 20, 0);
  ASSERT_TRUE(random_bytes(big));
  std::array<size_t, 256> counts{};
  for (uint8_t byte : big) ++counts[byte];
  // Each value is expected 4096 times; below 3000 is off by > 17 sigma.
  for (size_t value = 0; value < 256; ++value) EXPECT_GT(counts[value], 3000u) << value;
}

TEST(RandomBytes, EmptyIsFine) { EXPECT_TRUE(random_bytes({})); }

}  // namespace
}  // namespace ecfs::crypto
