#include "fscrypt/fname.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

#include "crypto/adiantum.h"
#include "crypto/aes_cbc_cts.h"
#include "crypto/hctr2.h"
#include "fscrypt/recording_cipher_for_test.h"

namespace ecfs::fscrypt {
namespace {

Bytes counting_bytes(size_t size, uint8_t start) {
  Bytes data(size);
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<uint8_t>(start + i * 3);
  return data;
}

// One AES block with raw OpenSSL ECB: an implementation independent of
// crypto::make_aes_cbc_cts.
std::array<uint8_t, 16> aes_block(ByteSpan key, const std::array<uint8_t, 16>& in) {
  std::array<uint8_t, 16> out{};
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const EVP_CIPHER* type = key.size() == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb();
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, type, nullptr, key.data(), nullptr), 1);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, out.data(), &len, in.data(), 16), 1);
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

// CBC with ciphertext stealing, variant CS3 (NIST SP 800-38A Addendum), as
// the kernel's cts(cbc(aes)): CBC over the zero-padded message, then the last
// two ciphertext blocks swapped and the (now last) one cut to the length of
// the final partial block. A single block is plain CBC.
Bytes cbc_cs3_by_hand(ByteSpan key, ByteSpan plain) {
  const size_t blocks = (plain.size() + 15) / 16;
  const size_t last_length = plain.size() - 16 * (blocks - 1);
  std::vector<std::array<uint8_t, 16>> c(blocks);
  std::array<uint8_t, 16> chain{};  // fscrypt filenames: IV index 0 -> zero IV
  for (size_t b = 0; b < blocks; ++b) {
    std::array<uint8_t, 16> block{};
    for (size_t i = 0; i < 16 && b * 16 + i < plain.size(); ++i) block[i] = plain[b * 16 + i];
    for (size_t i = 0; i < 16; ++i) block[i] ^= chain[i];
    c[b] = aes_block(key, block);
    chain = c[b];
  }
  Bytes out;
  for (size_t b = 0; b + 2 < blocks; ++b) out.insert(out.end(), c[b].begin(), c[b].end());
  if (blocks == 1) {
    out.insert(out.end(), c[0].begin(), c[0].end());
  } else {
    out.insert(out.end(), c[blocks - 1].begin(), c[blocks - 1].end());
    out.insert(out.end(), c[blocks - 2].begin(), c[blocks - 2].begin() + last_length);
  }
  return out;
}

Bytes padded(std::string_view name, size_t size) {
  Bytes out(size, 0);
  std::copy(name.begin(), name.end(), out.begin());
  return out;
}

TEST(Fname, EncryptedSize) {
  const struct {
    size_t length, padding, max, expected;
  } kCases[] = {
      {1, 4, 255, 16},    {15, 32, 255, 32},   {16, 4, 255, 16},       {16, 32, 255, 32},
      {17, 4, 255, 20},   {17, 8, 255, 24},    {17, 16, 255, 32},      {17, 32, 255, 32},
      {33, 32, 255, 64},  {250, 4, 255, 252},  {250, 32, 255, 255},    {253, 4, 255, 255},
      {255, 4, 255, 255}, {255, 32, 255, 255}, {4093, 32, 4093, 4093}, {20, 16, 24, 24},
  };
  for (const auto& c : kCases) {
    auto size = encrypted_name_size(c.length, c.padding, c.max);
    ASSERT_TRUE(size) << c.length << "/" << c.padding;
    EXPECT_EQ(*size, c.expected) << c.length << "/" << c.padding << "/" << c.max;
  }
}

TEST(Fname, EncryptedSizeErrors) {
  EXPECT_EQ(encrypted_name_size(256, 4).error().errno_value(), ENAMETOOLONG);
  EXPECT_EQ(encrypted_name_size(4094, 32, 4093).error().errno_value(), ENAMETOOLONG);
  for (size_t padding : {0, 1, 2, 3, 5, 12, 64}) {
    EXPECT_EQ(encrypted_name_size(10, padding).error().errno_value(), EINVAL) << padding;
  }
  EXPECT_EQ(encrypted_name_size(10, 4, 15).error().errno_value(), EINVAL);
}

