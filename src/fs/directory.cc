// FileSystem: names. Directory entries live twice, as btrfs keeps them: in a
// DIR_ITEM keyed by the name's hash (lookup) and in a DIR_INDEX keyed by a
// per-directory sequence number (readdir in creation order, stable cookies);
// each inode has an INODE_REF per parent naming it (nlink, "..", fsck).
#include <dirent.h>
#include <fcntl.h>

#include <algorithm>
#include <optional>
#include <string>

#include "fs/file_data.h"
#include "fs/filesystem.h"
#include "fs/fs_internal.h"

namespace ecfs::fs {
namespace {

using store::Key;

// The most links an inode may have (ext4's EXT4_LINK_MAX); more → EMLINK.
constexpr uint32_t kMaxLinks = 65000;
// A symlink target is at most PATH_MAX - 1 bytes (and must fit in one item).
constexpr size_t kMaxSymlinkTarget = 4095;

// Name rules the kernel leaves to the filesystem: length (ENAMETOOLONG).
Status check_name(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return fail(EINVAL, "invalid name");
  if (name.size() > kMaxNameLength) return fail(ENAMETOOLONG, "name longer than 255 bytes");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return fail(EINVAL, "name with '/' or NUL");
  }
  return ok();
}

bool same_name(const Bytes& stored, ByteSpan name) {
  return stored.size() == name.size() && std::equal(stored.begin(), stored.end(), name.begin());
}

// Takes the entry named `name` out of directory `dir`'s DIR_ITEM for that
// name's hash (the item goes when it was the last).
Status remove_hashed_name(store::BTree& t, uint64_t dir, ByteSpan name) {
  const Key item_key{dir, kDirItemKey, name_hash(name)};
  auto item_data = t.find(item_key);
  if (!item_data) return std::unexpected(item_data.error());
  if (!*item_data) return fail(EUCLEAN, "directory entry without its name-hash item");
  auto entries = decode_dir_entries(**item_data);
  if (!entries) return std::unexpected(entries.error());
  std::erase_if(*entries, [&](const DirEntry& e) { return same_name(e.name, name); });
  if (entries->empty()) return t.remove(item_key);
  Bytes rest;
  for (const DirEntry& e : *entries) append_dir_entry(e, rest);
  return t.update(item_key, rest);
}

// The INODE_REF record of `entry` (of directory `dir`) renamed to
// `new_name`, or removed with nullopt (the item goes with its last record).
Status change_inode_ref(store::BTree& t, uint64_t dir, const DirEntry& entry,
                        const std::optional<Bytes>& new_name) {
  const Key ref_key{entry.ino, kInodeRefKey, dir};
  auto ref_data = t.find(ref_key);
  if (!ref_data) return std::unexpected(ref_data.error());
  if (!*ref_data) return fail(EUCLEAN, "directory entry without its inode back reference");
  auto refs = decode_inode_refs(**ref_data);
  if (!refs) return std::unexpected(refs.error());
  Bytes rest;
  for (InodeRef& ref : *refs) {
    if (ref.index == entry.index) {
      if (!new_name) continue;
      ref.name = *new_name;
    }
    append_inode_ref(ref, rest);
  }
  if (rest.empty()) return t.remove(ref_key);
  return t.update(ref_key, rest);
}

// Adds `entry` to its name hash's DIR_ITEM (made when it is the first).
Status add_hashed_name(store::BTree& t, uint64_t dir, const DirEntry& entry) {
  const Key item_key{dir, kDirItemKey, name_hash(entry.name)};
  auto existing = t.find(item_key);
  if (!existing) return std::unexpected(existing.error());
  Bytes item_data = existing->value_or(Bytes{});
  append_dir_entry(entry, item_data);
  return t.put(item_key, item_data);
}

}  // namespace

Result<std::optional<DirEntry>> Subvolume::find_entry(uint64_t dir, ByteSpan name) {
  auto fs_tree = read_tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  auto data = fs_tree->find({dir, kDirItemKey, name_hash(name)});
  if (!data) return std::unexpected(data.error());
  if (!*data) return std::nullopt;
  auto entries = decode_dir_entries(**data);
  if (!entries) return std::unexpected(entries.error());
  for (DirEntry& entry : *entries) {
    if (same_name(entry.name, name)) return std::move(entry);
  }
  return std::nullopt;
}

