#include "fscrypt/symlink.h"

#include <gtest/gtest.h>

#include <string>

#include "base/base64url.h"
#include "crypto/aes_cbc_cts.h"
#include "fscrypt/fname.h"
#include "fscrypt/nokey_name.h"
#include "fscrypt/recording_cipher_for_test.h"

namespace ecfs::fscrypt {
namespace {

crypto::CipherPtr cts_cipher() {
  Bytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(0x70 + i);
  auto cipher = crypto::make_aes_cbc_cts(key);
  EXPECT_TRUE(cipher);
  return cipher ? std::move(*cipher) : nullptr;
}

Bytes record_with(uint16_t length, ByteSpan ciphertext, bool terminator = true) {
  Bytes record(2 + ciphertext.size() + (terminator ? 1 : 0), 0);
  record[0] = static_cast<uint8_t>(length);
  record[1] = static_cast<uint8_t>(length >> 8);
  std::copy(ciphertext.begin(), ciphertext.end(), record.begin() + 2);
  return record;
}

TEST(Symlink, SizeLeavesRoomForTheLengthAndTerminator) {
  // ext4 with 4 KiB blocks: the longest encrypted target is 4093 bytes.
  EXPECT_EQ(*encrypted_symlink_size(4093, 32, 4096), 4096u);
  EXPECT_EQ(*encrypted_symlink_size(4093, 4, 4096), 4096u);  // round_up 4096, capped at 4093
  EXPECT_EQ(*encrypted_symlink_size(4090, 4, 4096), 4095u);  // round_up 4092
  EXPECT_EQ(*encrypted_symlink_size(4088, 4, 4096), 4091u);
  EXPECT_EQ(*encrypted_symlink_size(1, 4, 4096), 19u);
  EXPECT_EQ(*encrypted_symlink_size(17, 32, 4096), 35u);
  EXPECT_EQ(encrypted_symlink_size(4094, 4, 4096).error().errno_value(), ENAMETOOLONG);
  EXPECT_EQ(encrypted_symlink_size(10, 3, 4096).error().errno_value(), EINVAL);
  EXPECT_EQ(encrypted_symlink_size(10, 4, 18).error().errno_value(), EINVAL);
  EXPECT_EQ(*encrypted_symlink_size(16, 4, 19), 19u);
}

TEST(Symlink, RecordLayoutIsLengthCiphertextNul) {
  auto cipher = cts_cipher();
  ASSERT_TRUE(cipher);
  const std::string target = "../some/where/else";  // 18 bytes
  auto record = encrypt_symlink(*cipher, IvParams::default_scheme(), target, 16, 4096);
  ASSERT_TRUE(record) << record.error().message();
  ASSERT_EQ(record->size(), 2u + 32u + 1u);
  EXPECT_EQ((*record)[0], 32);
  EXPECT_EQ((*record)[1], 0);
  EXPECT_EQ(record->back(), 0);
  // The ciphertext is the target encrypted as a filename, limit max - 3.
  auto as_name = encrypt_name(*cipher, IvParams::default_scheme(), target, 16, 4093);
  ASSERT_TRUE(as_name);
  EXPECT_EQ(Bytes(record->begin() + 2, record->end() - 1), *as_name);

  auto decrypted = decrypt_symlink(*cipher, IvParams::default_scheme(), *record);
  ASSERT_TRUE(decrypted);
  EXPECT_EQ(*decrypted, target);
}

TEST(Symlink, LongestTargetFillsTheBlock) {
  auto cipher = cts_cipher();
  ASSERT_TRUE(cipher);
  const std::string target(4093, 't');
  auto record = encrypt_symlink(*cipher, IvParams::default_scheme(), target, 32, 4096);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->size(), 4096u);
  EXPECT_EQ((*record)[0], 4093 & 0xff);
  EXPECT_EQ((*record)[1], 4093 >> 8);
  EXPECT_EQ(*decrypt_symlink(*cipher, IvParams::default_scheme(), *record), target);

  auto too_long = encrypt_symlink(*cipher, IvParams::default_scheme(), target + "t", 32, 4096);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().errno_value(), ENAMETOOLONG);
}

TEST(Symlink, UsesTheSymlinkInodesIvParameters) {
  std::array<uint8_t, 16> nonce;
  for (size_t i = 0; i < 16; ++i) nonce[i] = static_cast<uint8_t>(i * 5);
  test_support::RecordingCipher cipher(32);
  auto record = encrypt_symlink(cipher, IvParams::direct_key(nonce), "target", 4, 4096);
  ASSERT_TRUE(record);
  const auto ivs = cipher.ivs();
  ASSERT_EQ(ivs.size(), 1u);
  Bytes expected(32, 0);
  std::copy(nonce.begin(), nonce.end(), expected.begin() + 8);
  EXPECT_EQ(ivs[0], expected);
}

