#include "crypto/sm4_xts.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

using testing::counting_bytes;
using testing::error_of;
using testing::hex;

bool openssl_has_sm4_xts() {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "SM4-XTS", nullptr);
  EVP_CIPHER_free(cipher);
  return cipher != nullptr;
}

TEST(Sm4Xts, UnsupportedOpenSslSaysSo) {
  if (openssl_has_sm4_xts()) GTEST_SKIP() << "this OpenSSL has SM4-XTS";
  auto cipher = make_sm4_xts(counting_bytes(32));
  ASSERT_FALSE(cipher);
  EXPECT_EQ(cipher.error().errno_value(), EOPNOTSUPP);
  EXPECT_EQ(cipher.error().message(), "SM4-XTS is not supported by this OpenSSL (needs 3.2)");
}

// SM4-XTS with IEEE 1619 tweak arithmetic (the kernel's xts(sm4)), vectors
// from OpenSSL's test/recipes/30-test_evp_data/evpciph_sm4.txt
// ("XTSStandard = IEEE"; the inputs are GB/T 17964-2021's).
TEST(Sm4Xts, KnownAnswersWithIeeeTweak) {
  if (!openssl_has_sm4_xts()) GTEST_SKIP() << "SM4-XTS needs OpenSSL 3.2";
  struct Vector {
    const char* key;
    const char* iv;
    const char* plaintext;
    const char* ciphertext;
  };
  const Vector vectors[] = {
      {"2b7e151628aed2a6abf7158809cf4f3c000102030405060708090a0b0c0d0e0f",
       "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
       "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
       "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17",
       "e9538251c71d7b80bbe4483fef497bd1b3db1a3e60408c575d63ff7db39f8326"
       "0869f9e2585fec9f0b863bf8fd784b8627d16c0db6d2cfc7"},
      {"fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0bfbebdbcbbbab9b8b7b6b5b4b3b2b1b0",
       "9a785634120000000000000000000000", "000102030405060708090a0b0c0d0e0f10",
       "9e52443a35410ca0ba5637b94c0766f469"},
  };
  for (const Vector& v : vectors) {
    auto cipher = make_sm4_xts(hex(v.key));
    ASSERT_TRUE(cipher) << cipher.error().to_string();
    EXPECT_EQ((*cipher)->name(), "SM4-XTS");
    const Bytes plaintext = hex(v.plaintext);
    Bytes out(plaintext.size());
    ASSERT_TRUE((*cipher)->encrypt(hex(v.iv), plaintext, out));
    EXPECT_EQ(to_hex(out), v.ciphertext);
    ASSERT_TRUE((*cipher)->decrypt(hex(v.iv), out, out));
    EXPECT_EQ(out, plaintext);
  }
}

TEST(Sm4Xts, RejectsBadKeys) {
  if (!openssl_has_sm4_xts()) GTEST_SKIP() << "SM4-XTS needs OpenSSL 3.2";
  EXPECT_EQ(error_of(make_sm4_xts(counting_bytes(16))), EINVAL);
  EXPECT_EQ(error_of(make_sm4_xts(counting_bytes(64))), EINVAL);
  EXPECT_EQ(error_of(make_sm4_xts(Bytes(32, 0x11))), EINVAL);  // equal halves
}

}  // namespace
}  // namespace ecfs::crypto