Status Subvolume::add_entry(uint64_t dir, ByteSpan name, uint64_t ino, uint8_t type) {
  auto dir_state = inode(dir);
  if (!dir_state) return std::unexpected(dir_state.error());
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  store::BTree& t = **fs_tree;
  InodeItem& dir_item = *(*dir_state)->item;
  DirEntry entry{ino, dir_item.next_dir_index++, type, Bytes(name.begin(), name.end())};
  ECFS_TRY(add_hashed_name(t, dir, entry));

  Bytes index_data;
  append_dir_entry(entry, index_data);
  ECFS_TRY(t.insert({dir, kDirIndexKey, entry.index}, index_data));

  // A subvolume's root has no INODE_REF: the catalog names it.
  if (!names_subvolume(type)) {
    const Key ref_key{ino, kInodeRefKey, dir};
    auto refs = t.find(ref_key);
    if (!refs) return std::unexpected(refs.error());
    Bytes ref_data = refs->value_or(Bytes{});
    append_inode_ref({entry.index, entry.name}, ref_data);
    ECFS_TRY(t.put(ref_key, ref_data));
  }

  dir_item.size += 2 * name.size();
  touch(**dir_state, true, true);
  return ok();
}

Status Subvolume::remove_entry(uint64_t dir, const DirEntry& entry) {
  auto dir_state = inode(dir);
  if (!dir_state) return std::unexpected(dir_state.error());
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  store::BTree& t = **fs_tree;
  ECFS_TRY(remove_hashed_name(t, dir, entry.name));
  ECFS_TRY(t.remove({dir, kDirIndexKey, entry.index}));
  if (names_subvolume(entry.type)) return finish_entry_removal(**dir_state, entry);
  ECFS_TRY(change_inode_ref(t, dir, entry, std::nullopt));
  return finish_entry_removal(**dir_state, entry);
}

Status Subvolume::replace_stored_name(uint64_t dir, const DirEntry& entry, ByteSpan new_name) {
  auto dir_state = inode(dir);
  if (!dir_state) return std::unexpected(dir_state.error());
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  store::BTree& t = **fs_tree;
  DirEntry renamed = entry;
  renamed.name.assign(new_name.begin(), new_name.end());
  ECFS_TRY(remove_hashed_name(t, dir, entry.name));
  ECFS_TRY(add_hashed_name(t, dir, renamed));
  Bytes index_data;
  append_dir_entry(renamed, index_data);
  ECFS_TRY(t.update({dir, kDirIndexKey, entry.index}, index_data));
  if (!names_subvolume(entry.type)) ECFS_TRY(change_inode_ref(t, dir, entry, renamed.name));
  InodeItem& dir_item = *(*dir_state)->item;
  dir_item.size = dir_item.size - 2 * std::min<uint64_t>(dir_item.size / 2, entry.name.size()) +
                  2 * renamed.name.size();
  mark_dirty(**dir_state);
  return ok();
}

Status Subvolume::finish_entry_removal(InodeState& dir, const DirEntry& entry) {
  InodeItem& dir_item = *dir.item;
  dir_item.size -= std::min<uint64_t>(dir_item.size, 2 * entry.name.size());
  touch(dir, true, true);
  return ok();
}

Status Subvolume::remove_subvolume_entry(uint64_t dir, const DirEntry& entry, bool require_empty) {
  auto dir_state = inode(dir);
  if (!dir_state) return std::unexpected(dir_state.error());
  // The host checks the subvolume (empty when asked, holding no other
  // subvolume) and makes it a dead root; then the name goes.
  ECFS_TRY(host_.make_subvolume_dead(entry.ino, require_empty));
  auto change = [&]() -> Status {
    ECFS_TRY(remove_entry(dir, entry));
    if ((*dir_state)->item->nlink > 2) --(*dir_state)->item->nlink;
    return ok();
  };
  if (auto changed = change(); !changed) return abort_change(changed.error());
  return ok();
}

Status Subvolume::add_subvolume_entry(uint64_t dir, ByteSpan stored_name, uint64_t tree) {
  auto dir_state = inode(dir);
  if (!dir_state) return std::unexpected(dir_state.error());
  ECFS_TRY(add_entry(dir, stored_name, tree, DT_DIR | kDirEntrySubvolume));
  ++(*dir_state)->item->nlink;
  return ok();
}

