#include "crypto/hash.h"

#include <gtest/gtest.h>

#include <string>

#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

// FIPS 180-2, Appendix B (SHA-256) and Appendix C (SHA-512) examples.
constexpr std::string_view kAbc = "abc";
constexpr std::string_view k448Bits = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr std::string_view k896Bits =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopq"
    "rs"
    "mnopqrstnopqrstu";

TEST(Sha256, Fips180KnownAnswers) {
  EXPECT_EQ(to_hex(sha256(as_bytes(kAbc))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha256(as_bytes(k448Bits))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(to_hex(sha256(as_bytes(std::string(1000000, 'a')))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(to_hex(sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha512, Fips180KnownAnswers) {
  EXPECT_EQ(to_hex(sha512(as_bytes(kAbc))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  EXPECT_EQ(to_hex(sha512(as_bytes(k896Bits))),
            "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
            "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
  // The 448-bit message of the SHA-256 example hashed with SHA-512, as
  // published in the usual SHA-2 test-vector tables (e.g. di-mgt.com.au,
  // "Test vectors for SHA-1, SHA-2 and SHA-3").
  EXPECT_EQ(to_hex(sha512(as_bytes(k448Bits))),
            "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335"
            "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445");
  EXPECT_EQ(to_hex(sha512(as_bytes(std::string(1000000, 'a')))),
            "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
            "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b");
}

// fscrypt's v1 key descriptor convention, the first 8 bytes of
// SHA-512(SHA-512(key)), with the vectors of google/fscryptctl's test.py.
TEST(Sha512, FscryptctlDescriptorVectors) {
  struct Vector {
    char fill;
    const char* descriptor;
  };
  for (Vector v : {Vector{'a', "0394a446f8eaa61f"}, Vector{'b', "904a9ca97689ad11"},
                   Vector{'c', "a8134316f6879ed4"}}) {
    const std::string key(64, v.fill);
    const auto once = sha512(as_bytes(key));
    const auto twice = sha512(once);
    EXPECT_EQ(to_hex(ByteSpan(twice).first(8)), v.descriptor);
  }
}

}  // namespace
}  // namespace ecfs::crypto
