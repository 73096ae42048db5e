#pragma once
#include <cstdint>

#include "base/bytes.h"

namespace ecfs::crypto {
// SipHash-2-4 (Aumasson & Bernstein, 2012). The key is two 64-bit words; a
// 16-byte key string maps to them little-endian (k0 = bytes 0..7), as the
// kernel's fscrypt_derive_siphash_key. from_bytes REQUIRES exactly 16 bytes
// and aborts otherwise (a programming error). Constant-time; thread-safe.
struct SipHashKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
  static SipHashKey from_bytes(ByteSpan key16);
};
uint64_t siphash_2_4(const SipHashKey& key, ByteSpan message);
}  // namespace ecfs::crypto
