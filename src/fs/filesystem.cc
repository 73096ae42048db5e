// FileSystem: the subvolumes of a volume, the calls that span them, key
// changes and the subvolume jobs. Everything inside one subvolume is
// Subvolume's (subvolume.cc, directory.cc, file_ops.cc, xattr_ops.cc,
// crypt_ops.cc).
#include "fs/filesystem.h"

#include <sys/stat.h>

#include <string>
#include <utility>

#include "base/log.h"
#include "fs/fs_internal.h"
#include "fs/snapshot_placeholders.h"
#include "store/tree_ids.h"

namespace ecfs::fs {

FileSystem::FileSystem(std::unique_ptr<store::Volume> volume, MountOptions options)
    : volume_(std::move(volume)),
      options_(std::move(options)),
      keyring_(fscrypt::KeyringOptions{.fs_uuid = volume_->engine().superblock().fsid}) {}

Result<std::unique_ptr<FileSystem>> FileSystem::open(block::BlockDevice& device,
                                                     const MountOptions& options) {
  store::VolumeOptions volume_options;
  volume_options.read_only = options.read_only;
  volume_options.commit_interval = options.commit_interval;
  volume_options.node_cache_capacity = options.node_cache_capacity;
  volume_options.discard = options.discard;
  auto volume = store::Volume::open(device, volume_options);
  if (!volume) return std::unexpected(volume.error());
  std::unique_ptr<FileSystem> fs(new FileSystem(std::move(*volume), options));
  {
    std::lock_guard lock(fs->volume_->mutex());
    auto top = fs->open_subvolume_locked(store::kFsTreeId);
    if (!top) return std::unexpected(top.error());
    if (fs->volume_->changed()) ECFS_TRY(fs->volume_->commit_locked());
  }
  if (!options.subvolume.empty()) {
    auto root = fs->resolve_subvolume_path(options.subvolume);
    if (!root) return std::unexpected(root.error());
    fs->root_tree_ = *root;
    fs->root_node_ = node_id(*root, kRootDirIno);
  }
  fs->volume_->start_background_jobs();
  return fs;
}

FileSystem::~FileSystem() {
  if (Status closed = close(); !closed) {
    log::error("unmounting failed: " + closed.error().to_string());
  }
}

Status FileSystem::close() { return volume_->close(); }

// ---- subvolume objects ----

Result<Subvolume*> FileSystem::open_subvolume_locked(uint64_t tree) {
  {
    std::shared_lock map(subvolumes_mutex_);
    if (auto it = subvolumes_.find(tree); it != subvolumes_.end() && !it->second->dropped()) {
      return it->second.get();
    }
  }
  if (volume_->closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  if (tree != store::kFsTreeId && (tree < store::kFirstFreeTreeId || tree > kMaxSubvolumeTreeId)) {
    return fail(ENOENT, "no such inode");
  }
  auto entry = volume_->catalog().get(tree);
  if (!entry) {
    if (entry.error().errno_value() == ENOENT) return fail(ESTALE, "the subvolume is gone");
    return std::unexpected(entry.error());
  }
  if (entry->deleted) return fail(ESTALE, "the subvolume was deleted");
  SubvolumeHost& host = *this;
  auto subvolume = std::make_unique<Subvolume>(*volume_, tree, entry->info.read_only(), options_,
                                               keyring_, host);
  ECFS_TRY(subvolume->start());
  Subvolume* raw = subvolume.get();
  volume_->add_client(*raw);
  std::unique_lock map(subvolumes_mutex_);
  // A dropped subvolume's id may be given again: its object stays (callers
  // may still hold it) but no longer answers for the id.
  if (auto it = subvolumes_.find(tree); it != subvolumes_.end()) {
    dropped_subvolumes_.push_back(std::move(it->second));
    subvolumes_.erase(it);
  }
  subvolumes_.emplace(tree, std::move(subvolume));
  return raw;
}

Result<Subvolume*> FileSystem::subvolume_for(uint64_t node) {
  const uint64_t tree = split_node_id(node).tree;
  // A dropped subvolume's object answers its node ids with errors until
  // the id is given to a new subvolume (open_subvolume_locked).
  {
    std::shared_lock map(subvolumes_mutex_);
    if (auto it = subvolumes_.find(tree); it != subvolumes_.end()) return it->second.get();
  }
  std::lock_guard lock(volume_->mutex());
  return open_subvolume_locked(tree);
}

Result<Subvolume*> FileSystem::same_subvolume(uint64_t a, uint64_t b) {
  if (split_node_id(a).tree != split_node_id(b).tree) {
    return fail(EXDEV, "the two are in different subvolumes");
  }
  return subvolume_for(a);
}

Result<uint64_t> FileSystem::resolve_subvolume_path(std::string_view path) {
  std::lock_guard lock(volume_->mutex());
  auto top = open_subvolume_locked(store::kFsTreeId);
  if (!top) return std::unexpected(top.error());
  uint64_t node = (*top)->root_node();
  Subvolume* current = *top;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view name = path.substr(start, end - start);
    start = end + 1;
    if (name.empty() || name == ".") continue;
    auto next = current->resolve_name(node, name);
    if (!next) return std::unexpected(next.error());
    node = *next;
    auto sub = open_subvolume_locked(split_node_id(node).tree);
    if (!sub) return std::unexpected(sub.error());
    current = *sub;
  }
  if (node != current->root_node()) {
    return fail(EINVAL, "subvol=" + std::string(path) + " names a directory, not a subvolume");
  }
  return current->tree_id();
}

// ---- SubvolumeHost ----

Result<Attributes> FileSystem::enter_subvolume(uint64_t tree) {
  auto subvolume = open_subvolume_locked(tree);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->take_entry((*subvolume)->root_node());
}

Result<Attributes> FileSystem::enter_node(uint64_t node) {
  auto subvolume = open_subvolume_locked(split_node_id(node).tree);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->take_entry(node);
}

Result<uint64_t> FileSystem::parent_of_subvolume_root(uint64_t tree) {
  if (tree == root_tree_ || tree == store::kFsTreeId) return node_id(tree, kRootDirIno);
  auto entry = volume_->catalog().get(tree);
  if (!entry) return std::unexpected(entry.error());
  if (!entry->link) return node_id(tree, kRootDirIno);  // deleted: no parent left
  return node_id(entry->link->parent, entry->link->dirid);
}

Status FileSystem::make_subvolume_dead(uint64_t tree, bool require_empty) {
  auto subvolume = open_subvolume_locked(tree);
  if (!subvolume) return std::unexpected(subvolume.error());
  if (require_empty) {
    auto empty = (*subvolume)->root_is_empty();
    if (!empty) return std::unexpected(empty.error());
    if (!*empty) return fail(ENOTEMPTY, "directory not empty");
  }
  auto nested = volume_->catalog().children(tree);
  if (!nested) return std::unexpected(nested.error());
  if (!nested->empty()) {
    return fail(ENOTEMPTY, "the subvolume holds other subvolumes; delete them first");
  }
  if (Status unlinked = volume_->catalog().unlink(tree); !unlinked) {
    return volume_->abort_change(unlinked.error());
  }
  // Its inodes stay readable while open; nothing changes them any more.
  (*subvolume)->mark_deleted();
  volume_->note_change();
  volume_->wake_cleaner();
  return ok();
}

Status FileSystem::relink_subvolume(uint64_t tree, const store::SubvolumeLink& link) {
  return volume_->catalog().relink(tree, link);
}

// ---- forwarding ----

Result<Attributes> FileSystem::lookup(uint64_t parent, std::string_view name) {
  auto subvolume = subvolume_for(parent);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->lookup(parent, name);
}

void FileSystem::forget(uint64_t ino, uint64_t count) {
  if (auto subvolume = subvolume_for(ino)) (*subvolume)->forget(ino, count);
}

Result<Attributes> FileSystem::getattr(uint64_t ino) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->getattr(ino);
}

