#include "crypto/aes_xts.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "crypto/testing.h"
#include "crypto/xts_test_vectors.h"

namespace ecfs::crypto {
namespace {

using testing::counting_bytes;
using testing::error_of;
using testing::hex;

// The 512-byte plaintext of IEEE 1619 vectors 4-14 and 19: 00..ff twice.
Bytes pattern512() {
  Bytes p = counting_bytes(256);
  p.insert(p.end(), p.begin(), p.end());
  return p;
}

struct XtsVector {
  const char* name;
  const char* key;  // key1 || key2
  const char* iv;   // data unit sequence number, 128-bit little-endian
  Bytes plaintext;
  const char* ciphertext;
};

// IEEE Std 1619-2007, Annex B (also NIST SP 800-38E's examples). Vector 1
// has key1 == key2 and is in EqualKeyHalvesAreRejected instead.
std::vector<XtsVector> ieee1619_vectors() {
  const char* k15 = "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0bfbebdbcbbbab9b8b7b6b5b4b3b2b1b0";
  const char* iv15 = "9a785634120000000000000000000000";
  return {
      {"vector 2", "1111111111111111111111111111111122222222222222222222222222222222",
       "33333333330000000000000000000000", Bytes(32, 0x44),
       "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0"},
      {"vector 3", "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f022222222222222222222222222222222",
       "33333333330000000000000000000000", Bytes(32, 0x44),
       "af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89"},
      {"vector 4", "2718281828459045235360287471352631415926535897932384626433832795",
       "00000000000000000000000000000000", pattern512(),
       "27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c"
       "c78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412"
       "328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce"
       "93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad0265"
       "5ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8"
       "a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f434"
       "1332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c"
       "5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e"
       "94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc"
       "1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3"
       "e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344"
       "b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd"
       "74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752"
       "afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203e"
       "bb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18d"
       "eb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568"},
      {"vector 10 (AES-256)", kXtsVector10Key.data(), "ff000000000000000000000000000000",
       pattern512(), kXtsVector10Ciphertext.data()},  // literal-backed: NUL-terminated
      // Vectors 15-18: data units that are not a multiple of 16 bytes
      // (ciphertext stealing).
      {"vector 15", k15, iv15, counting_bytes(17), "6c1625db4671522d3d7599601de7ca09ed"},
      {"vector 16", k15, iv15, counting_bytes(18), "d069444b7a7e0cab09e24447d24deb1fedbf"},
      {"vector 17", k15, iv15, counting_bytes(19), "e5df1351c0544ba1350b3363cd8ef4beedbf9d"},
      {"vector 18", k15, iv15, counting_bytes(20), "9d84c813f719aa2c7be3f66171c7c5c2edbf9dac"},
      {"vector 19", "e0e1e2e3e4e5e6e7e8e9eaebecedeeefc0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
       "21436587a90000000000000000000000", pattern512(),
       "38b45812ef43a05bd957e545907e223b954ab4aaf088303ad910eadf14b42be6"
       "8b2461149d8c8ba85f992be970bc621f1b06573f63e867bf5875acafa04e42cc"
       "bd7bd3c2a0fb1fff791ec5ec36c66ae4ac1e806d81fbf709dbe29e471fad3854"
       "9c8e66f5345d7c1eb94f405d1ec785cc6f6a68f6254dd8339f9d84057e01a177"
       "41990482999516b5611a38f41bb6478e6f173f320805dd71b1932fc333cb9ee3"
       "9936beea9ad96fa10fb4112b901734ddad40bc1878995f8e11aee7d141a2f5d4"
       "8b7a4e1e7f0b2c04830e69a4fd1378411c2f287edf48c6c4e5c247a19680f7fe"
       "41cefbd49b582106e3616cbbe4dfb2344b2ae9519391f3e0fb4922254b1d6d2d"
       "19c6d4d537b3a26f3bcc51588b32f3eca0829b6a5ac72578fb814fb43cf80d64"
       "a233e3f997a3f02683342f2b33d25b492536b93becb2f5e1a8b82f5b88334272"
       "9e8ae09d16938841a21a97fb543eea3bbff59f13c1a18449e398701c1ad51648"
       "346cbc04c27bb2da3b93a1372ccae548fb53bee476f9e9c91773b1bb19828394"
       "d55d3e1a20ed69113a860b6829ffa847224604435070221b257e8dff783615d2"
       "cae4803a93aa4334ab482a0afac9c0aeda70b45a481df5dec5df8cc0f423c77a"
       "5fd46cd312021d4b438862419a791be03bb4d97c0e59578542531ba466a83baf"
       "92cefc151b5cc1611a167893819b63fb8a6b18e86de60290fa72b797b0ce59f3"},
  };
}

TEST(AesXts, Ieee1619KnownAnswers) {
  for (const XtsVector& v : ieee1619_vectors()) {
    SCOPED_TRACE(v.name);
    auto cipher = make_aes_xts(hex(v.key));
    ASSERT_TRUE(cipher) << cipher.error().to_string();
    const Bytes iv = hex(v.iv);
    const Bytes expected = hex(v.ciphertext);
    ASSERT_EQ(expected.size(), v.plaintext.size());

    Bytes out(v.plaintext.size());
    ASSERT_TRUE((*cipher)->encrypt(iv, v.plaintext, out));
    EXPECT_EQ(to_hex(out), to_hex(expected));
    Bytes back(out.size());
    ASSERT_TRUE((*cipher)->decrypt(iv, expected, back));
    EXPECT_EQ(back, v.plaintext);
  }
}

// Vector 19's key and tweak over 520 bytes (32 blocks and 8 bytes), so that
// stealing follows many whole blocks; from Botan's IEEE 1619 test data
// (src/tests/data/modes/xts.vec).
TEST(AesXts, StealingAfterManyBlocks) {
  auto cipher =
      make_aes_xts(hex("e0e1e2e3e4e5e6e7e8e9eaebecedeeefc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"));
  ASSERT_TRUE(cipher);
  Bytes plaintext = pattern512();
  for (uint8_t b = 0; b < 8; ++b) plaintext.push_back(b);
  const Bytes expected =
      hex("38b45812ef43a05bd957e545907e223b954ab4aaf088303ad910eadf14b42be6"
          "8b2461149d8c8ba85f992be970bc621f1b06573f63e867bf5875acafa04e42cc"
          "bd7bd3c2a0fb1fff791ec5ec36c66ae4ac1e806d81fbf709dbe29e471fad3854"
          "9c8e66f5345d7c1eb94f405d1ec785cc6f6a68f6254dd8339f9d84057e01a177"
          "41990482999516b5611a38f41bb6478e6f173f320805dd71b1932fc333cb9ee3"
          "9936beea9ad96fa10fb4112b901734ddad40bc1878995f8e11aee7d141a2f5d4"
          "8b7a4e1e7f0b2c04830e69a4fd1378411c2f287edf48c6c4e5c247a19680f7fe"
          "41cefbd49b582106e3616cbbe4dfb2344b2ae9519391f3e0fb4922254b1d6d2d"
          "19c6d4d537b3a26f3bcc51588b32f3eca0829b6a5ac72578fb814fb43cf80d64"
          "a233e3f997a3f02683342f2b33d25b492536b93becb2f5e1a8b82f5b88334272"
          "9e8ae09d16938841a21a97fb543eea3bbff59f13c1a18449e398701c1ad51648"
          "346cbc04c27bb2da3b93a1372ccae548fb53bee476f9e9c91773b1bb19828394"
          "d55d3e1a20ed69113a860b6829ffa847224604435070221b257e8dff783615d2"
          "cae4803a93aa4334ab482a0afac9c0aeda70b45a481df5dec5df8cc0f423c77a"
          "5fd46cd312021d4b438862419a791be03bb4d97c0e59578542531ba466a83baf"
          "92cefc151b5cc1611a167893819b63fb37ec662bc0fc907db74a94468a55a7bc"
          "8a6b18e86de60290");
  const Bytes iv = hex("21436587a90000000000000000000000");
  Bytes out(plaintext.size());
  ASSERT_TRUE((*cipher)->encrypt(iv, plaintext, out));
  EXPECT_EQ(to_hex(out), to_hex(expected));
  ASSERT_TRUE((*cipher)->decrypt(iv, out, out));
  EXPECT_EQ(out, plaintext);
}

TEST(AesXts, NamesAndIvSize) {
  auto aes256 = make_aes_xts(counting_bytes(64, 1));
  auto aes128 = make_aes_xts(counting_bytes(32, 1));
  ASSERT_TRUE(aes256 && aes128);
  EXPECT_EQ((*aes256)->name(), "AES-256-XTS");
  EXPECT_EQ((*aes128)->name(), "AES-128-XTS");
  EXPECT_EQ((*aes256)->iv_size(), 16u);
}

TEST(AesXts, InPlaceMatchesOutOfPlace) {
  auto cipher = make_aes_xts(counting_bytes(64, 7));
  ASSERT_TRUE(cipher);
  const Bytes iv = hex("05000000000000000000000000000000");
  const Bytes plaintext = counting_bytes(4096, 3);
  Bytes separate(plaintext.size());
  ASSERT_TRUE((*cipher)->encrypt(iv, plaintext, separate));
  Bytes in_place = plaintext;
  ASSERT_TRUE((*cipher)->encrypt(iv, in_place, in_place));
  EXPECT_EQ(in_place, separate);
  EXPECT_NE(in_place, plaintext);
  ASSERT_TRUE((*cipher)->decrypt(iv, in_place, in_place));
  EXPECT_EQ(in_place, plaintext);
}

TEST(AesXts, TweakChangesCiphertext) {
  auto cipher = make_aes_xts(counting_bytes(64, 9));
  ASSERT_TRUE(cipher);
  const Bytes plaintext(4096, 0);
  Bytes a(4096), b(4096);
  ASSERT_TRUE((*cipher)->encrypt(hex("00000000000000000000000000000000"), plaintext, a));
  ASSERT_TRUE((*cipher)->encrypt(hex("01000000000000000000000000000000"), plaintext, b));
  EXPECT_NE(a, b);
}

// IEEE 1619 vector 1 uses key1 == key2 == 0; ecfs refuses such keys, as
// OpenSSL's FIPS provider does.
TEST(AesXts, EqualKeyHalvesAreRejected) {
  EXPECT_EQ(error_of(make_aes_xts(Bytes(32, 0))), EINVAL);
  Bytes key256 = counting_bytes(32);
  key256.insert(key256.end(), key256.begin(), key256.end());
  EXPECT_EQ(error_of(make_aes_xts(key256)), EINVAL);
  // Halves differing in one byte are fine.
  key256[63] ^= 1;
  EXPECT_TRUE(make_aes_xts(key256));
}

TEST(AesXts, WrongKeySizesAreRejected) {
  for (size_t size : {0, 16, 24, 31, 33, 48, 63, 65, 128}) {
    SCOPED_TRACE(size);
    EXPECT_EQ(error_of(make_aes_xts(counting_bytes(size, 1))), EINVAL);
  }
}

TEST(AesXts, BadMessagesAreRejected) {
  auto cipher = make_aes_xts(counting_bytes(64, 1));
  ASSERT_TRUE(cipher);
  const Cipher& xts = **cipher;
  const Bytes iv(16, 0);
  Bytes buf(64, 0), out(64, 0);
  for (size_t iv_size : {0, 8, 15, 17, 32}) {
    SCOPED_TRACE(iv_size);
    EXPECT_EQ(error_of(xts.encrypt(Bytes(iv_size), buf, out)), EINVAL);
    EXPECT_EQ(error_of(xts.decrypt(Bytes(iv_size), buf, out)), EINVAL);
  }
  for (size_t size : {0, 1, 15}) {
    SCOPED_TRACE(size);
    EXPECT_EQ(
        error_of(xts.encrypt(iv, ByteSpan(buf).first(size), MutableByteSpan(out).first(size))),
        EINVAL);
    EXPECT_EQ(
        error_of(xts.decrypt(iv, ByteSpan(buf).first(size), MutableByteSpan(out).first(size))),
        EINVAL);
  }
  EXPECT_EQ(error_of(xts.encrypt(iv, ByteSpan(buf).first(32), MutableByteSpan(out).first(48))),
            EINVAL);
  // Overlapping but not identical buffers.
  EXPECT_EQ(error_of(xts.encrypt(iv, ByteSpan(buf).first(32), MutableByteSpan(buf).subspan(8, 32))),
            EINVAL);
  // More than 2^20 blocks in one data unit (IEEE Std 1619-2018).
  Bytes huge((size_t{1} << 24) + 16);
  EXPECT_EQ(error_of(xts.encrypt(iv, huge, huge)), EINVAL);
  EXPECT_TRUE(xts.encrypt(iv, ByteSpan(huge).first(size_t{1} << 24),
                          MutableByteSpan(huge).first(size_t{1} << 24)));
}

// One Cipher serving many threads must give each call the result a lone
// call would.
TEST(AesXts, ConcurrentCallsAgreeWithSequentialOnes) {
  auto cipher = make_aes_xts(counting_bytes(64, 0x40));
  ASSERT_TRUE(cipher);
  const Cipher& xts = **cipher;
  constexpr int kThreads = 8;
  constexpr int kUnits = 64;
  std::vector<Bytes> plaintexts, expected;
  for (int i = 0; i < kUnits; ++i) {
    plaintexts.push_back(counting_bytes(4096, static_cast<uint8_t>(i)));
    Bytes iv(16, 0);
    iv[0] = static_cast<uint8_t>(i);
    Bytes c(4096);
    ASSERT_TRUE(xts.encrypt(iv, plaintexts.back(), c));
    expected.push_back(std::move(c));
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Bytes c(4096), p(4096);
      for (int round = 0; round < 20; ++round) {
        for (int i = (t + round) % kUnits, n = 0; n < kUnits; i = (i + 1) % kUnits, ++n) {
          Bytes iv(16, 0);
          iv[0] = static_cast<uint8_t>(i);
          if (!xts.encrypt(iv, plaintexts[i], c) || c != expected[i]) ++mismatches[t];
          if (!xts.decrypt(iv, expected[i], p) || p != plaintexts[i]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace ecfs::crypto
