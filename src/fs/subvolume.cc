// FileSystem: transactions, the inode cache, kernel references, orphans and
// the periodic commit (the directory, data and xattr operations are in
// directory.cc, file_ops.cc and xattr_ops.cc).
#include <fcntl.h>
#include <time.h>

#include <algorithm>
#include <string>
#include <utility>

#include "base/log.h"
#include "fs/file_data.h"
#include "fs/filesystem.h"
#include "fs/fs_internal.h"
#include "store/tree_ids.h"

namespace ecfs::fs {

using store::Key;

Timestamp now() {
  // The kernel's clock for the times it stamps itself (current_time: the
  // coarse clock, updated once a tick), which it does for cached files
  // under the write-back cache. Read from a finer clock, a time the daemon
  // stamps could lie up to a tick ahead of one the kernel stamps after it,
  // and times would go backwards.
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return {static_cast<int64_t>(ts.tv_sec), static_cast<uint32_t>(ts.tv_nsec)};
}

struct stat Attributes::to_stat() const {
  struct stat st {};
  st.st_ino = ino;
  st.st_mode = mode;
  st.st_nlink = nlink;
  st.st_uid = uid;
  st.st_gid = gid;
  st.st_rdev = rdev;
  st.st_size = static_cast<off_t>(size);
  st.st_blocks = static_cast<blkcnt_t>(blocks);
  st.st_blksize = block_size;
  st.st_atim = {atime.sec, atime.nsec};
  st.st_mtim = {mtime.sec, mtime.nsec};
  st.st_ctim = {ctime.sec, ctime.nsec};
  return st;
}

Status add_root_directory(store::Engine& engine, const Caller& owner) {
  auto tree = engine.open_tree(store::kFsTreeId);
  if (!tree) return std::unexpected(tree.error());
  auto inserted = add_root_inode(**tree, engine.generation(), owner, S_IFDIR | 0755);
  if (!inserted && inserted.error().errno_value() == EEXIST) {
    return fail(EEXIST, "the image already holds a filesystem");
  }
  return inserted;
}

Status add_root_inode(store::BTree& tree, uint64_t generation, const Caller& owner, uint32_t mode) {
  InodeItem root;
  root.generation = generation;
  root.transid = generation;
  root.nlink = 2;
  root.uid = owner.uid;
  root.gid = owner.gid;
  root.mode = mode;
  root.atime = root.mtime = root.ctime = root.otime = now();
  return tree.insert({kRootDirIno, kInodeItemKey, 0}, encode_inode_item(root));
}

Status format_filesystem(store::Engine& engine, const Caller& owner) {
  ECFS_TRY(engine.begin());
  if (Status added = add_root_directory(engine, owner); !added) {
    engine.abort();
    return added;
  }
  return engine.commit();
}

Subvolume::Subvolume(store::Volume& volume, uint64_t tree, bool read_only,
                     const MountOptions& options, fscrypt::Keyring& keyring, SubvolumeHost& host)
    : volume_(volume),
      mutex_(volume.mutex()),
      tree_(tree),
      read_only_(read_only),
      options_(options),
      keyring_(keyring),
      host_(host),
      data_keys_(make_data_keys()) {
  data_ = std::make_unique<FileData>(volume_.engine(), tree_, data_options());
}

Subvolume::~Subvolume() = default;

uint64_t Subvolume::root_node() const { return node_of(kRootDirIno); }

uint64_t Subvolume::local(uint64_t node) const { return split_node_id(node).ino; }

Status Subvolume::start() {
  auto fs_tree = read_tree();
  if (!fs_tree) {
    return fail(EINVAL, "the image holds no ecfs filesystem tree: " + fs_tree.error().message());
  }
  auto root = fs_tree->find({kRootDirIno, kInodeItemKey, 0});
  if (!root) return std::unexpected(root.error());
  if (!*root) {
    return fail(EINVAL, "the image holds no ecfs filesystem (no root directory; run ecfs mkfs)");
  }
  // The next inode number: one past the highest inode of the tree.
  auto last = fs_tree->upper_floor({kLastIno, UINT8_MAX, UINT64_MAX});
  if (!last) return std::unexpected(last.error());
  if (*last && (*last)->key.objectid >= kRootDirIno) next_ino_ = (*last)->key.objectid + 1;
  if (volume_.read_only() || read_only_) return ok();
  return cleanup_orphans();
}

Status Subvolume::check_writable() const {
  ECFS_TRY(volume_.check_writable());
  if (read_only_) return fail(EROFS, "a read-only snapshot");
  return ok();
}

Status Subvolume::check_names_changeable() const {
  ECFS_TRY(check_writable());
  if (deleted_) return fail(ENOENT, "the subvolume was deleted");
  return ok();
}

Status Subvolume::prepare_close() {
  // A deleted subvolume's tree goes whole at the next mount's drop.
  if (read_only_ || deleted_) return ok();
  // Every kernel reference ends with the mount: orphans go now.
  for (auto& [ino, state] : inodes_) {
    state->lookups = 0;
    state->opens = 0;
  }
  return cleanup_orphans();
}

void Subvolume::tree_dropped(uint64_t tree) {
  if (tree != tree_) return;
  dropped_ = true;
  read_only_ = true;
  inodes_.clear();
  dirty_inodes_.clear();
  trim_candidates_.clear();
  data_ = std::make_unique<FileData>(volume_.engine(), tree_, data_options());
  reencrypted_.reset();
}

bool Subvolume::uses_tree(uint64_t tree) const {
  if (tree != tree_) return false;
  for (const auto& [ino, state] : inodes_) {
    if (state->opens > 0) return true;
  }
  return false;
}

FileDataOptions Subvolume::data_options() {
  FileDataOptions data_options;
  data_options.keys = data_keys_.get();
  // Up to the dirty limit, a writeout beside it and the run a write may add
  // past it.
  data_options.reused_run_memory =
      options_.dirty_data_limit + writeout_chunk() + data_options.max_extent_size;
  return data_options;
}

Result<store::BTree*> Subvolume::tree() { return volume_.tree(tree_); }

Result<store::BTree> Subvolume::read_tree() { return volume_.read_tree(tree_); }

void Subvolume::note_access(InodeState& state) {
  if (volume_.read_only() || read_only_) return;
  InodeItem& item = *state.item;
  if (S_ISDIR(item.mode) && !options_.directory_atime) return;
  const Timestamp t = now();
  switch (options_.atime) {
    case AtimeUpdates::kNever:
      return;
    case AtimeUpdates::kRelative:
      // fs/inode.c relatime_need_update: only when atime is not newer than
      // mtime or ctime, or is a day old.
      if (item.mtime < item.atime && item.ctime < item.atime &&
          t.sec - item.atime.sec < 24 * 60 * 60) {
        return;
      }
      break;
    case AtimeUpdates::kAlways:
      if (item.atime == t) return;
      break;
  }
  item.atime = t;
  mark_dirty(state);
  volume_.note_change();
}

uint64_t Subvolume::buffered_bytes() const { return data_->dirty_bytes(); }

void Subvolume::aborted() {
  // Cached inode items and buffered data describe the aborted transaction;
  // from now on everything is read from the committed state.
  for (auto& [ino, state] : inodes_) {
    state->item.reset();
    state->dirty = false;
    // A rotation in the aborted transaction changed the context, history
    // and key in memory: read them again too.
    state->crypt_context_loaded = false;
    state->crypt_context.reset();
    state->previous_keys.clear();
    state->crypt_info.reset();
    trim_candidates_.push_back(ino);
  }
  dirty_inodes_.clear();
  data_ = std::make_unique<FileData>(volume_.engine(), tree_, data_options());
  reencrypted_.reset();
}

uint64_t Subvolume::writeout_chunk() const {
  return std::max<uint64_t>(options_.dirty_data_limit / 4, 1);
}

Status Subvolume::write_out_buffered(std::unique_lock<std::mutex>& lock, uint64_t max_bytes) {
  auto writeout = data_->begin_writeout(max_bytes);
  if (!writeout) return abort_change(writeout.error());
  if (writeout->empty()) return ok();
  volume_.begin_writeout();
  lock.unlock();
  Status written = writeout->write();
  lock.lock();
  if (volume_.failed() && written) {
    written = fail(EIO, "the filesystem turned read-only during a writeout");
  }
  if (!written) {
    data_->cancel_writeout(std::move(*writeout));
    volume_.end_writeout();
    if (volume_.failed()) return std::unexpected(written.error());  // aborted by another change
    return abort_change(written.error());
  }
  Status finished = data_->finish_writeout(std::move(*writeout));
  volume_.end_writeout();
  if (!finished) return abort_change(finished.error());
  return ok();
}

Status Subvolume::write_out_before_commit(std::unique_lock<std::mutex>& lock) {
  // Below this the flush with the lock held is short anyway.
  constexpr uint64_t kWorthReleasingTheLock = 4 << 20;
  // In a write's chunks, so that buffered memory stays as bounded as under
  // writes alone, and no more than was buffered when the commit began, so
  // that a steady writer cannot keep it from committing.
  for (uint64_t left = data_->dirty_bytes(); left >= kWorthReleasingTheLock;
       left -= std::min(left, writeout_chunk())) {
    volume_.await_writeout(lock);
    if (volume_.failed() || !volume_.engine().in_transaction() || data_->dirty_bytes() == 0) {
      break;
    }
    ECFS_TRY(write_out_buffered(lock, writeout_chunk()));
  }
  return ok();
}

Status Subvolume::flush_for_commit() {
  if (dropped_) return ok();
  ECFS_TRY(data_->flush_all());
  return write_back_inodes();
}

void Subvolume::committed(bool trim_caches) {
  // Clean inodes the kernel no longer references need not stay cached. Only
  // those that may have become so since the last trim are looked at.
  if (!trim_caches) return;
  for (uint64_t ino : trim_candidates_) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) continue;
    const InodeState& state = *it->second;
    if (!state.dirty && state.lookups == 0 && state.opens == 0) inodes_.erase(it);
  }
  trim_candidates_.clear();
}

