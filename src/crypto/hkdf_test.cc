#include "crypto/hkdf.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "crypto/evp.h"
#include "crypto/hkdf_internal.h"
#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

using testing::counting_bytes;
using testing::error_of;
using testing::hex;

struct Rfc5869Case {
  const char* name;
  Bytes ikm;
  Bytes salt;
  Bytes info;
  size_t length;
  const char* prk;
  const char* okm;
};

// RFC 5869 Appendix A, test cases 1-3 (the SHA-256 ones), run through the
// same engine HkdfSha512 uses.
TEST(Hkdf, Rfc5869Sha256Cases) {
  const Rfc5869Case cases[] = {
      {"A.1 basic", Bytes(22, 0x0b), counting_bytes(13), counting_bytes(10, 0xf0), 42,
       "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
       "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
      {"A.2 longer inputs", counting_bytes(80), counting_bytes(80, 0x60), counting_bytes(80, 0xb0),
       82, "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
       "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
       "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
       "cc30c58179ec3e87c14c01d5c1f3434f1d87"},
      {"A.3 no salt, no info", Bytes(22, 0x0b), Bytes{}, Bytes{}, 42,
       "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
       "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
  };
  for (const Rfc5869Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto hkdf = internal::Hkdf::extract(evp::sha256(), c.salt, c.ikm);
    ASSERT_TRUE(hkdf) << hkdf.error().to_string();
    EXPECT_EQ((*hkdf)->hash_size(), 32u);
    EXPECT_EQ(to_hex((*hkdf)->pseudorandom_key()), c.prk);
    Bytes okm(c.length);
    ASSERT_TRUE((*hkdf)->expand({c.info}, okm));
    EXPECT_EQ(to_hex(okm), c.okm);
  }
}

// fscrypt's HKDF info: "fscrypt\0" || context byte || context-specific
// input (fs/crypto/hkdf.c fscrypt_hkdf_expand).
Bytes fscrypt_prefix(uint8_t context) {
  Bytes prefix = {'f', 's', 'c', 'r', 'y', 'p', 't', 0};
  prefix.push_back(context);
  return prefix;
}

// xfstests common/encrypt: TEST_RAW_KEY (bytes 0x01..0x40) has
// TEST_KEY_IDENTIFIER 69b2f6edeee720cce0577937eb8a6751 = HKDF-SHA512(key,
// salt = "", info = "fscrypt\0\x01"), 16 bytes.
TEST(HkdfSha512, FscryptKeyIdentifierOfXfstestsKey) {
  auto hkdf = HkdfSha512::extract({}, counting_bytes(64, 1));
  ASSERT_TRUE(hkdf) << hkdf.error().to_string();
  Bytes identifier(16);
  ASSERT_TRUE(hkdf->expand({fscrypt_prefix(1)}, identifier));
  EXPECT_EQ(to_hex(identifier), "69b2f6edeee720cce0577937eb8a6751");
}

// /work/shared/reference/fscrypt-format.md §3.3: values computed with
// Python's hmac/hashlib (not published), master key 0x01..0x40 and nonce
// 00..0f, plus identifiers of 64 x 'a' / 'b' / 'c'.
TEST(HkdfSha512, FscryptDerivedKeysComputedIndependently) {
  auto hkdf = HkdfSha512::extract({}, counting_bytes(64, 1));
  ASSERT_TRUE(hkdf);
  const Bytes nonce = counting_bytes(16);

  Bytes per_file_key(64);
  ASSERT_TRUE(hkdf->expand({fscrypt_prefix(2), nonce}, per_file_key));
  EXPECT_EQ(to_hex(per_file_key),
            "badfbae70512e3d28b99414b7887741d848f9283e09b7f59e8cbe78a2b2c05cb"
            "9fee965f0eb2096b15b28c46cfc02a975bfbce9d34ade6ab28417d4e49df2470");

  Bytes dirhash_key(16);
  ASSERT_TRUE(hkdf->expand({fscrypt_prefix(5), nonce}, dirhash_key));
  EXPECT_EQ(to_hex(dirhash_key), "56a94d5d52f8532a98e25757f4979543");

  Bytes extent_key(64);
  ASSERT_TRUE(hkdf->expand({fscrypt_prefix(9), nonce}, extent_key));
  EXPECT_EQ(to_hex(ByteSpan(extent_key).first(16)), "a8c26f6033618f12cb6107c62d18d50e");
  ASSERT_TRUE(hkdf->expand({fscrypt_prefix(8), nonce}, extent_key));
  EXPECT_EQ(to_hex(ByteSpan(extent_key).first(16)), "692e63c78fdf482005c5b45f6e237eb6");

  for (auto [fill, expected] : {std::pair{'a', "18253838387c91fbaf91d64a88547339"},
                                std::pair{'b', "4cfd753ef803c79190330eb164a3e8bb"},
                                std::pair{'c', "2cf85b5e75bff248c43d29fbb168747a"}}) {
    auto other = HkdfSha512::extract({}, as_bytes(std::string(64, fill)));
    ASSERT_TRUE(other);
    Bytes identifier(16);
    ASSERT_TRUE(other->expand({fscrypt_prefix(1)}, identifier));
    EXPECT_EQ(to_hex(identifier), expected) << fill;
  }
}

TEST(HkdfSha512, EmptySaltMeansHashLenZeros) {
  const Bytes ikm = counting_bytes(64, 1);
  auto implicit = HkdfSha512::extract({}, ikm);
  auto explicit_zeros = HkdfSha512::extract(Bytes(64, 0), ikm);
  auto other_salt = HkdfSha512::extract(Bytes(64, 1), ikm);
  ASSERT_TRUE(implicit && explicit_zeros && other_salt);
  Bytes a(64), b(64), c(64);
  ASSERT_TRUE(implicit->expand({fscrypt_prefix(1)}, a));
  ASSERT_TRUE(explicit_zeros->expand({fscrypt_prefix(1)}, b));
  ASSERT_TRUE(other_salt->expand({fscrypt_prefix(1)}, c));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(HkdfSha512, InfoPartsConcatenate) {
  auto hkdf = HkdfSha512::extract({}, counting_bytes(64, 1));
  ASSERT_TRUE(hkdf);
  const Bytes whole = counting_bytes(40, 0x30);
  Bytes a(64), b(64), c(64);
  ASSERT_TRUE(hkdf->expand({whole}, a));
  ASSERT_TRUE(hkdf->expand({ByteSpan(whole).first(9), ByteSpan(whole).subspan(9)}, b));
  ASSERT_TRUE(hkdf->expand({ByteSpan(whole).first(9), {}, ByteSpan(whole).subspan(9)}, c));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
}

// T(1) | T(2) | ...: a shorter output is a prefix of a longer one, across
// block boundaries.
TEST(HkdfSha512, ShorterOutputIsPrefixOfLonger) {
  auto hkdf = HkdfSha512::extract(as_bytes("salt"), counting_bytes(32));
  ASSERT_TRUE(hkdf);
  Bytes longest(255 * 64);
  ASSERT_TRUE(hkdf->expand({as_bytes("info")}, longest));
  for (size_t length : {1, 16, 63, 64, 65, 128, 200, 255 * 64 - 1}) {
    SCOPED_TRACE(length);
    Bytes out(length);
    ASSERT_TRUE(hkdf->expand({as_bytes("info")}, out));
    EXPECT_TRUE(std::equal(out.begin(), out.end(), longest.begin()));
  }
}

TEST(HkdfSha512, RejectsOutputLongerThan255Blocks) {
  auto hkdf = HkdfSha512::extract({}, counting_bytes(64, 1));
  ASSERT_TRUE(hkdf);
  Bytes too_long(255 * 64 + 1);
  EXPECT_EQ(error_of(hkdf->expand({}, too_long)), EINVAL);
  Bytes empty;
  EXPECT_TRUE(hkdf->expand({}, empty));
}

TEST(HkdfSha512, MovedFromObjectFailsCleanly) {
  auto hkdf = HkdfSha512::extract({}, counting_bytes(64, 1));
  ASSERT_TRUE(hkdf);
  HkdfSha512 moved = std::move(*hkdf);
  Bytes out(16);
  EXPECT_EQ(error_of(hkdf->expand({fscrypt_prefix(1)}, out)),
            EINVAL);  // NOLINT(bugprone-use-after-move)
  ASSERT_TRUE(moved.expand({fscrypt_prefix(1)}, out));
  EXPECT_EQ(to_hex(out), "69b2f6edeee720cce0577937eb8a6751");
}

TEST(HkdfSha512, ConcurrentExpandsAgree) {
  auto hkdf = HkdfSha512::extract({}, counting_bytes(64, 1));
  ASSERT_TRUE(hkdf);
  constexpr int kThreads = 8;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Bytes out(16);
      for (int i = 0; i < 2000; ++i) {
        if (!hkdf->expand({fscrypt_prefix(1)}, out) ||
            to_hex(out) != "69b2f6edeee720cce0577937eb8a6751") {
          ++mismatches[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace ecfs::crypto
