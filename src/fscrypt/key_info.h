// The prepared keys the keyring hands out: FileInfo, the counterpart of the
// kernel's fscrypt_inode_info (fs/crypto/fscrypt_private.h), and ExtentInfo,
// the counterpart of the btrfs series' fscrypt_extent_info (fscrypt-format.md
// §2.2). Both are created only by Keyring, shared by reference count
// (FileInfoPtr / ExtentInfoPtr), immutable, and usable from any thread.
//
// Each holds an active reference on the master key it was derived from. While
// any info of a removed key is alive the key is INCOMPLETELY_REMOVED; the info
// keeps working (it owns its prepared key), and when the last one is released
// the removal finishes by itself (keyring.c
// `fscrypt_put_master_key_activeref`). Releasing the last reference takes
// keyring locks briefly; the keyring never holds a lock while it calls out
// (hooks, derivation), so an info may be released anywhere, on any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "crypto/cipher.h"
#include "crypto/siphash.h"
#include "fscrypt/extent.h"
#include "fscrypt/iv.h"
#include "fscrypt/keysetup.h"
#include "fscrypt/master_key.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"

namespace ecfs::fscrypt {

class Keyring;

// An encrypted inode's key and the facts its IVs need.
class FileInfo {
 public:
  FileInfo(const FileInfo&) = delete;
  FileInfo& operator=(const FileInfo&) = delete;
  ~FileInfo();

  const Context& context() const { return context_; }
  const Policy& policy() const { return context_.policy; }
  const Nonce& nonce() const { return context_.nonce; }
  FileKind kind() const { return kind_; }
  uint64_t inode_number() const { return inode_number_; }
  // Contents mode for regular files, filenames mode otherwise.
  const ModeInfo& mode() const { return *mode_; }
  // The prepared key (ci_enc_key). For DIRECT_KEY and IV_INO_LBLK_* policies
  // it is the master key's per-mode key, the same object for every inode.
  const crypto::Cipher& cipher() const { return *cipher_; }
  bool uses_per_mode_key() const { return uses_per_mode_key_; }
  // IV_INO_LBLK_32 only: the SipHash of the inode number (ci_hashed_ino).
  uint32_t hashed_inode_number() const { return hashed_inode_number_; }
  // Casefolded directories with v2 policies (ci_dirhash_key).
  const std::optional<crypto::SipHashKey>& dirhash_key() const { return dirhash_key_; }
  // How this inode's IVs are formed (crypto.c `fscrypt_generate_iv`).
  IvParams iv_params() const;
  const KeySpecifier& master_key() const { return active_ref_.key().spec(); }

 private:
  friend class Keyring;
  friend class MasterKey;
  FileInfo(ActiveRef ref, Context context, FileKind kind, uint64_t inode_number,
           const ModeInfo* mode, SharedCipher cipher, bool uses_per_mode_key,
           uint32_t hashed_inode_number, std::optional<crypto::SipHashKey> dirhash_key);

  // First, so it is released last: the master key outlives everything here.
  ActiveRef active_ref_;
  const Context context_;
  const FileKind kind_;
  const uint64_t inode_number_;
  const ModeInfo* const mode_;
  const SharedCipher cipher_;
  const bool uses_per_mode_key_;
  const uint32_t hashed_inode_number_;
  std::optional<crypto::SipHashKey> dirhash_key_;
};

// A data extent's key. Two loads of the same extent context while an info
// for it is alive return the same object.
class ExtentInfo {
 public:
  ExtentInfo(const ExtentInfo&) = delete;
  ExtentInfo& operator=(const ExtentInfo&) = delete;
  ~ExtentInfo();

  const ExtentContext& context() const { return context_; }
  const Nonce& nonce() const { return context_.nonce; }
  const ModeInfo& mode() const { return *mode_; }
  const crypto::Cipher& cipher() const { return *cipher_; }
  // Per-extent keys use the default IV scheme with the data unit index
  // counted from the start of the original extent (extent_data_unit_number).
  IvParams iv_params() const { return IvParams::default_scheme(); }
  const KeySpecifier& master_key() const { return active_ref_.key().spec(); }

 private:
  friend class Keyring;
  ExtentInfo(ActiveRef ref, const ExtentContext& context, const ModeInfo* mode,
             SharedCipher cipher);

  ActiveRef active_ref_;
  const ExtentContext context_;
  const ModeInfo* const mode_;
  const SharedCipher cipher_;
};

using FileInfoPtr = std::shared_ptr<const FileInfo>;
using ExtentInfoPtr = std::shared_ptr<const ExtentInfo>;

}  // namespace ecfs::fscrypt