Status Subvolume::rename_subvolume_entry(uint64_t parent, const DirEntry& src, uint64_t new_parent,
                                         const Bytes& new_stored,
                                         const std::optional<DirEntry>& target, uint32_t flags) {
  // A subvolume's name moves inside its parent subvolume; it does not swap
  // places with another entry and does not replace one that names a
  // subvolume (delete that first).
  if (flags & kRenameExchange) {
    return fail(EXDEV, "a subvolume does not exchange places with another entry");
  }
  if (!names_subvolume(src.type)) return fail(EBUSY, "the target is a subvolume");
  if (target) {
    if (flags & kRenameNoReplace) return fail(EEXIST, "file exists");
    if (names_subvolume(target->type)) return fail(EBUSY, "the target is a subvolume");
    if (listed_type(target->type) != DT_DIR) return fail(ENOTDIR, "not a directory");
    auto empty = is_empty_directory(target->ino);
    if (!empty) return std::unexpected(empty.error());
    if (!*empty) return fail(ENOTEMPTY, "directory not empty");
  }
  auto new_dir = inode(new_parent);
  if (!new_dir) return std::unexpected(new_dir.error());
  auto context = crypt_context(**new_dir);
  if (!context) return std::unexpected(context.error());
  if (*context) return fail(EXDEV, "a subvolume is not named in an encrypted directory");
  auto change = [&]() -> Status {
    if (target) ECFS_TRY(drop_name(new_parent, *target));
    ECFS_TRY(remove_entry(parent, src));
    const uint64_t index = (*new_dir)->item->next_dir_index;
    ECFS_TRY(add_entry(new_parent, new_stored, src.ino, src.type));
    if (parent != new_parent) {
      auto from = inode(parent);
      if (!from) return std::unexpected(from.error());
      --(*from)->item->nlink;
      ++(*new_dir)->item->nlink;
    }
    return host_.relink_subvolume(
        src.ino, store::SubvolumeLink{
                     .parent = tree_, .dirid = new_parent, .index = index, .name = new_stored});
  };
  if (auto changed = change(); !changed) return abort_change(changed.error());
  return ok();
}

Result<uint64_t> Subvolume::parent_of(uint64_t dir) {
  if (dir == kRootDirIno) return kRootDirIno;
  auto fs_tree = read_tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  auto ref = fs_tree->lower_bound({dir, kInodeRefKey, 0});
  if (!ref) return std::unexpected(ref.error());
  if (!*ref || (*ref)->key.objectid != dir || (*ref)->key.type != kInodeRefKey) {
    return fail(EUCLEAN, "directory " + std::to_string(dir) + " has no parent reference");
  }
  return (*ref)->key.offset;
}

Result<uint64_t> Subvolume::parent_node_of(uint64_t dir) {
  if (dir == kRootDirIno) return host_.parent_of_subvolume_root(tree_);
  auto up = parent_of(dir);
  if (!up) return std::unexpected(up.error());
  return node_of(*up);
}

Result<bool> Subvolume::is_empty_directory(uint64_t dir) {
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  auto found = (*fs_tree)->lower_bound({dir, kDirIndexKey, 0});
  if (!found) return std::unexpected(found.error());
  return !*found || (*found)->key.objectid != dir || (*found)->key.type != kDirIndexKey;
}

Status Subvolume::drop_name(uint64_t parent, const DirEntry& entry) {
  auto target = inode(entry.ino);
  if (!target) return std::unexpected(target.error());
  const bool is_dir = S_ISDIR((*target)->item->mode);
  ECFS_TRY(remove_entry(parent, entry));
  InodeItem& item = *(*target)->item;
  if (is_dir) {
    item.nlink = 0;  // its "." and its name in the parent
    auto parent_state = inode(parent);
    if (!parent_state) return std::unexpected(parent_state.error());
    if ((*parent_state)->item->nlink > 2) --(*parent_state)->item->nlink;
  } else if (item.nlink > 0) {
    --item.nlink;
  }
  touch(**target, false, true);
  if (item.nlink > 0) return ok();
  if ((*target)->lookups > 0 || (*target)->opens > 0) return add_orphan(entry.ino);
  return delete_inode(entry.ino);
}

// ---- operations ----

Result<Attributes> Subvolume::lookup(uint64_t parent_node, std::string_view name) {
  const uint64_t parent = local(parent_node);
  std::lock_guard lock(mutex_);
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  if (name.size() > kMaxNameLength) return fail(ENAMETOOLONG, "name longer than 255 bytes");
  auto dir = inode(parent);
  if (!dir) return std::unexpected(dir.error());
  // "." of any inode is the inode itself: how the kernel finds an inode by
  // number for open_by_handle_at(2) and NFS (fs/fuse/inode.c
  // fuse_get_dentry); it fails with ENOENT once the inode is gone.
  if (name == ".") return entry_of(parent, **dir);
  if (!S_ISDIR((*dir)->item->mode)) return fail(ENOTDIR, "not a directory");
  uint64_t target = 0;
  if (name == "..") {
    // The parent of a subvolume's root is a directory of another one.
    if (parent == kRootDirIno) {
      auto up = host_.parent_of_subvolume_root(tree_);
      if (!up) return std::unexpected(up.error());
      return host_.enter_node(*up);
    }
    auto up = parent_of(parent);
    if (!up) return std::unexpected(up.error());
    target = *up;
  } else {
    auto entry = find_named(parent, **dir, name);
    if (!entry) return std::unexpected(entry.error());
    if (!*entry) return fail(ENOENT, "no such file or directory");
    if (names_subvolume((*entry)->type)) return host_.enter_subvolume((*entry)->ino);
    target = (*entry)->ino;
  }
  auto state = inode(target);
  if (!state) {
    if (state.error().errno_value() == ENOENT) {
      return fail(EUCLEAN, "directory entry names a missing inode");
    }
    return std::unexpected(state.error());
  }
  return entry_of(target, **state);
}

