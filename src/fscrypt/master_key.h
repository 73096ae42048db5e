// A master key in a filesystem's keyring and everything that hangs off it, as
// the kernel's `struct fscrypt_master_key` (fs/crypto/fscrypt_private.h,
// keyring.c): the secret, the users' claims, the state
// PRESENT -> INCOMPLETELY_REMOVED -> ABSENT, the count of live infos (the
// kernel's mk_active_refs minus the one mk_present holds), the per-mode
// prepared keys, the inode-hash key, and the registries of file and extent
// infos (mk_decrypted_inodes).
//
// Internal to the keyring: Keyring, FileInfo and ExtentInfo use these types;
// filesystem code uses keyring.h and key_info.h only.
//
// Locking. Each MasterKey has two mutexes:
//   mode_key_setup_mutex_  serializes derivation of per-mode and inode-hash
//                          keys (keysetup.c `fscrypt_mode_key_setup_mutex`),
//                          so each is derived once; held while deriving.
//   mutex_                 guards every other field; held only for short
//                          bookkeeping, never while deriving or calling out.
// The keyring's KeyTable has its own mutex. Lock order:
//   KeyTable::mutex_ -> MasterKey::mutex_, and
//   MasterKey::mode_key_setup_mutex_ -> MasterKey::mutex_.
// Infos and prepared keys are never destroyed under any of these locks: an
// info's destructor takes mutex_ and may take KeyTable::mutex_, so every
// function here moves doomed references into locals that die after unlock.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "crypto/cipher.h"
#include "crypto/siphash.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/master_key_secret.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"

namespace ecfs::fscrypt {

class ExtentInfo;
class FileInfo;
class KeyTable;
class MasterKey;
struct KeyRemovalHooks;

using SharedCipher = std::shared_ptr<const crypto::Cipher>;

// One active reference on a master key, owned by a live info or by a setup
// in progress (the kernel's mk_active_refs). While any exist, a removed key
// stays INCOMPLETELY_REMOVED and keeps its secret (the extent series keeps
// mk_secret so writeback can still derive extent keys). Move-only.
// REQUIRES: destroyed with no MasterKey or KeyTable lock held.
class ActiveRef {
 public:
  ActiveRef() = default;
  ActiveRef(ActiveRef&& other) noexcept = default;
  ActiveRef& operator=(ActiveRef&& other) noexcept;
  ActiveRef(const ActiveRef&) = delete;
  ActiveRef& operator=(const ActiveRef&) = delete;
  ~ActiveRef();

  MasterKey& key() const { return *key_; }
  const std::shared_ptr<MasterKey>& key_ptr() const { return key_; }

 private:
  friend class MasterKey;
  explicit ActiveRef(std::shared_ptr<MasterKey> key) : key_(std::move(key)) {}
  std::shared_ptr<MasterKey> key_;
};

// The three per-mode key tables of a master key (mk_direct_keys,
// mk_iv_ino_lblk_64_keys, mk_iv_ino_lblk_32_keys), each indexed by mode
// number. The keyring serves one filesystem, so the fs UUID mixed into the
// IV_INO_LBLK_* keys is the same for every entry.
enum class ModeKeyKind : uint8_t { kDirectKey = 0, kIvInoLblk64 = 1, kIvInoLblk32 = 2 };

// Names an extent info within its master key: the extent's mode and nonce.
struct ExtentInfoKey {
  uint8_t contents_mode = 0;
  Nonce nonce{};
  friend auto operator<=>(const ExtentInfoKey&, const ExtentInfoKey&) = default;
  friend bool operator==(const ExtentInfoKey&, const ExtentInfoKey&) = default;
};

// What a setup needs from its master key, taken under the key's lock: an
// active reference (so removal cannot finish underneath it) and the secret
// (shared, so derivation runs outside the lock).
struct KeyReservation {
  ActiveRef ref;
  std::shared_ptr<const MasterKeySecret> secret;
};

// Status of a key as FS_IOC_GET_ENCRYPTION_KEY_STATUS reports it.
struct MasterKeyStatus {
  bool present = false;          // else incompletely removed
  bool added_by_caller = false;  // v2 only
  uint32_t user_count = 0;       // v2 only
};

class MasterKey : public std::enable_shared_from_this<MasterKey> {
 public:
  MasterKey(KeySpecifier spec, std::shared_ptr<const MasterKeySecret> secret,
            std::weak_ptr<KeyTable> table, size_t extent_cache_capacity);
  MasterKey(const MasterKey&) = delete;
  MasterKey& operator=(const MasterKey&) = delete;
  ~MasterKey();

