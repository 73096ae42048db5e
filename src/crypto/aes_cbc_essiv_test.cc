#include "crypto/aes_cbc_essiv.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

using testing::counting_bytes;
using testing::error_of;
using testing::hex;

// The kernel's essiv(cbc(aes),sha256) self-test vectors (crypto/testmgr.h,
// essiv_aes_cbc_tv_template, added with crypto/essiv.c in Linux 5.4), the
// AES-128 entries.
TEST(AesCbcEssiv, KernelTestmgrVectors) {
  struct Vector {
    const char* key;
    const char* iv;
    Bytes plaintext;
    const char* ciphertext;
  };
  const std::string single_block = "Single block msg";
  const Vector vectors[] = {
      {"06a9214036b8a15b512e03d534120006", "3dafba429d9eb4300000000000000000",
       Bytes(single_block.begin(), single_block.end()), "fa59e75f415665c336ca6b72109f8cd4"},
      {"c286696d887c9aa0611bbb3e2025a45a", "562e17996d093d280000000000000000", counting_bytes(32),
       "c8599afe79e67b20067d550a5ec7b5a70b9c80d215a1b86dc6ab7b65d9fd88eb"},
  };
  for (const Vector& v : vectors) {
    SCOPED_TRACE(v.key);
    auto cipher = make_aes128_cbc_essiv(hex(v.key));
    ASSERT_TRUE(cipher) << cipher.error().to_string();
    Bytes out(v.plaintext.size());
    ASSERT_TRUE((*cipher)->encrypt(hex(v.iv), v.plaintext, out));
    EXPECT_EQ(to_hex(out), v.ciphertext);
    ASSERT_TRUE((*cipher)->decrypt(hex(v.iv), out, out));
    EXPECT_EQ(out, v.plaintext);
  }
}

Bytes evp_encrypt(const EVP_CIPHER* cipher, ByteSpan key, const uint8_t* iv, ByteSpan data) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Bytes out(data.size());
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, cipher, nullptr, key.data(), iv), 1);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, out.data(), &len, data.data(), static_cast<int>(data.size())),
            1);
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

// fscrypt.rst: "the IV is first encrypted with AES-256 where the AES-256 key
// is the SHA-256 hash of the file's data encryption key", then AES-128-CBC.
TEST(AesCbcEssiv, MatchesHandComposedEssiv) {
  Bytes key(16), plaintext(4096);
  ASSERT_TRUE(random_bytes(key));
  ASSERT_TRUE(random_bytes(plaintext));
  auto cipher = make_aes128_cbc_essiv(key);
  ASSERT_TRUE(cipher);
  EXPECT_EQ((*cipher)->name(), "AES-128-CBC-ESSIV");
  EXPECT_EQ((*cipher)->iv_size(), 16u);
  for (uint64_t index : {0ull, 1ull, 0x123456789ull}) {
    SCOPED_TRACE(index);
    Bytes iv(16, 0);
    store_le64(iv.data(), index);
    const auto essiv_key = sha256(key);
    const Bytes essiv = evp_encrypt(EVP_aes_256_ecb(), essiv_key, nullptr, iv);
    const Bytes expected = evp_encrypt(EVP_aes_128_cbc(), key, essiv.data(), plaintext);
    Bytes out(plaintext.size());
    ASSERT_TRUE((*cipher)->encrypt(iv, plaintext, out));
    EXPECT_EQ(out, expected);
    Bytes back(out.size());
    ASSERT_TRUE((*cipher)->decrypt(iv, out, back));
    EXPECT_EQ(back, plaintext);
  }
}

TEST(AesCbcEssiv, RejectsBadSizes) {
  for (size_t size : {0, 15, 17, 24, 32, 64}) {
    SCOPED_TRACE(size);
    EXPECT_EQ(error_of(make_aes128_cbc_essiv(counting_bytes(size))), EINVAL);
  }
  auto cipher = make_aes128_cbc_essiv(counting_bytes(16));
  ASSERT_TRUE(cipher);
  Bytes buf(64), out(64);
  EXPECT_EQ(error_of((*cipher)->encrypt(Bytes(8), buf, out)), EINVAL);
  EXPECT_EQ(error_of((*cipher)->decrypt(Bytes(32), buf, out)), EINVAL);
  for (size_t size : {0, 15, 17, 40}) {
    SCOPED_TRACE(size);
    EXPECT_EQ(error_of((*cipher)->encrypt(Bytes(16), ByteSpan(buf).first(size),
                                          MutableByteSpan(out).first(size))),
              EINVAL);
  }
  EXPECT_EQ(error_of((*cipher)->encrypt(Bytes(16), buf, MutableByteSpan(out).first(48))), EINVAL);
}

}  // namespace
}  // namespace ecfs::crypto