Result<Attributes> Subvolume::make_node(uint64_t parent, std::string_view name, uint32_t mode,
                                        uint64_t rdev, std::string_view symlink_target,
                                        const Caller& caller) {
  ECFS_TRY(check_names_changeable());
  ECFS_TRY(check_name(name));
  ECFS_TRY(check_space(0));
  auto dir = inode(parent);
  if (!dir) return std::unexpected(dir.error());
  if (!S_ISDIR((*dir)->item->mode)) return fail(ENOTDIR, "not a directory");
  if ((*dir)->item->nlink == 0) return fail(ENOENT, "the directory was removed");
  // In an encrypted directory the name is stored encrypted, which needs the
  // directory's key (fscrypt_prepare_create: ENOKEY).
  auto stored = stored_name(**dir, name);
  if (!stored) return std::unexpected(stored.error());
  auto existing = find_entry(parent, *stored);
  if (!existing) return std::unexpected(existing.error());
  if (*existing) return fail(EEXIST, "file exists");
  if (S_ISDIR(mode) && (*dir)->item->nlink >= kMaxLinks) return fail(EMLINK, "too many links");
  if (S_ISLNK(mode) && symlink_target.size() > kMaxSymlinkTarget) {
    return fail(ENAMETOOLONG, "symlink target longer than 4095 bytes");
  }
  if (S_ISLNK(mode) && symlink_target.empty()) return fail(ENOENT, "empty symlink target");
  if (S_ISLNK(mode)) ECFS_TRY(check_symlink_fits(**dir, symlink_target));

  auto default_acl = find_xattr(parent, "system.posix_acl_default");
  if (!default_acl) return std::unexpected(default_acl.error());
  // Without a default ACL the umask applies; with one, the ACL replaces it
  // (POSIX.1e; the kernel's posix_acl_create).
  if (!*default_acl && !S_ISLNK(mode)) mode &= ~(caller.umask & 07777);

  auto created = create_inode(mode, rdev, caller, **dir);
  if (!created) return abort_change(created.error());
  InodeState& state = **created;
  const uint64_t ino = state.ino;
  if (auto inherited = inherit_encryption(**dir, state); !inherited) {
    return abort_change(inherited.error());
  }
  if (auto added = add_entry(parent, *stored, ino, dirent_type_of_mode(mode)); !added) {
    return abort_change(added.error());
  }
  if (S_ISDIR(mode)) ++(*dir)->item->nlink;
  if (S_ISLNK(mode)) {
    auto fs_tree = tree();
    if (!fs_tree) return abort_change(fs_tree.error());
    // An encrypted symlink stores the kernel's encrypted record, and i_size
    // is the record's size, as ext4 stores it (presented_attributes shows
    // the target's length).
    auto record = stored_symlink_target(state, symlink_target);
    if (!record) return abort_change(record.error());
    if (auto inserted = (*fs_tree)->insert({ino, kSymlinkTargetKey, 0}, *record); !inserted) {
      return abort_change(inserted.error());
    }
    state.item->size = record->size();
  }
  if (*default_acl && !S_ISLNK(mode)) {
    if (auto inherited = inherit_acls(parent, ino, state); !inherited) {
      return abort_change(inherited.error());
    }
  }
  return entry_of(ino, state);
}

Result<Attributes> Subvolume::mknod(uint64_t parent_node, std::string_view name, uint32_t mode,
                                    uint64_t rdev, const Caller& caller) {
  const uint64_t parent = local(parent_node);
  std::lock_guard lock(mutex_);
  const uint32_t type = mode & S_IFMT;
  if (type == 0) mode |= S_IFREG;  // mknod(2): a zero type means a regular file
  if (type != 0 && type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR &&
      type != S_IFBLK) {
    return fail(EINVAL, "mknod of an unsupported file type");
  }
  if (type != S_IFCHR && type != S_IFBLK) rdev = 0;
  return make_node(parent, name, mode, rdev, {}, caller);
}

Result<Attributes> Subvolume::mkdir(uint64_t parent_node, std::string_view name, uint32_t mode,
                                    const Caller& caller) {
  const uint64_t parent = local(parent_node);
  std::lock_guard lock(mutex_);
  return make_node(parent, name, S_IFDIR | (mode & 07777), 0, {}, caller);
}

