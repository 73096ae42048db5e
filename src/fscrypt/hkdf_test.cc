#include "fscrypt/hkdf.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

namespace ecfs::fscrypt {
namespace {

// xfstests common/encrypt TEST_RAW_KEY: bytes 0x01..0x40.
std::vector<uint8_t> test_raw_key() {
  std::vector<uint8_t> key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i + 1);
  return key;
}

TEST(FscryptHkdf, KeyIdentifierMatchesXfstests) {
  // xfstests common/encrypt TEST_KEY_IDENTIFIER (published).
  auto hkdf = FscryptHkdf::create(test_raw_key());
  ASSERT_TRUE(hkdf);
  std::vector<uint8_t> out(16);
  ASSERT_TRUE(hkdf->expand(HkdfContext::kKeyIdentifier, {}, out));
  EXPECT_EQ(to_hex(out), "69b2f6edeee720cce0577937eb8a6751");
}

TEST(FscryptHkdf, PerFileKeyAndDirhashKey) {
  // fscrypt-format.md §3.3 (computed with Python hmac/hashlib, HKDF-SHA512
  // with the "fscrypt\0" || ctx prefix), nonce 00..0f.
  auto hkdf = FscryptHkdf::create(test_raw_key());
  ASSERT_TRUE(hkdf);
  std::vector<uint8_t> nonce(16);
  for (size_t i = 0; i < 16; ++i) nonce[i] = static_cast<uint8_t>(i);
  auto file_key = hkdf->derive(HkdfContext::kPerFileEncKey, nonce, 64);
  ASSERT_TRUE(file_key);
  EXPECT_EQ(to_hex(file_key->span()),
            "badfbae70512e3d28b99414b7887741d848f9283e09b7f59e8cbe78a2b2c05cb"
            "9fee965f0eb2096b15b28c46cfc02a975bfbce9d34ade6ab28417d4e49df2470");
  auto dirhash = hkdf->derive(HkdfContext::kDirhashKey, nonce, 16);
  ASSERT_TRUE(dirhash);
  EXPECT_EQ(to_hex(dirhash->span()), "56a94d5d52f8532a98e25757f4979543");
}

TEST(FscryptHkdf, ShorterOutputIsAPrefix) {
  // HKDF-Expand output of length L is the first L bytes of any longer one.
  auto hkdf = FscryptHkdf::create(test_raw_key());
  ASSERT_TRUE(hkdf);
  std::vector<uint8_t> nonce(16, 0);
  for (size_t i = 0; i < 16; ++i) nonce[i] = static_cast<uint8_t>(i);
  auto key32 = hkdf->derive(HkdfContext::kPerFileEncKey, nonce, 32);
  ASSERT_TRUE(key32);
  EXPECT_EQ(to_hex(key32->span()),
            "badfbae70512e3d28b99414b7887741d848f9283e09b7f59e8cbe78a2b2c05cb");
}

TEST(FscryptHkdf, ContextsSeparateKeys) {
  auto hkdf = FscryptHkdf::create(test_raw_key());
  ASSERT_TRUE(hkdf);
  std::vector<uint8_t> info(16, 0);
  auto a = hkdf->derive(HkdfContext::kPerFileEncKey, info, 16);
  auto b = hkdf->derive(HkdfContext::kDirhashKey, info, 16);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(a->equals(b->span()));
}

TEST(FscryptHkdf, PerExtentContextByteIsNine) {
  // Daniel Vacek's v7 series (fscrypt-format.md §2.2, §4).
  EXPECT_EQ(static_cast<int>(kPerExtentEncKeyContext), 9);
}

TEST(FscryptHkdf, TooLongOutputIsEinval) {
  auto hkdf = FscryptHkdf::create(test_raw_key());
  ASSERT_TRUE(hkdf);
  auto out = hkdf->derive(HkdfContext::kPerFileEncKey, {}, 255 * 64 + 1);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().errno_value(), EINVAL);
  EXPECT_TRUE(hkdf->derive(HkdfContext::kPerFileEncKey, {}, 255 * 64));
}

}  // namespace
}  // namespace ecfs::fscrypt
