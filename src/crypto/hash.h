#pragma once
#include <array>
#include <cstdint>

#include "base/bytes.h"

namespace ecfs::crypto {
// SHA-256 / SHA-512 (FIPS 180-4) through OpenSSL. They cannot fail short of
// OpenSSL being unable to allocate or lacking SHA-2; they abort then rather
// than return a wrong digest.
std::array<uint8_t, 32> sha256(ByteSpan data);
std::array<uint8_t, 64> sha512(ByteSpan data);
}  // namespace ecfs::crypto
