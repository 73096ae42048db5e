#include "fscrypt/contents.h"

#include <gtest/gtest.h>

#include "crypto/adiantum.h"
#include "crypto/aes_cbc_essiv.h"
#include "crypto/aes_xts.h"
#include "crypto/xts_test_vectors.h"
#include "fscrypt/recording_cipher_for_test.h"

namespace ecfs::fscrypt {
namespace {

// IEEE Std 1619-2007, Annex B, Vector 10: XTS-AES-256, 512-byte data unit,
// data unit sequence number 0xff, plaintext bytes 00..ff twice. The XTS tweak
// is the sequence number as a 16-byte little-endian value, which is exactly
// fscrypt's default IV for data unit index 0xff.
using crypto::kXtsVector10Ciphertext;
using crypto::kXtsVector10Key;

Bytes hex(std::string_view text) {
  auto bytes = from_hex(text);
  EXPECT_TRUE(bytes);
  return bytes ? *bytes : Bytes{};
}

crypto::CipherPtr vector10_cipher() {
  auto cipher = crypto::make_aes_xts(hex(kXtsVector10Key));
  EXPECT_TRUE(cipher) << (cipher ? "" : cipher.error().message());
  return cipher ? std::move(*cipher) : nullptr;
}

Bytes counting_bytes(size_t size, uint8_t start = 0) {
  Bytes data(size);
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<uint8_t>(start + i);
  return data;
}

TEST(Contents, Ieee1619Vector10AsDataUnit0xff) {
  auto cipher = vector10_cipher();
  ASSERT_TRUE(cipher);
  const Bytes plaintext = counting_bytes(512);
  Bytes ciphertext(512);
  ASSERT_TRUE(
      encrypt_data_units(*cipher, IvParams::default_scheme(), 512, 0xff, plaintext, ciphertext));
  EXPECT_EQ(to_hex(ciphertext), kXtsVector10Ciphertext);

  Bytes decrypted(512);
  ASSERT_TRUE(
      decrypt_data_units(*cipher, IvParams::default_scheme(), 512, 0xff, ciphertext, decrypted));
  EXPECT_EQ(decrypted, plaintext);
}

// Three 512-byte units starting at index 0xfe: the second is Vector 10, so
// the index advances by one per data unit, and each unit is independent.
TEST(Contents, IndexAdvancesPerDataUnit) {
  auto cipher = vector10_cipher();
  ASSERT_TRUE(cipher);
  Bytes plaintext = counting_bytes(512 * 3, 0x40);
  const Bytes vector_plain = counting_bytes(512);
  std::copy(vector_plain.begin(), vector_plain.end(), plaintext.begin() + 512);
  Bytes ciphertext(plaintext.size());
  ASSERT_TRUE(
      encrypt_data_units(*cipher, IvParams::default_scheme(), 512, 0xfe, plaintext, ciphertext));
  EXPECT_EQ(to_hex({ciphertext.data() + 512, 512}), kXtsVector10Ciphertext);

  // Units 0xfe and 0x100 match the cipher called by hand with le64 IVs.
  for (uint64_t unit : {0, 2}) {
    std::array<uint8_t, 16> iv{};
    store_le64(iv.data(), 0xfe + unit);
    Bytes expected(512);
    ASSERT_TRUE(cipher->encrypt(iv, ByteSpan(plaintext).subspan(unit * 512, 512), expected));
    EXPECT_EQ(Bytes(ciphertext.begin() + unit * 512, ciphertext.begin() + (unit + 1) * 512),
              expected);
  }
}

TEST(Contents, InPlaceEqualsOutOfPlaceAndSplitRunsAgree) {
  auto cipher = vector10_cipher();
  ASSERT_TRUE(cipher);
  const Bytes plaintext = counting_bytes(4096 * 4, 3);
  Bytes out_of_place(plaintext.size());
  ASSERT_TRUE(
      encrypt_data_units(*cipher, IvParams::default_scheme(), 4096, 10, plaintext, out_of_place));

  Bytes in_place = plaintext;
  ASSERT_TRUE(
      encrypt_data_units(*cipher, IvParams::default_scheme(), 4096, 10, in_place, in_place));
  EXPECT_EQ(in_place, out_of_place);

  // The same data as two runs whose second starts at index 12.
  Bytes split = plaintext;
  MutableByteSpan whole(split);
  ASSERT_TRUE(encrypt_data_units(*cipher, IvParams::default_scheme(), 4096, 10, whole.first(8192),
                                 whole.first(8192)));
  ASSERT_TRUE(encrypt_data_units(*cipher, IvParams::default_scheme(), 4096, 12, whole.subspan(8192),
                                 whole.subspan(8192)));
  EXPECT_EQ(split, out_of_place);

  ASSERT_TRUE(
      decrypt_data_units(*cipher, IvParams::default_scheme(), 4096, 10, in_place, in_place));
  EXPECT_EQ(in_place, plaintext);
}

TEST(Contents, EveryDataUnitSizeRoundTrips) {
  auto cipher = vector10_cipher();
  ASSERT_TRUE(cipher);
  for (size_t size = 512; size <= 65536; size *= 2) {
    SCOPED_TRACE(size);
    const Bytes plaintext = counting_bytes(size * 2, static_cast<uint8_t>(size >> 9));
    Bytes data = plaintext;
    ASSERT_TRUE(encrypt_data_units(*cipher, IvParams::default_scheme(), size, 7, data, data));
    EXPECT_NE(data, plaintext);
    // Identical plaintext units get different ciphertext (different IVs).
    Bytes twin(size * 2);
    std::copy(plaintext.begin(), plaintext.begin() + size, twin.begin());
    std::copy(plaintext.begin(), plaintext.begin() + size, twin.begin() + size);
    ASSERT_TRUE(encrypt_data_units(*cipher, IvParams::default_scheme(), size, 7, twin, twin));
    EXPECT_FALSE(std::equal(twin.begin(), twin.begin() + size, twin.begin() + size));
    ASSERT_TRUE(decrypt_data_units(*cipher, IvParams::default_scheme(), size, 7, data, data));
    EXPECT_EQ(data, plaintext);
  }
}

// AES-128-CBC-ESSIV (mode 5) with IV_INO_LBLK-style IVs composed by hand.
TEST(Contents, EssivUnitsUseTheSchemeIvs) {
  auto cipher = crypto::make_aes128_cbc_essiv(counting_bytes(16, 0x11));
  ASSERT_TRUE(cipher) << cipher.error().message();
  const Bytes plaintext = counting_bytes(1024 * 2, 9);
  Bytes ciphertext(plaintext.size());
  const auto params = IvParams::ino_lblk_64(0x4321);
  ASSERT_TRUE(encrypt_data_units(**cipher, params, 1024, 5, plaintext, ciphertext));
  for (uint64_t unit = 0; unit < 2; ++unit) {
    std::array<uint8_t, 16> iv{};
    store_le32(iv.data(), static_cast<uint32_t>(5 + unit));
    store_le32(iv.data() + 4, 0x4321);
    Bytes expected(1024);
    ASSERT_TRUE((*cipher)->encrypt(iv, ByteSpan(plaintext).subspan(unit * 1024, 1024), expected));
    EXPECT_EQ(Bytes(ciphertext.begin() + unit * 1024, ciphertext.begin() + (unit + 1) * 1024),
              expected);
  }
}

// Adiantum (mode 9) with DIRECT_KEY, the one real use of that flag: each unit
// equals Adiantum called by hand with le64(index) || nonce || 8 zero bytes.
TEST(Contents, AdiantumDirectKeyUnitsMatchHandComposedIvs) {
  auto cipher = crypto::make_adiantum(counting_bytes(32, 0x80));
  ASSERT_TRUE(cipher) << cipher.error().message();
  std::array<uint8_t, 16> nonce;
  for (size_t i = 0; i < 16; ++i) nonce[i] = static_cast<uint8_t>(0xf0 - i);
  const Bytes plaintext = counting_bytes(4096 * 2, 0x21);
  Bytes ciphertext(plaintext.size());
  ASSERT_TRUE(encrypt_data_units(**cipher, IvParams::direct_key(nonce), 4096, 0x1234, plaintext,
                                 ciphertext));
  for (uint64_t unit = 0; unit < 2; ++unit) {
    std::array<uint8_t, 32> iv{};
    store_le64(iv.data(), 0x1234 + unit);
    std::copy(nonce.begin(), nonce.end(), iv.begin() + 8);
    Bytes expected(4096);
    ASSERT_TRUE((*cipher)->encrypt(iv, ByteSpan(plaintext).subspan(unit * 4096, 4096), expected));
    EXPECT_EQ(Bytes(ciphertext.begin() + unit * 4096, ciphertext.begin() + (unit + 1) * 4096),
              expected);
  }
  Bytes decrypted(ciphertext.size());
  ASSERT_TRUE(decrypt_data_units(**cipher, IvParams::direct_key(nonce), 4096, 0x1234, ciphertext,
                                 decrypted));
  EXPECT_EQ(decrypted, plaintext);
}

// 32-byte IV schemes, checked through a cipher that records its IVs.
TEST(Contents, PassesOneIvPerUnitForEveryScheme) {
  std::array<uint8_t, 16> nonce;
  for (size_t i = 0; i < 16; ++i) nonce[i] = static_cast<uint8_t>(0xc0 | i);
  const IvParams schemes[] = {IvParams::default_scheme(), IvParams::direct_key(nonce),
                              IvParams::ino_lblk_64(77), IvParams::ino_lblk_32(0xfffffffe)};
  for (const auto& params : schemes) {
    test_support::RecordingCipher cipher(32);
    Bytes data = counting_bytes(512 * 3);
    ASSERT_TRUE(encrypt_data_units(cipher, params, 512, 1, data, data));
    const auto ivs = cipher.ivs();
    ASSERT_EQ(ivs.size(), 3u);
    for (uint64_t unit = 0; unit < 3; ++unit) {
      auto expected = generate_iv(params, 1 + unit, 32);
      ASSERT_TRUE(expected);
      EXPECT_EQ(ivs[unit], Bytes(expected->span().begin(), expected->span().end()));
    }
    // LBLK_32 wraps: 0xfffffffe + 2 == 0 for the second unit.
    if (params.scheme == IvScheme::kInoLblk32) {
      EXPECT_EQ(ivs[1], Bytes(32, 0));
    }
  }
}

TEST(Contents, ZeroUnitsDoNothing) {
  test_support::RecordingCipher cipher(16);
  Bytes empty;
  EXPECT_TRUE(encrypt_data_units(cipher, IvParams::default_scheme(), 4096, 0, empty, empty));
  EXPECT_TRUE(cipher.ivs().empty());
}

TEST(Contents, RejectsBadDataUnitSizes) {
  test_support::RecordingCipher cipher(16);
  for (size_t size : {0, 1, 256, 1000, 4095, 131072}) {
    Bytes data(size == 0 ? 512 : size * 2);
    auto status = encrypt_data_units(cipher, IvParams::default_scheme(), size, 0, data, data);
    ASSERT_FALSE(status) << size;
    EXPECT_EQ(status.error().errno_value(), EINVAL);
    EXPECT_FALSE(check_data_unit_size(size));
  }
  EXPECT_TRUE(check_data_unit_size(512));
  EXPECT_TRUE(check_data_unit_size(65536));
}

TEST(Contents, RejectsPartialDataUnits) {
  test_support::RecordingCipher cipher(16);
  for (size_t length : {1, 511, 4097, 8191}) {
    Bytes data(length);
    auto status = decrypt_data_units(cipher, IvParams::default_scheme(), 4096, 0, data, data);
    ASSERT_FALSE(status) << length;
    EXPECT_EQ(status.error().errno_value(), EINVAL);
  }
  EXPECT_TRUE(cipher.ivs().empty());
}

TEST(Contents, RejectsMismatchedAndPartlyOverlappingBuffers) {
  test_support::RecordingCipher cipher(16);
  Bytes in(1024), out(512);
  EXPECT_EQ(
      encrypt_data_units(cipher, IvParams::default_scheme(), 512, 0, in, out).error().errno_value(),
      EINVAL);
  Bytes buffer(512 * 3);
  const ByteSpan source(buffer.data(), 1024);
  const MutableByteSpan shifted(buffer.data() + 512, 1024);
  EXPECT_EQ(encrypt_data_units(cipher, IvParams::default_scheme(), 512, 0, source, shifted)
                .error()
                .errno_value(),
            EINVAL);
  EXPECT_TRUE(cipher.ivs().empty());
}

TEST(Contents, RejectsIndexRangesTheSchemeCannotTake) {
  test_support::RecordingCipher cipher(16);
  Bytes data(512 * 2);
  // The second unit would need index 2^32.
  auto status =
      encrypt_data_units(cipher, IvParams::ino_lblk_32(0), 512, 0xffffffffull, data, data);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().errno_value(), EINVAL);
  // DIRECT_KEY with a 16-byte IV mode.
  status = encrypt_data_units(cipher, IvParams::direct_key({}), 512, 0, data, data);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().errno_value(), EINVAL);
  EXPECT_TRUE(cipher.ivs().empty());
}

}  // namespace
}  // namespace ecfs::fscrypt
