#include "fscrypt/key_identifier.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "fscrypt/hkdf.h"

namespace ecfs::fscrypt {
namespace {

std::vector<uint8_t> repeated(char c) { return std::vector<uint8_t>(64, static_cast<uint8_t>(c)); }

TEST(KeyIdentifier, XfstestsTestRawKey) {
  // xfstests common/encrypt: TEST_RAW_KEY (0x01..0x40) -> TEST_KEY_IDENTIFIER.
  std::vector<uint8_t> key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i + 1);
  auto identifier = compute_key_identifier(key);
  ASSERT_TRUE(identifier);
  EXPECT_EQ(to_hex(*identifier), "69b2f6edeee720cce0577937eb8a6751");
  // Same through an existing HKDF state.
  auto hkdf = FscryptHkdf::create(key);
  ASSERT_TRUE(hkdf);
  EXPECT_EQ(*compute_key_identifier(*hkdf), *identifier);
}

TEST(KeyIdentifier, RepeatedByteKeys) {
  // fscrypt-format.md §3.3, computed with Python hmac/hashlib.
  EXPECT_EQ(to_hex(*compute_key_identifier(repeated('a'))), "18253838387c91fbaf91d64a88547339");
  EXPECT_EQ(to_hex(*compute_key_identifier(repeated('b'))), "4cfd753ef803c79190330eb164a3e8bb");
  EXPECT_EQ(to_hex(*compute_key_identifier(repeated('c'))), "2cf85b5e75bff248c43d29fbb168747a");
}

TEST(KeyDescriptor, FscryptctlVectors) {
  // google/fscryptctl test.py (published).
  EXPECT_EQ(to_hex(compute_v1_key_descriptor(repeated('a'))), "0394a446f8eaa61f");
  EXPECT_EQ(to_hex(compute_v1_key_descriptor(repeated('b'))), "904a9ca97689ad11");
  EXPECT_EQ(to_hex(compute_v1_key_descriptor(repeated('c'))), "a8134316f6879ed4");
}

TEST(KeySpecifier, Descriptor) {
  const KeyDescriptor descriptor = {0, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44};
  const auto spec = KeySpecifier::from_descriptor(descriptor);
  EXPECT_EQ(spec.type(), KeySpecifierType::kDescriptor);
  EXPECT_EQ(spec.size(), 8u);
  EXPECT_EQ(spec.to_hex(), "0011112222333344");
  EXPECT_EQ(spec.to_string(), "descriptor 0011112222333344");
  const auto bytes = spec.serialize();
  EXPECT_EQ(to_hex(bytes),
            "01000000"
            "00000000"
            "0011112222333344" +
                std::string(48, '0'));
  auto parsed = KeySpecifier::parse(bytes);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, spec);
}

TEST(KeySpecifier, Identifier) {
  auto spec = KeySpecifier::from_hex("69b2f6edeee720cce0577937eb8a6751");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->type(), KeySpecifierType::kIdentifier);
  EXPECT_EQ(spec->size(), 16u);
  const auto bytes = spec->serialize();
  EXPECT_EQ(to_hex(bytes),
            "02000000"
            "00000000"
            "69b2f6edeee720cce0577937eb8a6751" +
                std::string(32, '0'));
  EXPECT_EQ(*KeySpecifier::parse(bytes), *spec);
}

TEST(KeySpecifier, DescriptorAndIdentifierDiffer) {
  const KeyDescriptor descriptor{};
  const KeyIdentifier identifier{};
  EXPECT_NE(KeySpecifier::from_descriptor(descriptor), KeySpecifier::from_identifier(identifier));
}

TEST(KeySpecifier, FromHexRejectsBadInput) {
  for (const char* bad : {"", "00", "001122334455667", "00112233445566778", "zz11223344556677",
                          "69b2f6edeee720cce0577937eb8a67511"}) {
    auto spec = KeySpecifier::from_hex(bad);
    ASSERT_FALSE(spec) << bad;
    EXPECT_EQ(spec.error().errno_value(), EINVAL) << bad;
  }
  EXPECT_EQ(KeySpecifier::from_hex("0011223344556677")->type(), KeySpecifierType::kDescriptor);
}

TEST(KeySpecifier, ParseRejectsBadInput) {
  auto good = KeySpecifier::from_hex("0011223344556677")->serialize();
  // Wrong sizes.
  EXPECT_EQ(KeySpecifier::parse(ByteSpan(good).first(39)).error().errno_value(), EINVAL);
  std::vector<uint8_t> longer(good.begin(), good.end());
  longer.push_back(0);
  EXPECT_EQ(KeySpecifier::parse(longer).error().errno_value(), EINVAL);
  // Unknown types.
  for (uint8_t type : {0, 3, 0xff}) {
    auto bad = good;
    bad[0] = type;
    EXPECT_EQ(KeySpecifier::parse(bad).error().errno_value(), EINVAL) << int(type);
  }
  // Reserved word set.
  auto reserved = good;
  reserved[5] = 1;
  EXPECT_EQ(KeySpecifier::parse(reserved).error().errno_value(), EINVAL);
  // Union bytes past the key are ignored (the kernel reads only its length).
  auto trailing = good;
  trailing[20] = 0xee;
  EXPECT_EQ(*KeySpecifier::parse(trailing), *KeySpecifier::parse(good));
}

}  // namespace
}  // namespace ecfs::fscrypt
