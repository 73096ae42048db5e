#pragma once
#include "crypto/cipher.h"

namespace ecfs::crypto {
// AES-XTS (IEEE 1619) on OpenSSL. `key` is 64 bytes (AES-256-XTS, fscrypt
// mode 1) or 32 bytes (AES-128-XTS, for the IEEE vectors). IV: 16 bytes, the
// data unit number little-endian as fscrypt builds it. Messages: 16 bytes to
// 16 MiB (IEEE 1619-2018's 2^20 blocks); a length that is not a multiple of
// 16 uses ciphertext stealing. XTS keys whose halves are equal are rejected
// (EINVAL), as OpenSSL's FIPS provider does.
Result<CipherPtr> make_aes_xts(ByteSpan key);
}  // namespace ecfs::crypto
