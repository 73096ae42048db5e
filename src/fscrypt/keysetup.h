// Key setup (fs/crypto/keysetup.c, keysetup_v1.c): which key an encrypted
// inode uses, derived from its master key by the rule its policy selects.
//
//   v1, no flag       AES-128-ECB(key = nonce, data = master key) (keysetup_v1.cc)
//   v1, DIRECT_KEY    the master key itself
//   v2, no flag       HKDF ctx 2 (PER_FILE_ENC_KEY), info = file nonce
//   v2, DIRECT_KEY    HKDF ctx 3, info = mode number (one key per mode)
//   v2, IV_INO_LBLK_64  HKDF ctx 4, info = mode number || fs UUID
//   v2, IV_INO_LBLK_32  HKDF ctx 6, info = mode number || fs UUID; plus the
//                     inode-hash SipHash key (ctx 7) and the hashed inode number
//   directories needing one: dirhash SipHash key, HKDF ctx 5, info = dir nonce
//
// Every derived key is `mode.key_size` bytes, where the mode is the contents
// mode for regular files and the filenames mode for directories and symlinks.
// Nothing here caches: sharing per-mode keys between inodes is the keyring's
// business. All functions are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/cipher.h"
#include "crypto/secret.h"
#include "crypto/siphash.h"
#include "fscrypt/hkdf.h"
#include "fscrypt/iv.h"
#include "fscrypt/master_key_secret.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"

namespace ecfs::fscrypt {

// The filesystem UUID (super_block s_uuid) mixed into IV_INO_LBLK_* keys.
using FsUuid = std::array<uint8_t, 16>;

// The kinds of inode fscrypt encrypts. Special files are never encrypted.
enum class FileKind { kRegular, kDirectory, kSymlink };

// keysetup.c `select_encryption_mode`: contents mode for regular files,
// filenames mode for directories and symlinks. EINVAL for an unknown mode.
Result<const ModeInfo*> select_encryption_mode(const Policy& policy, FileKind kind);

// keysetup.c `fscrypt_valid_master_key_size`: a v1 master key must be at
// least mode.key_size bytes (the v1 KDF encrypts that many bytes of it); a v2
// master key at least mode.security_strength. ENOKEY otherwise, as the kernel
// gives when it finds the key but cannot use it.
Status check_master_key_size(uint8_t policy_version, const ModeInfo& mode, size_t master_key_size);

// What the high-level setup needs besides the master key and the context.
struct FileKeyParams {
  FileKind kind = FileKind::kRegular;
  // For IV_INO_LBLK_32: the inode number to hash.
  uint64_t inode_number = 0;
  // For IV_INO_LBLK_64/32 keys.
  FsUuid fs_uuid{};
  // Derive the dirhash key (the kernel does for casefolded directories).
  bool need_dirhash_key = false;
};

// An inode's keys (the key parts of the kernel's fscrypt_inode_info).
// Move-only; holds key material.
struct FileKey {
  const ModeInfo* mode = nullptr;
  crypto::SecretBytes raw_key;  // mode->key_size bytes
  crypto::CipherPtr cipher;     // raw_key prepared for `mode`
  // IV_INO_LBLK_32 only: hash_inode_number(inode hash key, inode number).
  uint32_t hashed_ino = 0;
  // When FileKeyParams::need_dirhash_key and the policy is v2.
  std::optional<crypto::SipHashKey> dirhash_key;
};

// The raw key of the inode with `context`: picks the rule from the policy
// version and flags (above). Errors: EINVAL for an unknown mode or a v1
// DIRECT_KEY policy whose mode cannot take it; ENOKEY for a master key too
// short for the mode (check_master_key_size). Does not run
// check_policy_supported: callers validate the policy against the filesystem.
Result<crypto::SecretBytes> derive_file_key(const MasterKeySecret& master_key,
                                            const Context& context, const FileKeyParams& params);

// derive_file_key, then prepare_key, plus the hashed inode number and the
// dirhash key when they apply (keysetup.c `fscrypt_setup_v{1,2}_file_key`).
// Also EOPNOTSUPP where prepare_key gives it, and EINVAL when a dirhash key is
// asked for a v1 policy.
Result<FileKey> setup_file_key(const MasterKeySecret& master_key, const Context& context,
                               const FileKeyParams& params);

// How the IVs of the inode with `context` are formed, from the scheme its
// policy's flags select (crypto.c `fscrypt_generate_iv`): the nonce for
// DIRECT_KEY, the inode number for IV_INO_LBLK_64, the hashed inode number
// (FileKey::hashed_ino) for IV_INO_LBLK_32, else the data unit index alone.
IvParams inode_iv_params(const Context& context, uint64_t inode_number, uint32_t hashed_ino);

// --- The individual rules, for tests and `ecfs crypt` ---

// v1 KDF (keysetup_v1.c `derive_key_aes`): AES-128-ECB with the 16-byte nonce
// as key over the first mode.key_size bytes of the master key. ENOKEY if the
// master key is shorter than mode.key_size.
Result<crypto::SecretBytes> derive_v1_file_key(ByteSpan master_key, const Nonce& nonce,
                                               const ModeInfo& mode);
// v1 DIRECT_KEY (keysetup_v1.c `setup_v1_file_key_direct`): the first
// mode.key_size bytes of the master key. ENOKEY if it is shorter; EINVAL if
// mode.iv_size < 24 (the nonce must fit in the IV).
Result<crypto::SecretBytes> derive_v1_direct_key(ByteSpan master_key, const ModeInfo& mode);

// v2 per-file key: HKDF ctx 2, info = nonce.
Result<crypto::SecretBytes> derive_per_file_key(const FscryptHkdf& hkdf, const Nonce& nonce,
                                                const ModeInfo& mode);
// v2 DIRECT_KEY per-mode key: HKDF ctx 3, info = mode number.
Result<crypto::SecretBytes> derive_direct_key(const FscryptHkdf& hkdf, const ModeInfo& mode);
// IV_INO_LBLK_64 per-mode key: HKDF ctx 4, info = mode number || fs UUID.
Result<crypto::SecretBytes> derive_iv_ino_lblk_64_key(const FscryptHkdf& hkdf, const ModeInfo& mode,
                                                      const FsUuid& uuid);
// IV_INO_LBLK_32 per-mode key: HKDF ctx 6, info = mode number || fs UUID.
Result<crypto::SecretBytes> derive_iv_ino_lblk_32_key(const FscryptHkdf& hkdf, const ModeInfo& mode,
                                                      const FsUuid& uuid);
// The per-master-key SipHash key for inode numbers: HKDF ctx 7, no info,
// 16 bytes read as two little-endian u64 (`fscrypt_derive_siphash_key`).
Result<crypto::SipHashKey> derive_inode_hash_key(const FscryptHkdf& hkdf);
// The per-directory SipHash key for casefolded names: HKDF ctx 5, info =
// the directory's nonce.
Result<crypto::SipHashKey> derive_dirhash_key(const FscryptHkdf& hkdf, const Nonce& dir_nonce);
// keysetup.c `fscrypt_hash_inode_number`: the low 32 bits of
// SipHash-2-4(key, le64(inode_number)).
uint32_t hash_inode_number(const crypto::SipHashKey& inode_hash_key, uint64_t inode_number);

}  // namespace ecfs::fscrypt