Result<Attributes> Subvolume::symlink(uint64_t parent_node, std::string_view name,
                                      std::string_view target, const Caller& caller) {
  const uint64_t parent = local(parent_node);
  std::lock_guard lock(mutex_);
  return make_node(parent, name, S_IFLNK | 0777, 0, target, caller);
}

Result<std::string> Subvolume::readlink(uint64_t ino_node) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto state = inode(ino);
  if (!state) return std::unexpected(state.error());
  if (!S_ISLNK((*state)->item->mode)) return fail(EINVAL, "not a symlink");
  auto fs_tree = read_tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  auto target = fs_tree->find({ino, kSymlinkTargetKey, 0});
  if (!target) return std::unexpected(target.error());
  if (!*target) return fail(EUCLEAN, "symlink " + std::to_string(ino) + " without a target");
  return presented_symlink_target(**state, **target);
}

Result<Attributes> Subvolume::link(uint64_t ino_node, uint64_t new_parent_node,
                                   std::string_view new_name) {
  const uint64_t ino = local(ino_node);
  const uint64_t new_parent = local(new_parent_node);
  std::lock_guard lock(mutex_);
  ECFS_TRY(check_names_changeable());
  ECFS_TRY(check_name(new_name));
  ECFS_TRY(check_space(0));
  auto target = inode(ino);
  if (!target) return std::unexpected(target.error());
  if (S_ISDIR((*target)->item->mode)) return fail(EPERM, "hard links to directories");
  if ((*target)->item->nlink == 0) return fail(ENOENT, "the file was removed");
  if ((*target)->item->nlink >= kMaxLinks) return fail(EMLINK, "too many links");
  auto dir = inode(new_parent);
  if (!dir) return std::unexpected(dir.error());
  if (!S_ISDIR((*dir)->item->mode)) return fail(ENOTDIR, "not a directory");
  if ((*dir)->item->nlink == 0) return fail(ENOENT, "the directory was removed");
  // fscrypt_prepare_link: the directory's key, and a file of its policy.
  auto stored = stored_name(**dir, new_name);
  if (!stored) return std::unexpected(stored.error());
  ECFS_TRY(check_permitted_context(**dir, **target));
  auto existing = find_entry(new_parent, *stored);
  if (!existing) return std::unexpected(existing.error());
  if (*existing) return fail(EEXIST, "file exists");
  if (auto added = add_entry(new_parent, *stored, ino, dirent_type_of_mode((*target)->item->mode));
      !added) {
    return abort_change(added.error());
  }
  ++(*target)->item->nlink;
  touch(**target, false, true);
  return entry_of(ino, **target);
}

Result<DirEntry> Subvolume::existing_entry(uint64_t dir, std::string_view name) {
  auto dir_state = inode(dir);
  if (!dir_state) return std::unexpected(dir_state.error());
  if (!S_ISDIR((*dir_state)->item->mode)) return fail(ENOTDIR, "not a directory");
  auto entry = find_named(dir, **dir_state, name);
  if (!entry) return std::unexpected(entry.error());
  if (!*entry) return fail(ENOENT, "no such file or directory");
  return std::move(**entry);
}

Status Subvolume::unlink(uint64_t parent_node, std::string_view name) {
  const uint64_t parent = local(parent_node);
  std::lock_guard lock(mutex_);
  await_writeout();  // it may remove or change file data
  ECFS_TRY(check_names_changeable());
  auto entry = existing_entry(parent, name);
  if (!entry) return std::unexpected(entry.error());
  if (listed_type(entry->type) == DT_DIR) return fail(EISDIR, "is a directory");
  if (auto dropped = drop_name(parent, *entry); !dropped) return abort_change(dropped.error());
  return ok();
}

Status Subvolume::rmdir(uint64_t parent_node, std::string_view name) {
  const uint64_t parent = local(parent_node);
  std::lock_guard lock(mutex_);
  await_writeout();  // it may remove or change file data
  ECFS_TRY(check_names_changeable());
  auto entry = existing_entry(parent, name);
  if (!entry) return std::unexpected(entry.error());
  if (listed_type(entry->type) != DT_DIR) return fail(ENOTDIR, "not a directory");
  // rmdir of a subvolume deletes it when its root directory is empty (as
  // btrfs does); `ecfs subvolume delete` deletes it whatever it holds.
  if (names_subvolume(entry->type)) {
    if (auto removed = remove_subvolume_entry(parent, *entry, /*require_empty=*/true); !removed) {
      return std::unexpected(removed.error());
    }
    return ok();
  }
  auto empty = is_empty_directory(entry->ino);
  if (!empty) return std::unexpected(empty.error());
  if (!*empty) return fail(ENOTEMPTY, "directory not empty");
  if (auto dropped = drop_name(parent, *entry); !dropped) return abort_change(dropped.error());
  return ok();
}

