#pragma once
#include <array>
#include <cstdint>

#include "base/bytes.h"

namespace ecfs::crypto {
std::array<uint8_t, 32> sha256(ByteSpan data);
std::array<uint8_t, 64> sha512(ByteSpan data);
}  // namespace ecfs::crypto
