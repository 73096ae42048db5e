// FileSystem: fscrypt in the filesystem, after the btrfs extent-encryption
// series (fscrypt-format.md §2). Inodes carry the kernel's 40-byte v2
// context (FSCRYPT_INODE_CTX); names and symlink targets are encrypted
// exactly as the kernel encrypts them with the directory's / symlink's
// per-file key; file contents are encrypted per extent (FileData asks
// DataKeys for the keys). Without the master key names read as the kernel's
// no-key names and contents cannot be opened.
#include <sys/stat.h>

#include <algorithm>
#include <string>

#include "fs/file_data.h"
#include "fs/filesystem.h"
#include "fs/fs_internal.h"
#include "fs/key_history.h"
#include "fscrypt/fname.h"
#include "fscrypt/nokey_name.h"
#include "fscrypt/symlink.h"

namespace ecfs::fs {
namespace {

using store::Key;

// The space an encrypted symlink record may take, as ext4 gives it a block:
// targets up to 4093 bytes fit (fscrypt_prepare_symlink).
constexpr size_t kMaxSymlinkRecord = 4096;

fscrypt::FileKind file_kind(uint32_t mode) {
  if (S_ISDIR(mode)) return fscrypt::FileKind::kDirectory;
  if (S_ISLNK(mode)) return fscrypt::FileKind::kSymlink;
  return fscrypt::FileKind::kRegular;
}

// Which inodes get their own context in an encrypted directory: the kinds
// fscrypt encrypts (fscrypt_prepare_new_inode; special files keep only an
// encrypted name).
bool encryptable(uint32_t mode) { return S_ISREG(mode) || S_ISDIR(mode) || S_ISLNK(mode); }

}  // namespace

// FileData's view of the keys: one InodeKeys per inode and operation.
// Called by FileData, so under the volume's lock.
class Subvolume::DataKeys final : public ExtentKeys {
 public:
  explicit DataKeys(Subvolume& fs) : fs_(fs) {}

  Result<std::shared_ptr<const InodeKeys>> inode_keys(uint64_t ino) override {
    auto state = fs_.inode(ino);
    if (!state) return std::unexpected(state.error());
    auto context = fs_.crypt_context(**state);
    if (!context) return std::unexpected(context.error());
    if (!*context) return nullptr;
    auto info = fs_.crypt_info(**state);
    if (!info) return std::unexpected(info.error());
    return std::make_shared<const InodeKeys>(fs_.keyring_, std::move(*info), ino,
                                             (*state)->previous_keys);
  }

