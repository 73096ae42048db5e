#include "crypto/aes_ecb.h"

#include <gtest/gtest.h>

#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

using testing::counting_bytes;
using testing::error_of;
using testing::hex;

// FIPS 197, Appendix C.1 (AES-128) and Appendix B (the cipher example).
TEST(Aes128Ecb, Fips197KnownAnswers) {
  Bytes out(16);
  ASSERT_TRUE(aes128_ecb_encrypt(hex("000102030405060708090a0b0c0d0e0f"),
                                 hex("00112233445566778899aabbccddeeff"), out));
  EXPECT_EQ(to_hex(out), "69c4e0d86a7b0430d8cdb78070b4c55a");
  ASSERT_TRUE(aes128_ecb_encrypt(hex("2b7e151628aed2a6abf7158809cf4f3c"),
                                 hex("3243f6a8885a308d313198a2e0370734"), out));
  EXPECT_EQ(to_hex(out), "3925841d02dc09fbdc118597196a0b32");
}

// ECB encrypts each block alone: the v1 KDF's 64-byte master key is four
// independent blocks (fs/crypto/keysetup_v1.c derive_key_aes).
TEST(Aes128Ecb, BlocksAreIndependent) {
  const Bytes key = hex("000102030405060708090a0b0c0d0e0f");
  Bytes master(64);
  for (int i = 0; i < 4; ++i) {
    const Bytes block = hex("00112233445566778899aabbccddeeff");
    std::copy(block.begin(), block.end(), master.begin() + 16 * i);
  }
  master[48] ^= 1;  // make the last block differ
  Bytes out(64);
  ASSERT_TRUE(aes128_ecb_encrypt(key, master, out));
  EXPECT_EQ(to_hex(ByteSpan(out).first(48)),
            "69c4e0d86a7b0430d8cdb78070b4c55a"
            "69c4e0d86a7b0430d8cdb78070b4c55a"
            "69c4e0d86a7b0430d8cdb78070b4c55a");
  EXPECT_NE(to_hex(ByteSpan(out).subspan(48)), "69c4e0d86a7b0430d8cdb78070b4c55a");
  Bytes in_place = master;
  ASSERT_TRUE(aes128_ecb_encrypt(key, in_place, in_place));
  EXPECT_EQ(in_place, out);
}

TEST(Aes128Ecb, RejectsBadSizes) {
  Bytes in(32), out(32);
  for (size_t key_size : {0, 15, 17, 24, 32}) {
    SCOPED_TRACE(key_size);
    EXPECT_EQ(error_of(aes128_ecb_encrypt(counting_bytes(key_size), in, out)), EINVAL);
  }
  const Bytes key = counting_bytes(16);
  EXPECT_EQ(
      error_of(aes128_ecb_encrypt(key, ByteSpan(in).first(17), MutableByteSpan(out).first(17))),
      EINVAL);
  EXPECT_EQ(error_of(aes128_ecb_encrypt(key, in, MutableByteSpan(out).first(16))), EINVAL);
}

}  // namespace
}  // namespace ecfs::crypto