TEST(Symlink, EncryptRejectsBadTargets) {
  test_support::RecordingCipher cipher(16);
  const auto params = IvParams::default_scheme();
  EXPECT_EQ(encrypt_symlink(cipher, params, "", 4, 4096).error().errno_value(), ENOENT);
  EXPECT_EQ(
      encrypt_symlink(cipher, params, std::string_view("a\0b", 3), 4, 4096).error().errno_value(),
      EINVAL);
  EXPECT_EQ(encrypt_symlink(cipher, params, "x", 5, 4096).error().errno_value(), EINVAL);
  EXPECT_EQ(encrypt_symlink(cipher, params, "x", 4, 10).error().errno_value(), EINVAL);
  EXPECT_EQ(
      encrypt_symlink(cipher, params, std::string(70000, 'x'), 4, 70003).error().errno_value(),
      ENAMETOOLONG);
  EXPECT_TRUE(cipher.ivs().empty());
}

TEST(Symlink, DecryptValidatesTheRecordLikeTheKernel) {
  auto cipher = cts_cipher();
  ASSERT_TRUE(cipher);
  const auto params = IvParams::default_scheme();
  auto good = encrypt_symlink(*cipher, params, "dest", 4, 4096);
  ASSERT_TRUE(good);
  const ByteSpan ciphertext(good->data() + 2, good->size() - 3);

  auto expect_euclean = [&](ByteSpan record, const char* what) {
    auto with_key = decrypt_symlink(*cipher, params, record);
    ASSERT_FALSE(with_key) << what;
    EXPECT_EQ(with_key.error().errno_value(), EUCLEAN) << what;
    auto without_key = nokey_symlink_target(record);
    ASSERT_FALSE(without_key) << what;
    EXPECT_EQ(without_key.error().errno_value(), EUCLEAN) << what;
  };
  expect_euclean(Bytes{}, "empty record");
  expect_euclean(Bytes{0x10, 0x00}, "record shorter than 3 bytes");
  expect_euclean(record_with(0, {}), "zero length");
  expect_euclean(record_with(0, ciphertext), "zero length with data");
  expect_euclean(record_with(static_cast<uint16_t>(ciphertext.size() + 1), ciphertext, false),
                 "length beyond the record");
  expect_euclean(record_with(15, ciphertext.first(15)), "ciphertext shorter than 16");
  // Plaintext starting with NUL.
  Bytes nul_plain(16, 0);
  Bytes nul_cipher(16);
  const std::array<uint8_t, 16> zero_iv{};
  ASSERT_TRUE(cipher->encrypt(zero_iv, nul_plain, nul_cipher));
  auto empty_target = decrypt_symlink(*cipher, params, record_with(16, nul_cipher));
  ASSERT_FALSE(empty_target);
  EXPECT_EQ(empty_target.error().errno_value(), EUCLEAN);

  // The kernel compares len + 2, not len + 3, with the record size: the
  // trailing NUL may be missing, and extra bytes after it are ignored.
  auto no_nul = decrypt_symlink(*cipher, params, record_with(16, ciphertext, false));
  ASSERT_TRUE(no_nul);
  EXPECT_EQ(*no_nul, "dest");
  Bytes padded_record = *good;
  padded_record.resize(100, 0xee);
  EXPECT_EQ(*decrypt_symlink(*cipher, params, padded_record), "dest");
}

TEST(Symlink, DotCiphertextPassesThroughAsTheKernelDoes) {
  test_support::RecordingCipher cipher(16);
  const Bytes record = {1, 0, '.', 0};
  EXPECT_EQ(*decrypt_symlink(cipher, IvParams::default_scheme(), record), ".");
  EXPECT_EQ(*nokey_symlink_target(record), ".");
  const Bytes dotdot = {2, 0, '.', '.', 0};
  EXPECT_EQ(*decrypt_symlink(cipher, IvParams::default_scheme(), dotdot), "..");
  EXPECT_TRUE(cipher.ivs().empty());
}

TEST(Symlink, NokeyTargetIsTheNokeyNameWithZeroHash) {
  auto cipher = cts_cipher();
  ASSERT_TRUE(cipher);
  for (size_t length : {5, 149, 150, 600}) {
    SCOPED_TRACE(length);
    auto record =
        encrypt_symlink(*cipher, IvParams::default_scheme(), std::string(length, 'p'), 4, 4096);
    ASSERT_TRUE(record);
    const ByteSpan ciphertext(record->data() + 2, record->size() - 3);
    auto presented = nokey_symlink_target(*record);
    ASSERT_TRUE(presented);
    EXPECT_EQ(*presented, *encode_nokey_name(ciphertext, 0, 0));
    auto payload = base64url_decode(*presented);
    ASSERT_TRUE(payload);
    EXPECT_EQ(Bytes(payload->begin(), payload->begin() + 8), Bytes(8, 0));
    auto decoded = NokeyName::decode(*presented);
    ASSERT_TRUE(decoded);
    EXPECT_TRUE(decoded->matches(ciphertext));
  }
}

}  // namespace
}  // namespace ecfs::fscrypt
