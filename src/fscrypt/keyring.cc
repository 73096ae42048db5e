#include "fscrypt/keyring.h"

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "fscrypt/master_key_secret.h"
#include "fscrypt/mode.h"

namespace ecfs::fscrypt {
namespace {

// The per-mode key table a policy uses, or none for per-file keys
// (keysetup.c `fscrypt_setup_v2_file_key`, keysetup_v1.c
// `setup_v1_file_key_direct`). The flags are mutually exclusive.
std::optional<ModeKeyKind> per_mode_key_kind(const Policy& policy) {
  const uint8_t flags = policy_flags(policy);
  if (flags & kPolicyFlagDirectKey) return ModeKeyKind::kDirectKey;
  if (!std::holds_alternative<PolicyV2>(policy)) return std::nullopt;
  if (flags & kPolicyFlagIvInoLblk64) return ModeKeyKind::kIvInoLblk64;
  if (flags & kPolicyFlagIvInoLblk32) return ModeKeyKind::kIvInoLblk32;
  return std::nullopt;
}

// The series' `fscrypt_load_extent_info` checks: the inode's policy allows
// extent encryption and the extent names the inode's mode and master key.
Status check_extent_matches_policy(const ExtentContext& context, const Policy& inode_policy) {
  ECFS_TRY(check_extent_encryption_allowed(inode_policy));
  const auto& policy = std::get<PolicyV2>(inode_policy);
  if (context.contents_mode != policy.contents_mode) {
    return fail(EINVAL, "extent contents mode " + std::to_string(context.contents_mode) +
                            " differs from the inode's " + std::to_string(policy.contents_mode));
  }
  if (context.master_key_identifier != policy.master_key_identifier) {
    return fail(EINVAL, "extent master key differs from the inode's");
  }
  return ok();
}

Error key_not_present(const KeySpecifier& key) {
  return Error(ENOKEY, "key " + key.to_string() + " is not present");
}

}  // namespace

Keyring::Keyring(KeyringOptions options)
    : options_(options),
      table_(std::make_shared<KeyTable>()),
      hooks_(std::make_shared<const KeyRemovalHooks>()) {}

Keyring::~Keyring() { table_->clear(); }

void Keyring::set_removal_hooks(KeyRemovalHooks hooks) {
  auto replacement = std::make_shared<const KeyRemovalHooks>(std::move(hooks));
  std::lock_guard lock(hooks_mutex_);
  hooks_.swap(replacement);
}

std::shared_ptr<const KeyRemovalHooks> Keyring::hooks() const {
  std::lock_guard lock(hooks_mutex_);
  return hooks_;
}

Status Keyring::add_v1_key(const Caller& caller, const KeyDescriptor& descriptor,
                           ByteSpan raw_key) {
  // keyring.c `fscrypt_ioctl_add_key`: a descriptor is not derived from the
  // key, so a user could add the wrong key under someone's descriptor; only
  // root may. Checked before the size, as the kernel does.
  if (!caller.is_privileged) {
    return fail(EACCES, "adding a key by descriptor (v1) needs CAP_SYS_ADMIN");
  }
  auto secret = MasterKeySecret::create(raw_key);
  if (!secret) return std::unexpected(std::move(secret).error());
  table_->add(KeySpecifier::from_descriptor(descriptor), caller.uid,
              std::make_shared<const MasterKeySecret>(std::move(*secret)),
              options_.extent_cache_capacity, table_);
  return ok();
}

Result<KeyIdentifier> Keyring::add_v2_key(const Caller& caller, ByteSpan raw_key) {
  // HKDF-Extract and the identifier are computed before any lock is taken.
  auto secret = MasterKeySecret::create(raw_key);
  if (!secret) return std::unexpected(std::move(secret).error());
  auto identifier = compute_key_identifier(secret->hkdf());
  if (!identifier) return identifier;
  table_->add(KeySpecifier::from_identifier(*identifier), caller.uid,
              std::make_shared<const MasterKeySecret>(std::move(*secret)),
              options_.extent_cache_capacity, table_);
  return identifier;
}

Result<uint32_t> Keyring::remove_key(const Caller& caller, const KeySpecifier& key) {
  return do_remove_key(caller, key, /*all_users=*/false);
}

Result<uint32_t> Keyring::remove_key_all_users(const Caller& caller, const KeySpecifier& key) {
  // keyring.c `fscrypt_ioctl_remove_key_all_users`: checked before anything.
  if (!caller.is_privileged) {
    return fail(EACCES, "removing a key for all users needs CAP_SYS_ADMIN");
  }
  return do_remove_key(caller, key, /*all_users=*/true);
}

Result<uint32_t> Keyring::do_remove_key(const Caller& caller, const KeySpecifier& key,
                                        bool all_users) {
  // keyring.c `do_remove_key`.
  if (key.type() == KeySpecifierType::kDescriptor && !caller.is_privileged) {
    return fail(EACCES, "removing a key by descriptor (v1) needs CAP_SYS_ADMIN");
  }
  const std::shared_ptr<MasterKey> master_key = table_->find(key);
  if (!master_key) return std::unexpected(key_not_present(key));

  auto other_users = master_key->remove_claims(caller.uid, all_users);
  if (!other_users) return std::unexpected(std::move(other_users).error());
  if (*other_users) return kKeyRemovalStatusFlagOtherUsers;

  // No claims remain: the key itself goes. Write back dirty data first,
  // while the key can still derive keys for it (the extent series syncs
  // the filesystem at the start of do_remove_key). A sync error does not
  // stop the removal but is what the caller sees (try_to_lock_encrypted_files
  // returns it in preference to EBUSY).
  const std::shared_ptr<const KeyRemovalHooks> hooks = this->hooks();
  Status sync_status = ok();
  if (hooks->sync && master_key->has_live_infos()) sync_status = hooks->sync(key);

  switch (master_key->initiate_removal()) {
    case MasterKey::InitiateOutcome::kClaimedAgain:
      // Another user added the key while we synced: it stays, theirs now.
      ECFS_TRY(sync_status);
      return kKeyRemovalStatusFlagOtherUsers;
    case MasterKey::InitiateOutcome::kDead:
      // A concurrent removal finished it.
      ECFS_TRY(sync_status);
      return 0u;
    case MasterKey::InitiateOutcome::kInitiated:
    case MasterKey::InitiateOutcome::kAlreadyRemoving:
      break;
  }

  // Infos remain (or did a moment ago): ask their owner to let go, then see
  // whether any are still in use. A later call retries this step.
  uint32_t flags = 0;
  if (!master_key->is_dead()) {
    master_key->evict_infos(*hooks);
    if (!master_key->is_dead()) flags |= kKeyRemovalStatusFlagFilesBusy;
  }
  ECFS_TRY(sync_status);
  return flags;
}

KeyStatusReport Keyring::key_status(const Caller& caller, const KeySpecifier& key) const {
  KeyStatusReport report;
  const std::shared_ptr<MasterKey> master_key = table_->find(key);
  if (!master_key) return report;  // ABSENT
  const std::optional<MasterKeyStatus> status = master_key->status(caller.uid);
  if (!status) return report;  // raced with the end of its removal: ABSENT
  if (!status->present) {
    report.status = KeyStatus::kIncompletelyRemoved;
    return report;
  }
  report.status = KeyStatus::kPresent;
  report.user_count = status->user_count;
  if (status->added_by_caller) report.status_flags |= kKeyStatusFlagAddedBySelf;
  return report;
}

Status Keyring::check_key_added(const Caller& caller, const KeyIdentifier& identifier) const {
  const KeySpecifier key = KeySpecifier::from_identifier(identifier);
  const std::shared_ptr<MasterKey> master_key = table_->find(key);
  if (master_key && master_key->has_claim(caller.uid)) return ok();
  // keyring.c `fscrypt_verify_key_added`: CAP_FOWNER overrides.
  if (caller.is_privileged) return ok();
  return fail(ENOKEY,
              "key " + key.to_string() + " was not added by uid " + std::to_string(caller.uid));
}

Result<FileInfoPtr> Keyring::setup_file_info(const Context& context, FileKind kind,
                                             uint64_t inode_number, bool need_dirhash_key) {
  auto mode = select_encryption_mode(context.policy, kind);
  if (!mode) return std::unexpected(std::move(mode).error());
  const bool is_v2 = std::holds_alternative<PolicyV2>(context.policy);
  if (need_dirhash_key && !is_v2) return fail(EINVAL, "v1 policies have no dirhash key");

  const KeySpecifier key = policy_key_specifier(context.policy);
  const std::shared_ptr<MasterKey> master_key = table_->find(key);
  if (!master_key) return std::unexpected(key_not_present(key));
  auto reservation = master_key->reserve(/*require_present=*/true);
  if (!reservation) return std::unexpected(std::move(reservation).error());
  const MasterKeySecret& secret = *reservation->secret;
  // keysetup.c `setup_file_encryption_key`: a key too short for the mode is
  // ENOKEY, also when a per-mode key is already cached.
  ECFS_TRY(check_master_key_size(policy_version(context.policy), **mode, secret.size()));

  const FileKeyParams params{.kind = kind,
                             .inode_number = inode_number,
                             .fs_uuid = options_.fs_uuid,
                             .need_dirhash_key = false};
  auto derive_cipher = [&]() -> Result<crypto::CipherPtr> {
    auto raw_key = derive_file_key(secret, context, params);
    if (!raw_key) return std::unexpected(std::move(raw_key).error());
    return prepare_key(**mode, raw_key->span());
  };

  SharedCipher cipher;
  const std::optional<ModeKeyKind> mode_key_kind = per_mode_key_kind(context.policy);
  if (mode_key_kind) {
    auto shared = master_key->mode_key(*mode_key_kind, **mode, [&] {
      mode_key_derivations_.fetch_add(1, std::memory_order_relaxed);
      return derive_cipher();
    });
    if (!shared) return std::unexpected(std::move(shared).error());
    cipher = std::move(*shared);
  } else {
    file_key_derivations_.fetch_add(1, std::memory_order_relaxed);
    auto own = derive_cipher();
    if (!own) return std::unexpected(std::move(own).error());
    cipher = std::move(*own);
  }

  uint32_t hashed_inode_number = 0;
  if (is_v2 && (policy_flags(context.policy) & kPolicyFlagIvInoLblk32)) {
    // keysetup.c `fscrypt_setup_iv_ino_lblk_32_key`: one SipHash key per
    // master key, derived on first use.
    auto hash_key = master_key->inode_hash_key([&] {
      inode_hash_key_derivations_.fetch_add(1, std::memory_order_relaxed);
      return derive_inode_hash_key(secret.hkdf());
    });
    if (!hash_key) return std::unexpected(std::move(hash_key).error());
    hashed_inode_number = hash_inode_number(*hash_key, inode_number);
  }

  std::optional<crypto::SipHashKey> dirhash_key;
  if (need_dirhash_key) {
    dirhash_key_derivations_.fetch_add(1, std::memory_order_relaxed);
    auto derived = derive_dirhash_key(secret.hkdf(), context.nonce);
    if (!derived) return std::unexpected(std::move(derived).error());
    dirhash_key = *derived;
  }

  FileInfoPtr info(new FileInfo(std::move(reservation->ref), context, kind, inode_number, *mode,
                                std::move(cipher), mode_key_kind.has_value(), hashed_inode_number,
                                dirhash_key));
  // On failure `info` dies on return, with no lock held.
  ECFS_TRY(master_key->register_file_info(info, /*require_present=*/true));
  return info;
}

Result<ExtentInfoPtr> Keyring::load_extent_info(const ExtentContext& context,
                                                const Policy& inode_policy) {
  ECFS_TRY(check_extent_matches_policy(context, inode_policy));
  const KeySpecifier key = KeySpecifier::from_identifier(context.master_key_identifier);
  const std::shared_ptr<MasterKey> master_key = table_->find(key);
  if (!master_key) return std::unexpected(key_not_present(key));
  return load_extent_info_from(master_key, context, /*require_present=*/true);
}

Result<ExtentInfoPtr> Keyring::load_extent_info(const ExtentContext& context,
                                                const FileInfo& inode) {
  ECFS_TRY(check_extent_matches_policy(context, inode.policy()));
  return load_extent_info_from(inode.active_ref_.key_ptr(), context, /*require_present=*/false);
}

Result<ExtentInfoPtr> Keyring::new_extent_info(const FileInfo& inode) {
  auto context = new_extent_context(inode.policy());
  if (!context) return std::unexpected(std::move(context).error());
  return load_extent_info(*context, inode);
}

Result<ExtentInfoPtr> Keyring::load_extent_info_from(const std::shared_ptr<MasterKey>& master_key,
                                                     const ExtentContext& context,
                                                     bool require_present) {
  const ExtentInfoKey info_key{context.contents_mode, context.nonce};
  auto found = master_key->find_extent_info(info_key, require_present);
  if (!found) return std::unexpected(std::move(found).error());
  if (*found) return std::move(*found);

  auto reservation = master_key->reserve(require_present);
  if (!reservation) return std::unexpected(std::move(reservation).error());
  extent_key_derivations_.fetch_add(1, std::memory_order_relaxed);
  auto extent_key = setup_extent_key(*reservation->secret, context);
  if (!extent_key) return std::unexpected(std::move(extent_key).error());
  ExtentInfoPtr candidate(new ExtentInfo(std::move(reservation->ref), context, extent_key->mode,
                                         SharedCipher(std::move(extent_key->cipher))));
  // If another thread registered the same extent first, its info is returned
  // and `candidate` dies on return, with no lock held.
  return master_key->register_extent_info(info_key, candidate, require_present);
}

KeyringStats Keyring::stats() const {
  return KeyringStats{
      .file_keys = file_key_derivations_.load(std::memory_order_relaxed),
      .mode_keys = mode_key_derivations_.load(std::memory_order_relaxed),
      .inode_hash_keys = inode_hash_key_derivations_.load(std::memory_order_relaxed),
      .dirhash_keys = dirhash_key_derivations_.load(std::memory_order_relaxed),
      .extent_keys = extent_key_derivations_.load(std::memory_order_relaxed),
  };
}

}  // namespace ecfs::fscrypt
