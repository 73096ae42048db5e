#pragma once
#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::crypto {
// AES-128-ECB encryption of whole blocks; fscrypt v1's key derivation
// (key = nonce, data = master key). `in` and `out` have equal size, a
// multiple of 16.
Status aes128_ecb_encrypt(ByteSpan key, ByteSpan in, MutableByteSpan out);
}  // namespace ecfs::crypto