  const KeySpecifier& spec() const { return spec_; }
  // v2 keys (by identifier) track user claims; v1 keys (by descriptor) do not.
  bool tracks_users() const { return spec_.type() == KeySpecifierType::kIdentifier; }

  // --- Adding, removing, status (keyring.c) ---

  // Makes the master key's creator its first claimant (v2).
  void add_initial_claim(uint32_t uid);

  enum class AddOutcome { kDone, kDead };
  // `add_existing_master_key`: adds `uid`'s claim (v2) and, if the key is
  // incompletely removed, makes it present again with `secret`. kDead when the
  // key has already finished removal, so the caller must add a new one.
  AddOutcome add_existing(uint32_t uid, std::shared_ptr<const MasterKeySecret>& secret);

  // The first half of `do_remove_key`: drops `uid`'s claim (or every claim).
  // Returns true when other users still claim the key (so it stays).
  // ENOKEY if the key finished removal or `uid` has no claim.
  Result<bool> remove_claims(uint32_t uid, bool all_users);

  enum class InitiateOutcome { kInitiated, kAlreadyRemoving, kClaimedAgain, kDead };
  // `fscrypt_initiate_key_removal`: present -> not present, evicting the
  // per-mode keys, the inode-hash key and the keyring's own cached extent
  // infos. kClaimedAgain if a user re-added the key since remove_claims.
  InitiateOutcome initiate_removal();

  // `try_to_lock_encrypted_files` minus the sync: offers every live file info
  // to hooks.evict_file_info, then every live extent info to
  // hooks.forget_extent_info, without holding any lock.
  void evict_infos(const KeyRemovalHooks& hooks);

  bool has_live_infos() const;
  // True once removal finished (ABSENT); the key can never be used again.
  bool is_dead() const;
  // std::nullopt when the key finished removal (report ABSENT).
  std::optional<MasterKeyStatus> status(uint32_t uid) const;
  // `fscrypt_verify_key_added`: does `uid` hold a claim?
  bool has_claim(uint32_t uid) const;

  // --- Key setup ---

  // Takes an active reference and the secret for a new info. ENOKEY if the
  // key finished removal, or if `require_present` and it is being removed.
  Result<KeyReservation> reserve(bool require_present);

  // The cached per-mode key, or `derive()`'s result, cached while the key is
  // present. Runs derive() at most once per (kind, mode) while cached.
  Result<SharedCipher> mode_key(ModeKeyKind kind, const ModeInfo& mode,
                                const std::function<Result<crypto::CipherPtr>()>& derive);
  // The cached inode-hash SipHash key (HKDF context 7), or derive()'s result.
  Result<crypto::SipHashKey> inode_hash_key(
      const std::function<Result<crypto::SipHashKey>()>& derive);

  // Registers a new file info for evict_infos. ENOKEY (and no registration)
  // if `require_present` and the key is no longer present.
  Status register_file_info(const std::shared_ptr<const FileInfo>& info, bool require_present);
  void unregister_file_info(const FileInfo* info);

