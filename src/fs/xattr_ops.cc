// FileSystem: extended attributes (XATTR_ITEM, keyed by the name's hash;
// colliding names share an item; values too large for a leaf in XATTR_VALUE
// items) and the POSIX ACLs stored in them.
#include <algorithm>
#include <string>

#include "fs/filesystem.h"
#include "fs/fs_internal.h"
#include "fs/posix_acl.h"
#include "store/node.h"

namespace ecfs::fs {
namespace {

using store::Key;

constexpr std::string_view kAccessAcl = "system.posix_acl_access";
constexpr std::string_view kDefaultAcl = "system.posix_acl_default";
// The largest value Linux passes (XATTR_SIZE_MAX).
constexpr size_t kMaxXattrValue = 65536;

// The namespaces Linux defines for regular filesystems (man 7 xattr).
Status check_xattr_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return fail(name.empty() ? EINVAL : ERANGE, "invalid xattr name length");
  }
  if (name == kAccessAcl || name == kDefaultAcl) return ok();
  for (std::string_view prefix : {"user.", "trusted.", "security."}) {
    if (name.starts_with(prefix) && name.size() > prefix.size()) return ok();
  }
  return fail(EOPNOTSUPP, "unsupported xattr namespace");
}

}  // namespace

Result<std::optional<Bytes>> Subvolume::find_xattr(uint64_t ino, std::string_view name) {
  auto fs_tree = read_tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  auto data = fs_tree->find({ino, kXattrItemKey, name_hash(as_bytes(name))});
  if (!data) return std::unexpected(data.error());
  if (!*data) return std::nullopt;
  auto entries = decode_xattr_entries(**data);
  if (!entries) return std::unexpected(entries.error());
  for (XattrEntry& entry : *entries) {
    if (entry.name != name) continue;
    if (!entry.out_of_line) return std::move(entry.value);
    auto value = read_xattr_value(*fs_tree, ino, *entry.out_of_line);
    if (!value) return std::unexpected(value.error());
    return std::move(*value);
  }
  return std::nullopt;
}

Result<Bytes> read_xattr_value(const store::BTree& fs_tree, uint64_t ino,
                               const XattrOutOfLine& where) {
  Bytes value;
  value.reserve(where.length);
  const std::string what = "inode " + std::to_string(ino) + ": out-of-line xattr value " +
                           std::to_string(where.value_id);
  for (uint64_t part = 0; value.size() < where.length; ++part) {
    if (part == kXattrValueIdStride) return fail(EUCLEAN, what + " has too many parts");
    auto data = fs_tree.find({ino, kXattrValueKey, where.value_id + part});
    if (!data) return std::unexpected(data.error());
    if (!*data || (*data)->empty())
      return fail(EUCLEAN, what + " misses part " + std::to_string(part));
    if ((*data)->size() > where.length - value.size()) {
      return fail(EUCLEAN, what + " is longer than its entry says");
    }
    value.insert(value.end(), (*data)->begin(), (*data)->end());
  }
  return value;
}

namespace {

// Removes the XATTR_VALUE items of an out-of-line value.
Status remove_xattr_value(store::BTree& fs_tree, uint64_t ino, const XattrOutOfLine& where) {
  std::vector<Key> parts;
  ECFS_TRY(fs_tree.for_each({ino, kXattrValueKey, where.value_id},
                            {ino, kXattrValueKey, where.value_id + kXattrValueIdStride - 1},
                            [&](const Key& key, ByteSpan) {
                              parts.push_back(key);
                              return true;
                            }));
  for (const Key& key : parts) ECFS_TRY(fs_tree.remove(key));
  return ok();
}

// Stores `value` in XATTR_VALUE items of parts that fill half a leaf, at the
// first free id from the name's hash on.
Result<XattrOutOfLine> write_xattr_value(store::BTree& fs_tree, uint64_t ino, uint64_t hash,
                                         ByteSpan value, uint32_t node_size) {
  const size_t part_size = store::max_item_data_size(node_size) / 2;
  if (value.size() > part_size * kXattrValueIdStride) {
    return fail(E2BIG, "xattr value too large for this filesystem's node size");
  }
  uint64_t id = hash - hash % kXattrValueIdStride;
  for (;; id += kXattrValueIdStride) {
    bool taken = false;
    ECFS_TRY(fs_tree.for_each({ino, kXattrValueKey, id},
                              {ino, kXattrValueKey, id + kXattrValueIdStride - 1},
                              [&](const Key&, ByteSpan) {
                                taken = true;
                                return false;
                              }));
    if (!taken) break;
  }
  for (size_t offset = 0, part = 0; offset < value.size(); offset += part_size, ++part) {
    const size_t length = std::min(part_size, value.size() - offset);
    ECFS_TRY(fs_tree.put({ino, kXattrValueKey, id + part}, value.subspan(offset, length)));
  }
  return XattrOutOfLine{id, static_cast<uint32_t>(value.size())};
}

}  // namespace

