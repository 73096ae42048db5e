// Little-endian loads and stores of 32- and 64-bit words at any alignment,
// for the inner loops of the crypto primitives. base/bytes.h's byte-at-a-time
// helpers are not fused into single loads by GCC 12 at -O2; memcpy is, and
// the byte swap vanishes on little-endian machines.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace ecfs::crypto {

inline uint32_t load32_le(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}

inline uint64_t load64_le(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

inline void store32_le(uint8_t* p, uint32_t v) {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  std::memcpy(p, &v, sizeof(v));
}

inline void store64_le(uint8_t* p, uint64_t v) {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  std::memcpy(p, &v, sizeof(v));
}

}  // namespace ecfs::crypto