Status Subvolume::rename(uint64_t parent_node, std::string_view name, uint64_t new_parent_node,
                         std::string_view new_name, uint32_t flags) {
  const uint64_t parent = local(parent_node);
  const uint64_t new_parent = local(new_parent_node);
  std::lock_guard lock(mutex_);
  await_writeout();  // it may remove or change file data
  ECFS_TRY(check_names_changeable());
  if ((flags & ~(kRenameNoReplace | kRenameExchange)) != 0 ||
      (flags & kRenameNoReplace && flags & kRenameExchange)) {
    return fail(EINVAL, "invalid rename flags");
  }
  ECFS_TRY(check_name(new_name));
  ECFS_TRY(check_space(0));
  for (uint64_t dir : {parent, new_parent}) {
    auto state = inode(dir);
    if (!state) return std::unexpected(state.error());
    if (!S_ISDIR((*state)->item->mode)) return fail(ENOTDIR, "not a directory");
    if ((*state)->item->nlink == 0) return fail(ENOENT, "the directory was removed");
  }
  // fscrypt_prepare_rename: both directories' keys (ENOKEY).
  auto old_dir = inode(parent);
  if (!old_dir) return std::unexpected(old_dir.error());
  auto old_stored = stored_name(**old_dir, name);
  if (!old_stored) return std::unexpected(old_stored.error());
  auto new_dir = inode(new_parent);
  if (!new_dir) return std::unexpected(new_dir.error());
  auto new_stored = stored_name(**new_dir, new_name);
  if (!new_stored) return std::unexpected(new_stored.error());
  auto source = find_entry(parent, *old_stored);
  if (!source) return std::unexpected(source.error());
  if (!*source) return fail(ENOENT, "no such file or directory");
  auto target = find_entry(new_parent, *new_stored);
  if (!target) return std::unexpected(target.error());
  const DirEntry src = **source;
  if (names_subvolume(src.type) || (*target && names_subvolume((*target)->type))) {
    return rename_subvolume_entry(parent, src, new_parent, *new_stored,
                                  *target ? std::optional<DirEntry>(**target) : std::nullopt,
                                  flags);
  }
  // ... and only files of a directory's own policy may move into it (EXDEV).
  if (parent != new_parent) {
    auto moved = inode(src.ino);
    if (!moved) return std::unexpected(moved.error());
    ECFS_TRY(check_permitted_context(**new_dir, **moved));
    if ((flags & kRenameExchange) && *target) {
      auto other = inode((*target)->ino);
      if (!other) return std::unexpected(other.error());
      ECFS_TRY(check_permitted_context(**old_dir, **other));
    }
  }
  const bool src_is_dir = src.type == DT_DIR;
  // A directory cannot move below itself (the kernel's lock_rename check,
  // repeated here so that no caller can make a cycle).
  auto check_not_below_itself = [&](uint64_t moved_dir, uint64_t destination) -> Status {
    for (uint64_t dir = destination; dir != kRootDirIno;) {
      if (dir == moved_dir) return fail(EINVAL, "a directory cannot move into itself");
      auto up = parent_of(dir);
      if (!up) return std::unexpected(up.error());
      dir = *up;
    }
    return ok();
  };
  if (src_is_dir && parent != new_parent) ECFS_TRY(check_not_below_itself(src.ino, new_parent));

  if (flags & kRenameExchange) {
    if (!*target) return fail(ENOENT, "no such file or directory");
    const DirEntry dst = **target;
    if (dst.ino == src.ino && parent == new_parent) return ok();
    const bool dst_is_dir = dst.type == DT_DIR;
    if (dst_is_dir && parent != new_parent) ECFS_TRY(check_not_below_itself(dst.ino, parent));
    auto change = [&]() -> Status {
      ECFS_TRY(remove_entry(parent, src));
      ECFS_TRY(remove_entry(new_parent, dst));
      ECFS_TRY(add_entry(parent, *old_stored, dst.ino, dst.type));
      ECFS_TRY(add_entry(new_parent, *new_stored, src.ino, src.type));
      if (parent != new_parent && src_is_dir != dst_is_dir) {
        auto gains = inode(src_is_dir ? new_parent : parent);
        auto loses = inode(src_is_dir ? parent : new_parent);
        if (!gains) return std::unexpected(gains.error());
        if (!loses) return std::unexpected(loses.error());
        ++(*gains)->item->nlink;
        --(*loses)->item->nlink;
      }
      for (uint64_t ino : {src.ino, dst.ino}) {
        auto state = inode(ino);
        if (!state) return std::unexpected(state.error());
        touch(**state, false, true);
      }
      return ok();
    };
    if (auto changed = change(); !changed) return abort_change(changed.error());
    return ok();
  }

  if (*target) {
    if (flags & kRenameNoReplace) return fail(EEXIST, "file exists");
    const DirEntry& dst = **target;
    if (dst.ino == src.ino) return ok();  // two names of one inode: nothing to do (POSIX)
    if (src_is_dir) {
      if (dst.type != DT_DIR) return fail(ENOTDIR, "not a directory");
      auto empty = is_empty_directory(dst.ino);
      if (!empty) return std::unexpected(empty.error());
      if (!*empty) return fail(ENOTEMPTY, "directory not empty");
    } else if (dst.type == DT_DIR) {
      return fail(EISDIR, "is a directory");
    }
  }
  auto change = [&]() -> Status {
    if (*target) ECFS_TRY(drop_name(new_parent, **target));
    ECFS_TRY(remove_entry(parent, src));
    ECFS_TRY(add_entry(new_parent, *new_stored, src.ino, src.type));
    if (src_is_dir && parent != new_parent) {
      auto from = inode(parent);
      auto to = inode(new_parent);
      if (!from) return std::unexpected(from.error());
      if (!to) return std::unexpected(to.error());
      --(*from)->item->nlink;
      ++(*to)->item->nlink;
    }
    auto moved = inode(src.ino);
    if (!moved) return std::unexpected(moved.error());
    touch(**moved, false, true);
    return ok();
  };
  if (auto changed = change(); !changed) return abort_change(changed.error());
  return ok();
}

