#include "fscrypt/master_key.h"

#include <cerrno>
#include <utility>

#include "crypto/secret.h"
#include "fscrypt/key_info.h"
#include "fscrypt/keyring.h"

namespace ecfs::fscrypt {

// --- ActiveRef ---

ActiveRef& ActiveRef::operator=(ActiveRef&& other) noexcept {
  if (this != &other) {
    ActiveRef old(std::move(*this));  // released after the swap, below
    key_ = std::move(other.key_);
  }
  return *this;
}

ActiveRef::~ActiveRef() {
  if (key_) key_->release_active_ref();
}

// --- MasterKey ---

MasterKey::MasterKey(KeySpecifier spec, std::shared_ptr<const MasterKeySecret> secret,
                     std::weak_ptr<KeyTable> table, size_t extent_cache_capacity)
    : spec_(spec),
      table_(std::move(table)),
      extent_cache_capacity_(extent_cache_capacity),
      secret_(std::move(secret)) {}

MasterKey::~MasterKey() {
  if (inode_hash_key_)
    crypto::secure_zero(
        {reinterpret_cast<uint8_t*>(&*inode_hash_key_), sizeof(crypto::SipHashKey)});
}

void MasterKey::add_initial_claim(uint32_t uid) {
  std::lock_guard lock(mutex_);
  if (tracks_users()) users_.insert(uid);
}

MasterKey::AddOutcome MasterKey::add_existing(uint32_t uid,
                                              std::shared_ptr<const MasterKeySecret>& secret) {
  Doomed doomed;  // the replaced secret dies after unlock
  std::lock_guard lock(mutex_);
  // keyring.c `add_existing_master_key`: a key whose last active reference
  // is gone can only be replaced by a new struct (KEY_DEAD).
  if (dead_) return AddOutcome::kDead;
  // A user already claiming the key: nothing to do. v1 keys have no claims.
  if (tracks_users() && !users_.insert(uid).second) return AddOutcome::kDone;
  if (!present_) {
    // Incompletely removed: present again, with the secret just supplied.
    // For v2 it is the same key (same identifier); for v1 the kernel also
    // takes the new bytes (move_master_key_secret).
    doomed.secret = std::exchange(secret_, std::move(secret));
    present_ = true;
  }
  return AddOutcome::kDone;
}

Result<bool> MasterKey::remove_claims(uint32_t uid, bool all_users) {
  std::lock_guard lock(mutex_);
  if (dead_) return fail(ENOKEY, "key " + spec_.to_string() + " is not present");
  // keyring.c `do_remove_key`: only when claims exist (v2, and the key is not
  // already incompletely removed) is the caller's claim required.
  if (!users_.empty()) {
    if (all_users) {
      users_.clear();
    } else if (users_.erase(uid) == 0) {
      return fail(ENOKEY,
                  "key " + spec_.to_string() + " was not added by uid " + std::to_string(uid));
    }
    return !users_.empty();
  }
  return false;
}

MasterKey::InitiateOutcome MasterKey::initiate_removal() {
  Doomed doomed;  // caches, and the keyring's own extent references
  bool finished = false;
  InitiateOutcome outcome;
  {
    std::lock_guard lock(mutex_);
    if (dead_) return InitiateOutcome::kDead;
    // Someone re-added the key while the remover was syncing: it stays.
    if (!users_.empty()) return InitiateOutcome::kClaimedAgain;
    if (!present_) {
      outcome = InitiateOutcome::kAlreadyRemoving;
    } else {
      outcome = InitiateOutcome::kInitiated;
      present_ = false;
      // The kernel destroys per-mode keys when the last active reference
      // goes; evicting them now is equivalent for live infos (which share
      // ownership of the prepared key they use) and frees them sooner. The
      // secret stays while incompletely removed.
      evict_caches_locked(doomed);
      if (active_refs_ == 0) {
        finish_removal_locked(doomed);
        finished = true;
      }
    }
  }
  if (finished) erase_from_table();
  // `doomed` dies here, outside the lock: dropping the cached extent infos
  // may release the last active reference, which finishes the removal.
  return outcome;
}

void MasterKey::evict_infos(const KeyRemovalHooks& hooks) {
  if (hooks.evict_file_info) {
    std::vector<std::shared_ptr<const FileInfo>> files;
    {
      std::lock_guard lock(mutex_);
      files.reserve(file_infos_.size());
      for (const auto& [raw, weak] : file_infos_) {
        if (auto info = weak.lock()) files.push_back(std::move(info));
      }
    }
    for (const auto& info : files) hooks.evict_file_info(info);
  }
  // Extents after files: evicting an inode may drop its extents, which then
  // need no forget call.
  if (hooks.forget_extent_info) {
    std::vector<std::shared_ptr<const ExtentInfo>> extents;
    {
      std::lock_guard lock(mutex_);
      extents.reserve(extent_infos_.size());
      for (const auto& [key, entry] : extent_infos_) {
        if (auto info = entry.weak.lock()) extents.push_back(std::move(info));
      }
    }
    for (const auto& info : extents) hooks.forget_extent_info(info);
  }
}

bool MasterKey::has_live_infos() const {
  std::lock_guard lock(mutex_);
  return active_refs_ > 0;
}

bool MasterKey::is_dead() const {
  std::lock_guard lock(mutex_);
  return dead_;
}

std::optional<MasterKeyStatus> MasterKey::status(uint32_t uid) const {
  std::lock_guard lock(mutex_);
  if (dead_) return std::nullopt;
  MasterKeyStatus status;
  status.present = present_;
  // keyring.c `fscrypt_ioctl_get_key_status` reports users of present keys.
  if (present_ && tracks_users()) {
    status.user_count = static_cast<uint32_t>(users_.size());
    status.added_by_caller = users_.contains(uid);
  }
  return status;
}

bool MasterKey::has_claim(uint32_t uid) const {
  std::lock_guard lock(mutex_);
  return !dead_ && users_.contains(uid);
}

Result<KeyReservation> MasterKey::reserve(bool require_present) {
  std::lock_guard lock(mutex_);
  if (dead_ || (require_present && !present_)) {
    return fail(ENOKEY, "key " + spec_.to_string() + " is not present");
  }
  ++active_refs_;
  return KeyReservation{ActiveRef(shared_from_this()), secret_};
}

Result<SharedCipher> MasterKey::mode_key(ModeKeyKind kind, const ModeInfo& mode,
                                         const std::function<Result<crypto::CipherPtr>()>& derive) {
  std::lock_guard setup_lock(mode_key_setup_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (const SharedCipher& cached = mode_keys_[static_cast<size_t>(kind)][mode.number]) {
      return cached;
    }
  }
  auto cipher = derive();
  if (!cipher) return std::unexpected(std::move(cipher).error());
  SharedCipher shared = std::move(*cipher);
  std::lock_guard lock(mutex_);
  // A key being removed has had its caches evicted; do not refill them.
  if (present_) mode_keys_[static_cast<size_t>(kind)][mode.number] = shared;
  return shared;
}

Result<crypto::SipHashKey> MasterKey::inode_hash_key(
    const std::function<Result<crypto::SipHashKey>()>& derive) {
  std::lock_guard setup_lock(mode_key_setup_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (inode_hash_key_) return *inode_hash_key_;
  }
  auto key = derive();
  if (!key) return key;
  std::lock_guard lock(mutex_);
  if (present_) inode_hash_key_ = *key;
  return key;
}

Status MasterKey::register_file_info(const std::shared_ptr<const FileInfo>& info,
                                     bool require_present) {
  std::lock_guard lock(mutex_);
  // keysetup.c checks mk_present under mk_sem; derivation ran unlocked here,
  // so check again now that the info would become visible.
  if (require_present && !present_) {
    return fail(ENOKEY, "key " + spec_.to_string() + " was removed during setup");
  }
  file_infos_.emplace(info.get(), info);
  return ok();
}

void MasterKey::unregister_file_info(const FileInfo* info) {
  std::lock_guard lock(mutex_);
  file_infos_.erase(info);
}

Result<std::shared_ptr<const ExtentInfo>> MasterKey::find_extent_info(const ExtentInfoKey& key,
                                                                      bool require_present) {
  Doomed doomed;
  std::shared_ptr<const ExtentInfo> found;
  std::lock_guard lock(mutex_);
  if (dead_ || (require_present && !present_)) {
    return fail(ENOKEY, "key " + spec_.to_string() + " is not present");
  }
  auto it = extent_infos_.find(key);
  if (it == extent_infos_.end()) return nullptr;
  found = it->second.weak.lock();
  if (found) touch_cache_locked(key, it->second, doomed);
  return found;
}

Result<std::shared_ptr<const ExtentInfo>> MasterKey::register_extent_info(
    const ExtentInfoKey& key, const std::shared_ptr<const ExtentInfo>& candidate,
    bool require_present) {
  Doomed doomed;
  std::shared_ptr<const ExtentInfo> winner;
  std::lock_guard lock(mutex_);
  if (require_present && !present_) {
    return fail(ENOKEY, "key " + spec_.to_string() + " was removed during setup");
  }
  auto [it, inserted] = extent_infos_.try_emplace(key);
  if (!inserted) {
    winner = it->second.weak.lock();
    if (winner) {
      touch_cache_locked(key, it->second, doomed);
      return winner;
    }
    // The entry's info is dying; its destructor will see it is no longer
    // the registered one and leave the new entry alone.
  }
  it->second.info = candidate.get();
  it->second.weak = candidate;
  it->second.in_cache = false;
  touch_cache_locked(key, it->second, doomed);
  return candidate;
}

void MasterKey::unregister_extent_info(const ExtentInfoKey& key, const ExtentInfo* info) {
  std::lock_guard lock(mutex_);
  auto it = extent_infos_.find(key);
  // The cache holds a strong reference, so a dying info is never cached.
  if (it != extent_infos_.end() && it->second.info == info) extent_infos_.erase(it);
}

void MasterKey::release_active_ref() {
  Doomed doomed;
  bool finished = false;
  {
    std::lock_guard lock(mutex_);
    --active_refs_;
    // `fscrypt_put_master_key_activeref`: the last active reference of a
    // removed key completes its removal.
    if (active_refs_ == 0 && !present_ && !dead_) {
      finish_removal_locked(doomed);
      finished = true;
    }
  }
  if (finished) erase_from_table();
}

void MasterKey::evict_caches_locked(Doomed& doomed) {
  for (auto& table : mode_keys_) {
    for (SharedCipher& cipher : table) {
      if (cipher) doomed.ciphers.push_back(std::move(cipher));
    }
  }
  if (inode_hash_key_) {
    crypto::secure_zero(
        {reinterpret_cast<uint8_t*>(&*inode_hash_key_), sizeof(crypto::SipHashKey)});
    inode_hash_key_.reset();
  }
  for (auto& [key, info] : extent_cache_) {
    if (auto it = extent_infos_.find(key); it != extent_infos_.end()) it->second.in_cache = false;
    doomed.extent_infos.push_back(std::move(info));
  }
  extent_cache_.clear();
}

void MasterKey::detach() {
  Doomed doomed;
  std::lock_guard lock(mutex_);
  evict_caches_locked(doomed);
}

void MasterKey::finish_removal_locked(Doomed& doomed) {
  dead_ = true;
  users_.clear();
  // The secret is wiped once the last holder of `doomed.secret` (or of an
  // in-flight derivation's copy) lets go: MasterKeySecret zeroes on drop.
  doomed.secret = std::move(secret_);
  evict_caches_locked(doomed);
}

void MasterKey::touch_cache_locked(const ExtentInfoKey& key, ExtentEntry& entry, Doomed& doomed) {
  if (extent_cache_capacity_ == 0 || !present_) return;
  if (entry.in_cache) {
    extent_cache_.splice(extent_cache_.begin(), extent_cache_, entry.cache_pos);
    return;
  }
  auto info = entry.weak.lock();
  if (!info) return;
  extent_cache_.emplace_front(key, std::move(info));
  entry.in_cache = true;
  entry.cache_pos = extent_cache_.begin();
  while (extent_cache_.size() > extent_cache_capacity_) {
    auto& [old_key, old_info] = extent_cache_.back();
    if (auto it = extent_infos_.find(old_key); it != extent_infos_.end()) {
      it->second.in_cache = false;
    }
    doomed.extent_infos.push_back(std::move(old_info));
    extent_cache_.pop_back();
  }
}

void MasterKey::erase_from_table() {
  if (auto table = table_.lock()) table->erase_if_current(this);
}

// --- KeyTable ---

std::shared_ptr<MasterKey> KeyTable::find(const KeySpecifier& spec) const {
  std::lock_guard lock(mutex_);
  auto it = keys_.find(spec);
  return it == keys_.end() ? nullptr : it->second;
}

void KeyTable::add(const KeySpecifier& spec, uint32_t uid,
                   std::shared_ptr<const MasterKeySecret> secret, size_t extent_cache_capacity,
                   const std::weak_ptr<KeyTable>& self) {
  std::shared_ptr<MasterKey> replaced;  // dies after unlock
  std::lock_guard lock(mutex_);
  auto it = keys_.find(spec);
  if (it != keys_.end()) {
    if (it->second->add_existing(uid, secret) == MasterKey::AddOutcome::kDone) return;
    // Dead: its removal finished concurrently; it is leaving the table.
    replaced = std::move(it->second);
  }
  auto key = std::make_shared<MasterKey>(spec, std::move(secret), self, extent_cache_capacity);
  key->add_initial_claim(uid);
  keys_[spec] = std::move(key);
}

void KeyTable::erase_if_current(const MasterKey* key) {
  std::shared_ptr<MasterKey> erased;  // dies after unlock
  std::lock_guard lock(mutex_);
  auto it = keys_.find(key->spec());
  if (it != keys_.end() && it->second.get() == key) {
    erased = std::move(it->second);
    keys_.erase(it);
  }
}

void KeyTable::clear() {
  std::map<KeySpecifier, std::shared_ptr<MasterKey>> keys;
  {
    std::lock_guard lock(mutex_);
    keys.swap(keys_);
  }
  // The cache of extent infos refers back to its key; break that cycle.
  for (auto& [spec, key] : keys) key->detach();
}

}  // namespace ecfs::fscrypt
