#include "fscrypt/mode.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

namespace ecfs::fscrypt {
namespace {

// Expected rows: fs/crypto/keysetup.c `fscrypt_modes[]` (fscrypt-format.md §1.2).
struct ExpectedMode {
  uint8_t number;
  const char* name;
  size_t key_size, security_strength, iv_size;
};
constexpr ExpectedMode kExpected[] = {
    {1, "AES-256-XTS", 64, 32, 16},       {4, "AES-256-CTS-CBC", 32, 32, 16},
    {5, "AES-128-CBC-ESSIV", 16, 16, 16}, {6, "AES-128-CTS-CBC", 16, 16, 16},
    {7, "SM4-XTS", 32, 16, 16},           {8, "SM4-CTS-CBC", 16, 16, 16},
    {9, "Adiantum", 32, 32, 32},          {10, "AES-256-HCTR2", 32, 32, 32},
};

TEST(Mode, TableMatchesKernel) {
  ASSERT_EQ(all_modes().size(), std::size(kExpected));
  for (const auto& expected : kExpected) {
    const ModeInfo* mode = find_mode(expected.number);
    ASSERT_NE(mode, nullptr) << int(expected.number);
    EXPECT_EQ(mode->name, expected.name);
    EXPECT_EQ(mode->key_size, expected.key_size) << expected.name;
    EXPECT_EQ(mode->security_strength, expected.security_strength) << expected.name;
    EXPECT_EQ(mode->iv_size, expected.iv_size) << expected.name;
  }
  EXPECT_EQ(kModeMax, 10);
}

TEST(Mode, UnknownNumbersAreEinval) {
  for (int number : {0, 2, 3, 11, 255}) {
    EXPECT_EQ(find_mode(static_cast<uint8_t>(number)), nullptr);
    auto mode = mode_by_number(static_cast<uint8_t>(number));
    ASSERT_FALSE(mode);
    EXPECT_EQ(mode.error().errno_value(), EINVAL);
  }
}

TEST(Mode, LookupByName) {
  for (const auto& expected : kExpected) {
    auto mode = mode_by_name(expected.name);
    ASSERT_TRUE(mode) << expected.name;
    EXPECT_EQ((*mode)->number, expected.number);
  }
  // The kernel's spelling and any case.
  EXPECT_EQ((*mode_by_name("AES-256-CBC-CTS"))->number, kModeAes256Cts);
  EXPECT_EQ((*mode_by_name("aes-128-cbc-cts"))->number, kModeAes128Cts);
  EXPECT_EQ((*mode_by_name("adiantum"))->number, kModeAdiantum);
  for (const char* bad : {"", "AES-256", "AES-256-XTS ", "speck128/256-xts"}) {
    auto mode = mode_by_name(bad);
    ASSERT_FALSE(mode) << bad;
    EXPECT_EQ(mode.error().errno_value(), EINVAL);
  }
}

TEST(Mode, PrepareKeyRejectsWrongKeySize) {
  for (const ModeInfo& mode : all_modes()) {
    std::vector<uint8_t> key(mode.key_size + 1, 0x5a);
    auto cipher = prepare_key(mode, key);
    ASSERT_FALSE(cipher) << mode.name;
    EXPECT_EQ(cipher.error().errno_value(), EINVAL) << mode.name;
    key.resize(mode.key_size - 1);
    EXPECT_EQ(prepare_key(mode, key).error().errno_value(), EINVAL) << mode.name;
  }
}

TEST(Mode, XtsKeyWithEqualHalvesIsEinval) {
  // The kernel forbids such weak XTS keys (CRYPTO_TFM_REQ_FORBID_WEAK_KEYS).
  std::vector<uint8_t> key(64, 0x61);
  auto cipher = prepare_key(kModeAes256Xts, key);
  ASSERT_FALSE(cipher);
  EXPECT_EQ(cipher.error().errno_value(), EINVAL);
  key[63] = 0x62;
  EXPECT_TRUE(prepare_key(kModeAes256Xts, key));
}

TEST(Mode, PrepareKeyUnknownModeIsEinval) {
  std::vector<uint8_t> key(64, 1);
  EXPECT_EQ(prepare_key(uint8_t{3}, key).error().errno_value(), EINVAL);
}

TEST(Mode, PreparedKeysHaveModeIvSizeAndRoundTrip) {
  for (const ModeInfo& mode : all_modes()) {
    if (mode.number == kModeSm4Xts || mode.number == kModeSm4Cts) continue;
    std::vector<uint8_t> key(mode.key_size);
    for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
    auto cipher = prepare_key(mode.number, key);
    ASSERT_TRUE(cipher) << mode.name << ": " << cipher.error().to_string();
    EXPECT_EQ((*cipher)->iv_size(), mode.iv_size) << mode.name;
    std::vector<uint8_t> iv(mode.iv_size, 3), plain(64), enc(64), dec(64);
    for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i);
    ASSERT_TRUE((*cipher)->encrypt(iv, plain, enc)) << mode.name;
    EXPECT_NE(enc, plain) << mode.name;
    ASSERT_TRUE((*cipher)->decrypt(iv, enc, dec)) << mode.name;
    EXPECT_EQ(dec, plain) << mode.name;
  }
}

TEST(Mode, Sm4CtsIsNotSupported) {
  std::vector<uint8_t> key(16, 1);
  auto cipher = prepare_key(kModeSm4Cts, key);
  ASSERT_FALSE(cipher);
  EXPECT_EQ(cipher.error().errno_value(), EOPNOTSUPP);
}

TEST(Mode, Sm4XtsWorksOrSaysNotSupported) {
  std::vector<uint8_t> key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  auto cipher = prepare_key(kModeSm4Xts, key);
  if (!cipher) {
    EXPECT_EQ(cipher.error().errno_value(), EOPNOTSUPP);
  } else {
    EXPECT_EQ((*cipher)->iv_size(), 16u);
  }
}

}  // namespace
}  // namespace ecfs::fscrypt
