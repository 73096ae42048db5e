#pragma once
#include "crypto/cipher.h"

namespace ecfs::crypto {
// AES-XTS (IEEE 1619) on OpenSSL. `key` is 64 bytes (AES-256-XTS, fscrypt
// mode 1) or 32 bytes (AES-128-XTS, for the IEEE vectors). IV: 16 bytes.
// XTS keys whose halves are equal are rejected (EINVAL), as OpenSSL does.
Result<CipherPtr> make_aes_xts(ByteSpan key);
}  // namespace ecfs::crypto