Result<uint64_t> Subvolume::listing_end(uint64_t ino_node) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto dir = inode(ino);
  if (!dir) return std::unexpected(dir.error());
  if (!S_ISDIR((*dir)->item->mode)) return fail(ENOTDIR, "not a directory");
  return (*dir)->item->next_dir_index;
}

Status Subvolume::readdir(uint64_t ino_node, uint64_t cookie,
                          const std::function<bool(const DirListEntry&)>& emit, uint64_t end) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  return list_entries(ino, cookie, end,
                      [&](const DirListEntry& entry, bool) { return emit(entry); });
}

Status Subvolume::readdir_plus(
    uint64_t ino_node, uint64_t cookie,
    const std::function<bool(const DirListEntry&, const Attributes*)>& emit, uint64_t end) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  return list_entries(ino, cookie, end, [&](const DirListEntry& entry, bool dot_or_dotdot) {
    // The root of another subvolume is listed without attributes: the
    // kernel looks it up when it goes in.
    if (dot_or_dotdot || split_node_id(entry.ino).tree != tree_) return emit(entry, nullptr);
    const uint64_t child = local(entry.ino);
    auto state = inode(child);
    // An entry whose inode cannot be read is still listed (readdir shows
    // it); a lookup of the name reports the error.
    if (!state) return emit(entry, nullptr);
    const Attributes attributes = presented_attributes(child, **state);
    if (!emit(entry, &attributes)) return false;
    ++(*state)->lookups;
    return true;
  });
}

Status Subvolume::list_entries(
    uint64_t ino, uint64_t cookie, uint64_t end,
    const std::function<bool(const DirListEntry&, bool dot_or_dotdot)>& emit) {
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto dir = inode(ino);
  if (!dir) return std::unexpected(dir.error());
  if (!S_ISDIR((*dir)->item->mode)) return fail(ENOTDIR, "not a directory");
  // A listing reads the directory once, where it starts.
  if (cookie == 0) note_access(**dir);
  // Cookies: 0 start, 1 after ".", 2 after "..", index + 1 after an entry
  // (DIR_INDEX numbers start at 2).
  if (cookie == 0 && !emit({".", node_of(ino), DT_DIR, 1}, true)) return ok();
  if (cookie <= 1) {
    auto up = parent_node_of(ino);
    if (!up) return std::unexpected(up.error());
    if (!emit({"..", *up, DT_DIR, 2}, true)) return ok();
  }
  const uint64_t first = std::max<uint64_t>(cookie, 2);
  // An encrypted directory lists decrypted names with its key, no-key
  // names without (fscrypt_fname_disk_to_usr).
  auto context = crypt_context(**dir);
  if (!context) return std::unexpected(context.error());
  auto dir_info = name_key(**dir);
  if (!dir_info) return std::unexpected(dir_info.error());
  DirListEntry listed;
  return for_each_dir_entry(
      ino, first,
      [&](const DirEntryView& entry) -> Result<bool> {
        if (*context) {
          auto name = presented_name(*dir_info, entry.name);
          if (!name) return std::unexpected(name.error());
          listed.name = std::move(*name);
        } else {
          listed.name.assign(entry.name.begin(), entry.name.end());
        }
        listed.ino =
            names_subvolume(entry.type) ? node_id(entry.ino, kRootDirIno) : node_of(entry.ino);
        listed.type = listed_type(entry.type);
        listed.cookie = entry.index + 1;
        return emit(listed, false);
      },
      end);
}