Result<Attributes> FileSystem::setattr(uint64_t ino, const SetAttributes& changes) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->setattr(ino, changes);
}

Result<Attributes> FileSystem::mknod(uint64_t parent, std::string_view name, uint32_t mode,
                                     uint64_t rdev, const Caller& caller) {
  auto subvolume = subvolume_for(parent);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->mknod(parent, name, mode, rdev, caller);
}

Result<Attributes> FileSystem::mkdir(uint64_t parent, std::string_view name, uint32_t mode,
                                     const Caller& caller) {
  auto subvolume = subvolume_for(parent);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->mkdir(parent, name, mode, caller);
}

Result<Attributes> FileSystem::symlink(uint64_t parent, std::string_view name,
                                       std::string_view target, const Caller& caller) {
  auto subvolume = subvolume_for(parent);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->symlink(parent, name, target, caller);
}

Result<std::string> FileSystem::readlink(uint64_t ino) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->readlink(ino);
}

Result<Attributes> FileSystem::link(uint64_t ino, uint64_t new_parent, std::string_view new_name) {
  auto subvolume = same_subvolume(ino, new_parent);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->link(ino, new_parent, new_name);
}

Status FileSystem::unlink(uint64_t parent, std::string_view name) {
  auto subvolume = subvolume_for(parent);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->unlink(parent, name);
}

