#pragma once
#include "crypto/cipher.h"

namespace ecfs::crypto {
// AES-128-CBC-ESSIV (fscrypt mode 5): the 16-byte IV is first encrypted with
// AES-256 keyed by SHA-256(key), then used for AES-128-CBC (the kernel's
// essiv(cbc(aes),sha256)). 16-byte key; messages are whole 16-byte blocks,
// at least one.
Result<CipherPtr> make_aes128_cbc_essiv(ByteSpan key);
}  // namespace ecfs::crypto