Status Subvolume::for_each_dir_entry(uint64_t dir, uint64_t first,
                                     const std::function<Result<bool>(const DirEntryView&)>& visit,
                                     uint64_t end) {
  if (end <= first) return ok();
  auto fs_tree = read_tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  Status stopped = ok();
  // for_each's last key is inclusive.
  ECFS_TRY(fs_tree->for_each({dir, kDirIndexKey, first}, {dir, kDirIndexKey, end - 1},
                             [&](const store::Key&, ByteSpan data) {
                               auto entry = decode_dir_index_entry(data);
                               if (!entry) {
                                 stopped = fail(EUCLEAN, "malformed directory index item");
                                 return false;
                               }
                               auto more = visit(*entry);
                               if (!more) {
                                 stopped = std::unexpected(more.error());
                                 return false;
                               }
                               return *more;
                             }));
  return stopped;
}

// ---- subvolume names ----

Result<Subvolume::NewName> Subvolume::prepare_subvolume_name(uint64_t dir_node,
                                                             std::string_view name) {
  const uint64_t dir = local(dir_node);
  ECFS_TRY(check_names_changeable());
  ECFS_TRY(check_name(name));
  auto dir_state = inode(dir);
  if (!dir_state) return std::unexpected(dir_state.error());
  if (!S_ISDIR((*dir_state)->item->mode)) return fail(ENOTDIR, "not a directory");
  if ((*dir_state)->item->nlink == 0) return fail(ENOENT, "the directory was removed");
  auto context = crypt_context(**dir_state);
  if (!context) return std::unexpected(context.error());
  if (*context) return fail(EXDEV, "a subvolume is not named in an encrypted directory");
  Bytes stored(name.begin(), name.end());
  auto existing = find_entry(dir, stored);
  if (!existing) return std::unexpected(existing.error());
  if (*existing) return fail(EEXIST, "file exists");
  return NewName{
      .dir = dir, .stored = std::move(stored), .index = (*dir_state)->item->next_dir_index};
}

Result<uint64_t> Subvolume::delete_subvolume_named(uint64_t dir_node, std::string_view name) {
  const uint64_t dir = local(dir_node);
  await_writeout();
  ECFS_TRY(check_names_changeable());
  auto entry = existing_entry(dir, name);
  if (!entry) return std::unexpected(entry.error());
  if (!names_subvolume(entry->type)) return fail(EINVAL, "not a subvolume");
  ECFS_TRY(remove_subvolume_entry(dir, *entry, /*require_empty=*/false));
  return entry->ino;
}

Result<bool> Subvolume::root_is_empty() { return is_empty_directory(kRootDirIno); }

Result<Attributes> Subvolume::take_entry(uint64_t node) {
  const uint64_t ino = local(node);
  auto state = inode(ino);
  if (!state) return std::unexpected(state.error());
  return entry_of(ino, **state);
}

Result<uint64_t> Subvolume::resolve_name(uint64_t dir_node, std::string_view name) {
  auto entry = existing_entry(local(dir_node), name);
  if (!entry) return std::unexpected(entry.error());
  if (names_subvolume(entry->type)) return node_id(entry->ino, kRootDirIno);
  return node_of(entry->ino);
}

Result<std::string> Subvolume::directory_path(uint64_t dir) {
  auto fs_tree = read_tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  std::string path;
  // Each step goes up one level; a cycle would be damage, so the walk is
  // bounded by PATH_MAX levels.
  for (int depth = 0; dir != kRootDirIno; ++depth) {
    if (depth > 4096) return fail(EUCLEAN, "directory " + std::to_string(dir) + ": a cycle");
    auto ref = fs_tree->lower_bound({dir, kInodeRefKey, 0});
    if (!ref) return std::unexpected(ref.error());
    if (!*ref || (*ref)->key.objectid != dir || (*ref)->key.type != kInodeRefKey) {
      return fail(EUCLEAN, "directory " + std::to_string(dir) + " has no parent reference");
    }
    auto refs = decode_inode_refs((*ref)->data);
    if (!refs || refs->empty()) return fail(EUCLEAN, "malformed INODE_REF");
    const Bytes& name = refs->front().name;
    path.insert(0, std::string(name.begin(), name.end()) + (path.empty() ? "" : "/"));
    dir = (*ref)->key.offset;
  }
  return path;
}

}  // namespace ecfs::fs
