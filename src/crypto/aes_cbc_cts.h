#pragma once
#include "crypto/cipher.h"

namespace ecfs::crypto {
// AES-CBC with ciphertext stealing, variant CS3 (the kernel's cts(cbc(aes)):
// the last two blocks are always swapped; a single block is plain CBC).
// 16-byte key (AES-128-CTS-CBC, mode 6) or 32-byte key (AES-256-CTS-CBC,
// mode 4); 16-byte IV; messages of at least 16 bytes.
Result<CipherPtr> make_aes_cbc_cts(ByteSpan key);
}  // namespace ecfs::crypto