Status FileSystem::rmdir(uint64_t parent, std::string_view name) {
  auto subvolume = subvolume_for(parent);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->rmdir(parent, name);
}

Status FileSystem::rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                          std::string_view new_name, uint32_t flags) {
  auto subvolume = same_subvolume(parent, new_parent);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->rename(parent, name, new_parent, new_name, flags);
}

Result<uint64_t> FileSystem::listing_end(uint64_t ino) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->listing_end(ino);
}

Status FileSystem::readdir(uint64_t ino, uint64_t cookie,
                           const std::function<bool(const DirListEntry&)>& emit, uint64_t end) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->readdir(ino, cookie, emit, end);
}

Status FileSystem::readdir_plus(
    uint64_t ino, uint64_t cookie,
    const std::function<bool(const DirListEntry&, const Attributes*)>& emit, uint64_t end) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->readdir_plus(ino, cookie, emit, end);
}

Status FileSystem::open(uint64_t ino, int flags) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->open(ino, flags);
}

void FileSystem::release(uint64_t ino) {
  if (auto subvolume = subvolume_for(ino)) {
    (*subvolume)->release(ino);
  }
}

Result<size_t> FileSystem::read(uint64_t ino, uint64_t offset, MutableByteSpan out) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->read(ino, offset, out);
}

Result<size_t> FileSystem::write(uint64_t ino, uint64_t offset, ByteSpan data) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->write(ino, offset, data);
}

Status FileSystem::fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->fallocate(ino, mode, offset, length);
}

Result<uint64_t> FileSystem::lseek(uint64_t ino, uint64_t offset, int whence) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->lseek(ino, offset, whence);
}

Result<uint64_t> FileSystem::copy_file_range(uint64_t ino_in, uint64_t offset_in, uint64_t ino_out,
                                             uint64_t offset_out, uint64_t length) {
  // Across subvolumes as within one: both trees are in this volume, so
  // extents are shared (btrfs clones across subvolumes of one filesystem).
  auto source = subvolume_for(ino_in);
  if (!source) return std::unexpected(source.error());
  auto destination = subvolume_for(ino_out);
  if (!destination) return std::unexpected(destination.error());
  return (*destination)->copy_file_range(**source, ino_in, offset_in, ino_out, offset_out, length);
}

Status FileSystem::fsync(uint64_t ino, bool datasync) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->fsync(ino, datasync);
}

Status FileSystem::sync() {
  std::unique_lock lock(volume_->mutex());
  ECFS_TRY(volume_->check_syncable());
  return volume_->commit(lock);
}

Status FileSystem::setxattr(uint64_t ino, std::string_view name, ByteSpan value, int flags) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->setxattr(ino, name, value, flags);
}

Result<Bytes> FileSystem::getxattr(uint64_t ino, std::string_view name) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->getxattr(ino, name);
}

Result<std::string> FileSystem::listxattr(uint64_t ino) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->listxattr(ino);
}

Status FileSystem::removexattr(uint64_t ino, std::string_view name) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->removexattr(ino, name);
}

Result<FsStats> FileSystem::statfs() {
  std::lock_guard lock(volume_->mutex());
  const store::SpaceUsage space = volume_->engine().space_usage();
  FsStats stats;
  const uint64_t usable = space.device_size - space.reserved_bytes;
  stats.total_blocks = usable / store::kSectorSize;
  stats.free_blocks = volume_->free_bytes_after_buffered() / store::kSectorSize;
  stats.available_blocks = volume_->available_bytes() / store::kSectorSize;
  // Counting inodes would make mount time grow with the file count, so
  // statfs reports the top level's bound (Subvolume::inodes_in_use_bound)
  // and the inode numbers it has left.
  std::shared_lock map(subvolumes_mutex_);
  if (auto top = subvolumes_.find(store::kFsTreeId); top != subvolumes_.end()) {
    stats.files = top->second->inodes_in_use_bound();
    stats.free_files = top->second->inode_numbers_left();
  }
  return stats;
}

Status FileSystem::set_policy(uint64_t ino, const fscrypt::Policy& policy,
                              const fscrypt::Caller& caller) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->set_policy(ino, policy, caller);
}

Result<RekeyReport> FileSystem::rekey_directory(uint64_t ino, const fscrypt::KeyIdentifier& to,
                                                const fscrypt::Caller& caller) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->rekey_directory(ino, to, caller);
}

