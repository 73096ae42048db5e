#include "crypto/siphash.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto/random.h"
#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

using testing::counting_bytes;

// The 64 SipHash-2-4 outputs of the reference implementation's vectors.h
// (github.com/veorq/SipHash), as the kernel's lib/test_siphash.c lists them:
// key 00..0f, message i = 00 01 .. (i-1), for i = 0..63, output as a
// little-endian u64. Entry 15 is the paper's example (Aumasson & Bernstein
// 2012, Appendix A): a129ca6149be45e5.
constexpr uint64_t kReferenceOutputs[64] = {
    0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
    0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
    0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
    0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
    0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
    0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
    0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad,
    0xde4daaaca71dc9a5, 0xa6a2506687956571, 0xad87a3535c49ef28, 0x32d892fad841c342,
    0x7127512f72f27cce, 0xa7f32346f95978e3, 0x12e0b01abb051238, 0x15e034d40fa197ae,
    0x314dffbe0815a3b4, 0x027990f029623981, 0xcadcd4e59ef40c4d, 0x9abfd8766a33735c,
    0x0e3ea96b5304a7d0, 0xad0c42d6fc585992, 0x187306c89bc215a9, 0xd4a60abcf3792b95,
    0xf935451de4f21df2, 0xa9538f0419755787, 0xdb9acddff56ca510, 0xd06c98cd5c0975eb,
    0xe612a3cb9ecba951, 0xc766e62cfcadaf96, 0xee64435a9752fe72, 0xa192d576b245165a,
    0x0a8787bf8ecb74b2, 0x81b3e73d20b49b6f, 0x7fa8220ba3b2ecea, 0x245731c13ca42499,
    0xb78dbfaf3a8d83bd, 0xea1ad565322a1a0b, 0x60e61c23a3795013, 0x6606d7e446282b93,
    0x6ca4ecb15c5f91e1, 0x9f626da15c9625f3, 0xe51b38608ef25f57, 0x958a324ceb064572,
};

TEST(SipHash24, ReferenceVectors) {
  const SipHashKey key = SipHashKey::from_bytes(counting_bytes(16));
  const Bytes message = counting_bytes(64);
  for (size_t i = 0; i < 64; ++i) {
    EXPECT_EQ(siphash_2_4(key, ByteSpan(message).first(i)), kReferenceOutputs[i]) << "length " << i;
  }
}

// A 16-byte key string maps to two little-endian words, as the kernel's
// fscrypt_derive_siphash_key does with le64_to_cpus.
TEST(SipHash24, KeyBytesAreLittleEndianWords) {
  const SipHashKey key = SipHashKey::from_bytes(counting_bytes(16));
  EXPECT_EQ(key.k0, 0x0706050403020100u);
  EXPECT_EQ(key.k1, 0x0f0e0d0c0b0a0908u);
}

// fscrypt's IV_INO_LBLK_32 hashes one u64 inode number, little-endian
// (siphash_1u64); the kernel's self-test checks it against entry 8.
TEST(SipHash24, OneU64MatchesEightByteVector) {
  const SipHashKey key{0x0706050403020100u, 0x0f0e0d0c0b0a0908u};
  uint8_t word[8];
  store_le64(word, 0x0706050403020100u);
  EXPECT_EQ(siphash_2_4(key, word), kReferenceOutputs[8]);
}

// Cross-check against OpenSSL's independent implementation (EVP_MAC
// "SIPHASH", 8-byte output, written little-endian) on random inputs.
TEST(SipHash24, AgreesWithOpenSsl) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  ASSERT_NE(mac, nullptr);
  for (size_t length = 0; length < 200; length += 7) {
    SCOPED_TRACE(length);
    Bytes key(16), message(length);
    ASSERT_TRUE(random_bytes(key));
    ASSERT_TRUE(random_bytes(message));
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    size_t size = 8;
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
        OSSL_PARAM_construct_end(),
    };
    uint8_t out[8];
    size_t out_len = 0;
    ASSERT_EQ(EVP_MAC_init(ctx, key.data(), key.size(), params), 1);
    ASSERT_EQ(EVP_MAC_update(ctx, message.data(), message.size()), 1);
    ASSERT_EQ(EVP_MAC_final(ctx, out, &out_len, sizeof out), 1);
    EVP_MAC_CTX_free(ctx);
    ASSERT_EQ(out_len, 8u);
    EXPECT_EQ(siphash_2_4(SipHashKey::from_bytes(key), message), load_le64(out));
  }
  EVP_MAC_free(mac);
}

TEST(SipHash24DeathTest, KeyOfWrongSizeIsAProgrammingError) {
  EXPECT_DEATH(SipHashKey::from_bytes(counting_bytes(15)), "");
}

}  // namespace
}  // namespace ecfs::crypto