  // A live extent info for `key`, refreshed in the keyring's extent cache;
  // nullptr if none. ENOKEY if the key finished removal, or if
  // `require_present` and it is being removed.
  Result<std::shared_ptr<const ExtentInfo>> find_extent_info(const ExtentInfoKey& key,
                                                             bool require_present);
  // Registers `candidate` unless a live info for the same extent won a race,
  // in which case that one is returned (and `candidate` is to be dropped).
  // ENOKEY if `require_present` and the key is no longer present.
  Result<std::shared_ptr<const ExtentInfo>> register_extent_info(
      const ExtentInfoKey& key, const std::shared_ptr<const ExtentInfo>& candidate,
      bool require_present);
  void unregister_extent_info(const ExtentInfoKey& key, const ExtentInfo* info);

  // The keyring is going away: drops every cache (the extent cache holds
  // infos that hold this key, a cycle). Live infos keep working.
  void detach();

 private:
  friend class ActiveRef;

  struct ExtentEntry {
    const ExtentInfo* info = nullptr;
    std::weak_ptr<const ExtentInfo> weak;
    bool in_cache = false;
    std::list<std::pair<ExtentInfoKey, std::shared_ptr<const ExtentInfo>>>::iterator cache_pos;
  };
  // References that must die outside the lock.
  struct Doomed {
    std::shared_ptr<const MasterKeySecret> secret;
    std::vector<SharedCipher> ciphers;
    std::vector<std::shared_ptr<const ExtentInfo>> extent_infos;
  };

  void release_active_ref();
  // Moves every cache (not the secret) into `doomed`. REQUIRES: mutex_ held.
  void evict_caches_locked(Doomed& doomed);
  // ABSENT: marks the key dead and wipes its secret. REQUIRES: mutex_ held,
  // no live infos, not present.
  void finish_removal_locked(Doomed& doomed);
  void touch_cache_locked(const ExtentInfoKey& key, ExtentEntry& entry, Doomed& doomed);
  void erase_from_table();

  const KeySpecifier spec_;
  const std::weak_ptr<KeyTable> table_;
  const size_t extent_cache_capacity_;

  std::mutex mode_key_setup_mutex_;

  mutable std::mutex mutex_;
  // mk_present: usable for new setups.
  bool present_ = true;
  // Removal finished: no infos remain and the secret is gone.
  bool dead_ = false;
  // mk_users: uids with a claim (v2 keys only).
  std::set<uint32_t> users_;
  // Live FileInfo / ExtentInfo objects plus setups in progress.
  size_t active_refs_ = 0;
  // mk_secret; kept while incompletely removed, dropped when dead.
  std::shared_ptr<const MasterKeySecret> secret_;
  std::array<std::array<SharedCipher, kModeMax + 1>, 3> mode_keys_{};
  std::optional<crypto::SipHashKey> inode_hash_key_;
  std::unordered_map<const FileInfo*, std::weak_ptr<const FileInfo>> file_infos_;
  std::map<ExtentInfoKey, ExtentEntry> extent_infos_;
  // Most recently used first: the keyring's own references to extent infos,
  // so a reload soon after the last user let go does not derive again.
  std::list<std::pair<ExtentInfoKey, std::shared_ptr<const ExtentInfo>>> extent_cache_;
};

// The keyring's table of master keys by specifier (sb->s_master_keys).
class KeyTable {
 public:
  std::shared_ptr<MasterKey> find(const KeySpecifier& spec) const;

  // `do_add_master_key`: adds a new key for `spec`, or lets an existing one
  // take `uid`'s claim and, if it is incompletely removed, `secret`.
  // Serialized under the table's mutex, as the kernel's fscrypt_add_key_mutex
  // serializes find + link.
  void add(const KeySpecifier& spec, uint32_t uid, std::shared_ptr<const MasterKeySecret> secret,
           size_t extent_cache_capacity, const std::weak_ptr<KeyTable>& self);

  // Removes `key` from the table if it is still the entry for its spec.
  void erase_if_current(const MasterKey* key);
  // Drops every entry (the keyring is going away; live infos keep theirs).
  void clear();

 private:
  mutable std::mutex mutex_;
  std::map<KeySpecifier, std::shared_ptr<MasterKey>> keys_;
};

}  // namespace ecfs::fscrypt