// Known-structure check: each ciphertext equals CBC-CS3 with a zero IV over
// the NUL-padded name, computed by hand from single AES blocks.
TEST(Fname, EncryptMatchesHandMadeCtsOfThePaddedName) {
  for (size_t key_size : {16, 32}) {  // AES-128-CTS (mode 6), AES-256-CTS (mode 4)
    const Bytes key = counting_bytes(key_size, 0x31);
    auto cipher = crypto::make_aes_cbc_cts(key);
    ASSERT_TRUE(cipher) << cipher.error().message();
    for (size_t length : {1, 3, 15, 16, 17, 31, 32, 33, 47, 100, 149, 150, 254, 255}) {
      for (size_t padding : {4, 8, 16, 32}) {
        SCOPED_TRACE(::testing::Message() << key_size << "/" << length << "/" << padding);
        std::string name(length, 'x');
        for (size_t i = 0; i < length; ++i) name[i] = static_cast<char>('a' + (i * 7) % 26);
        auto ciphertext = encrypt_name(**cipher, IvParams::default_scheme(), name, padding);
        ASSERT_TRUE(ciphertext) << ciphertext.error().message();
        const size_t expected_size = *encrypted_name_size(length, padding);
        ASSERT_EQ(ciphertext->size(), expected_size);
        EXPECT_EQ(*ciphertext, cbc_cs3_by_hand(key, padded(name, expected_size)));

        auto decrypted = decrypt_name(**cipher, IvParams::default_scheme(), *ciphertext);
        ASSERT_TRUE(decrypted);
        EXPECT_EQ(*decrypted, name);
      }
    }
  }
}

TEST(Fname, SamePrefixDifferentPaddingGivesDifferentCiphertext) {
  auto cipher = crypto::make_aes_cbc_cts(counting_bytes(32, 1));
  ASSERT_TRUE(cipher);
  auto four = encrypt_name(**cipher, IvParams::default_scheme(), "seventeen-bytes!!", 4);
  auto thirty_two = encrypt_name(**cipher, IvParams::default_scheme(), "seventeen-bytes!!", 32);
  ASSERT_TRUE(four && thirty_two);
  EXPECT_EQ(four->size(), 20u);
  EXPECT_EQ(thirty_two->size(), 32u);
  EXPECT_EQ(*decrypt_name(**cipher, IvParams::default_scheme(), *four), "seventeen-bytes!!");
  EXPECT_EQ(*decrypt_name(**cipher, IvParams::default_scheme(), *thirty_two), "seventeen-bytes!!");
}

// Names always use index 0, plus the directory's nonce or inode number.
TEST(Fname, UsesIndexZeroWithTheSchemeParameters) {
  std::array<uint8_t, 16> nonce;
  for (size_t i = 0; i < 16; ++i) nonce[i] = static_cast<uint8_t>(0x50 + i);
  const IvParams schemes[] = {IvParams::default_scheme(), IvParams::direct_key(nonce),
                              IvParams::ino_lblk_64(0x01020304), IvParams::ino_lblk_32(0xa1b2c3d4)};
  for (const auto& params : schemes) {
    test_support::RecordingCipher cipher(32);
    auto ciphertext = encrypt_name(cipher, params, "name", 16);
    ASSERT_TRUE(ciphertext);
    ASSERT_TRUE(decrypt_name(cipher, params, *ciphertext));
    const auto ivs = cipher.ivs();
    ASSERT_EQ(ivs.size(), 2u);
    Bytes expected(32, 0);
    switch (params.scheme) {
      case IvScheme::kDefault:
        break;
      case IvScheme::kDirectKey:
        std::copy(nonce.begin(), nonce.end(), expected.begin() + 8);
        break;
      case IvScheme::kInoLblk64:
        store_le32(expected.data() + 4, 0x01020304);
        break;
      case IvScheme::kInoLblk32:
        store_le32(expected.data(), 0xa1b2c3d4);
        break;
    }
    EXPECT_EQ(ivs[0], expected);
    EXPECT_EQ(ivs[1], expected);
    // The toy cipher makes the padding visible: bytes 4..15 of the
    // plaintext are NUL.
    for (size_t i = 4; i < 16; ++i) {
      EXPECT_EQ((*ciphertext)[i], test_support::RecordingCipher::keystream(expected, i));
    }
  }
}

