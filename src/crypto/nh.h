// NH and NHPoly1305, the bulk hash of Adiantum.
//
// NH (Black et al., "UMAC: Fast and Secure Message Authentication", 1999)
// in the variant Adiantum specifies (Crowley & Biggers, "Adiantum", section
// 6.3): 32-bit words, pairs taken two words apart, four passes whose keys are
// offset by 16 bytes, over "NH messages" of up to 1024 bytes. NHPoly1305
// hashes each NH output with the Poly1305 core, which gives an
// ε-almost-∆-universal hash over Z/2^128 for equal-length inputs. The exact
// layout (key sizes, zero padding of the last 16-byte unit, one NH output per
// 1024 bytes) follows the kernel's crypto/nhpoly1305.c so that ciphertext is
// bit-exact with adiantum(xchacha12,aes). NH runs with AVX2 (two units per
// step) on x86-64 CPUs that have it, checked at run time, and in portable
// scalar code otherwise; both give the same sums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "crypto/poly1305.h"
#include "crypto/secret.h"

namespace ecfs::crypto {

inline constexpr size_t kNhMessageUnit = 16;     // NH consumes 16-byte units
inline constexpr size_t kNhMessageBytes = 1024;  // one NH output per 1024 bytes
inline constexpr size_t kNhPasses = 4;
inline constexpr size_t kNhHashBytes = 8 * kNhPasses;
// 256 words for one NH message, plus 4 words of offset for each later pass.
inline constexpr size_t kNhKeyBytes = kNhMessageBytes + 16 * (kNhPasses - 1);  // 1072
inline constexpr size_t kNhPoly1305KeyBytes = kPoly1305KeySize + kNhKeyBytes;  // 1088

// NH of one NH message. `key` holds kNhKeyBytes of little-endian 32-bit
// words; `message` is at most kNhMessageBytes and a multiple of 16 bytes.
// Returns the four 64-bit pass sums (serialised little-endian, they are the
// 32-byte NH hash).
std::array<uint64_t, kNhPasses> nh(ByteSpan key, ByteSpan message);

// The same with the portable implementation, whatever the CPU (tests compare
// the two).
std::array<uint64_t, kNhPasses> nh_portable(ByteSpan key, ByteSpan message);

// The NHPoly1305 key: a Poly1305 multiplier followed by the NH key, as the
// kernel's crypto_nhpoly1305_setkey() splits its 1088 bytes. Move-only;
// immutable and shareable between threads once built.
class NhPoly1305Key {
 public:
  // REQUIRES: key.size() == kNhPoly1305KeyBytes.
  explicit NhPoly1305Key(ByteSpan key);

  const Poly1305Key& poly_key() const { return poly_key_; }
  ByteSpan nh_key() const { return nh_key_.span(); }

 private:
  Poly1305Key poly_key_;
  SecretBytes nh_key_;
};

// NHPoly1305 of a message of any length: NH over each 1024-byte piece (the
// last one zero-padded to a multiple of 16 bytes), each 32-byte NH hash
// absorbed as two Poly1305 blocks, then the Poly1305 core value without a
// pad. An empty message hashes to zero.
std::array<uint8_t, 16> nhpoly1305(const NhPoly1305Key& key, ByteSpan message);

}  // namespace ecfs::crypto