Result<RekeyContentsReport> FileSystem::rekey_contents(uint64_t ino, uint64_t max_bytes,
                                                       const fscrypt::Caller& caller) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->rekey_contents(ino, max_bytes, caller);
}

Result<std::vector<fscrypt::KeyIdentifier>> FileSystem::previous_keys(uint64_t ino) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->previous_keys(ino);
}

bool FileSystem::is_encrypted(uint64_t ino) {
  auto subvolume = subvolume_for(ino);
  return subvolume && (*subvolume)->is_encrypted(ino);
}

Result<fscrypt::Policy> FileSystem::get_policy(uint64_t ino) {
  auto subvolume = subvolume_for(ino);
  if (!subvolume) return std::unexpected(subvolume.error());
  return (*subvolume)->get_policy(ino);
}

uint64_t FileSystem::lookup_count(uint64_t ino) {
  auto subvolume = subvolume_for(ino);
  return subvolume ? (*subvolume)->lookup_count(ino) : 0;
}

Status FileSystem::remount(const Remount& remount) {
  std::unique_lock lock(volume_->mutex());
  ECFS_TRY(volume_->set_read_only(lock, remount.read_only));
  if (remount.atime) options_.atime = *remount.atime;
  if (remount.directory_atime) options_.directory_atime = *remount.directory_atime;
  if (remount.commit_interval) {
    options_.commit_interval = *remount.commit_interval;
    volume_->set_commit_interval(*remount.commit_interval);
  }
  return ok();
}

// ---- subvolume jobs ----

Result<uint64_t> FileSystem::add_subvolume(
    Subvolume& parent, uint64_t dir, std::string_view name,
    const std::function<Result<uint64_t>(const store::SubvolumeLink&)>& make_tree) {
  ECFS_TRY(volume_->check_space(0));
  auto new_name = parent.prepare_subvolume_name(dir, name);
  if (!new_name) return std::unexpected(new_name.error());
  const store::SubvolumeLink link{.parent = parent.tree_id(),
                                  .dirid = new_name->dir,
                                  .index = new_name->index,
                                  .name = new_name->stored};
  // Past this point the transaction holds part of the change: a failure
  // aborts it (the commit before a snapshot left nothing else in it).
  auto change = [&]() -> Result<uint64_t> {
    auto id = make_tree(link);
    if (!id) return std::unexpected(id.error());
    if (*id > kMaxSubvolumeTreeId) return fail(ENOSPC, "no subvolume ids left");
    ECFS_TRY(parent.add_subvolume_entry(new_name->dir, new_name->stored, *id));
    return *id;
  };
  auto id = change();
  if (!id) return volume_->abort_change(id.error());
  volume_->note_change();
  // Durable when the call returns, as btrfs commits a new subvolume.
  ECFS_TRY(volume_->commit_locked());
  return *id;
}

Result<uint64_t> FileSystem::create_subvolume(uint64_t dir, std::string_view name,
                                              const Caller& caller) {
  auto parent = subvolume_for(dir);
  if (!parent) return std::unexpected(parent.error());
  std::lock_guard lock(volume_->mutex());
  ECFS_TRY(volume_->check_writable());
  return add_subvolume(
      **parent, dir, name, [&](const store::SubvolumeLink& link) -> Result<uint64_t> {
        auto id = volume_->catalog().create(link);
        if (!id) return std::unexpected(id.error());
        auto tree = volume_->tree(*id);
        if (!tree) return std::unexpected(tree.error());
        ECFS_TRY(add_root_inode(**tree, volume_->engine().generation(), caller, S_IFDIR | 0755));
        return *id;
      });
}

Result<uint64_t> FileSystem::snapshot(uint64_t source, uint64_t dir, std::string_view name,
                                      bool read_only) {
  auto from = subvolume_for(source);
  if (!from) return std::unexpected(from.error());
  auto parent = subvolume_for(dir);
  if (!parent) return std::unexpected(parent.error());
  if (source != (*from)->root_node()) {
    return fail(EINVAL, "the source of a snapshot is a subvolume's root directory");
  }
  std::unique_lock lock(volume_->mutex());
  ECFS_TRY(volume_->check_writable());
  // What was written before the call goes into the trees first, so that
  // the snapshot holds it: the point the snapshot captures.
  ECFS_TRY(volume_->commit(lock));
  // Subvolumes nested in the source are trees of their own, not part of
  // the snapshot: their names in it become empty directories, in the
  // transaction that makes it (snapshot_placeholders.h).
  auto nested = volume_->catalog().children((*from)->tree_id());
  if (!nested) return std::unexpected(nested.error());
  return add_subvolume(
      **parent, dir, name, [&](const store::SubvolumeLink& link) -> Result<uint64_t> {
        auto id = volume_->catalog().snapshot((*from)->tree_id(), link, read_only);
        if (!id) return std::unexpected(id.error());
        if (!nested->empty()) {
          auto tree = volume_->tree(*id);
          if (!tree) return std::unexpected(tree.error());
          ECFS_TRY(replace_nested_subvolume_names(**tree, volume_->engine().generation(), *nested));
        }
        return *id;
      });
}

