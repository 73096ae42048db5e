// ChaCha, HChaCha and XChaCha: the stream cipher half of Adiantum.
//
// ChaCha is D. J. Bernstein's "ChaCha, a variant of Salsa20" (2008) in its
// original layout: 4 constant words, 8 key words, a 64-bit block counter in
// words 12-13 and a 64-bit nonce in words 14-15. HChaCha and XChaCha follow
// draft-irtf-cfrg-xchacha (section 2.2: HChaCha is the permutation without
// the final addition, keeping words 0-3 and 12-15). Adiantum uses 12 rounds;
// the round count is a parameter so that the 20-round published vectors can
// check the same code.
//
// Implementations, picked per call: eight blocks at a time with AVX2 (x86-64
// CPUs that have it, checked at run time), four at a time with 16-byte GCC
// vectors (SSE2 / NEON, or scalar code elsewhere), and single blocks; all
// give the same stream.
//
// The 32-byte "IV" of the kernel's xchacha12 skcipher is the 24-byte nonce
// followed by the little-endian 64-bit starting block counter
// (crypto/chacha_generic.c, crypto_xchacha_crypt); xchacha_xor() takes those
// two parts separately.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"

namespace ecfs::crypto {

inline constexpr size_t kChaChaKeySize = 32;
inline constexpr size_t kChaChaBlockSize = 64;
inline constexpr size_t kHChaChaNonceSize = 16;
inline constexpr size_t kXChaChaNonceSize = 24;

// One ChaCha block: the permutation with `rounds` rounds (an even number)
// applied to `state`, added to `state`, serialised little-endian.
std::array<uint8_t, kChaChaBlockSize> chacha_block(const std::array<uint32_t, 16>& state,
                                                   int rounds);

// HChaCha: derives a 32-byte subkey from a 32-byte key and 16-byte nonce.
// REQUIRES: key.size() == 32, nonce.size() == 16, subkey.size() == 32.
void hchacha(ByteSpan key, ByteSpan nonce, int rounds, MutableByteSpan subkey);

// out = in XOR XChaCha keystream(key, nonce) starting at 64-byte block
// `counter`. `in` and `out` have equal sizes and may be the same buffer.
// Stateless and thread-safe. REQUIRES: key.size() == 32, nonce.size() == 24.
void xchacha_xor(int rounds, ByteSpan key, ByteSpan nonce, uint64_t counter, ByteSpan in,
                 MutableByteSpan out);

inline void xchacha12_xor(ByteSpan key, ByteSpan nonce, uint64_t counter, ByteSpan in,
                          MutableByteSpan out) {
  xchacha_xor(12, key, nonce, counter, in, out);
}

}  // namespace ecfs::crypto
