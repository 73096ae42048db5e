// Poly1305 arithmetic: evaluation of a message as a polynomial over
// GF(2^130 - 5), as in D. J. Bernstein, "The Poly1305-AES message-
// authentication code" (2005) and RFC 8439 section 2.5.
//
// Adiantum does not use the Poly1305 MAC. It uses the bare polynomial
// evaluation (no one-time pad "s" added), which is an ε-almost-∆-universal
// hash over Z/2^128 (Crowley & Biggers, "Adiantum", section 6.4; the kernel's
// poly1305_core_blocks / poly1305_core_emit with a NULL nonce). This file
// offers exactly that core, plus the full RFC 8439 MAC so that the core can be
// checked against the RFC's published vectors.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace ecfs::crypto {

inline constexpr size_t kPoly1305BlockSize = 16;
inline constexpr size_t kPoly1305KeySize = 16;  // the "r" half only

// The multiplier r, clamped as RFC 8439 section 2.5.1 requires. Holds key
// material (in SecretBytes); move-only. Immutable once built, so one key may
// be shared by any number of threads.
class Poly1305Key {
 public:
  // REQUIRES: r_bytes.size() == kPoly1305KeySize. Clamps a copy.
  explicit Poly1305Key(ByteSpan r_bytes);

  uint64_t r0() const;  // bits 0..63 of the clamped r
  uint64_t r1() const;  // bits 64..127 of the clamped r (a multiple of 4)

 private:
  SecretBytes r_;  // 16 bytes, little-endian clamped r
};

// The accumulator h of one polynomial evaluation. Plain value type; one
// evaluation per state, not shared between threads.
class Poly1305State {
 public:
  // Absorbs whole 16-byte blocks, each with 2^128 added (the "1" byte after a
  // full block, RFC 8439 section 2.5.1): h = (h + block + 2^128) * r.
  // REQUIRES: data.size() is a multiple of kPoly1305BlockSize.
  void absorb_blocks(const Poly1305Key& key, ByteSpan data);

  // Absorbs one final partial block of 1..15 bytes, padded with a single 1
  // byte and zeros and without the 2^128 term (RFC 8439 section 2.5.1).
  void absorb_partial_block(const Poly1305Key& key, ByteSpan data);

  // h fully reduced mod 2^130 - 5, truncated to 128 bits, little-endian.
  // This is the kernel's poly1305_core_emit(state, NULL, out).
  std::array<uint8_t, 16> emit() const;

  // h mod 2^130 - 5, plus the 128-bit one-time pad s, mod 2^128: the RFC 8439
  // tag.
  std::array<uint8_t, 16> emit_with_pad(ByteSpan s) const;

 private:
  void absorb(const Poly1305Key& key, uint64_t m0, uint64_t m1, uint64_t hibit);

  uint64_t h0_ = 0, h1_ = 0, h2_ = 0;
};

// The RFC 8439 Poly1305 MAC with a 32-byte one-time key (r || s).
// REQUIRES: key.size() == 32.
std::array<uint8_t, 16> poly1305_mac(ByteSpan key, ByteSpan message);

}  // namespace ecfs::crypto