void Subvolume::idle() { data_->release_idle_memory(); }

Status Subvolume::fsync(uint64_t ino_node, bool /*datasync*/) {
  const uint64_t ino = local(ino_node);
  std::unique_lock lock(mutex_);
  ECFS_TRY(volume_.check_syncable());
  if (volume_.read_only()) return ok();
  ECFS_TRY(inode(ino));
  // One transaction holds every change, so making this inode durable means
  // committing it; with nothing pending the last commit already did.
  if (!volume_.changed() && !data_->has_dirty(ino)) return ok();
  return volume_.commit(lock);
}

// ---- inodes ----

Result<Subvolume::InodeState*> Subvolume::inode(uint64_t ino) {
  auto it = inodes_.find(ino);
  if (it != inodes_.end() && it->second->item) return it->second.get();
  if (ino < kRootDirIno || ino > kMaxLocalIno) return fail(ENOENT, "no such inode");
  auto fs_tree = read_tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  auto data = fs_tree->find({ino, kInodeItemKey, 0});
  if (!data) return std::unexpected(data.error());
  if (!*data) return fail(ENOENT, "no such inode");
  auto item = decode_inode_item(**data);
  if (!item) {
    return fail(EUCLEAN, "inode " + std::to_string(ino) + ": " + item.error().message());
  }
  if (it == inodes_.end()) {
    it = inodes_.emplace(ino, std::make_unique<InodeState>()).first;
    trim_candidates_.push_back(ino);
  }
  it->second->ino = ino;
  it->second->item = *item;
  return it->second.get();
}

