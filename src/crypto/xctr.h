// XCTR, the counter mode inside HCTR2 (Crowley, Huckleberry, Biggers,
// "Length-preserving encryption with HCTR2", 2021, section 3): keystream
// block i, counting from 1, is E_K(IV XOR bin_128(i)) with the counter
// little-endian. XORing (rather than adding) the counter into the IV avoids
// carries across the IV, which the paper's proof relies on; it matches the
// kernel's xctr(aes) (crypto/xctr.c) for messages below 2^32 blocks, where
// the kernel's 32-bit counter and this 64-bit one agree.
#pragma once

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/aes_block_cipher.h"

namespace ecfs::crypto {

inline constexpr size_t kXctrIvSize = 16;

// out = in XOR XCTR keystream(aes, iv), any length (a final partial block
// uses a prefix of its keystream block). `in` and `out` have equal sizes and
// are the same buffer or disjoint. Thread-safe. EINVAL for a wrong IV or
// output size; EIO / ENOMEM from OpenSSL.
Status xctr_xor(const Aes256BlockCipher& aes, ByteSpan iv, ByteSpan in, MutableByteSpan out);

}  // namespace ecfs::crypto