Status Subvolume::put_xattr(uint64_t ino, std::string_view name, std::optional<ByteSpan> value) {
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  const uint64_t hash = name_hash(as_bytes(name));
  const Key key{ino, kXattrItemKey, hash};
  auto data = (*fs_tree)->find(key);
  if (!data) return std::unexpected(data.error());
  std::vector<XattrEntry> entries;
  if (*data) {
    auto decoded = decode_xattr_entries(**data);
    if (!decoded) return std::unexpected(decoded.error());
    entries = std::move(*decoded);
  }
  for (const XattrEntry& entry : entries) {
    if (entry.name == name && entry.out_of_line) {
      ECFS_TRY(remove_xattr_value(**fs_tree, ino, *entry.out_of_line));
    }
  }
  std::erase_if(entries, [&](const XattrEntry& entry) { return entry.name == name; });
  if (value) {
    XattrEntry entry{std::string(name), {}, std::nullopt};
    // A value whose entry fits a leaf stays in it (as every image before
    // out-of-line values had it); a larger one goes out of line.
    const size_t entry_size = 6 + name.size() + value->size();
    if (entry_size <= store::max_item_data_size(volume_.engine().node_size())) {
      entry.value.assign(value->begin(), value->end());
    } else {
      auto written = write_xattr_value(**fs_tree, ino, hash, *value, volume_.engine().node_size());
      if (!written) return std::unexpected(written.error());
      entry.out_of_line = *written;
      ECFS_TRY(volume_.engine().enable_incompat_features(store::kIncompatLargeXattrValues));
    }
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) {
    if (*data) ECFS_TRY((*fs_tree)->remove(key));
    return ok();
  }
  Bytes encoded;
  for (const XattrEntry& entry : entries) append_xattr_entry(entry, encoded);
  return (*fs_tree)->put(key, encoded);
}

Status Subvolume::inherit_acls(uint64_t parent, uint64_t ino, InodeState& state) {
  auto stored = find_xattr(parent, kDefaultAcl);
  if (!stored) return std::unexpected(stored.error());
  if (!*stored) return ok();
  auto acl = decode_posix_acl(**stored);
  if (!acl)
    return fail(EUCLEAN, "directory " + std::to_string(parent) + ": " + acl.error().message());
  if (S_ISDIR(state.item->mode)) ECFS_TRY(put_xattr(ino, kDefaultAcl, ByteSpan(**stored)));
  const uint32_t mode = state.item->mode;
  const uint32_t masked = acl_apply_create_mode(*acl, mode & 0777);
  state.item->mode = (mode & ~0777u) | masked;
  mark_dirty(state);
  if (acl_equivalent_mode(*acl)) return ok();  // the mode says it all
  return put_xattr(ino, kAccessAcl, ByteSpan(encode_posix_acl(*acl)));
}