void Subvolume::touch(InodeState& state, bool mtime, bool ctime) {
  const Timestamp t = now();
  if (mtime) state.item->mtime = t;
  if (ctime) state.item->ctime = t;
  mark_dirty(state);
  volume_.note_change();
}

Attributes Subvolume::attributes_of(uint64_t ino, const InodeState& state) const {
  const InodeItem& item = *state.item;
  Attributes attr;
  attr.ino = node_of(ino);
  attr.generation = item.generation;
  attr.mode = item.mode;
  attr.nlink = item.nlink;
  attr.uid = item.uid;
  attr.gid = item.gid;
  attr.rdev = item.rdev;
  attr.size = item.size;
  attr.blocks = item.nbytes / 512;
  attr.atime = item.atime;
  attr.mtime = item.mtime;
  attr.ctime = item.ctime;
  attr.btime = item.otime;
  attr.encrypted = item.flags & kInodeFlagEncrypted;
  return attr;
}

Attributes Subvolume::entry_of(uint64_t ino, InodeState& state) {
  ++state.lookups;
  return presented_attributes(ino, state);
}

Attributes Subvolume::presented_attributes(uint64_t ino, InodeState& state) {
  Attributes attr = attributes_of(ino, state);
  // An encrypted symlink stores its record; stat shows the length of the
  // target readlink returns, with or without the key
  // (fscrypt_symlink_getattr). A target that cannot be read keeps the
  // stored size; readlink reports the error.
  if (attr.encrypted && S_ISLNK(attr.mode)) {
    auto fs_tree = read_tree();
    if (!fs_tree) return attr;
    auto stored = fs_tree->find({ino, kSymlinkTargetKey, 0});
    if (!stored || !*stored) return attr;
    auto target = presented_symlink_target(state, **stored);
    if (target) attr.size = target->size();
  }
  return attr;
}

