#include "fscrypt/nokey_name.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <string>

namespace ecfs::fscrypt {
namespace {

// A deliberately plain base64url decoder, independent of base/base64url.cc,
// to read what encode_nokey_name produced.
Bytes reference_decode(std::string_view text) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string bits;
  for (char c : text) {
    const size_t value = alphabet.find(c);
    EXPECT_NE(value, std::string::npos) << c;
    for (int b = 5; b >= 0; --b) bits.push_back(((value >> b) & 1) ? '1' : '0');
  }
  Bytes out;
  for (size_t i = 0; i + 8 <= bits.size(); i += 8) {
    out.push_back(static_cast<uint8_t>(std::stoi(bits.substr(i, 8), nullptr, 2)));
  }
  return out;
}

Bytes ciphertext_of(size_t size, uint8_t seed) {
  Bytes data(size);
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<uint8_t>(seed + i * 13);
  return data;
}

std::string encode(ByteSpan ciphertext, uint32_t hash = 0, uint32_t minor_hash = 0) {
  auto name = encode_nokey_name(ciphertext, hash, minor_hash);
  EXPECT_TRUE(name);
  return name ? *name : std::string();
}

TEST(NokeyName, KnownStringForAllZeroInput) {
  // 8 zero hash bytes + 16 zero ciphertext bytes = 24 zero bytes = 32 'A's.
  EXPECT_EQ(encode(Bytes(16, 0)), std::string(32, 'A'));
  // 0xff bytes are all ones: '_' (63) in every position.
  EXPECT_EQ(encode(Bytes(16, 0xff), 0xffffffff, 0xffffffff), std::string(32, '_'));
}

TEST(NokeyName, ShortFormIsHashesThenWholeCiphertext) {
  for (size_t size : {16, 17, 18, 32, 100, 148, 149}) {
    SCOPED_TRACE(size);
    const Bytes ciphertext = ciphertext_of(size, 5);
    const std::string name = encode(ciphertext, 0x11223344, 0x55667788);
    EXPECT_EQ(name.size(), (4 * (8 + size) + 2) / 3);
    const Bytes payload = reference_decode(name);
    ASSERT_EQ(payload.size(), 8 + size);
    // Host-order (little-endian) u32 hash, then minor_hash.
    EXPECT_EQ(Bytes(payload.begin(), payload.begin() + 8),
              (Bytes{0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55}));
    EXPECT_EQ(Bytes(payload.begin() + 8, payload.end()), ciphertext);
    // Only the URL-safe alphabet: never '/' (not allowed in names) or '='.
    EXPECT_EQ(name.find_first_of("/+="), std::string::npos);
  }
}

TEST(NokeyName, LongFormIsPrefixThenSha256OfTheRest) {
  for (size_t size : {150, 151, 200, 255, 4093}) {
    SCOPED_TRACE(size);
    const Bytes ciphertext = ciphertext_of(size, 9);
    const std::string name = encode(ciphertext, 7, 9);
    EXPECT_EQ(name.size(), 252u);
    const Bytes payload = reference_decode(name);
    ASSERT_EQ(payload.size(), 189u);
    EXPECT_EQ(Bytes(payload.begin(), payload.begin() + 8), (Bytes{7, 0, 0, 0, 9, 0, 0, 0}));
    EXPECT_EQ(Bytes(payload.begin() + 8, payload.begin() + 157),
              Bytes(ciphertext.begin(), ciphertext.begin() + 149));
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(ciphertext.data() + 149, ciphertext.size() - 149, digest);
    EXPECT_EQ(Bytes(payload.begin() + 157, payload.end()), Bytes(digest, digest + 32));
  }
}

TEST(NokeyName, EncodePassesDotsThroughAndRejectsShortCiphertext) {
  EXPECT_EQ(encode(as_bytes(".")), ".");
  EXPECT_EQ(encode(as_bytes("..")), "..");
  for (size_t size : {0, 1, 3, 15}) {
    auto name = encode_nokey_name(Bytes(size, 'z'));
    ASSERT_FALSE(name) << size;
    EXPECT_EQ(name.error().errno_value(), EUCLEAN);
  }
}

TEST(NokeyName, ShortFormDecodesAndMatchesTheWholeCiphertext) {
  const Bytes ciphertext = ciphertext_of(32, 1);
  auto decoded = NokeyName::decode(encode(ciphertext, 0xdeadbeef, 0x01020304));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->hash(), 0xdeadbeefu);
  EXPECT_EQ(decoded->minor_hash(), 0x01020304u);
  EXPECT_FALSE(decoded->is_abbreviated());
  EXPECT_EQ(Bytes(decoded->ciphertext_bytes().begin(), decoded->ciphertext_bytes().end()),
            ciphertext);

  EXPECT_TRUE(decoded->matches(ciphertext));
  Bytes flipped = ciphertext;
  flipped[31] ^= 1;
  EXPECT_FALSE(decoded->matches(flipped));
  Bytes longer = ciphertext;
  longer.push_back(0);
  EXPECT_FALSE(decoded->matches(longer));
  EXPECT_FALSE(decoded->matches(ByteSpan(ciphertext).first(31)));

