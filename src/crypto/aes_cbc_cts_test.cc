#include "crypto/aes_cbc_cts.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <vector>

#include "crypto/random.h"
#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

using testing::counting_bytes;
using testing::error_of;
using testing::hex;

// RFC 3962 Appendix B: AES-128 key "chicken teriyaki", IV zero, plaintext a
// prefix of "I would like the General Gau's Chicken, please, and wonton
// soup." The RFC's definition is CS3, the kernel's cts(cbc(aes)).
constexpr const char* kRfc3962Key = "636869636b656e207465726979616b69";
constexpr const char* kRfc3962Plaintext =
    "4920776f756c64206c696b65207468652047656e6572616c20476175277320"
    "436869636b656e2c20706c656173652c20616e6420776f6e746f6e20736f75702e";

struct CtsVector {
  size_t length;
  const char* ciphertext;
};

constexpr CtsVector kRfc3962Vectors[] = {
    {17, "c6353568f2bf8cb4d8a580362da7ff7f97"},
    {31, "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5"},
    // Whole blocks: the last two blocks are still swapped (CS3).
    {32, "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584"},
    {47,
     "97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e"
     "39312523a78662d5be7fcbcc98ebf5"},
    {48,
     "97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd8"
     "39312523a78662d5be7fcbcc98ebf5a8"},
    {64,
     "97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a8"
     "4807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8"},
};

TEST(AesCbcCts, Rfc3962KnownAnswers) {
  auto cipher = make_aes_cbc_cts(hex(kRfc3962Key));
  ASSERT_TRUE(cipher) << cipher.error().to_string();
  EXPECT_EQ((*cipher)->name(), "AES-128-CTS-CBC");
  const Bytes iv(16, 0);
  const Bytes full = hex(kRfc3962Plaintext);
  for (const CtsVector& v : kRfc3962Vectors) {
    SCOPED_TRACE(v.length);
    const Bytes plaintext(full.begin(), full.begin() + v.length);
    Bytes out(v.length);
    ASSERT_TRUE((*cipher)->encrypt(iv, plaintext, out));
    EXPECT_EQ(to_hex(out), v.ciphertext);
    ASSERT_TRUE((*cipher)->decrypt(iv, out, out));
    EXPECT_EQ(out, plaintext);
  }
}

// Plain AES-CBC (no padding) through EVP, for composing CS3 by hand.
Bytes cbc_encrypt(ByteSpan key, ByteSpan iv, ByteSpan data) {
  const EVP_CIPHER* cbc = key.size() == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Bytes out(data.size());
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, cbc, nullptr, key.data(), iv.data()), 1);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, out.data(), &len, data.data(), static_cast<int>(data.size())),
            1);
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

// CS3 from its definition (NIST SP 800-38A Addendum; RFC 3962 §5; kernel
// crypto/cts.c): one block is plain CBC; otherwise CBC-encrypt the
// zero-padded message, swap the last two blocks and cut the (new) last one
// to the length of the final partial block.
Bytes cs3_reference(ByteSpan key, ByteSpan iv, ByteSpan plaintext) {
  const size_t n = plaintext.size();
  const size_t blocks = (n + 15) / 16;
  Bytes padded(plaintext.begin(), plaintext.end());
  padded.resize(blocks * 16, 0);
  Bytes c = cbc_encrypt(key, iv, padded);
  if (blocks == 1) return c;
  const size_t tail = n - 16 * (blocks - 1);  // 1..16 bytes
  Bytes out(c.begin(), c.begin() + 16 * (blocks - 2));
  out.insert(out.end(), c.begin() + 16 * (blocks - 1), c.end());
  out.insert(out.end(), c.begin() + 16 * (blocks - 2), c.begin() + 16 * (blocks - 2) + tail);
  return out;
}

TEST(AesCbcCts, MatchesCs3DefinitionForBothKeySizes) {
  for (size_t key_size : {16, 32}) {
    SCOPED_TRACE(key_size);
    Bytes key(key_size), iv(16);
    ASSERT_TRUE(random_bytes(key));
    ASSERT_TRUE(random_bytes(iv));
    auto cipher = make_aes_cbc_cts(key);
    ASSERT_TRUE(cipher);
    EXPECT_EQ((*cipher)->name(), key_size == 16 ? "AES-128-CTS-CBC" : "AES-256-CTS-CBC");
    // fscrypt names: 16..255 bytes (padded to 4, 8, 16 or 32).
    for (size_t length = 16; length <= 256; ++length) {
      SCOPED_TRACE(length);
      Bytes plaintext(length);
      ASSERT_TRUE(random_bytes(plaintext));
      Bytes out(length);
      ASSERT_TRUE((*cipher)->encrypt(iv, plaintext, out));
      ASSERT_EQ(to_hex(out), to_hex(cs3_reference(key, iv, plaintext)));
      ASSERT_TRUE((*cipher)->decrypt(iv, out, out));
      ASSERT_EQ(out, plaintext);
    }
  }
}

// The kernel treats a one-block message as plain CBC (crypto/cts.c:
// "if (nbytes == bsize) ... the cbc result"); OpenSSL's CS3 agrees.
TEST(AesCbcCts, OneBlockIsPlainCbc) {
  const Bytes key = hex(kRfc3962Key);
  const Bytes iv = counting_bytes(16, 0x10);
  const Bytes plaintext = counting_bytes(16, 1);
  auto cipher = make_aes_cbc_cts(key);
  ASSERT_TRUE(cipher);
  Bytes out(16);
  ASSERT_TRUE((*cipher)->encrypt(iv, plaintext, out));
  EXPECT_EQ(out, cbc_encrypt(key, iv, plaintext));
}

TEST(AesCbcCts, RejectsBadSizes) {
  for (size_t size : {0, 8, 15, 24, 33, 64}) {
    SCOPED_TRACE(size);
    EXPECT_EQ(error_of(make_aes_cbc_cts(counting_bytes(size))), EINVAL);
  }
  auto cipher = make_aes_cbc_cts(hex(kRfc3962Key));
  ASSERT_TRUE(cipher);
  Bytes buf(32), out(32);
  EXPECT_EQ(error_of((*cipher)->encrypt(Bytes(8), buf, out)), EINVAL);
  EXPECT_EQ(error_of((*cipher)->decrypt(Bytes(32), buf, out)), EINVAL);
  EXPECT_EQ(error_of((*cipher)->encrypt(Bytes(16), ByteSpan(buf).first(15),
                                        MutableByteSpan(out).first(15))),
            EINVAL);
  EXPECT_EQ(error_of((*cipher)->decrypt(Bytes(16), ByteSpan(buf).first(0),
                                        MutableByteSpan(out).first(0))),
            EINVAL);
  EXPECT_EQ(error_of((*cipher)->encrypt(Bytes(16), buf, MutableByteSpan(out).first(31))), EINVAL);
}

}  // namespace
}  // namespace ecfs::crypto