Result<Subvolume::InodeState*> Subvolume::create_inode(uint32_t mode, uint64_t rdev,
                                                       const Caller& caller,
                                                       const InodeState& parent) {
  if (next_ino_ > kMaxLocalIno) return fail(ENOSPC, "no inode numbers left");
  const uint64_t ino = next_ino_++;
  InodeItem item;
  item.generation = volume_.engine().generation();
  item.transid = volume_.engine().generation();
  item.mode = mode;
  item.rdev = rdev;
  item.uid = caller.uid;
  item.gid = caller.gid;
  item.nlink = S_ISDIR(mode) ? 2 : 1;
  // A set-group-ID directory passes its group on, and its SGID bit to
  // subdirectories (inode_init_owner in the kernel's fs/inode.c).
  if (parent.item->mode & S_ISGID) {
    item.gid = parent.item->gid;
    if (S_ISDIR(mode)) item.mode |= S_ISGID;
  }
  item.atime = item.mtime = item.ctime = item.otime = now();
  auto state = std::make_unique<InodeState>();
  state->ino = ino;
  state->item = item;
  InodeState* raw = state.get();
  inodes_[ino] = std::move(state);
  mark_dirty(*raw);
  volume_.note_change();
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  ECFS_TRY((*fs_tree)->insert({ino, kInodeItemKey, 0}, encode_inode_item(item)));
  return raw;
}

void Subvolume::mark_dirty(InodeState& state) {
  if (state.dirty) return;
  state.dirty = true;
  dirty_inodes_.push_back(state.ino);
}

Status Subvolume::write_back_inodes() {
  // Only the inodes changed since the last commit: a commit costs what
  // changed, not what the kernel keeps cached.
  if (dirty_inodes_.empty()) return ok();
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  for (uint64_t ino : dirty_inodes_) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) continue;  // deleted meanwhile
    InodeState& state = *it->second;
    if (!state.dirty || !state.item) continue;
    state.item->transid = volume_.engine().generation();
    ECFS_TRY((*fs_tree)->update({ino, kInodeItemKey, 0}, encode_inode_item(*state.item)));
    state.dirty = false;
    trim_candidates_.push_back(ino);
  }
  dirty_inodes_.clear();
  return ok();
}

Status Subvolume::add_orphan(uint64_t ino) {
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  return (*fs_tree)->put({kOrphanObjectid, kOrphanItemKey, ino}, {});
}

Status Subvolume::delete_if_unused(uint64_t ino) {
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return ok();
  InodeState& state = *it->second;
  if (!state.item || state.item->nlink > 0 || state.lookups > 0 || state.opens > 0) return ok();
  return delete_inode(ino);
}