// The wide-block name modes (Adiantum, mode 9; HCTR2, mode 10) take 32-byte
// IVs: the ciphertext equals the cipher called by hand on the padded name.
TEST(Fname, WideBlockModesEncryptThePaddedNameWithTheSchemeIv) {
  std::array<uint8_t, 16> nonce;
  for (size_t i = 0; i < 16; ++i) nonce[i] = static_cast<uint8_t>(0x11 * i);
  auto adiantum = crypto::make_adiantum(counting_bytes(32, 0x44));
  auto hctr2 = crypto::make_aes256_hctr2(counting_bytes(32, 0x55));
  ASSERT_TRUE(adiantum) << adiantum.error().message();
  ASSERT_TRUE(hctr2) << hctr2.error().message();
  const struct {
    const crypto::Cipher* cipher;
    IvParams params;
  } kCases[] = {{adiantum->get(), IvParams::direct_key(nonce)},
                {adiantum->get(), IvParams::default_scheme()},
                {hctr2->get(), IvParams::default_scheme()}};
  for (const auto& c : kCases) {
    for (size_t length : {1, 16, 17, 100, 255}) {
      SCOPED_TRACE(::testing::Message() << c.cipher->name() << "/" << length);
      const std::string name(length, 'w');
      auto ciphertext = encrypt_name(*c.cipher, c.params, name, 32);
      ASSERT_TRUE(ciphertext) << ciphertext.error().message();
      auto iv = generate_iv(c.params, 0, 32);
      ASSERT_TRUE(iv);
      const Bytes plain = padded(name, ciphertext->size());
      Bytes expected(plain.size());
      ASSERT_TRUE(c.cipher->encrypt(iv->span(), plain, expected));
      EXPECT_EQ(*ciphertext, expected);
      EXPECT_EQ(*decrypt_name(*c.cipher, c.params, *ciphertext), name);
    }
  }
}

TEST(Fname, EncryptRejectsBadNames) {
  test_support::RecordingCipher cipher(16);
  const auto params = IvParams::default_scheme();
  EXPECT_EQ(encrypt_name(cipher, params, "", 4).error().errno_value(), ENOENT);
  EXPECT_EQ(encrypt_name(cipher, params, std::string_view("a\0b", 3), 4).error().errno_value(),
            EINVAL);
  EXPECT_EQ(encrypt_name(cipher, params, std::string(256, 'n'), 4).error().errno_value(),
            ENAMETOOLONG);
  EXPECT_TRUE(encrypt_name(cipher, params, std::string(255, 'n'), 4));
  EXPECT_EQ(encrypt_name(cipher, params, "name", 6).error().errno_value(), EINVAL);
  // DIRECT_KEY with a 16-byte-IV cipher.
  EXPECT_EQ(encrypt_name(cipher, IvParams::direct_key({}), "name", 4).error().errno_value(),
            EINVAL);
}

TEST(Fname, DecryptPassesDotAndDotDotThrough) {
  test_support::RecordingCipher cipher(16);
  EXPECT_EQ(*decrypt_name(cipher, IvParams::default_scheme(), as_bytes(".")), ".");
  EXPECT_EQ(*decrypt_name(cipher, IvParams::default_scheme(), as_bytes("..")), "..");
  EXPECT_TRUE(cipher.ivs().empty());
}

