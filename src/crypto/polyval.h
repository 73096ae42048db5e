// POLYVAL, the GF(2^128) universal hash of HCTR2 (RFC 8452 section 3).
//
// Field elements are 16-byte little-endian strings: bit i of the 128-bit
// integer is the coefficient of x^i, and the field is GF(2)[x] modulo
// x^128 + x^127 + x^126 + x^121 + 1. The product used by POLYVAL is
// dot(a, b) = a * b * x^-128, and POLYVAL(H, X_1..X_s) folds
// S_j = dot(S_{j-1} + X_j, H) from S_0 = 0.
//
// Two implementations give identical results: a portable constant-time one
// (carry-less multiplication from integer multiplications with "holes", no
// tables indexed by secret data) and, on x86-64 CPUs that have it, one built
// on PCLMULQDQ that hashes eight blocks per reduction. The choice is made
// once at run time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace ecfs::crypto {

inline constexpr size_t kPolyvalBlockSize = 16;

// The hash key H and its powers H^2..H^8 (under dot) for the aggregated
// path. Key material: kept in SecretBytes, move-only, immutable after
// construction and shareable between threads.
class PolyvalKey {
 public:
  static constexpr size_t kPowers = 8;

  // REQUIRES: h.size() == kPolyvalBlockSize.
  explicit PolyvalKey(ByteSpan h);

  // H^(i+1) as 16 bytes, i < kPowers.
  const uint8_t* power(size_t i) const { return powers_.data() + kPolyvalBlockSize * i; }

 private:
  SecretBytes powers_;
};

// A POLYVAL accumulator. A small value type: copying it saves a prefix's
// hash so that several messages can continue from it (HCTR2 hashes the tweak
// once and continues twice).
class PolyvalState {
 public:
  // Absorbs whole blocks with the fastest implementation this CPU has.
  // REQUIRES: blocks.size() is a multiple of kPolyvalBlockSize.
  void absorb_blocks(const PolyvalKey& key, ByteSpan blocks);

  // The same with the portable implementation, whatever the CPU (tests
  // compare the two).
  void absorb_blocks_portable(const PolyvalKey& key, ByteSpan blocks);

  std::array<uint8_t, kPolyvalBlockSize> digest() const;

 private:
  uint64_t lo_ = 0;  // bytes 0..7 of S, little-endian
  uint64_t hi_ = 0;  // bytes 8..15
};

// dot(a, b) = a * b * x^-128 in POLYVAL's field (RFC 8452 section 3).
// REQUIRES: a.size() == b.size() == kPolyvalBlockSize.
std::array<uint8_t, kPolyvalBlockSize> polyval_dot(ByteSpan a, ByteSpan b);

// True when absorb_blocks() uses the PCLMULQDQ implementation.
bool polyval_uses_pclmul();

}  // namespace ecfs::crypto
