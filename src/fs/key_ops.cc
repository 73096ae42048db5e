// FileSystem: fscrypt key management and encryption policies, with the
// kernel's semantics (Documentation/filesystems/fscrypt.rst "User API";
// fs/crypto/keyring.c, policy.c), over one fscrypt::Keyring per mount.
#include <sys/stat.h>

#include <cerrno>

#include "fs/file_data.h"
#include "fs/filesystem.h"
#include "fs/fs_internal.h"
#include "fscrypt/extent.h"
#include "fscrypt/key_identifier.h"

namespace ecfs::fs {

Result<KeyChange> FileSystem::add_key(const fscrypt::Caller& caller,
                                      const fscrypt::KeySpecifier& key, ByteSpan raw_key) {
  std::lock_guard lock(volume_->mutex());
  volume_->await_writeout();  // it may remove or change file data
  if (volume_->closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  KeyChange change;
  // The names the kernel met without the key (no-key names), taken before
  // the key makes them plaintext; none when the key was there already.
  std::vector<CachedName> nokey_names;
  std::optional<fscrypt::KeySpecifier> specifier;
  if (key.type() == fscrypt::KeySpecifierType::kDescriptor) {
    specifier = key;
  } else if (auto identifier = fscrypt::compute_key_identifier(raw_key)) {
    specifier = fscrypt::KeySpecifier::from_identifier(*identifier);
  }  // else the addition below fails with the reason
  if (specifier && keyring_.key_status(caller, *specifier).status != fscrypt::KeyStatus::kPresent) {
    auto names = known_names_using_key(*specifier);
    if (!names) return std::unexpected(names.error());
    nokey_names = std::move(*names);
  }
  if (key.type() == fscrypt::KeySpecifierType::kDescriptor) {
    fscrypt::KeyDescriptor descriptor{};
    std::copy(key.bytes().begin(), key.bytes().end(), descriptor.begin());
    ECFS_TRY(keyring_.add_v1_key(caller, descriptor, raw_key));
    change.key = key;
  } else {
    auto identifier = keyring_.add_v2_key(caller, raw_key);
    if (!identifier) return std::unexpected(identifier.error());
    change.key = fscrypt::KeySpecifier::from_identifier(*identifier);
  }
  // Inodes the kernel met without the key (no-key names, no-key symlink
  // targets and sizes) must be looked at again.
  change.stale_inodes = inodes_using_key(change.key, false);
  change.stale_names = std::move(nokey_names);
  return change;
}

Result<KeyChange> FileSystem::remove_key(const fscrypt::Caller& caller,
                                         const fscrypt::KeySpecifier& key, bool all_users) {
  std::lock_guard lock(volume_->mutex());
  volume_->await_writeout();  // it may remove or change file data
  if (volume_->closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  const fscrypt::KeyStatusReport before = keyring_.key_status(caller, key);
  if (before.status == fscrypt::KeyStatus::kAbsent) {
    return fail(ENOKEY, "the key is not present");
  }
  // The key stops being usable only when its last claim goes; then, as the
  // kernel syncs the filesystem before evicting inodes, buffered data is
  // written (encrypted under the key) and committed first.
  const bool last_claim = all_users || before.user_count <= 1;
  Status synced = ok();
  if (last_claim && !volume_->read_only()) synced = volume_->commit_locked();
  KeyChange change;
  change.key = key;
  if (last_claim) {
    // Plaintext names, taken while the key still decrypts them.
    auto names = known_names_using_key(key);
    if (!names) return std::unexpected(names.error());
    change.stale_names = std::move(*names);
    change.stale_inodes = inodes_using_key(key, true);
  }
  // A retry of an incompletely removed key: dropping the cached keys of
  // closed files may have released the last of them, which finishes the
  // removal (the kernel's try_to_lock_encrypted_files evicting the inodes).
  if (before.status == fscrypt::KeyStatus::kIncompletelyRemoved &&
      keyring_.key_status(caller, key).status == fscrypt::KeyStatus::kAbsent) {
    if (!synced) return std::unexpected(synced.error());
    return change;
  }
  auto flags =
      all_users ? keyring_.remove_key_all_users(caller, key) : keyring_.remove_key(caller, key);
  if (!flags) return std::unexpected(flags.error());
  change.removal_status_flags = *flags;
  // A failed sync is reported after the removal, as the kernel returns
  // sync_filesystem's error.
  if (!synced) return std::unexpected(synced.error());
  return change;
}

Result<std::map<fscrypt::KeyIdentifier, KeyUsage>> FileSystem::key_usage() {
  std::unique_lock lock(volume_->mutex());
  if (volume_->closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  // Buffered data has no extents yet: written out and committed first, so
  // that what is counted is everything written before the call.
  if (!volume_->read_only()) ECFS_TRY(volume_->commit(lock));
  return fs::key_usage(*volume_);
}

fscrypt::KeyStatusReport FileSystem::key_status(const fscrypt::Caller& caller,
                                                const fscrypt::KeySpecifier& key) {
  return keyring_.key_status(caller, key);
}

Status Subvolume::set_policy(uint64_t ino_node, const fscrypt::Policy& policy,
                             const fscrypt::Caller& caller) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  await_writeout();  // it may remove or change file data
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  InodeState& state = **found;
  // fscrypt_ioctl_set_policy's order: owner, writable, existing policy,
  // type, emptiness, then the policy itself and its key.
  if (!caller.is_privileged && caller.uid != state.item->uid) {
    return fail(EACCES, "only the directory's owner may set its encryption policy");
  }
  ECFS_TRY(check_names_changeable());
  auto existing = crypt_context(state);
  if (!existing) return std::unexpected(existing.error());
  if (*existing) {
    if (fscrypt::policies_equal((*existing)->policy, policy)) return ok();
    return fail(EEXIST, "the directory already has a different encryption policy");
  }
  if (!S_ISDIR(state.item->mode)) return fail(ENOTDIR, "encryption policies apply to directories");
  if (state.item->nlink == 0) return fail(ENOENT, "the directory was removed");
  auto empty = is_empty_directory(ino);
  if (!empty) return std::unexpected(empty.error());
  if (!*empty) return fail(ENOTEMPTY, "the directory is not empty");
  // Per-extent encryption: plain v2 policies only (fscrypt/extent.h).
  ECFS_TRY(fscrypt::check_extent_encryption_allowed(policy));
  fscrypt::FsTraits traits;
  traits.block_size = store::kSectorSize;
  traits.max_file_size = kMaxFileSize;
  ECFS_TRY(fscrypt::check_policy_supported(policy, traits));
  ECFS_TRY(
      keyring_.check_key_added(caller, std::get<fscrypt::PolicyV2>(policy).master_key_identifier));
  ECFS_TRY(check_space(0));
  auto context = fscrypt::new_context(policy);
  if (!context) return std::unexpected(context.error());
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  if (auto stored = (*fs_tree)->insert({ino, kFscryptInodeContextKey, 0},
                                       fscrypt::serialize_context(*context));
      !stored) {
    return abort_change(stored.error());
  }
  state.item->flags |= kInodeFlagEncrypted;
  state.crypt_context = std::move(*context);
  state.crypt_context_loaded = true;
  state.crypt_info.reset();
  touch(state, false, true);
  return ok();
}

bool Subvolume::is_encrypted(uint64_t ino_node) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  if (volume_.closed()) return false;
  auto found = inode(ino);
  return found && ((*found)->item->flags & kInodeFlagEncrypted);
}

Result<Subvolume::InodeState*> Subvolume::encrypted_inode(uint64_t ino) {
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  auto context = crypt_context(**found);
  if (!context) return std::unexpected(context.error());
  if (!*context) return fail(ENODATA, "the inode is not encrypted");
  return *found;
}

Result<fscrypt::Policy> Subvolume::get_policy(uint64_t ino_node) {
  std::lock_guard lock(mutex_);
  auto state = encrypted_inode(local(ino_node));
  if (!state) return std::unexpected(state.error());
  return (*state)->crypt_context->policy;
}

Result<std::vector<fscrypt::KeyIdentifier>> Subvolume::previous_keys(uint64_t ino_node) {
  std::lock_guard lock(mutex_);
  auto state = encrypted_inode(local(ino_node));
  if (!state) return std::unexpected(state.error());
  return (*state)->previous_keys;
}

}  // namespace ecfs::fs

namespace ecfs::fs {

std::vector<uint64_t> FileSystem::inodes_using_key(const fscrypt::KeySpecifier& key, bool evict) {
  std::vector<uint64_t> known;
  std::shared_lock map(subvolumes_mutex_);
  for (auto& [tree, subvolume] : subvolumes_) {
    std::vector<uint64_t> more = subvolume->inodes_using_key(key, evict);
    known.insert(known.end(), more.begin(), more.end());
  }
  return known;
}

Result<std::vector<CachedName>> FileSystem::known_names_using_key(
    const fscrypt::KeySpecifier& key) {
  std::vector<CachedName> names;
  std::shared_lock map(subvolumes_mutex_);
  for (auto& [tree, subvolume] : subvolumes_) {
    auto more = subvolume->known_names_using_key(key);
    if (!more) return std::unexpected(more.error());
    names.insert(names.end(), std::make_move_iterator(more->begin()),
                 std::make_move_iterator(more->end()));
  }
  return names;
}

}  // namespace ecfs::fs