 private:
  Subvolume& fs_;
};

std::unique_ptr<ExtentKeys> Subvolume::make_data_keys() {
  return std::make_unique<DataKeys>(*this);
}

Result<const fscrypt::Context*> Subvolume::crypt_context(InodeState& state) {
  if (!(state.item->flags & kInodeFlagEncrypted)) return nullptr;
  if (!state.crypt_context_loaded) {
    auto fs_tree = read_tree();
    if (!fs_tree) return std::unexpected(fs_tree.error());
    auto stored = fs_tree->find({state.ino, kFscryptInodeContextKey, 0});
    if (!stored) return std::unexpected(stored.error());
    if (!*stored) {
      return fail(EUCLEAN, "inode " + std::to_string(state.ino) +
                               " is marked encrypted but has no encryption context");
    }
    auto context = fscrypt::parse_context(**stored);
    if (!context) {
      return fail(EUCLEAN, "inode " + std::to_string(state.ino) +
                               ": damaged encryption context: " + context.error().message());
    }
    auto history = fs_tree->find({state.ino, kKeyHistoryKey, 0});
    if (!history) return std::unexpected(history.error());
    std::vector<fscrypt::KeyIdentifier> previous;
    if (*history) {
      auto decoded = decode_key_history(**history);
      if (!decoded) {
        return fail(EUCLEAN,
                    "inode " + std::to_string(state.ino) + ": " + decoded.error().message());
      }
      previous = std::move(*decoded);
    }
    state.crypt_context = std::move(*context);
    state.previous_keys = std::move(previous);
    state.crypt_context_loaded = true;
  }
  return &*state.crypt_context;
}

Result<fscrypt::FileInfoPtr> Subvolume::crypt_info(InodeState& state) {
  if (state.crypt_info) return state.crypt_info;
  auto context = crypt_context(state);
  if (!context) return std::unexpected(context.error());
  if (!*context) return fail(EINVAL, "the inode is not encrypted");
  auto info = keyring_.setup_file_info(**context, file_kind(state.item->mode), state.ino);
  if (!info) return std::unexpected(info.error());
  state.crypt_info = std::move(*info);
  return state.crypt_info;
}

Status Subvolume::inherit_encryption(InodeState& parent, InodeState& child) {
  auto parent_context = crypt_context(parent);
  if (!parent_context) return std::unexpected(parent_context.error());
  if (!*parent_context || !encryptable(child.item->mode)) return ok();
  auto context = fscrypt::new_context((*parent_context)->policy);
  if (!context) return std::unexpected(context.error());
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  ECFS_TRY((*fs_tree)->insert({child.ino, kFscryptInodeContextKey, 0},
                              fscrypt::serialize_context(*context)));
  child.item->flags |= kInodeFlagEncrypted;
  child.crypt_context = std::move(*context);
  child.crypt_context_loaded = true;
  mark_dirty(child);
  return ok();
}

Result<Bytes> Subvolume::stored_name(InodeState& dir, std::string_view name) {
  auto context = crypt_context(dir);
  if (!context) return std::unexpected(context.error());
  if (!*context) return Bytes(name.begin(), name.end());
  auto info = crypt_info(dir);
  if (!info) return std::unexpected(info.error());
  return fscrypt::encrypt_name((*info)->cipher(), (*info)->iv_params(), name,
                               fscrypt::filename_padding(fscrypt::policy_flags((*info)->policy())));
}

Result<std::optional<DirEntry>> Subvolume::find_entry_if(
    uint64_t dir, uint64_t hash, const std::function<bool(const DirEntry&)>& matches) {
  auto fs_tree = read_tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  auto data = fs_tree->find({dir, kDirItemKey, hash});
  if (!data) return std::unexpected(data.error());
  if (!*data) return std::nullopt;
  auto entries = decode_dir_entries(**data);
  if (!entries) return std::unexpected(entries.error());
  for (DirEntry& entry : *entries) {
    if (matches(entry)) return std::move(entry);
  }
  return std::nullopt;
}

Result<std::optional<DirEntry>> Subvolume::find_named(uint64_t dir, InodeState& dir_state,
                                                      std::string_view name) {
  auto context = crypt_context(dir_state);
  if (!context) return std::unexpected(context.error());
  if (!*context) return find_entry(dir, as_bytes(name));
  auto info = crypt_info(dir_state);
  if (info) {
    auto ciphertext = stored_name(dir_state, name);
    if (!ciphertext) return std::unexpected(ciphertext.error());
    return find_entry(dir, *ciphertext);
  }
  if (info.error().errno_value() != ENOKEY) return std::unexpected(info.error());
  // No key: only no-key names can be looked up (fscrypt_setup_filename);
  // anything else names nothing.
  auto nokey = fscrypt::NokeyName::decode(name);
  if (!nokey) return std::nullopt;
  // The name carries the entry's DIR_ITEM hash (presented_name puts the
  // 64-bit name hash in dirhash[0..1]); a whole ciphertext gives it anyway.
  const uint64_t hash = nokey->is_abbreviated()
                            ? (uint64_t{nokey->minor_hash()} << 32) | nokey->hash()
                            : name_hash(nokey->ciphertext_bytes());
  return find_entry_if(dir, hash,
                       [&](const DirEntry& entry) { return nokey->matches(entry.name); });
}

Result<fscrypt::FileInfoPtr> Subvolume::name_key(InodeState& dir) {
  auto context = crypt_context(dir);
  if (!context) return std::unexpected(context.error());
  if (!*context) return fscrypt::FileInfoPtr();
  auto info = crypt_info(dir);
  if (!info && info.error().errno_value() == ENOKEY) return fscrypt::FileInfoPtr();
  return info;
}

Result<std::string> Subvolume::presented_name(const fscrypt::FileInfoPtr& dir_info,
                                              ByteSpan stored) {
  if (dir_info) {
    auto name = fscrypt::decrypt_name(dir_info->cipher(), dir_info->iv_params(), stored);
    if (!name)
      return fail(EUCLEAN, "an encrypted name does not decrypt: " + name.error().message());
    return name;
  }
  // The kernel's no-key name; its dirhash fields carry the DIR_ITEM hash,
  // as btrfs passes its name hash, so that a lookup of an abbreviated name
  // finds the item.
  const uint64_t hash = name_hash(stored);
  return fscrypt::encode_nokey_name(stored, static_cast<uint32_t>(hash),
                                    static_cast<uint32_t>(hash >> 32));
}

Result<Bytes> Subvolume::stored_symlink_target(InodeState& link, std::string_view target) {
  auto context = crypt_context(link);
  if (!context) return std::unexpected(context.error());
  if (!*context) return Bytes(target.begin(), target.end());
  auto info = crypt_info(link);
  if (!info) return std::unexpected(info.error());
  return encrypted_symlink_record(**info, target);
}

Result<Bytes> encrypted_symlink_record(const fscrypt::FileInfo& info, std::string_view target) {
  return fscrypt::encrypt_symlink(info.cipher(), info.iv_params(), target,
                                  fscrypt::filename_padding(fscrypt::policy_flags(info.policy())),
                                  kMaxSymlinkRecord);
}

Status Subvolume::check_symlink_fits(InodeState& dir, std::string_view target) {
  auto context = crypt_context(dir);
  if (!context) return std::unexpected(context.error());
  if (!*context) return ok();
  auto size = fscrypt::encrypted_symlink_size(
      target.size(), fscrypt::filename_padding(fscrypt::policy_flags((*context)->policy)),
      kMaxSymlinkRecord);
  if (!size) return std::unexpected(size.error());
  return ok();
}

Result<std::string> Subvolume::presented_symlink_target(InodeState& link, const Bytes& stored) {
  auto context = crypt_context(link);
  if (!context) return std::unexpected(context.error());
  if (!*context) return std::string(stored.begin(), stored.end());
  auto info = crypt_info(link);
  if (!info) {
    if (info.error().errno_value() != ENOKEY) return std::unexpected(info.error());
    return fscrypt::nokey_symlink_target(stored);
  }
  auto target = fscrypt::decrypt_symlink((*info)->cipher(), (*info)->iv_params(), stored);
  if (!target) {
    return fail(EUCLEAN, "symlink " + std::to_string(link.ino) +
                             ": the target does not decrypt: " + target.error().message());
  }
  return target;
}

Status Subvolume::check_permitted_context(InodeState& dir, InodeState& child) {
  auto dir_context = crypt_context(dir);
  if (!dir_context) return std::unexpected(dir_context.error());
  if (!*dir_context || !encryptable(child.item->mode)) return ok();
  auto child_context = crypt_context(child);
  if (!child_context) return std::unexpected(child_context.error());
  if (!*child_context) return fail(EXDEV, "an encrypted directory takes only encrypted files");
  const fscrypt::Policy& child_policy = (*child_context)->policy;
  const fscrypt::Policy& dir_policy = (*dir_context)->policy;
  if (fscrypt::policies_equal(child_policy, dir_policy)) return ok();
  // While a rotation moves a tree to a new key (rekey), a file it has not
  // reached yet may still move into a directory it has: under the key the
  // directory was under just before, which the rotation will replace (not
  // any older one: a key rotated away from twice stays out).
  if (same_policy_but_key(child_policy, dir_policy) && !dir.previous_keys.empty() &&
      dir.previous_keys.back() == policy_key(child_policy)) {
    return ok();
  }
  return fail(EXDEV, "an encrypted directory takes only files of its own policy");
}

Result<std::optional<InodeKeySet>> Subvolume::key_set(InodeState& state) {
  auto context = crypt_context(state);
  if (!context) return std::unexpected(context.error());
  if (!*context) return std::nullopt;
  return InodeKeySet{policy_key((*context)->policy), state.previous_keys};
}

std::vector<uint64_t> Subvolume::inodes_using_key(const fscrypt::KeySpecifier& key, bool evict) {
  std::vector<uint64_t> known;
  for (auto& [ino, state] : inodes_) {
    if (!state->crypt_context_loaded || !state->crypt_context) continue;
    if (fscrypt::policy_key_specifier(state->crypt_context->policy) != key) continue;
    if (state->lookups > 0) known.push_back(node_of(ino));
    if (evict && state->opens == 0) state->crypt_info.reset();
  }
  return known;
}

Result<std::vector<CachedName>> Subvolume::known_names_using_key(const fscrypt::KeySpecifier& key) {
  std::vector<CachedName> names;
  for (auto& [dir, state] : inodes_) {
    // A directory the kernel has no reference to holds no cached entries;
    // one it looked into has its context loaded (lookup and readdir load it).
    if (state->lookups == 0 || !S_ISDIR(state->item->mode)) continue;
    if (!state->crypt_context_loaded || !state->crypt_context) continue;
    if (fscrypt::policy_key_specifier(state->crypt_context->policy) != key) continue;
    auto dir_info = name_key(*state);
    if (!dir_info) return std::unexpected(dir_info.error());
    ECFS_TRY(for_each_dir_entry(dir, 0, [&](const DirEntryView& entry) -> Result<bool> {
      // Subvolume roots are another subvolume's inodes: their names are
      // listed whenever the kernel knows the directory.
      if (!names_subvolume(entry.type)) {
        auto child = inodes_.find(entry.ino);
        if (child == inodes_.end() || child->second->lookups == 0) return true;
      }
      auto name = presented_name(*dir_info, entry.name);
      if (!name) return std::unexpected(name.error());
      names.push_back({node_of(dir), std::move(*name)});
      return true;
    }));
  }
  return names;
}

}  // namespace ecfs::fs
