#pragma once
#include "crypto/cipher.h"

namespace ecfs::crypto {
// Adiantum (Crowley & Biggers, "Adiantum: length-preserving encryption for
// entry-level processors", 2018) with XChaCha12 and AES-256, as the kernel's
// adiantum(xchacha12,aes) (fscrypt mode 9). 32-byte key, 32-byte tweak
// (iv_size() == 32), messages of at least 16 bytes.
Result<CipherPtr> make_adiantum(ByteSpan key);
}  // namespace ecfs::crypto