Result<uint64_t> FileSystem::delete_subvolume(uint64_t dir, std::string_view name) {
  auto parent = subvolume_for(dir);
  if (!parent) return std::unexpected(parent.error());
  std::lock_guard lock(volume_->mutex());
  return (*parent)->delete_subvolume_named(dir, name);
}

Result<SubvolumeListing> FileSystem::listing_of(const store::SubvolumeEntry& entry) {
  SubvolumeListing listing;
  listing.id = entry.id;
  listing.info = entry.info;
  listing.deleted = entry.deleted;
  listing.root_node = node_id(entry.id, kRootDirIno);
  if (!entry.link) return listing;
  listing.parent_id = entry.link->parent;
  listing.parent_dir = node_id(entry.link->parent, entry.link->dirid);
  listing.name.assign(entry.link->name.begin(), entry.link->name.end());
  // The path: up through each parent subvolume to the top level.
  std::string path = listing.name;
  std::optional<store::SubvolumeLink> link = entry.link;
  for (int depth = 0; link; ++depth) {
    if (depth > 4096) return fail(EUCLEAN, "subvolume names form a cycle");
    auto parent = open_subvolume_locked(link->parent);
    if (!parent) return std::unexpected(parent.error());
    auto dir_path = (*parent)->directory_path(link->dirid);
    if (!dir_path) return std::unexpected(dir_path.error());
    if (!dir_path->empty()) path = *dir_path + "/" + path;
    if (link->parent == store::kFsTreeId) break;
    auto up = volume_->catalog().get(link->parent);
    if (!up) return std::unexpected(up.error());
    link = up->link;
    if (link) path = std::string(link->name.begin(), link->name.end()) + "/" + path;
  }
  listing.path = std::move(path);
  return listing;
}

Result<std::vector<SubvolumeListing>> FileSystem::list_subvolumes() {
  std::lock_guard lock(volume_->mutex());
  if (volume_->closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto entries = volume_->catalog().list();
  if (!entries) return std::unexpected(entries.error());
  std::vector<SubvolumeListing> listings;
  for (const store::SubvolumeEntry& entry : *entries) {
    auto listing = listing_of(entry);
    if (!listing) return std::unexpected(listing.error());
    listings.push_back(std::move(*listing));
  }
  return listings;
}

Result<std::optional<SubvolumeListing>> FileSystem::next_subvolume(uint64_t after) {
  std::lock_guard lock(volume_->mutex());
  if (volume_->closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto entries = volume_->catalog().list();
  if (!entries) return std::unexpected(entries.error());
  for (const store::SubvolumeEntry& entry : *entries) {
    if (entry.id <= after) continue;
    // Only this one's path is walked.
    auto listing = listing_of(entry);
    if (!listing) return std::unexpected(listing.error());
    return std::optional<SubvolumeListing>(std::move(*listing));
  }
  return std::optional<SubvolumeListing>();
}

Result<SubvolumeListing> FileSystem::subvolume_of(uint64_t node) {
  std::lock_guard lock(volume_->mutex());
  if (volume_->closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto entry = volume_->catalog().get(split_node_id(node).tree);
  if (!entry) return std::unexpected(entry.error());
  return listing_of(*entry);
}

Status FileSystem::set_subvolume_read_only(uint64_t node, bool read_only) {
  auto subvolume = subvolume_for(node);
  if (!subvolume) return std::unexpected(subvolume.error());
  if (node != (*subvolume)->root_node()) return fail(EINVAL, "not a subvolume's root directory");
  std::lock_guard lock(volume_->mutex());
  ECFS_TRY(volume_->check_writable());
  ECFS_TRY(volume_->catalog().set_read_only((*subvolume)->tree_id(), read_only));
  (*subvolume)->set_read_only_subvolume(read_only);
  volume_->note_change();
  return volume_->commit_locked();
}

Status FileSystem::wait_for_deletions() {
  std::unique_lock lock(volume_->mutex());
  return volume_->wait_for_deletions(lock);
}

}  // namespace ecfs::fs