Status Subvolume::sync_acl_with_mode(uint64_t ino, uint32_t mode) {
  auto stored = find_xattr(ino, kAccessAcl);
  if (!stored) return std::unexpected(stored.error());
  if (!*stored) return ok();
  auto acl = decode_posix_acl(**stored);
  if (!acl) return fail(EUCLEAN, "inode " + std::to_string(ino) + ": " + acl.error().message());
  acl_apply_chmod(*acl, mode);
  return put_xattr(ino, kAccessAcl, ByteSpan(encode_posix_acl(*acl)));
}

Status Subvolume::setxattr(uint64_t ino_node, std::string_view name, ByteSpan value, int flags) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  ECFS_TRY(check_writable());
  ECFS_TRY(check_xattr_name(name));
  if (value.size() > kMaxXattrValue) return fail(E2BIG, "xattr value larger than 64 KiB");
  if ((flags & ~(kXattrCreate | kXattrReplace)) != 0) return fail(EINVAL, "invalid xattr flags");
  ECFS_TRY(check_space(0));
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  InodeState& state = **found;

  Bytes stored_value(value.begin(), value.end());
  bool remove = false;
  if (name == kAccessAcl || name == kDefaultAcl) {
    auto acl = decode_posix_acl(value);
    if (!acl) return std::unexpected(acl.error());
    if (name == kDefaultAcl && !S_ISDIR(state.item->mode)) {
      return fail(EACCES, "default ACLs exist only on directories");
    }
    if (name == kAccessAcl) {
      // The mode shows the ACL's owner, group-class and other bits; an ACL
      // the mode expresses fully is not stored (posix_acl_update_mode).
      state.item->mode = (state.item->mode & ~0777u) | acl_mode_bits(*acl);
      remove = acl_equivalent_mode(*acl).has_value();
    }
    stored_value = encode_posix_acl(*acl);
  }

  auto existing = find_xattr(ino, name);
  if (!existing) return std::unexpected(existing.error());
  if ((flags & kXattrCreate) && *existing) return fail(EEXIST, "xattr exists");
  if ((flags & kXattrReplace) && !*existing) return fail(ENODATA, "no such xattr");

  auto put =
      remove ? put_xattr(ino, name, std::nullopt) : put_xattr(ino, name, ByteSpan(stored_value));
  if (!put) {
    if (put.error().errno_value() == EOVERFLOW) {
      return abort_change(Error(E2BIG, "xattrs with colliding names too large for one item"));
    }
    return abort_change(put.error());
  }
  touch(state, false, true);
  return ok();
}

Result<Bytes> Subvolume::getxattr(uint64_t ino_node, std::string_view name) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  ECFS_TRY(check_xattr_name(name));
  ECFS_TRY(inode(ino));
  auto value = find_xattr(ino, name);
  if (!value) return std::unexpected(value.error());
  if (!*value) return fail(ENODATA, "no such xattr");
  return std::move(**value);
}

Result<std::string> Subvolume::listxattr(uint64_t ino_node) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  ECFS_TRY(inode(ino));
  auto fs_tree = read_tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  std::string names;
  Status decoded = ok();
  ECFS_TRY(fs_tree->for_each({ino, kXattrItemKey, 0}, {ino, kXattrItemKey, UINT64_MAX},
                             [&](const Key&, ByteSpan data) {
                               auto entries = decode_xattr_entries(data);
                               if (!entries) {
                                 decoded = std::unexpected(entries.error());
                                 return false;
                               }
                               for (const XattrEntry& entry : *entries) {
                                 names += entry.name;
                                 names.push_back('\0');
                               }
                               return true;
                             }));
  ECFS_TRY(decoded);
  return names;
}

Status Subvolume::removexattr(uint64_t ino_node, std::string_view name) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  ECFS_TRY(check_writable());
  ECFS_TRY(check_xattr_name(name));
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  auto existing = find_xattr(ino, name);
  if (!existing) return std::unexpected(existing.error());
  if (!*existing) return fail(ENODATA, "no such xattr");
  if (auto removed = put_xattr(ino, name, std::nullopt); !removed) {
    return abort_change(removed.error());
  }
  touch(**found, false, true);
  return ok();
}

}  // namespace ecfs::fs
