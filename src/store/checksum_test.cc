#include "store/checksum.h"

#include <gtest/gtest.h>

#include <string>

namespace ecfs::store {
namespace {

Bytes hex(std::string_view text) {
  auto bytes = from_hex(text);
  EXPECT_TRUE(bytes.has_value()) << "bad hex literal in test: " << text;
  return bytes.value_or(Bytes{});
}

// The algorithm's output as stored: the first checksum_size() bytes.
std::string stored_hex(ChecksumType type, ByteSpan data) {
  const Checksum checksum = compute_checksum(type, data);
  return to_hex(ByteSpan(checksum.data(), checksum_size(type)));
}

Bytes filled(size_t size, uint8_t value) { return Bytes(size, value); }

Bytes ramp(size_t size, bool ascending) {
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(ascending ? i : size - 1 - i);
  return out;
}

TEST(ChecksumTest, Crc32cCheckValueStoredLittleEndian) {
  // The CRC-32C catalogue check value is 0xE3069283 (CRC RevEng catalogue,
  // "CRC-32/ISCSI"); stored little-endian as btrfs stores it.
  EXPECT_EQ(stored_hex(ChecksumType::kCrc32c, as_bytes("123456789")), "839206e3");
}

TEST(ChecksumTest, Crc32cRfc3720Vectors) {
  // RFC 3720 appendix B.4; the RFC lists the CRC bytes in the order they are
  // sent, which is the little-endian order ecfs stores.
  EXPECT_EQ(stored_hex(ChecksumType::kCrc32c, filled(32, 0x00)), "aa36918a");
  EXPECT_EQ(stored_hex(ChecksumType::kCrc32c, filled(32, 0xff)), "43aba862");
  EXPECT_EQ(stored_hex(ChecksumType::kCrc32c, ramp(32, true)), "4e79dd46");
  EXPECT_EQ(stored_hex(ChecksumType::kCrc32c, ramp(32, false)), "5cdb3f11");
  // The empty message: the initial value complemented back.
  EXPECT_EQ(stored_hex(ChecksumType::kCrc32c, {}), "00000000");
}

TEST(ChecksumTest, Xxhash64KnownAnswers) {
  // XXH64, seed 0: published values (xxHash's reference results, also in the
  // python-xxhash documentation), stored little-endian.
  auto le = [](uint64_t v) {
    uint8_t b[8];
    store_le64(b, v);
    return to_hex(b);
  };
  EXPECT_EQ(stored_hex(ChecksumType::kXxhash64, {}), le(0xEF46DB3751D8E999ull));
  EXPECT_EQ(stored_hex(ChecksumType::kXxhash64, as_bytes("abc")), le(0x44BC2CF5AD770999ull));
  // 39 bytes: runs the 32-byte stripe loop.
  EXPECT_EQ(
      stored_hex(ChecksumType::kXxhash64, as_bytes("Nobody inspects the spammish repetition")),
      le(0xFBCEA83C8A378BF1ull));
  EXPECT_EQ(stored_hex(ChecksumType::kXxhash64, as_bytes("abc")), "990977adf52cbc44");
}

TEST(ChecksumTest, Sha256KnownAnswers) {
  // FIPS 180-2 appendix B.1 and the empty message (NIST example values).
  EXPECT_EQ(stored_hex(ChecksumType::kSha256, as_bytes("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(stored_hex(ChecksumType::kSha256, {}),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ChecksumTest, Blake2b256KnownAnswers) {
  // Unkeyed BLAKE2b with digest length 32 (RFC 7693 parameter block), values
  // of the BLAKE2 reference implementation (b2sum -l 256).
  EXPECT_EQ(stored_hex(ChecksumType::kBlake2b, {}),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  EXPECT_EQ(stored_hex(ChecksumType::kBlake2b, as_bytes("abc")),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

TEST(ChecksumTest, ShortChecksumsAreZeroPadded) {
  for (ChecksumType type : {ChecksumType::kCrc32c, ChecksumType::kXxhash64}) {
    const Checksum checksum = compute_checksum(type, as_bytes("abc"));
    for (size_t i = checksum_size(type); i < checksum.size(); ++i) {
      EXPECT_EQ(checksum[i], 0) << checksum_name(type) << " byte " << i;
    }
  }
}

TEST(ChecksumTest, SizesNamesAndNumbers) {
  EXPECT_EQ(checksum_size(ChecksumType::kCrc32c), 4u);
  EXPECT_EQ(checksum_size(ChecksumType::kXxhash64), 8u);
  EXPECT_EQ(checksum_size(ChecksumType::kSha256), 32u);
  EXPECT_EQ(checksum_size(ChecksumType::kBlake2b), 32u);
  for (auto [type, name, number] : {std::tuple{ChecksumType::kCrc32c, "crc32c", 0},
                                    std::tuple{ChecksumType::kXxhash64, "xxhash64", 1},
                                    std::tuple{ChecksumType::kSha256, "sha256", 2},
                                    std::tuple{ChecksumType::kBlake2b, "blake2b", 3}}) {
    EXPECT_EQ(checksum_name(type), name);
    EXPECT_EQ(checksum_type_from_name(name), type);
    EXPECT_EQ(checksum_type_from_number(static_cast<uint16_t>(number)), type);
  }
  EXPECT_EQ(checksum_type_from_name("CRC32C"), std::nullopt);
  EXPECT_EQ(checksum_type_from_name("md5"), std::nullopt);
  EXPECT_EQ(checksum_type_from_name(""), std::nullopt);
  EXPECT_EQ(checksum_type_from_number(4), std::nullopt);
  EXPECT_EQ(checksum_type_from_number(0xffff), std::nullopt);
}

TEST(ChecksumTest, MatchesAcceptsItsOwnChecksumAndRejectsChanges) {
  Bytes data = ramp(4096, true);
  for (ChecksumType type : {ChecksumType::kCrc32c, ChecksumType::kXxhash64, ChecksumType::kSha256,
                            ChecksumType::kBlake2b}) {
    SCOPED_TRACE(std::string(checksum_name(type)));
    const Checksum good = compute_checksum(type, data);
    EXPECT_TRUE(checksum_matches(type, data, good));
    // Only the algorithm's bytes are compared: the padding is not.
    Checksum padded = good;
    if (checksum_size(type) < padded.size()) {
      padded.back() ^= 1;
      EXPECT_TRUE(checksum_matches(type, data, padded));
    }
    // A stored checksum with one bit flipped, in its first and last byte.
    for (size_t byte : {size_t{0}, checksum_size(type) - 1}) {
      Checksum bad = good;
      bad[byte] ^= 0x80;
      EXPECT_FALSE(checksum_matches(type, data, bad)) << "byte " << byte;
    }
    // Data with one bit flipped.
    Bytes changed = data;
    changed[1234] ^= 0x04;
    EXPECT_FALSE(checksum_matches(type, changed, good));
    // A stored field shorter than the checksum never matches.
    EXPECT_FALSE(checksum_matches(type, data, ByteSpan(good.data(), checksum_size(type) - 1)));
  }
}

TEST(ChecksumTest, AlgorithmsDiffer) {
  // Guards against a table that maps two names to one algorithm.
  const Bytes data = hex("00010203");
  EXPECT_NE(compute_checksum(ChecksumType::kSha256, data),
            compute_checksum(ChecksumType::kBlake2b, data));
  EXPECT_NE(compute_checksum(ChecksumType::kCrc32c, data),
            compute_checksum(ChecksumType::kXxhash64, data));
}

}  // namespace
}  // namespace ecfs::store