  EXPECT_TRUE(decoded->matches(ciphertext, 0xdeadbeef, 0x01020304));
  EXPECT_FALSE(decoded->matches(ciphertext, 0xdeadbeef, 0));
  EXPECT_FALSE(decoded->matches(ciphertext, 0, 0x01020304));
}

TEST(NokeyName, LongFormMatchesByPrefixAndDigest) {
  const Bytes ciphertext = ciphertext_of(240, 3);
  auto decoded = NokeyName::decode(encode(ciphertext, 42, 43));
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(decoded->is_abbreviated());
  EXPECT_EQ(decoded->ciphertext_bytes().size(), 149u);
  EXPECT_EQ(decoded->hash(), 42u);
  EXPECT_EQ(decoded->minor_hash(), 43u);
  EXPECT_TRUE(decoded->matches(ciphertext));
  EXPECT_TRUE(decoded->matches(ciphertext, 42, 43));
  EXPECT_FALSE(decoded->matches(ciphertext, 41, 43));

  Bytes tail_changed = ciphertext;
  tail_changed[200] ^= 0x80;
  EXPECT_FALSE(decoded->matches(tail_changed));
  Bytes prefix_changed = ciphertext;
  prefix_changed[0] ^= 0x80;
  EXPECT_FALSE(decoded->matches(prefix_changed));
  Bytes extended = ciphertext;
  extended.push_back(0);
  EXPECT_FALSE(decoded->matches(extended));
  // At most 149 bytes can never match an abbreviated name.
  EXPECT_FALSE(decoded->matches(ByteSpan(ciphertext).first(149)));
}

TEST(NokeyName, BoundaryBetweenShortAndLongForms) {
  const Bytes at_limit = ciphertext_of(149, 0);
  auto short_form = NokeyName::decode(encode(at_limit));
  ASSERT_TRUE(short_form);
  EXPECT_FALSE(short_form->is_abbreviated());
  EXPECT_TRUE(short_form->matches(at_limit));

  const Bytes over_limit = ciphertext_of(150, 0);
  auto long_form = NokeyName::decode(encode(over_limit));
  ASSERT_TRUE(long_form);
  EXPECT_TRUE(long_form->is_abbreviated());
  EXPECT_TRUE(long_form->matches(over_limit));
  EXPECT_FALSE(long_form->matches(at_limit));
  EXPECT_FALSE(short_form->matches(over_limit));
}

// The presented form of an arbitrary payload of `size` bytes, encoded by
// hand (most significant bit first, 6 bits per character, no padding).
std::string payload_of_size(size_t size) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string bits;
  for (size_t i = 0; i < size; ++i) bits += "01011010";  // 0x5a
  while (bits.size() % 6 != 0) bits.push_back('0');
  std::string out;
  for (size_t i = 0; i < bits.size(); i += 6) {
    out.push_back(alphabet[std::stoi(bits.substr(i, 6), nullptr, 2)]);
  }
  return out;
}

TEST(NokeyName, DecodeAcceptsOnlyTheKernelsLengths) {
  for (size_t size = 0; size <= 192; ++size) {
    auto decoded = NokeyName::decode(payload_of_size(size));
    const bool valid = (size >= 9 && size <= 157) || size == 189;
    EXPECT_EQ(static_cast<bool>(decoded), valid) << size;
    if (!decoded) {
      EXPECT_EQ(decoded.error().errno_value(), ENOENT) << size;
    }
    if (decoded) {
      EXPECT_EQ(decoded->is_abbreviated(), size == 189);
      EXPECT_EQ(decoded->ciphertext_bytes().size(), std::min<size_t>(size, 157) - 8);
    }
  }
}

TEST(NokeyName, DecodeRejectsMalformedNames) {
  const std::string valid = encode(ciphertext_of(40, 2));
  ASSERT_TRUE(NokeyName::decode(valid));
  for (std::string bad : {valid + "=", valid.substr(0, 10) + "/" + valid.substr(11),
                          valid.substr(0, 10) + "+" + valid.substr(11), valid + "B", valid + "AB",
                          std::string("."), std::string(".."), std::string("plain name")}) {
    auto decoded = NokeyName::decode(bad);
    ASSERT_FALSE(decoded) << bad;
    EXPECT_EQ(decoded.error().errno_value(), ENOENT);
  }
  // Longer than FSCRYPT_NOKEY_NAME_MAX_ENCODED (252) characters.
  auto too_long = NokeyName::decode(std::string(256, 'A'));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().errno_value(), ENOENT);
  // 252 'A's decode to 189 zero bytes: a valid (abbreviated) name.
  EXPECT_TRUE(NokeyName::decode(std::string(252, 'A')));
  // Linux 6.18's decoder ignores a lone final 'A' (6 zero bits) after 4k
  // characters, so the kernel finds the entry under that spelling too.
  auto with_a = NokeyName::decode(valid + "A");
  ASSERT_TRUE(with_a);
  EXPECT_TRUE(with_a->matches(ciphertext_of(40, 2)));
  // 14 characters carry 10 bytes and 4 spare bits; a set spare bit makes the
  // name non-canonical and it is rejected.
  EXPECT_TRUE(NokeyName::decode(std::string(14, 'A')));
  EXPECT_FALSE(NokeyName::decode(std::string(13, 'A') + "B"));
}

}  // namespace
}  // namespace ecfs::fscrypt
