#include "crypto/poly1305.h"

#include <gtest/gtest.h>

#include <string>

namespace ecfs::crypto {
namespace {

Bytes hex(std::string_view s) { return from_hex(s).value(); }

std::string mac_hex(std::string_view key, ByteSpan message) {
  return to_hex(poly1305_mac(hex(key), message));
}

// RFC 8439 section 2.5.2, "Example and Test Vector for Poly1305".
TEST(Poly1305, Rfc8439Section252) {
  EXPECT_EQ(mac_hex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b",
                    as_bytes("Cryptographic Forum Research Group")),
            "a8061dc1305136c6c22b8baf0c0127a9");
}

// RFC 8439 appendix A.3, test vector #1: all-zero key and message.
TEST(Poly1305, Rfc8439A3ZeroKey) {
  EXPECT_EQ(mac_hex(std::string(64, '0'), Bytes(64, 0)), "00000000000000000000000000000000");
}

// RFC 8439 appendix A.3, test vectors #5 to #11: the edge cases of the
// reduction mod 2^130 - 5 (h reaching p, carries through every limb).
TEST(Poly1305, Rfc8439A3ReductionEdgeCases) {
  const std::string r2 = "02" + std::string(62, '0');
  const std::string r1 = "01" + std::string(62, '0');
  // #5: h = 2^130 - 2 before the final reduction.
  EXPECT_EQ(mac_hex(r2, hex("ffffffffffffffffffffffffffffffff")),
            "03000000000000000000000000000000");
  // #6: s = 2^128 - 1 makes the final addition wrap.
  EXPECT_EQ(mac_hex("02000000000000000000000000000000ffffffffffffffffffffffffffffffff",
                    hex("02000000000000000000000000000000")),
            "03000000000000000000000000000000");
  // #7: carries out of the top limb.
  EXPECT_EQ(mac_hex(r1, hex("ffffffffffffffffffffffffffffffff"
                            "f0ffffffffffffffffffffffffffffff"
                            "11000000000000000000000000000000")),
            "05000000000000000000000000000000");
  // #8: h = p exactly, which must reduce to 0.
  EXPECT_EQ(mac_hex(r1, hex("ffffffffffffffffffffffffffffffff"
                            "fbfefefefefefefefefefefefefefefe"
                            "01010101010101010101010101010101")),
            "00000000000000000000000000000000");
  // #9: h = p - 1, the largest fully reduced value.
  EXPECT_EQ(mac_hex(r2, hex("fdffffffffffffffffffffffffffffff")),
            "faffffffffffffffffffffffffffffff");
  // #10: r with a high limb, products that need the 5*r1/4 fold.
  EXPECT_EQ(mac_hex("0100000000000000040000000000000000000000000000000000000000000000",
                    hex("e33594d7505e43b900000000000000003394d7505e4379cd0100000000000000"
                        "0000000000000000000000000000000001000000000000000000000000000000")),
            "14000000000000005500000000000000");
}

// The core used by Adiantum is the MAC without the pad: with s = 0 both agree,
// and emit() is the pad-free value.
TEST(Poly1305, CoreEqualsMacWithZeroPad) {
  const Bytes key = hex("85d6be7857556d337f4452fe42d506a8");
  const Poly1305Key r(key);
  Poly1305State state;
  const Bytes message(48, 0xa5);
  state.absorb_blocks(r, message);
  Bytes mac_key = key;
  mac_key.resize(32, 0);
  EXPECT_EQ(to_hex(state.emit()), to_hex(poly1305_mac(mac_key, message)));
  // A nonzero pad changes the tag but not the core value.
  EXPECT_NE(to_hex(state.emit_with_pad(hex("01000000000000000000000000000000"))),
            to_hex(state.emit()));
}

// Absorbing blocks in several calls gives the same value as one call.
TEST(Poly1305, IncrementalAbsorbMatchesOneShot) {
  const Poly1305Key r(hex("0123456789abcdef0123456789abcdef"));
  Bytes message(160);
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<uint8_t>(i * 7 + 1);
  Poly1305State one_shot;
  one_shot.absorb_blocks(r, message);
  Poly1305State pieces;
  pieces.absorb_blocks(r, ByteSpan(message).first(16));
  pieces.absorb_blocks(r, ByteSpan(message).subspan(16, 96));
  pieces.absorb_blocks(r, ByteSpan(message).subspan(112));
  EXPECT_EQ(one_shot.emit(), pieces.emit());
}

// Clamping: key bits that RFC 8439 clears must not influence the result.
TEST(Poly1305, KeyIsClamped) {
  const Poly1305Key clamped(hex("ffffff0ffcffff0ffcffff0ffcffff0f"));
  const Poly1305Key unclamped(hex("ffffffffffffffffffffffffffffffff"));
  EXPECT_EQ(clamped.r0(), unclamped.r0());
  EXPECT_EQ(clamped.r1(), unclamped.r1());
  EXPECT_EQ(unclamped.r0(), 0x0ffffffc0fffffffULL);
  EXPECT_EQ(unclamped.r1(), 0x0ffffffc0ffffffcULL);
}

}  // namespace
}  // namespace ecfs::crypto
