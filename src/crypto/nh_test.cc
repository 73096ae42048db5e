#include "crypto/nh.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace ecfs::crypto {
namespace {

// Serialises 32-bit words little-endian, the form NH keys and messages take.
Bytes words(std::initializer_list<uint32_t> values) {
  Bytes out(4 * values.size());
  size_t i = 0;
  for (uint32_t v : values) store_le32(out.data() + 4 * i++, v);
  return out;
}

Bytes counting_nh_key() {
  Bytes key(kNhKeyBytes);
  for (size_t i = 0; i < kNhKeyBytes / 4; ++i) store_le32(key.data() + 4 * i, i);
  return key;
}

// Worked from the definition (Adiantum paper section 6.3; kernel
// nh_generic): with key word k[i] = i, unit u and pass p pair
// (m0 + k[4u+4p]) * (m2 + k[4u+4p+2]) + (m1 + k[4u+4p+1]) * (m3 + k[4u+4p+3]).
//   unit 0 = (1,2,3,4): passes 1*5+3*7=26, 5*9+7*11=122, 9*13+11*15=282,
//                       13*17+15*19=506
//   unit 1 = (5,6,7,8): passes 9*13+11*15=282, 13*17+15*19=506,
//                       17*21+19*23=794, 21*25+23*27=1146
TEST(Nh, WorkedExampleFromDefinition) {
  const auto sums = nh(counting_nh_key(), words({1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(sums[0], 26u + 282u);
  EXPECT_EQ(sums[1], 122u + 506u);
  EXPECT_EQ(sums[2], 282u + 794u);
  EXPECT_EQ(sums[3], 506u + 1146u);
}

// Message + key additions wrap mod 2^32 before the 64-bit product; the
// sums wrap mod 2^64.
TEST(Nh, WordAdditionWrapsAt32Bits) {
  Bytes key(kNhKeyBytes, 0);
  store_le32(key.data() + 4 * 4, 1);  // k[4] = 1: pass 1 adds 1 to m0
  const auto sums = nh(key, words({0xffffffff, 0, 0xffffffff, 0}));
  EXPECT_EQ(sums[0], 0xfffffffe00000001ULL);  // 0xffffffff^2
  EXPECT_EQ(sums[1], 0u);                     // (0xffffffff + 1) mod 2^32 = 0
  EXPECT_EQ(sums[2], 0xfffffffe00000001ULL);
}

TEST(Nh, SumsWrapAt64Bits) {
  Bytes message;
  for (int unit = 0; unit < 64; ++unit) {
    const Bytes w = words({0xffffffff, 0, 0xffffffff, 0});
    message.insert(message.end(), w.begin(), w.end());
  }
  const auto sums = nh(Bytes(kNhKeyBytes, 0), message);
  // 64 * 0xfffffffe00000001 mod 2^64
  for (uint64_t s : sums) EXPECT_EQ(s, 0xffffff8000000040ULL);
}

// The AVX2 path (when the CPU has it, with its odd-unit tail) and the
// portable one agree at every length.
TEST(Nh, FastAndPortableAgreeAtEveryLength) {
  std::mt19937 rng(1024);
  Bytes key(kNhKeyBytes), message(kNhMessageBytes);
  for (auto& b : key) b = static_cast<uint8_t>(rng());
  for (auto& b : message) b = static_cast<uint8_t>(rng());
  for (size_t len = 0; len <= kNhMessageBytes; len += kNhMessageUnit) {
    const ByteSpan part = ByteSpan(message).first(len);
    EXPECT_EQ(nh(key, part), nh_portable(key, part)) << len << " bytes";
  }
  // The worked example holds for the portable path too.
  EXPECT_EQ(nh_portable(counting_nh_key(), words({1, 2, 3, 4, 5, 6, 7, 8}))[3], 506u + 1146u);
}

Bytes nhpoly_key(uint8_t r_low_byte, const Bytes& nh_key) {
  Bytes key(kPoly1305KeySize, 0);
  key[0] = r_low_byte;
  key.insert(key.end(), nh_key.begin(), nh_key.end());
  return key;
}

// r = 1 and a zero NH key: NH of (1,2,3,4) is 1*3+2*4 = 11 in every pass, so
// the Poly1305 core sees blocks (11 + 11*2^64) twice and, with r = 1, returns
// their sum 22 + 22*2^64 (the two 2^128 terms vanish in the truncation).
TEST(NhPoly1305, WorkedExampleWithUnitMultiplier) {
  const NhPoly1305Key key(nhpoly_key(1, Bytes(kNhKeyBytes, 0)));
  EXPECT_EQ(to_hex(nhpoly1305(key, words({1, 2, 3, 4}))), "16000000000000001600000000000000");
}

TEST(NhPoly1305, EmptyMessageHashesToZero) {
  const NhPoly1305Key key(nhpoly_key(7, counting_nh_key()));
  EXPECT_EQ(to_hex(nhpoly1305(key, {})), std::string(32, '0'));
}

// The kernel zero-pads the last partial 16-byte unit
// (crypto_nhpoly1305_final), so a message and its zero-padded form agree.
TEST(NhPoly1305, PartialUnitIsZeroPadded) {
  const NhPoly1305Key key(nhpoly_key(0x35, counting_nh_key()));
  Bytes message(20);
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<uint8_t>(0x90 + i);
  Bytes padded = message;
  padded.resize(32, 0);
  EXPECT_EQ(nhpoly1305(key, message), nhpoly1305(key, padded));
  Bytes other = padded;
  other[25] = 1;  // a nonzero byte past the message does change the hash
  EXPECT_NE(nhpoly1305(key, message), nhpoly1305(key, other));
}

// One NH output per 1024 bytes, each starting again at key word 0, each fed
// to Poly1305 as two blocks (kernel nhpoly1305_units).
TEST(NhPoly1305, EachKilobyteIsASeparateNhMessage) {
  const Bytes poly_r = {0x11, 0x22, 0x33, 0x04, 0x55, 0x66, 0x77, 0x08,
                        0x99, 0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0xff, 0x01};
  Bytes key_bytes = poly_r;
  const Bytes nh_key = counting_nh_key();
  key_bytes.insert(key_bytes.end(), nh_key.begin(), nh_key.end());
  const NhPoly1305Key key(key_bytes);

  Bytes message(1024 + 48);
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<uint8_t>(i * 13 + 5);

  Poly1305State expected;
  const Poly1305Key r(poly_r);
  for (ByteSpan piece : {ByteSpan(message).first(1024), ByteSpan(message).subspan(1024)}) {
    const auto sums = nh(nh_key, piece);
    uint8_t hash[kNhHashBytes];
    for (size_t i = 0; i < kNhPasses; ++i) store_le64(hash + 8 * i, sums[i]);
    expected.absorb_blocks(r, hash);
  }
  EXPECT_EQ(nhpoly1305(key, message), expected.emit());
}

}  // namespace
}  // namespace ecfs::crypto
