// The work of `ecfs crypt`: derive the key a request describes, then
// encrypt or decrypt a stream data unit by data unit, exactly as
// fscrypt-crypt-util does, with ecfs's fscrypt library doing the crypto.
#pragma once

#include <string>

#include "base/error.h"
#include "cli/crypt_request.h"
#include "crypto/cipher.h"
#include "fscrypt/iv.h"

namespace ecfs::cli {

// The cipher keyed as the request says, and the IV parameters of its first
// data unit. Move-only.
struct PreparedCrypt {
  crypto::CipherPtr cipher;
  fscrypt::IvParams iv_params;
  // IV_INO_LBLK_*: the index in the IV is 32 bits and wraps (the original
  // increments a __le32); otherwise it is 64 bits.
  bool index_is_32_bits = false;
};

// Derives the key (fscrypt-crypt-util `derive_real_key`):
//   --kdf=none         the first key-size bytes of the master key
//   --kdf=AES-128-ECB  the v1 per-file key from --file-nonce
//   --kdf=HKDF-SHA512  HKDF context 3 (--direct-key; info = --mode-num),
//                      4 / 6 (--iv-ino-lblk-64 / -32; info = --mode-num ||
//                      --fs-uuid), 9 (--extent-nonce; info = the nonce),
//                      else 2 (info = --file-nonce)
// --mode-num is used as given, as the original does, so it need not be the
// cipher's own number. REQUIRES: a request from parse_crypt_request without
// --dump-key-identifier.
Result<PreparedCrypt> prepare_crypt(const CryptRequest& request);

// Reads `in_fd` to its end in data units and writes each unit's result to
// `out_fd`. A final partial unit is zero-padded: to the data unit size, or
// with --padding to a multiple of the padding (at least 16 bytes, at most
// the data unit size). Errors: EINVAL when the cipher cannot take a data
// unit (e.g. CBC-ESSIV and a length that is not whole blocks); EIO for read
// and write failures.
Status run_crypt(const CryptRequest& request, int in_fd, int out_fd);

// The v2 master key identifier, as 32 lowercase hex digits
// (HKDF context 1, no info).
Result<std::string> key_identifier_hex(const CryptRequest& request);

}  // namespace ecfs::cli
