#pragma once
#include "crypto/cipher.h"

namespace ecfs::crypto {
// SM4-XTS (fscrypt mode 7), 32-byte key, 16-byte IV, with IEEE 1619 tweak
// arithmetic like the kernel's xts(sm4) (not OpenSSL's default GB/T
// 17964-2021 variant). EOPNOTSUPP, "SM4-XTS is not supported by this OpenSSL
// (needs 3.2)", when the OpenSSL in use lacks it; probed at run time, so a
// newer OpenSSL works without a rebuild. Equal key halves: EINVAL.
Result<CipherPtr> make_sm4_xts(ByteSpan key);
}  // namespace ecfs::crypto
