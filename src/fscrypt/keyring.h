// The filesystem-level keyring (fs/crypto/keyring.c, keysetup.c): the master
// keys added to one filesystem, the four key-management ioctls of
// Documentation/filesystems/fscrypt.rst "User API", and the setup of the
// prepared keys (file infos, extent infos) derived from those keys.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "base/bytes.h"
#include "base/error.h"
#include "fscrypt/extent.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/key_info.h"
#include "fscrypt/keysetup.h"
#include "fscrypt/policy.h"

namespace ecfs::fscrypt {

// Who is asking: the request's fsuid, and whether it holds the capability the
// kernel checks (CAP_SYS_ADMIN for v1 keys and all-users removal, CAP_FOWNER
// for using a v2 key one has not added).
struct Caller {
  uint32_t uid = 0;
  bool is_privileged = false;
};

// FSCRYPT_KEY_REMOVAL_STATUS_FLAG_* (uapi): FS_IOC_REMOVE_ENCRYPTION_KEY's
// removal_status_flags output. Part of the ioctl ABI, so fixed.
inline constexpr uint32_t kKeyRemovalStatusFlagFilesBusy = 0x1;
inline constexpr uint32_t kKeyRemovalStatusFlagOtherUsers = 0x2;

// FSCRYPT_KEY_STATUS_* and FSCRYPT_KEY_STATUS_FLAG_* (uapi), ABI values.
enum class KeyStatus : uint32_t {
  kAbsent = 1,
  kPresent = 2,
  kIncompletelyRemoved = 3,
};
inline constexpr uint32_t kKeyStatusFlagAddedBySelf = 0x1;

// FS_IOC_GET_ENCRYPTION_KEY_STATUS's outputs.
struct KeyStatusReport {
  KeyStatus status = KeyStatus::kAbsent;
  uint32_t status_flags = 0;  // kKeyStatusFlagAddedBySelf (present v2 keys)
  uint32_t user_count = 0;    // claims on a present v2 key
};

// What the owner of cached infos (the filesystem) does when a key is removed.
// Every hook is optional, is called with no keyring lock held, may call back
// into the keyring, and may run on several threads at once (concurrent
// removals of different keys).
struct KeyRemovalHooks {
  // Writes back dirty data before the key stops being usable (the series'
  // do_remove_key syncs the filesystem first; keyring.c
  // `try_to_lock_encrypted_files`). Called only when infos of the key are
  // alive. An error does not stop the removal; it is returned to the remover,
  // as the kernel returns sync_filesystem's error.
  std::function<Status(const KeySpecifier& key)> sync;
  // Offered each live file info of a removed key, so the owner can drop the
  // ones it caches for inodes no one has open (the kernel evicts those
  // inodes: `evict_dentries_for_decrypted_inodes`).
  std::function<void(const FileInfoPtr& info)> evict_file_info;
  // Offered each live extent info of a removed key, so the owner can drop its
  // cached references (the series' `fscrypt_operations.forget_extent_info`).
  std::function<void(const ExtentInfoPtr& info)> forget_extent_info;
};

struct KeyringOptions {
  // The filesystem UUID (s_uuid), mixed into IV_INO_LBLK_64/32 keys.
  FsUuid fs_uuid{};
  // Extent infos the keyring itself keeps alive per master key after their
  // last user lets go, so a reload does not derive again. 0 disables.
  size_t extent_cache_capacity = 64;
};

// Derivations performed so far (for tests and diagnostics). Cache hits do not
// count; a lost race between two first loads of the same extent counts twice.
struct KeyringStats {
  uint64_t file_keys = 0;        // per-file keys (v1 KDF, HKDF context 2)
  uint64_t mode_keys = 0;        // per-mode keys (v1/v2 DIRECT_KEY, IV_INO_LBLK_*)
  uint64_t inode_hash_keys = 0;  // HKDF context 7
  uint64_t dirhash_keys = 0;     // HKDF context 5
  uint64_t extent_keys = 0;      // per-extent keys
};

// One filesystem's keyring.
//
// Key states follow the kernel. PRESENT: usable. INCOMPLETELY_REMOVED: the
// last claim was removed but infos derived from the key are still alive;
// new setups fail with ENOKEY, live infos keep working, the secret is kept
// (the extent series keeps mk_secret so writeback can derive extent keys
// for files still open). ABSENT: when the last such info is released the
// removal finishes by itself and the secret is wiped. Removing again
// retries the eviction; adding the key again makes it PRESENT again.
//
// Thread-safety: every method may be called from many threads at once.
// Locks, in the order they may be taken (never the reverse):
//   1. the key table's mutex (find, add, finishing a removal);
//   2. a master key's mode_key_setup_mutex (per-mode and inode-hash key
//      derivation, so each is derived once);
//   3. a master key's mutex (its state, claims, caches, info registries).
// (1) and (2) are never held together. Only per-mode and inode-hash key
// derivations run under a lock: (2), which only other first setups of the
// same master key's per-mode keys wait for (so each is derived once).
// Per-file and per-extent derivations and HKDF-Extract run with no lock
// held, as do the hooks. hooks_mutex_ is a leaf, taken alone. No info or
// prepared key is ever destroyed under a lock (an info's destructor takes 3,
// then possibly 1).
//
// The Keyring may be destroyed while infos are alive: they keep their master
// keys (and so their prepared keys) until released.
class Keyring {
 public:
  explicit Keyring(KeyringOptions options = {});
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;
  ~Keyring();

