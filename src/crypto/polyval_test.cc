#include "crypto/polyval.h"

#include <gtest/gtest.h>

#include <random>

#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

using testing::hex;

std::string polyval_hex(ByteSpan h, ByteSpan blocks, bool portable) {
  const PolyvalKey key(h);
  PolyvalState state;
  if (portable) {
    state.absorb_blocks_portable(key, blocks);
  } else {
    state.absorb_blocks(key, blocks);
  }
  return to_hex(state.digest());
}

class PolyvalBothPaths : public ::testing::TestWithParam<bool> {};

// RFC 8452 appendix A: POLYVAL(H, X_1, X_2).
TEST_P(PolyvalBothPaths, Rfc8452AppendixA) {
  const Bytes h = hex("25629347589242761d31f826ba4b757b");
  const Bytes x = hex("4f4f95668c83dfb6401762bb2d01a262d1a24ddd2721d006bbe45f20d3c9f362");
  EXPECT_EQ(polyval_hex(h, x, GetParam()), "f7a3b47b846119fae5b7866cf5e5b77e");
}

TEST_P(PolyvalBothPaths, NoBlocksLeavesZero) {
  EXPECT_EQ(polyval_hex(hex("25629347589242761d31f826ba4b757b"), {}, GetParam()),
            std::string(32, '0'));
}

INSTANTIATE_TEST_SUITE_P(PortableAndFastest, PolyvalBothPaths, ::testing::Values(true, false),
                         [](const auto& param_info) {
                           return param_info.param ? "Portable" : "Fastest";
                         });

// dot(a, b) = a * b * x^-128, so dot(a, x^128 mod P) = a. x^128 mod P is
// x^127 + x^126 + x^121 + 1 (RFC 8452 section 3's polynomial).
TEST(PolyvalDot, MontgomeryOneIsIdentity) {
  const Bytes one = hex("010000000000000000000000000000c2");
  const Bytes a = hex("4f4f95668c83dfb6401762bb2d01a262");
  EXPECT_EQ(to_hex(polyval_dot(a, one)), to_hex(a));
  EXPECT_EQ(to_hex(polyval_dot(one, a)), to_hex(a));
}

// RFC 8452 appendix A's mulX_POLYVAL example, as corrected by RFC errata
// 5907: multiplying by x is dot() with x^129 mod P = x^126 + x^122 + x^121
// + x + 1.
TEST(PolyvalDot, Rfc8452MulXExample) {
  const Bytes x129 = hex("03000000000000000000000000000046");
  EXPECT_EQ(to_hex(polyval_dot(hex("9c98c04df9387ded828175a92ba652d8"), x129)),
            "3931819bf271fada0503eb52574ca572");
}

TEST(PolyvalDot, Commutes) {
  const Bytes a = hex("25629347589242761d31f826ba4b757b");
  const Bytes b = hex("d1a24ddd2721d006bbe45f20d3c9f362");
  EXPECT_EQ(polyval_dot(a, b), polyval_dot(b, a));
}

// Every length 0..40 blocks crosses the 8-block aggregation and its
// remainder differently; the PCLMULQDQ path (when present) and the portable
// one must agree, and absorbing in two calls must equal one call.
TEST(Polyval, FastAndPortableAgreeAtEveryLength) {
  std::mt19937 rng(1441);
  for (size_t blocks = 0; blocks <= 40; ++blocks) {
    Bytes h(16), data(16 * blocks);
    for (auto& b : h) b = static_cast<uint8_t>(rng());
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    const std::string portable = polyval_hex(h, data, true);
    EXPECT_EQ(polyval_hex(h, data, false), portable) << blocks << " blocks";

    const PolyvalKey key(h);
    PolyvalState split;
    const size_t first = 16 * (blocks / 3);
    split.absorb_blocks(key, ByteSpan(data).first(first));
    split.absorb_blocks(key, ByteSpan(data).subspan(first));
    EXPECT_EQ(to_hex(split.digest()), portable) << blocks << " blocks, split";
  }
  SUCCEED() << (polyval_uses_pclmul() ? "PCLMULQDQ path exercised" : "portable path only");
}

// A copied state continues independently (HCTR2 reuses its hashed tweak).
TEST(Polyval, CopiedStateContinuesIndependently) {
  const PolyvalKey key(hex("25629347589242761d31f826ba4b757b"));
  PolyvalState prefix;
  prefix.absorb_blocks(key, hex("4f4f95668c83dfb6401762bb2d01a262"));
  PolyvalState copy = prefix;
  copy.absorb_blocks(key, hex("d1a24ddd2721d006bbe45f20d3c9f362"));
  EXPECT_EQ(to_hex(copy.digest()), "f7a3b47b846119fae5b7866cf5e5b77e");
  EXPECT_NE(prefix.digest(), copy.digest());
}

}  // namespace
}  // namespace ecfs::crypto