Status Subvolume::delete_inode(uint64_t ino) {
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  if (auto state = inode(ino); state && S_ISREG((*state)->item->mode)) {
    ECFS_TRY(data_->remove_all(ino));
  }
  // Every item of the inode: its key range (ino, *, *).
  std::vector<Key> keys;
  ECFS_TRY((*fs_tree)->for_each({ino, 0, 0}, {ino, UINT8_MAX, UINT64_MAX},
                                [&](const Key& key, ByteSpan) {
                                  keys.push_back(key);
                                  return true;
                                }));
  for (const Key& key : keys) {
    if (key.type == kExtentDataKey) continue;  // remove_all dropped them with their references
    ECFS_TRY((*fs_tree)->remove(key));
  }
  if (auto orphan = (*fs_tree)->remove({kOrphanObjectid, kOrphanItemKey, ino});
      !orphan && orphan.error().errno_value() != ENOENT) {
    return orphan;
  }
  inodes_.erase(ino);
  ++deleted_since_mount_;
  volume_.note_change();
  return ok();
}

Status Subvolume::cleanup_orphans() {
  auto fs_tree = tree();
  if (!fs_tree) return std::unexpected(fs_tree.error());
  std::vector<uint64_t> orphans;
  ECFS_TRY((*fs_tree)->for_each({kOrphanObjectid, kOrphanItemKey, 0},
                                {kOrphanObjectid, kOrphanItemKey, UINT64_MAX},
                                [&](const Key& key, ByteSpan) {
                                  orphans.push_back(key.offset);
                                  return true;
                                }));
  for (uint64_t ino : orphans) {
    auto it = inodes_.find(ino);
    if (it != inodes_.end() && (it->second->lookups > 0 || it->second->opens > 0)) continue;
    auto state = inode(ino);
    if (!state && state.error().errno_value() == ENOENT) {
      // The inode is already gone; only the orphan item is left.
      ECFS_TRY((*fs_tree)->remove({kOrphanObjectid, kOrphanItemKey, ino}));
      volume_.note_change();
      continue;
    }
    if (!state) return std::unexpected(state.error());
    if ((*state)->item->nlink > 0) {
      // Linked again (not possible through this interface) or a stale item.
      ECFS_TRY((*fs_tree)->remove({kOrphanObjectid, kOrphanItemKey, ino}));
      volume_.note_change();
      continue;
    }
    ECFS_TRY(delete_inode(ino));
  }
  return ok();
}

void Subvolume::forget(uint64_t ino_node, uint64_t count) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  await_writeout();  // it may remove or change file data
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  InodeState& state = *it->second;
  state.lookups = count >= state.lookups ? 0 : state.lookups - count;
  if (state.lookups == 0) trim_candidates_.push_back(ino);
  if (state.lookups > 0 || state.opens > 0 || volume_.read_only()) return;
  if (state.item && state.item->nlink == 0) {
    if (auto deleted = delete_inode(ino); !deleted) (void)abort_change(deleted.error());
  }
}

uint64_t Subvolume::lookup_count(uint64_t ino_node) const {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? 0 : it->second->lookups;
}

Result<Attributes> Subvolume::getattr(uint64_t ino_node) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto state = inode(ino);
  if (!state) return std::unexpected(state.error());
  return presented_attributes(ino, **state);
}

Status Subvolume::open(uint64_t ino_node, int flags) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto state = inode(ino);
  if (!state) return std::unexpected(state.error());
  const uint32_t type = (*state)->item->mode & S_IFMT;
  if (type == S_IFDIR && (flags & O_ACCMODE) != O_RDONLY) return fail(EISDIR, "is a directory");
  if ((flags & O_ACCMODE) != O_RDONLY) ECFS_TRY(check_writable());
  // fscrypt_file_open: an encrypted regular file opens only with its key,
  // which then stays set up while it is open (directories list without).
  if (type == S_IFREG) {
    auto context = crypt_context(**state);
    if (!context) return std::unexpected(context.error());
    if (*context) ECFS_TRY(crypt_info(**state));
  }
  ++(*state)->opens;
  return ok();
}

void Subvolume::release(uint64_t ino_node) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  await_writeout();  // it may remove or change file data
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  InodeState& state = *it->second;
  if (state.opens > 0) --state.opens;
  if (state.opens == 0) {
    trim_candidates_.push_back(ino);
    // The last open file of a deleted subvolume lets its drop go on.
    if (deleted_) volume_.wake_cleaner();
  }
  if (volume_.read_only()) return;
  if (auto deleted = delete_if_unused(ino); !deleted) (void)abort_change(deleted.error());
}

}  // namespace ecfs::fs
