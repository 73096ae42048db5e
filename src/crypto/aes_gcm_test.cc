#include "crypto/aes_gcm.h"

#include <gtest/gtest.h>

#include "crypto/random.h"
#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

using testing::counting_bytes;
using testing::error_of;
using testing::hex;

struct GcmCase {
  const char* name;
  const char* key;
  const char* nonce;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", revised
// 2005, Appendix B, test cases 13-16 (AES-256, 96-bit IVs). Cases 17 and 18
// use 64- and 480-bit IVs, which this API deliberately refuses (see
// NonceOtherThan96BitsIsRejected).
constexpr const char* kKey15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr const char* kPlain15 =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
constexpr const char* kCipher15 =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";

const GcmCase kCases[] = {
    {"test case 13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"test case 14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"test case 15", kKey15, "cafebabefacedbaddecaf888", kPlain15, "", kCipher15,
     "b094dac5d93471bdec1a502270e3cc6c"},
};

TEST(Aes256Gcm, McGrewViegaKnownAnswers) {
  for (const GcmCase& c : kCases) {
    SCOPED_TRACE(c.name);
    auto gcm = Aes256Gcm::create(hex(c.key));
    ASSERT_TRUE(gcm) << gcm.error().to_string();
    const Bytes plaintext = hex(c.plaintext);
    Bytes ciphertext(plaintext.size());
    Bytes tag(16);
    ASSERT_TRUE(gcm->seal(hex(c.nonce), hex(c.aad), plaintext, ciphertext, tag));
    EXPECT_EQ(to_hex(ciphertext), c.ciphertext);
    EXPECT_EQ(to_hex(tag), c.tag);
    Bytes opened(plaintext.size());
    ASSERT_TRUE(gcm->open(hex(c.nonce), hex(c.aad), ciphertext, tag, opened));
    EXPECT_EQ(opened, plaintext);
  }
}

// Test case 16: associated data and a plaintext that is not whole blocks.
TEST(Aes256Gcm, McGrewViegaCase16WithAad) {
  auto gcm = Aes256Gcm::create(hex(kKey15));
  ASSERT_TRUE(gcm);
  const Bytes full = hex(kPlain15);
  const Bytes plaintext(full.begin(), full.begin() + 60);
  const Bytes aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const Bytes nonce = hex("cafebabefacedbaddecaf888");
  Bytes ciphertext(60), tag(16);
  ASSERT_TRUE(gcm->seal(nonce, aad, plaintext, ciphertext, tag));
  EXPECT_EQ(to_hex(ciphertext), std::string(kCipher15).substr(0, 120));
  EXPECT_EQ(to_hex(tag), "76fc6ece0f4e1768cddf8853bb2d551b");
  Bytes opened(60);
  ASSERT_TRUE(gcm->open(nonce, aad, ciphertext, tag, opened));
  EXPECT_EQ(opened, plaintext);
}

// Any change to the tag, ciphertext, AAD or nonce is EBADMSG, and no byte of
// the unauthenticated plaintext is released.
TEST(Aes256Gcm, TamperingIsEbadmsgWithZeroedOutput) {
  Bytes key(32), nonce(12), aad(20), plaintext(4096);
  ASSERT_TRUE(random_bytes(key));
  ASSERT_TRUE(random_bytes(nonce));
  ASSERT_TRUE(random_bytes(aad));
  ASSERT_TRUE(random_bytes(plaintext));
  auto gcm = Aes256Gcm::create(key);
  ASSERT_TRUE(gcm);
  Bytes ciphertext(plaintext.size()), tag(16);
  ASSERT_TRUE(gcm->seal(nonce, aad, plaintext, ciphertext, tag));

  auto expect_rejected = [&](ByteSpan n, ByteSpan a, ByteSpan c, ByteSpan t) {
    Bytes out(c.size(), 0x5a);
    auto status = gcm->open(n, a, c, t, out);
    EXPECT_EQ(error_of(status), EBADMSG);
    EXPECT_EQ(out, Bytes(c.size(), 0));
  };
  Bytes bad_tag = tag;
  bad_tag[15] ^= 0x01;
  expect_rejected(nonce, aad, ciphertext, bad_tag);
  Bytes bad_ciphertext = ciphertext;
  bad_ciphertext[100] ^= 0x80;
  expect_rejected(nonce, aad, bad_ciphertext, tag);
  Bytes bad_aad = aad;
  bad_aad[0] ^= 0x01;
  expect_rejected(nonce, bad_aad, ciphertext, tag);
  expect_rejected(nonce, ByteSpan(), ciphertext, tag);
  Bytes bad_nonce = nonce;
  bad_nonce[11] ^= 0x01;
  expect_rejected(bad_nonce, aad, ciphertext, tag);

  // In place, the buffer holding the forged ciphertext ends up zeroed.
  Bytes in_place = bad_ciphertext;
  EXPECT_EQ(error_of(gcm->open(nonce, aad, in_place, tag, in_place)), EBADMSG);
  EXPECT_EQ(in_place, Bytes(in_place.size(), 0));

  // The context pool is still healthy after failures.
  Bytes opened(plaintext.size());
  ASSERT_TRUE(gcm->open(nonce, aad, ciphertext, tag, opened));
  EXPECT_EQ(opened, plaintext);
}

TEST(Aes256Gcm, InPlaceSealAndOpen) {
  auto gcm = Aes256Gcm::create(counting_bytes(32));
  ASSERT_TRUE(gcm);
  const Bytes nonce = counting_bytes(12, 0x80);
  const Bytes plaintext = counting_bytes(1000);
  Bytes separate(plaintext.size()), tag_a(16), tag_b(16);
  ASSERT_TRUE(gcm->seal(nonce, {}, plaintext, separate, tag_a));
  Bytes buffer = plaintext;
  ASSERT_TRUE(gcm->seal(nonce, {}, buffer, buffer, tag_b));
  EXPECT_EQ(buffer, separate);
  EXPECT_EQ(tag_a, tag_b);
  ASSERT_TRUE(gcm->open(nonce, {}, buffer, tag_b, buffer));
  EXPECT_EQ(buffer, plaintext);
}

TEST(Aes256Gcm, NonceOtherThan96BitsIsRejected) {
  auto gcm = Aes256Gcm::create(hex(kKey15));
  ASSERT_TRUE(gcm);
  Bytes plaintext(16), ciphertext(16), tag(16);
  // Test case 17's 64-bit IV and a 128-bit one.
  for (const char* nonce : {"cafebabefacedbad", "cafebabefacedbaddecaf88800000000", ""}) {
    SCOPED_TRACE(nonce);
    EXPECT_EQ(error_of(gcm->seal(hex(nonce), {}, plaintext, ciphertext, tag)), EINVAL);
    EXPECT_EQ(error_of(gcm->open(hex(nonce), {}, ciphertext, tag, plaintext)), EINVAL);
  }
}

TEST(Aes256Gcm, RejectsBadSizes) {
  for (size_t size : {0, 16, 24, 31, 33, 64}) {
    SCOPED_TRACE(size);
    EXPECT_EQ(error_of(Aes256Gcm::create(counting_bytes(size))), EINVAL);
  }
  auto gcm = Aes256Gcm::create(counting_bytes(32));
  ASSERT_TRUE(gcm);
  const Bytes nonce(12);
  Bytes plaintext(32), ciphertext(32), tag(16), short_tag(12), long_tag(17);
  EXPECT_EQ(error_of(gcm->seal(nonce, {}, plaintext, ciphertext, short_tag)), EINVAL);
  EXPECT_EQ(error_of(gcm->seal(nonce, {}, plaintext, ciphertext, long_tag)), EINVAL);
  EXPECT_EQ(error_of(gcm->seal(nonce, {}, plaintext, MutableByteSpan(ciphertext).first(31), tag)),
            EINVAL);
  ASSERT_TRUE(gcm->seal(nonce, {}, plaintext, ciphertext, tag));
  EXPECT_EQ(error_of(gcm->open(nonce, {}, ciphertext, short_tag, plaintext)), EINVAL);
  EXPECT_EQ(error_of(gcm->open(nonce, {}, ciphertext, tag, MutableByteSpan(plaintext).first(16))),
            EINVAL);
}

}  // namespace
}  // namespace ecfs::crypto
