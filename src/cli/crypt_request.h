// `ecfs crypt`: the options as typed (CryptArgs) and as validated
// (CryptRequest). The option set and its meaning follow xfstests'
// src/fscrypt-crypt-util.c, the oracle the fscrypt tests compare kernels
// against, so that scripts written for it can use ecfs instead; ecfs adds
// --extent-nonce for per-extent keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "crypto/secret.h"
#include "fscrypt/keysetup.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"

namespace ecfs::cli {

// The command line as typed: every value still a string, so that all
// checking (and every error message) happens in parse_crypt_request.
struct CryptArgs {
  std::vector<std::string> operands;  // [CIPHER] MASTER_KEY_HEX
  bool decrypt = false;
  bool dump_key_identifier = false;
  bool direct_key = false;
  bool iv_ino_lblk_64 = false;
  bool iv_ino_lblk_32 = false;
  std::optional<std::string> kdf;
  std::optional<std::string> mode_num;
  std::optional<std::string> file_nonce;
  std::optional<std::string> extent_nonce;
  std::optional<std::string> fs_uuid;
  std::optional<std::string> inode_number;
  std::optional<std::string> data_unit_size;
  std::optional<std::string> data_unit_index;
  std::optional<std::string> padding;
};

// fscrypt-crypt-util's --kdf values.
enum class Kdf {
  kNone,        // the master key is the key (its first key-size bytes)
  kAes128Ecb,   // v1: AES-128-ECB(key = file nonce, data = master key)
  kHkdfSha512,  // v2: HKDF-SHA512, with the context byte the other options select
};

// How the IV is built (fscrypt-crypt-util's "IV methods"; at most one).
enum class IvMethod { kDefault, kDirectKey, kIvInoLblk64, kIvInoLblk32 };

// A validated request. Move-only (holds the master key).
struct CryptRequest {
  bool dump_key_identifier = false;
  // The cipher; nullptr when dumping the key identifier.
  const fscrypt::ModeInfo* cipher = nullptr;
  crypto::SecretBytes master_key;
  Kdf kdf = Kdf::kNone;
  IvMethod iv_method = IvMethod::kDefault;
  bool decrypt = false;
  // 0 when not given (fscrypt-crypt-util treats 0 as "unset" too).
  uint8_t mode_num = 0;
  std::optional<fscrypt::Nonce> file_nonce;
  std::optional<fscrypt::Nonce> extent_nonce;
  std::optional<fscrypt::FsUuid> fs_uuid;
  // 0 when not given; inode numbers are never 0.
  uint64_t inode_number = 0;
  size_t data_unit_size = kDefaultDataUnitSize;
  uint64_t first_data_unit_index = 0;
  // 0: every data unit, the last one included, is zero-padded to
  // data_unit_size. Else the last partial unit is zero-padded to a multiple of
  // `padding` (at least 16 bytes, at most data_unit_size): filenames.
  size_t padding = 0;

  static constexpr size_t kDefaultDataUnitSize = 4096;
  // Bounds of --data-unit-size. fscrypt's own data units are 512..65536 bytes
  // and filenames use 255; every supported cipher needs at least 16 bytes.
  static constexpr size_t kMinDataUnitSize = 16;
  static constexpr size_t kMaxDataUnitSize = 1 << 20;
};

// Checks `args` and turns them into a request. Every error is EINVAL with a
// message for the user that never repeats the master key. The rules (those
// of fscrypt-crypt-util unless marked "ecfs"):
//  * operands: CIPHER MASTER_KEY_HEX, or only MASTER_KEY_HEX with
//    --dump-key-identifier;
//  * CIPHER: AES-256-XTS, AES-256-CTS-CBC, AES-128-CBC-ESSIV, AES-128-CTS-CBC,
//    Adiantum or AES-256-HCTR2 (any case; the kernel's spellings too);
//  * the master key: hex, at most 64 bytes; at least the cipher's key size
//    with --kdf=none or AES-128-ECB; with HKDF-SHA512 at least 16 bytes and
//    the cipher's security strength (ecfs: the kernel's v2 rule, which admits
//    e.g. 32-byte keys for AES-256-XTS that fscrypt-crypt-util refuses);
//  * --kdf: none (default), AES-128-ECB, HKDF-SHA512;
//  * --dump-key-identifier needs HKDF-SHA512 (ecfs: also when --kdf is not
//    given, since identifiers only exist for HKDF) and a 16..64-byte key;
//  * --direct-key, --iv-ino-lblk-64, --iv-ino-lblk-32: at most one, none with
//    AES-128-ECB; --direct-key needs --file-nonce (its IV holds the nonce) and
//    a cipher with a 32-byte IV (ecfs: the kernel's rule; fscrypt-crypt-util
//    would silently drop half the nonce); with HKDF it needs --mode-num;
//    --iv-ino-lblk-* need --inode-number, and with HKDF --mode-num and
//    --fs-uuid; --iv-ino-lblk-32 needs HKDF (the inode hash key); with
//    either, --inode-number (64) and --data-unit-index must fit in 32 bits;
//  * AES-128-ECB, and HKDF without an IV method or extent nonce, need
//    --file-nonce;
//  * --extent-nonce (ecfs): needs HKDF-SHA512, excludes --file-nonce and the
//    IV methods (extent keys exist only for default v2 policies);
//  * --file-nonce, --extent-nonce, --fs-uuid: 32 hex digits (a UUID may also
//    be written with its four dashes); --mode-num 1..255; --inode-number
//    1..2^64-1; --data-unit-index 0..2^64-1; --data-unit-size 16..1048576;
//    --padding a power of two; numbers are decimal.
Result<CryptRequest> parse_crypt_request(CryptArgs args);

}  // namespace ecfs::cli
