#pragma once
#include "crypto/cipher.h"

namespace ecfs::crypto {
// SM4-XTS (fscrypt mode 7), 32-byte key, 16-byte IV. EOPNOTSUPP with a
// clear message when the OpenSSL here does not offer it (it arrived in 3.2).
Result<CipherPtr> make_sm4_xts(ByteSpan key);
}  // namespace ecfs::crypto
