// The fscrypt encryption modes: their numbers, names and sizes, and how a raw
// key of a mode becomes a ready-to-use cipher (a "prepared key", as the
// kernel calls it). Mirrors fs/crypto/keysetup.c `fscrypt_modes[]`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/cipher.h"

namespace ecfs::fscrypt {

// FSCRYPT_MODE_* (include/uapi/linux/fscrypt.h). These numbers are stored in
// every policy and context on disk (contents_encryption_mode,
// filenames_encryption_mode) and are fed into HKDF as `mode_num`, so they can
// never change. 2 and 3 were never used; 7 and 8 were once the removed SPECK
// modes and were reassigned to SM4 before any SPECK data could exist.
inline constexpr uint8_t kModeAes256Xts = 1;
inline constexpr uint8_t kModeAes256Cts = 4;
inline constexpr uint8_t kModeAes128Cbc = 5;  // CBC-ESSIV
inline constexpr uint8_t kModeAes128Cts = 6;
inline constexpr uint8_t kModeSm4Xts = 7;
inline constexpr uint8_t kModeSm4Cts = 8;
inline constexpr uint8_t kModeAdiantum = 9;
inline constexpr uint8_t kModeAes256Hctr2 = 10;
inline constexpr uint8_t kModeMax = kModeAes256Hctr2;  // FSCRYPT_MODE_MAX

// One row of the mode table. Immutable; the table lives for the program.
struct ModeInfo {
  uint8_t number;
  // As xfstests' fscrypt-crypt-util spells it ("AES-256-XTS", "Adiantum").
  std::string_view name;
  // As the kernel's friendly_name spells it, when it differs
  // ("AES-256-CBC-CTS"); accepted by mode_by_name too.
  std::string_view kernel_name;
  // The Linux crypto API algorithm ("xts(aes)"), for messages and docs.
  std::string_view crypto_api_name;
  size_t key_size;           // bytes of key the cipher takes
  size_t security_strength;  // bytes; the minimum v2 master key size
  size_t iv_size;            // bytes of IV (16, or 32 for wide-block modes)
};

// Every supported mode, ordered by number.
std::span<const ModeInfo> all_modes();

// The table row for `number`, or nullptr for an unknown number.
const ModeInfo* find_mode(uint8_t number);

// As find_mode, but EINVAL ("unknown encryption mode N") for unknown numbers.
Result<const ModeInfo*> mode_by_number(uint8_t number);

// Looks a mode up by name, case-insensitively: the fscrypt-crypt-util
// spelling or the kernel's. EINVAL for unknown names.
Result<const ModeInfo*> mode_by_name(std::string_view name);

// Makes the cipher for `mode` keyed with `raw_key` (exactly mode.key_size
// bytes, else EINVAL). SM4 modes give EOPNOTSUPP where OpenSSL lacks SM4-XTS,
// and SM4-CTS-CBC (mode 8) is always EOPNOTSUPP: ecfs has no SM4 CBC-CTS.
// XTS keys whose two halves are equal are EINVAL, as in the kernel, which
// sets CRYPTO_TFM_REQ_FORBID_WEAK_KEYS (keysetup.c
// `fscrypt_allocate_skcipher`, crypto/xts.h `xts_verify_key`). Note that the
// v1 KDF maps a master key of repeated 16-byte blocks to such a key.
Result<crypto::CipherPtr> prepare_key(const ModeInfo& mode, ByteSpan raw_key);
Result<crypto::CipherPtr> prepare_key(uint8_t mode_number, ByteSpan raw_key);

}  // namespace ecfs::fscrypt
