#pragma once
#include "crypto/cipher.h"

namespace ecfs::crypto {
// HCTR2 (Crowley, Huckleberry, Biggers, "Length-preserving encryption with
// HCTR2", 2021) with AES-256, as the kernel's hctr2(aes) (fscrypt mode 10).
// 32-byte key, 32-byte tweak (iv_size() == 32), messages of at least 16 bytes.
Result<CipherPtr> make_aes256_hctr2(ByteSpan key);
}  // namespace ecfs::crypto