  void set_removal_hooks(KeyRemovalHooks hooks);

  // --- FS_IOC_ADD_ENCRYPTION_KEY ---

  // Adds a key for v1 policies under `descriptor`. EACCES unless privileged;
  // EINVAL unless 16..64 bytes. Adding a descriptor that is present does
  // nothing (the kernel keeps the first secret); adding one that is
  // incompletely removed makes it present again with this secret.
  Status add_v1_key(const Caller& caller, const KeyDescriptor& descriptor, ByteSpan raw_key);
  // Adds a key for v2 policies and returns its identifier (HKDF context 1).
  // Unprivileged. EINVAL unless 16..64 bytes. Re-adding adds the caller's
  // claim; re-adding an incompletely removed key makes it present again.
  Result<KeyIdentifier> add_v2_key(const Caller& caller, ByteSpan raw_key);

  // --- FS_IOC_REMOVE_ENCRYPTION_KEY[_ALL_USERS] ---

  // Removes the caller's claim (v2), then the key itself when no claims
  // remain. Returns the removal status flags: OTHER_USERS if others still
  // claim it (the key stays), FILES_BUSY if infos derived from it are still
  // alive after syncing and evicting (the key is INCOMPLETELY_REMOVED; call
  // again later to retry). EACCES for a v1 key unless privileged; ENOKEY if
  // the key is absent or the caller has no claim on it.
  Result<uint32_t> remove_key(const Caller& caller, const KeySpecifier& key);
  // As remove_key, removing every user's claim. EACCES unless privileged.
  Result<uint32_t> remove_key_all_users(const Caller& caller, const KeySpecifier& key);

  // --- FS_IOC_GET_ENCRYPTION_KEY_STATUS ---

  // ABSENT, PRESENT (with ADDED_BY_SELF and the user count for v2 keys) or
  // INCOMPLETELY_REMOVED. Unprivileged.
  KeyStatusReport key_status(const Caller& caller, const KeySpecifier& key) const;

  // `fscrypt_verify_key_added` (FS_IOC_SET_ENCRYPTION_POLICY with a v2
  // policy): OK if the caller has added the key or is privileged; ENOKEY
  // otherwise.
  Status check_key_added(const Caller& caller, const KeyIdentifier& identifier) const;

  // --- Key setup ---

  // Sets up the key of an inode with `context` (keysetup.c
  // `fscrypt_setup_encryption_info`): per-file key, or the master key's cached
  // per-mode key; the hashed inode number for IV_INO_LBLK_32; the dirhash
  // key if `need_dirhash_key` (v2 only, else EINVAL). ENOKEY if the master
  // key is absent or being removed, or too short for the mode; EINVAL for an
  // unknown mode. REQUIRES: the policy was checked against the filesystem
  // (check_policy_supported).
  Result<FileInfoPtr> setup_file_info(const Context& context, FileKind kind, uint64_t inode_number,
                                      bool need_dirhash_key = false);

  // The info of an existing extent of an inode with `inode_policy` (the
  // series' `fscrypt_load_extent_info`): EINVAL unless the policy allows
  // extent encryption and the extent's mode and master key identifier are the
  // policy's; ENOKEY if the master key is absent or being removed.
  Result<ExtentInfoPtr> load_extent_info(const ExtentContext& context, const Policy& inode_policy);
  // The same, for an inode whose key is set up: works while that key is
  // incompletely removed, since `inode` keeps it (the series derives extent
  // keys for open files at writeout time).
  Result<ExtentInfoPtr> load_extent_info(const ExtentContext& context, const FileInfo& inode);
  // A new extent for `inode`, with a fresh random nonce (the series'
  // `fscrypt_prepare_new_extent`); its context is info->context(). EINVAL if
  // the policy does not allow extent encryption; EIO if the CSPRNG fails.
  Result<ExtentInfoPtr> new_extent_info(const FileInfo& inode);

  KeyringStats stats() const;

 private:
  Result<uint32_t> do_remove_key(const Caller& caller, const KeySpecifier& key, bool all_users);
  Result<ExtentInfoPtr> load_extent_info_from(const std::shared_ptr<MasterKey>& key,
                                              const ExtentContext& context, bool require_present);
  std::shared_ptr<const KeyRemovalHooks> hooks() const;

  const KeyringOptions options_;
  const std::shared_ptr<KeyTable> table_;

  mutable std::mutex hooks_mutex_;
  std::shared_ptr<const KeyRemovalHooks> hooks_;

  std::atomic<uint64_t> file_key_derivations_{0};
  std::atomic<uint64_t> mode_key_derivations_{0};
  std::atomic<uint64_t> inode_hash_key_derivations_{0};
  std::atomic<uint64_t> dirhash_key_derivations_{0};
  std::atomic<uint64_t> extent_key_derivations_{0};
};

}  // namespace ecfs::fscrypt
