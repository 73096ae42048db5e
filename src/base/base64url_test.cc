#include "base/base64url.h"

#include <gtest/gtest.h>

#include <string>

namespace ecfs {
namespace {

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

// RFC 4648 §10 test vectors. None of them contains '+' or '/', so they read
// the same in the URL alphabet; only the '=' padding is dropped.
TEST(Base64url, Rfc4648Section10Vectors) {
  const struct {
    const char* plain;
    const char* encoded;
  } kVectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& v : kVectors) {
    SCOPED_TRACE(v.plain);
    EXPECT_EQ(base64url_encode(as_bytes(v.plain)), v.encoded);
    auto decoded = base64url_decode(v.encoded);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, bytes_of(v.plain));
  }
}

// Values 62 and 63 use '-' and '_' (RFC 4648 §5, Table 2) where standard
// base64 uses '+' and '/': 0xfb 0xff 0xbf is "+/+/" in standard base64.
TEST(Base64url, UsesUrlSafeCharactersFor62And63) {
  const Bytes data = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(base64url_encode(data), "-_-_");
  EXPECT_EQ(*base64url_decode("-_-_"), data);
  EXPECT_EQ(base64url_encode(Bytes{0xfb, 0xff}), "-_8");
  EXPECT_EQ(base64url_encode(Bytes{0xff}), "_w");
}

TEST(Base64url, EncodedSizeIsCeilingOfFourThirds) {
  EXPECT_EQ(base64url_encoded_size(0), 0u);
  EXPECT_EQ(base64url_encoded_size(1), 2u);
  EXPECT_EQ(base64url_encoded_size(2), 3u);
  EXPECT_EQ(base64url_encoded_size(3), 4u);
  EXPECT_EQ(base64url_encoded_size(189), 252u);  // fscrypt's longest no-key name
}

TEST(Base64url, RoundTripsEveryLengthAndByteValue) {
  for (size_t length = 0; length < 300; ++length) {
    Bytes data(length);
    for (size_t i = 0; i < length; ++i) data[i] = static_cast<uint8_t>(i * 151 + length * 7);
    const std::string encoded = base64url_encode(data);
    ASSERT_EQ(encoded.size(), base64url_encoded_size(length));
    auto decoded = base64url_decode(encoded);
    ASSERT_TRUE(decoded) << length;
    EXPECT_EQ(*decoded, data) << length;
  }
}

TEST(Base64url, RejectsCharactersOutsideTheAlphabet) {
  for (const char* bad : {"Zg==", "Zg=", "Zm9v+g", "Zm9v/g", "Zm 9v", "Zm9v\n", "Zm\x80v"}) {
    auto decoded = base64url_decode(bad);
    ASSERT_FALSE(decoded) << bad;
    EXPECT_EQ(decoded.error().errno_value(), EINVAL);
  }
  EXPECT_FALSE(base64url_decode(std::string_view("Zm\0v", 4)));
}

TEST(Base64url, RejectsLengthsThatLeaveAPartialByte) {
  for (const char* bad : {"A", "Zm9vA", "Zm9vYmFyA"}) {
    auto decoded = base64url_decode(bad);
    ASSERT_FALSE(decoded) << bad;
    EXPECT_EQ(decoded.error().errno_value(), EINVAL);
  }
}

// "Zh" and "Zm9" differ from the canonical "Zg" and "Zm8" only in bits that
// carry no data (RFC 4648 §3.5); accepting them would give one byte string
// two spellings.
TEST(Base64url, RejectsNonzeroUnusedBits) {
  for (const char* bad : {"Zh", "Zm9", "Zm9vYh", "Zm9vYmF"}) {
    auto decoded = base64url_decode(bad);
    ASSERT_FALSE(decoded) << bad;
    EXPECT_EQ(decoded.error().errno_value(), EINVAL);
  }
}

}  // namespace
}  // namespace ecfs
