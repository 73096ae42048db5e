#include "fscrypt/iv.h"

#include <gtest/gtest.h>

#include <limits>

namespace ecfs::fscrypt {
namespace {

constexpr uint64_t kU32Max = std::numeric_limits<uint32_t>::max();

std::array<uint8_t, 16> counting_nonce() {
  std::array<uint8_t, 16> nonce;
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(0xa0 + i);
  return nonce;
}

Bytes iv_bytes(const IvParams& params, uint64_t index, size_t size) {
  auto iv = generate_iv(params, index, size);
  EXPECT_TRUE(iv) << (iv ? "" : iv.error().message());
  if (!iv) return {};
  return Bytes(iv->span().begin(), iv->span().end());
}

TEST(IvScheme, FromPolicyFlagsFollowsGenerateIvOrder) {
  EXPECT_EQ(iv_scheme_from_policy_flags(0x00), IvScheme::kDefault);
  // Padding bits (0x03) do not affect the IV.
  EXPECT_EQ(iv_scheme_from_policy_flags(0x03), IvScheme::kDefault);
  EXPECT_EQ(iv_scheme_from_policy_flags(0x04), IvScheme::kDirectKey);
  EXPECT_EQ(iv_scheme_from_policy_flags(0x07), IvScheme::kDirectKey);
  EXPECT_EQ(iv_scheme_from_policy_flags(0x08), IvScheme::kInoLblk64);
  EXPECT_EQ(iv_scheme_from_policy_flags(0x10), IvScheme::kInoLblk32);
  // Invalid combinations (policy.c rejects them): the kernel's
  // fscrypt_generate_iv tests LBLK_64, then LBLK_32, then DIRECT_KEY.
  EXPECT_EQ(iv_scheme_from_policy_flags(0x0c), IvScheme::kInoLblk64);
  EXPECT_EQ(iv_scheme_from_policy_flags(0x18), IvScheme::kInoLblk64);
  EXPECT_EQ(iv_scheme_from_policy_flags(0x14), IvScheme::kInoLblk32);
}

TEST(Iv, DefaultIsLittleEndianIndexThenZeros) {
  const Bytes expected16 = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(iv_bytes(IvParams::default_scheme(), 0x0102030405060708ull, 16), expected16);
  Bytes expected32 = expected16;
  expected32.resize(32, 0);
  EXPECT_EQ(iv_bytes(IvParams::default_scheme(), 0x0102030405060708ull, 32), expected32);
  EXPECT_EQ(iv_bytes(IvParams::default_scheme(), 0, 16), Bytes(16, 0));
  // The full 64-bit index is allowed.
  Bytes max = Bytes(8, 0xff);
  max.resize(16, 0);
  EXPECT_EQ(iv_bytes(IvParams::default_scheme(), ~uint64_t{0}, 16), max);
}

TEST(Iv, DirectKeyIsIndexThenNonceThenZeros) {
  const auto nonce = counting_nonce();
  const Bytes iv = iv_bytes(IvParams::direct_key(nonce), 0x1122, 32);
  ASSERT_EQ(iv.size(), 32u);
  EXPECT_EQ(Bytes(iv.begin(), iv.begin() + 8), (Bytes{0x22, 0x11, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(Bytes(iv.begin() + 8, iv.begin() + 24), Bytes(nonce.begin(), nonce.end()));
  EXPECT_EQ(Bytes(iv.begin() + 24, iv.end()), Bytes(8, 0));
}

TEST(Iv, DirectKeyNeedsA24ByteIv) {
  auto iv = generate_iv(IvParams::direct_key(counting_nonce()), 0, 16);
  ASSERT_FALSE(iv);
  EXPECT_EQ(iv.error().errno_value(), EINVAL);
}

TEST(Iv, InoLblk64IsIndexThenInodeNumber) {
  const Bytes expected = {0xdd, 0xcc, 0xbb, 0xaa, 0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(iv_bytes(IvParams::ino_lblk_64(0x11223344), 0xaabbccdd, 16), expected);
  // Largest inode number and index.
  Bytes all_ones(8, 0xff);
  all_ones.resize(16, 0);
  EXPECT_EQ(iv_bytes(IvParams::ino_lblk_64(kU32Max), kU32Max, 16), all_ones);
}

TEST(Iv, InoLblk64RejectsWideInodeNumbersAndIndices) {
  auto wide_inode = generate_iv(IvParams::ino_lblk_64(kU32Max + 1), 0, 16);
  ASSERT_FALSE(wide_inode);
  EXPECT_EQ(wide_inode.error().errno_value(), EINVAL);
  auto wide_index = generate_iv(IvParams::ino_lblk_64(5), kU32Max + 1, 16);
  ASSERT_FALSE(wide_index);
  EXPECT_EQ(wide_index.error().errno_value(), EINVAL);
}

TEST(Iv, InoLblk32AddsHashedInodeAndWraps) {
  const Bytes expected = {0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(iv_bytes(IvParams::ino_lblk_32(0x12345670), 8, 16), expected);
  // 0xfffffff0 + 0x20 wraps to 0x10 (mod 2^32); nothing spills into byte 4.
  Bytes wrapped(16, 0);
  wrapped[0] = 0x10;
  EXPECT_EQ(iv_bytes(IvParams::ino_lblk_32(0xfffffff0), 0x20, 16), wrapped);
  Bytes wrapped32 = wrapped;
  wrapped32.resize(32, 0);
  EXPECT_EQ(iv_bytes(IvParams::ino_lblk_32(0xfffffff0), 0x20, 32), wrapped32);
}

TEST(Iv, InoLblk32RejectsIndicesAbove32Bits) {
  auto iv = generate_iv(IvParams::ino_lblk_32(1), kU32Max + 1, 16);
  ASSERT_FALSE(iv);
  EXPECT_EQ(iv.error().errno_value(), EINVAL);
}

TEST(Iv, RangeCheckCoversTheLastIndex) {
  EXPECT_TRUE(check_iv_params(IvParams::ino_lblk_32(0), 16, kU32Max - 9, 10));
  EXPECT_FALSE(check_iv_params(IvParams::ino_lblk_32(0), 16, kU32Max - 9, 11));
  EXPECT_FALSE(check_iv_params(IvParams::ino_lblk_64(0), 16, kU32Max, 2));
  EXPECT_TRUE(check_iv_params(IvParams::default_scheme(), 16, ~uint64_t{0}, 1));
  auto wraps = check_iv_params(IvParams::default_scheme(), 16, ~uint64_t{0}, 2);
  ASSERT_FALSE(wraps);
  EXPECT_EQ(wraps.error().errno_value(), EINVAL);
}

TEST(Iv, RejectsIvSizesOtherThan16And32) {
  for (size_t size : {0, 8, 15, 17, 24, 31, 33, 64}) {
    auto iv = generate_iv(IvParams::default_scheme(), 0, size);
    ASSERT_FALSE(iv) << size;
    EXPECT_EQ(iv.error().errno_value(), EINVAL);
  }
}

TEST(Iv, WriteIvOverwritesTheWholeBuffer) {
  std::array<uint8_t, 32> buffer;
  buffer.fill(0xee);
  write_iv(IvParams::ino_lblk_64(2), 1, buffer);
  std::array<uint8_t, 32> expected{};
  expected[0] = 1;
  expected[4] = 2;
  EXPECT_EQ(buffer, expected);
}

}  // namespace
}  // namespace ecfs::fscrypt
