#include "crypto/secret.h"

#include <gtest/gtest.h>

#include <type_traits>

namespace ecfs::crypto {
namespace {

static_assert(!std::is_copy_constructible_v<SecretBytes>);
static_assert(!std::is_copy_assignable_v<SecretBytes>);
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);

TEST(SecretBytes, StartsZeroed) {
  SecretBytes s(32);
  ASSERT_EQ(s.size(), 32u);
  for (uint8_t b : s.span()) EXPECT_EQ(b, 0);
}

TEST(SecretBytes, MoveLeavesSourceEmpty) {
  Bytes raw = {1, 2, 3, 4};
  SecretBytes a = SecretBytes::copy_of(raw);
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the contract
  EXPECT_TRUE(b.equals(raw));
  EXPECT_FALSE(b.equals(Bytes{1, 2, 3}));
  EXPECT_FALSE(b.equals(Bytes{1, 2, 3, 5}));
}

TEST(SecretBytes, SecureHeapIsUsableAfterInit) {
  init_secure_heap();
  SecretBytes s = SecretBytes::copy_of(Bytes(64, 0xaa));
  EXPECT_EQ(s.span()[63], 0xaa);
}

}  // namespace
}  // namespace ecfs::crypto