TEST(Fname, DecryptRejectsCiphertextShorterThan16Bytes) {
  test_support::RecordingCipher cipher(16);
  for (size_t length : {0, 1, 2, 3, 15}) {
    const Bytes ciphertext(length, 'x');
    auto name = decrypt_name(cipher, IvParams::default_scheme(), ciphertext);
    ASSERT_FALSE(name) << length;
    EXPECT_EQ(name.error().errno_value(), EUCLEAN);
  }
  // "..." and ".x" are not "." or "..".
  EXPECT_EQ(decrypt_name(cipher, IvParams::default_scheme(), as_bytes("...")).error().errno_value(),
            EUCLEAN);
  EXPECT_EQ(decrypt_name(cipher, IvParams::default_scheme(), as_bytes(".x")).error().errno_value(),
            EUCLEAN);
}

// What the kernel does with odd plaintexts: fname_decrypt stops at the first
// NUL (possibly giving an empty name) and does not look for '/'; readdir's
// verify_dirent_name then answers EIO.
TEST(Fname, DecryptedNamesAreNotJudgedButReaddirRejectsBadOnes) {
  auto cipher = crypto::make_aes_cbc_cts(counting_bytes(32, 9));
  ASSERT_TRUE(cipher);
  const std::array<uint8_t, 16> zero_iv{};
  auto encrypt_raw = [&](const Bytes& plain) {
    Bytes out(plain.size());
    EXPECT_TRUE((*cipher)->encrypt(zero_iv, plain, out));
    return out;
  };

  auto empty = decrypt_name(**cipher, IvParams::default_scheme(), encrypt_raw(Bytes(16, 0)));
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, "");
  EXPECT_EQ(check_dirent_name(*empty).error().errno_value(), EIO);

  auto slash = decrypt_name(**cipher, IvParams::default_scheme(), encrypt_raw(padded("a/b", 16)));
  ASSERT_TRUE(slash);
  EXPECT_EQ(*slash, "a/b");
  EXPECT_EQ(check_dirent_name(*slash).error().errno_value(), EIO);

  Bytes embedded = padded("ab", 20);
  embedded[3] = 'c';  // "ab\0c..." : the name ends at the first NUL
  auto cut = decrypt_name(**cipher, IvParams::default_scheme(), encrypt_raw(embedded));
  ASSERT_TRUE(cut);
  EXPECT_EQ(*cut, "ab");
  EXPECT_TRUE(check_dirent_name(*cut));

  // No NUL at all: all 16 bytes are the name.
  auto full = decrypt_name(**cipher, IvParams::default_scheme(),
                           encrypt_raw(padded("0123456789abcdef", 16)));
  ASSERT_TRUE(full);
  EXPECT_EQ(*full, "0123456789abcdef");
}

TEST(Fname, CheckDirentName) {
  EXPECT_TRUE(check_dirent_name("file"));
  EXPECT_TRUE(check_dirent_name(std::string(4095, 'n')));
  EXPECT_EQ(check_dirent_name(std::string(4096, 'n')).error().errno_value(), EIO);
  EXPECT_EQ(check_dirent_name("").error().errno_value(), EIO);
  EXPECT_EQ(check_dirent_name("/").error().errno_value(), EIO);
  EXPECT_EQ(check_dirent_name("a/").error().errno_value(), EIO);
}

TEST(Fname, IsDotOrDotDot) {
  EXPECT_TRUE(is_dot_or_dotdot(std::string_view(".")));
  EXPECT_TRUE(is_dot_or_dotdot(std::string_view("..")));
  EXPECT_FALSE(is_dot_or_dotdot(std::string_view("")));
  EXPECT_FALSE(is_dot_or_dotdot(std::string_view("...")));
  EXPECT_FALSE(is_dot_or_dotdot(std::string_view(".a")));
  EXPECT_FALSE(is_dot_or_dotdot(std::string_view("a.")));
}

}  // namespace
}  // namespace ecfs::fscrypt
