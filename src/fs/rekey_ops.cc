// Subvolume: key rotation, one directory at a time (fs/key_history.h,
// docs/FORMAT.md "Key rotation"), and its contents pass, one file and a
// bounded amount of data at a time. A directory moves to the new key with a
// fresh context, its entries' names re-encrypted under it; its files and
// symlinks move too (a symlink's target re-encrypted, a file's extents left
// as they are, readable through its KEY_HISTORY); subdirectories are moved
// by calls of their own, so the caller walks the tree (top down: a file not
// reached yet may still enter a directory that was, check_permitted_context).
// Everything is computed before the first change, so that a refusal (a key
// missing, a name that does not decrypt) changes nothing; the changes of one
// directory are one transaction's, so a crash leaves it wholly moved or not
// at all, and calling again finishes what was left.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <unordered_set>

#include "fs/file_data.h"
#include "fs/fs_internal.h"
#include "fs/key_history.h"
#include "fscrypt/fname.h"

namespace ecfs::fs {
namespace {

// How many re-encrypted extents rekey_contents remembers before it starts
// afresh (about 100 bytes each): sharing between files whose passes are
// further apart than this is lost, never correctness.
constexpr size_t kMaxReencryptCacheEntries = 1 << 20;

}  // namespace

// One inode's move: its new context, history and key.
struct Subvolume::InodeRekey {
  InodeState* state = nullptr;
  fscrypt::Context context;
  std::vector<fscrypt::KeyIdentifier> previous;
  fscrypt::FileInfoPtr info;  // set up for directories and symlinks
  std::optional<Bytes> symlink_target;
};

Result<Subvolume::InodeRekey> Subvolume::plan_rekey(InodeState& state,
                                                    const fscrypt::Policy& target) {
  InodeRekey rekey;
  rekey.state = &state;
  auto context = fscrypt::new_context(target);
  if (!context) return std::unexpected(context.error());
  rekey.context = std::move(*context);
  const fscrypt::KeyIdentifier& from = policy_key(state.crypt_context->policy);
  const fscrypt::KeyIdentifier& to = policy_key(target);
  const uint32_t mode = state.item->mode;
  if (S_ISREG(mode) && state.item->nbytes > 0) {
    // Its extents keep the keys they were written under.
    auto previous = rotated_history(state.previous_keys, from, to);
    if (!previous) {
      return fail(previous.error().errno_value(),
                  "inode " + std::to_string(state.ino) + ": " + previous.error().message());
    }
    rekey.previous = std::move(*previous);
  } else if (S_ISDIR(mode)) {
    // No extents: its earlier keys tell unlock, lock and status which keys
    // its files' older data may need, and let a file not yet moved enter it
    // while the rotation is under way; the oldest may go.
    auto previous = rotated_history(state.previous_keys, from, to, HistoryOverflow::kDropOldest);
    if (!previous) return std::unexpected(previous.error());
    rekey.previous = std::move(*previous);
  }
  if (S_ISDIR(mode) || S_ISLNK(mode)) {
    auto info = keyring_.setup_file_info(
        rekey.context, S_ISDIR(mode) ? fscrypt::FileKind::kDirectory : fscrypt::FileKind::kSymlink,
        state.ino);
    if (!info) return std::unexpected(info.error());
    rekey.info = std::move(*info);
  }
  if (S_ISLNK(mode)) {
    auto fs_tree = read_tree();
    if (!fs_tree) return std::unexpected(fs_tree.error());
    auto stored = fs_tree->find({state.ino, kSymlinkTargetKey, 0});
    if (!stored) return std::unexpected(stored.error());
    if (!*stored) {
      return fail(EUCLEAN, "symlink " + std::to_string(state.ino) + " has no target");
    }
    // ENOKEY without the old key (the target would be a no-key one).
    if (auto old_info = crypt_info(state); !old_info) return std::unexpected(old_info.error());
    auto target_text = presented_symlink_target(state, **stored);
    if (!target_text) return std::unexpected(target_text.error());
    auto encrypted = encrypted_symlink_record(*rekey.info, *target_text);
    if (!encrypted) return std::unexpected(encrypted.error());
    rekey.symlink_target = std::move(*encrypted);
  }
  return rekey;
}

Status Subvolume::apply_rekey(InodeRekey& rekey) {
  InodeState& state = *rekey.state;
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  store::BTree& t = **fs_tree;
  ECFS_TRY(
      t.put({state.ino, kFscryptInodeContextKey, 0}, fscrypt::serialize_context(rekey.context)));
  if (!rekey.previous.empty()) {
    ECFS_TRY(t.put({state.ino, kKeyHistoryKey, 0}, encode_key_history(rekey.previous)));
    ECFS_TRY(volume_.engine().enable_incompat_features(store::kIncompatKeyRotation));
  } else if (!state.previous_keys.empty()) {
    ECFS_TRY(t.remove({state.ino, kKeyHistoryKey, 0}));
  }
  if (rekey.symlink_target) {
    ECFS_TRY(t.put({state.ino, kSymlinkTargetKey, 0}, *rekey.symlink_target));
  }
  state.crypt_context = std::move(rekey.context);
  state.previous_keys = std::move(rekey.previous);
  // Operations under way keep the key they started with; the next ones
  // set up the new one (a directory's and a symlink's are ready).
  state.crypt_info = std::move(rekey.info);
  volume_.note_change();
  return ok();
}

Result<RekeyReport> Subvolume::rekey_directory(uint64_t dir_node, const fscrypt::KeyIdentifier& to,
                                               const fscrypt::Caller& caller) {
  const uint64_t dir = local(dir_node);
  std::lock_guard lock(mutex_);
  await_writeout();  // a writeout under way derives keys from the contexts
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  ECFS_TRY(check_names_changeable());
  auto found = inode(dir);
  if (!found) return std::unexpected(found.error());
  InodeState& dir_state = **found;
  if (!S_ISDIR(dir_state.item->mode))
    return fail(ENOTDIR, "keys are changed a directory at a time");
  // As for setting a policy (fscrypt_ioctl_set_policy): the owner decides.
  if (!caller.is_privileged && caller.uid != dir_state.item->uid) {
    return fail(EACCES, "only the directory's owner may change its key");
  }
  auto context = crypt_context(dir_state);
  if (!context) return std::unexpected(context.error());
  if (!*context) return fail(ENODATA, "the directory is not encrypted");
  const fscrypt::Policy target = with_key((*context)->policy, to);
  ECFS_TRY(keyring_.check_key_added(caller, to));
  // A privileged caller passes that check without the key: files moved to
  // a key nobody holds could not be written.
  if (keyring_.key_status(caller, fscrypt::KeySpecifier::from_identifier(to)).status !=
      fscrypt::KeyStatus::kPresent) {
    return fail(ENOKEY, "the new key is not present");
  }
  ECFS_TRY(check_space(0));

  // The plan, with nothing changed yet.
  RekeyReport report;
  std::optional<InodeRekey> dir_rekey;
  struct Rename {
    DirEntry entry;
    Bytes new_name;
  };
  std::vector<Rename> renames;
  const bool dir_moves = !fscrypt::policies_equal((*context)->policy, target);
  fscrypt::FileInfoPtr old_names;
  if (dir_moves) {
    auto old_info = crypt_info(dir_state);  // ENOKEY: names cannot be re-encrypted
    if (!old_info) return std::unexpected(old_info.error());
    old_names = *old_info;
    auto planned = plan_rekey(dir_state, target);
    if (!planned) return std::unexpected(planned.error());
    dir_rekey = std::move(*planned);
  }
  std::vector<InodeRekey> children;
  std::unordered_set<uint64_t> planned_inodes;  // a file named twice moves once
  const uint8_t padding = fscrypt::filename_padding(fscrypt::policy_flags(target));
  ECFS_TRY(for_each_dir_entry(dir, 2, [&](const DirEntryView& view) -> Result<bool> {
    if (dir_moves) {
      auto name = fscrypt::decrypt_name(old_names->cipher(), old_names->iv_params(), view.name);
      if (!name) {
        return fail(EUCLEAN, "directory " + std::to_string(dir) +
                                 ": an encrypted name does not decrypt: " + name.error().message());
      }
      auto stored = fscrypt::encrypt_name(dir_rekey->info->cipher(), dir_rekey->info->iv_params(),
                                          *name, padding);
      if (!stored) return std::unexpected(stored.error());
      renames.push_back(
          {DirEntry{view.ino, view.index, view.type, Bytes(view.name.begin(), view.name.end())},
           std::move(*stored)});
    }
    // Subdirectories are moved by calls of their own; special files have
    // no context; a subvolume cannot be named in an encrypted directory.
    if (names_subvolume(view.type) || view.type == DT_DIR) return true;
    if (planned_inodes.contains(view.ino)) return true;
    auto child = inode(view.ino);
    if (!child) return std::unexpected(child.error());
    auto child_context = crypt_context(**child);
    if (!child_context) return std::unexpected(child_context.error());
    if (!*child_context || fscrypt::policies_equal((*child_context)->policy, target)) return true;
    // Another policy, or another user's file (whose key its owner decides,
    // whatever directory names it): left as it is.
    if (!same_policy_but_key((*child_context)->policy, target)) {
      ++report.skipped;
      return true;
    }
    if (!caller.is_privileged && caller.uid != (*child)->item->uid) {
      ++report.not_owned;
      return true;
    }
    auto planned = plan_rekey(**child, target);
    if (!planned) return std::unexpected(planned.error());
    children.push_back(std::move(*planned));
    planned_inodes.insert(view.ino);
    return true;
  }));

  // The changes: a failure now leaves a half-changed transaction, aborted.
  for (const Rename& rename : renames) {
    if (Status renamed = replace_stored_name(dir, rename.entry, rename.new_name); !renamed) {
      return abort_change(renamed.error());
    }
    ++report.names;
  }
  if (dir_rekey) {
    if (Status applied = apply_rekey(*dir_rekey); !applied) return abort_change(applied.error());
    ++report.inodes;
  }
  for (InodeRekey& child : children) {
    if (Status applied = apply_rekey(child); !applied) return abort_change(applied.error());
    ++report.inodes;
  }
  return report;
}

Result<RekeyContentsReport> Subvolume::rekey_contents(uint64_t node, uint64_t max_bytes,
                                                      const fscrypt::Caller& caller) {
  const uint64_t ino = local(node);
  std::lock_guard lock(mutex_);
  await_writeout();  // it may be writing the file's items
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  ECFS_TRY(check_writable());
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  InodeState& state = **found;
  const bool directory = S_ISDIR(state.item->mode);
  if (!S_ISREG(state.item->mode) && !directory) {
    return fail(EINVAL, "only files and directories hold earlier keys");
  }
  if (!caller.is_privileged && caller.uid != state.item->uid) {
    return fail(EACCES, "only the owner may have its contents re-encrypted");
  }
  auto context = crypt_context(state);
  if (!context) return std::unexpected(context.error());
  if (!*context) return fail(ENODATA, "the inode is not encrypted");
  if (directory) {
    // It holds no extents: its earlier keys go once its tree is done.
    if (Status dropped = drop_key_history(state); !dropped) return abort_change(dropped.error());
    return RekeyContentsReport{0, 0, 0, true};
  }
  if (!reencrypted_ || reencrypted_->by_old_bytenr.size() > kMaxReencryptCacheEntries) {
    reencrypted_ = std::make_unique<ReencryptCache>();
  }
  bool tree_changed_badly = false;
  // Room for the metadata first (this may commit, before any tree is
  // open); then each copy's space is checked before it is made, without a
  // commit (the old extents are freed only when nothing else references
  // them).
  ECFS_TRY(check_space(0));
  auto progress = data_->reencrypt_old_extents(
      ino, max_bytes, *reencrypted_, [&](uint64_t bytes) { return volume_.check_space_now(bytes); },
      &tree_changed_badly);
  if (!progress) {
    if (tree_changed_badly) return abort_change(progress.error());
    volume_.note_change();  // items moved before the error are in the transaction
    return std::unexpected(progress.error());
  }
  // Nothing under an earlier key is left: the history goes.
  if (progress->done) {
    if (Status dropped = drop_key_history(state); !dropped) return abort_change(dropped.error());
  }
  volume_.note_change();
  return *progress;
}

Status Subvolume::drop_key_history(InodeState& state) {
  if (state.previous_keys.empty()) return ok();
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  ECFS_TRY((*fs_tree)->remove({state.ino, kKeyHistoryKey, 0}));
  state.previous_keys.clear();
  volume_.note_change();
  return ok();
}

}  // namespace ecfs::fs
