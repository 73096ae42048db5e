// FileSystem: attributes and file contents (the extent work is FileData's).
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>

#include "fs/file_data.h"
#include "fs/filesystem.h"
#include "fs/fs_internal.h"

namespace ecfs::fs {
namespace {

Status check_regular(const InodeItem& item) {
  if (S_ISDIR(item.mode)) return fail(EISDIR, "is a directory");
  if (!S_ISREG(item.mode)) return fail(EINVAL, "not a regular file");
  return ok();
}

Status check_end(uint64_t offset, uint64_t length) {
  if (offset > kMaxFileSize || length > kMaxFileSize - offset) {
    return fail(EFBIG, "file too large");
  }
  return ok();
}

void add_nbytes(InodeItem& item, int64_t delta) {
  if (delta < 0 && static_cast<uint64_t>(-delta) > item.nbytes) {
    item.nbytes = 0;
  } else {
    item.nbytes += delta;
  }
}

}  // namespace

Result<Attributes> Subvolume::setattr(uint64_t ino_node, const SetAttributes& changes) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  if (changes.size) await_writeout();  // a truncate
  ECFS_TRY(check_writable());
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  InodeState& state = **found;
  InodeItem& item = *state.item;
  if (changes.size) {
    ECFS_TRY(check_regular(item));
    // fscrypt_prepare_setattr: truncating an encrypted file needs its key.
    auto context = crypt_context(state);
    if (!context) return std::unexpected(context.error());
    if (*context) ECFS_TRY(crypt_info(state));
    ECFS_TRY(check_end(*changes.size, 0));
    if (*changes.size > item.size) ECFS_TRY(check_space(0));
  }
  const Timestamp t = now();
  if (changes.size && *changes.size != item.size) {
    auto delta = data_->truncate(ino, item.size, *changes.size);
    if (!delta) return abort_change(delta.error());
    add_nbytes(item, *delta);
    item.size = *changes.size;
    item.mtime = t;
  }
  if (changes.mode) {
    item.mode = (item.mode & S_IFMT) | (*changes.mode & 07777);
    if (auto synced = sync_acl_with_mode(ino, item.mode); !synced) {
      return abort_change(synced.error());
    }
  }
  if (changes.uid) item.uid = *changes.uid;
  if (changes.gid) item.gid = *changes.gid;
  if (changes.kill_set_id && !S_ISDIR(item.mode)) {
    // Only permission-less bits change, so the access ACL stays as it is.
    item.mode &= ~static_cast<uint32_t>(S_ISUID);
    if ((item.mode & S_IXGRP) || changes.caller_outside_group) {
      item.mode &= ~static_cast<uint32_t>(S_ISGID);
    }
  }
  if (changes.atime_now) {
    item.atime = t;
  } else if (changes.atime) {
    item.atime = *changes.atime;
  }
  if (changes.mtime_now) {
    item.mtime = t;
  } else if (changes.mtime) {
    item.mtime = *changes.mtime;
  }
  item.ctime = changes.ctime.value_or(t);
  mark_dirty(state);
  volume_.note_change();
  return presented_attributes(ino, state);
}

Result<size_t> Subvolume::read(uint64_t ino_node, uint64_t offset, MutableByteSpan out) {
  const uint64_t ino = local(ino_node);
  std::unique_lock lock(mutex_);
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  InodeState& state = **found;
  ECFS_TRY(check_regular(*state.item));
  auto plan = data_->plan_read(ino, state.item->size, offset, out);
  if (!plan) return std::unexpected(plan.error());
  note_access(state);
  // The device reads, checksum checks and decryption run without the lock,
  // so that concurrent requests overlap them. The extents they read stay
  // allocated meanwhile: space freed since the last commit is pinned until
  // the next one, and commits and aborts wait for the reads in flight.
  store::Volume::ReadPin reading = volume_.pin_for_read();
  lock.unlock();
  return plan->finish();
}

Result<size_t> Subvolume::write(uint64_t ino_node, uint64_t offset, ByteSpan data) {
  const uint64_t ino = local(ino_node);
  std::unique_lock lock(mutex_);
  // Data being written out stays as it is until it is in its extents.
  while (volume_.writeout_running() && data_->writing_out(ino, offset, offset + data.size())) {
    volume_.wait_for_writeout_end(lock);
  }
  ECFS_TRY(check_writable());
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  InodeState& state = **found;
  ECFS_TRY(check_regular(*state.item));
  ECFS_TRY(check_end(offset, data.size()));
  if (data.empty()) return 0;
  ECFS_TRY(check_space(data.size()));
  auto delta = data_->write(ino, state.item->size, offset, data);
  if (!delta) return abort_change(delta.error());
  add_nbytes(*state.item, *delta);
  state.item->size = std::max<uint64_t>(state.item->size, offset + data.size());
  touch(state, true, true);
  // Past the dirty limit (of the whole volume: every subvolume's buffers
  // together) a part of this subvolume's buffered data is written out,
  // while the next writes go on; a write finding the limit passed again
  // before that writeout ended waits for it. A subvolume holding little of
  // it leaves the rest to the writers that hold it and to the next commit.
  const auto over_limit = [&] {
    return volume_.buffered_bytes() > options_.dirty_data_limit &&
           data_->dirty_bytes() >= writeout_chunk() / 4;
  };
  if (over_limit()) {
    await_writeout();
    if (volume_.failed()) return fail(EIO, "the filesystem turned read-only after an error");
    if (over_limit()) ECFS_TRY(write_out_buffered(lock, writeout_chunk()));
  }
  return data.size();
}

Status Subvolume::fallocate(uint64_t ino_node, int mode, uint64_t offset, uint64_t length) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  await_writeout();  // it may remove or change file data
  ECFS_TRY(check_writable());
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  InodeState& state = **found;
  InodeItem& item = *state.item;
  if (!S_ISREG(item.mode)) return fail(S_ISDIR(item.mode) ? EISDIR : ENODEV, "not a regular file");
  if (length == 0) return fail(EINVAL, "zero length");
  ECFS_TRY(check_end(offset, length));
  const bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
  const int action = mode & ~FALLOC_FL_KEEP_SIZE;
  Result<int64_t> delta = 0;
  if (action == 0) {
    ECFS_TRY(check_space(length));
    delta = data_->preallocate(ino, offset, length);
  } else if (action == FALLOC_FL_PUNCH_HOLE) {
    // vfs_fallocate: a punch must keep the size.
    if (!keep_size) return fail(EOPNOTSUPP, "FALLOC_FL_PUNCH_HOLE needs FALLOC_FL_KEEP_SIZE");
    ECFS_TRY(check_space(0));
    delta = data_->punch_hole(ino, item.size, offset, length);
  } else if (action == FALLOC_FL_ZERO_RANGE) {
    ECFS_TRY(check_space(length));
    delta = data_->zero_range(ino, item.size, offset, length);
  } else {
    return fail(EOPNOTSUPP, "unsupported fallocate mode");
  }
  if (!delta) {
    if (delta.error().errno_value() == ENOSPC) return std::unexpected(delta.error());
    return abort_change(delta.error());
  }
  add_nbytes(item, *delta);
  const bool grows = !keep_size && action != FALLOC_FL_PUNCH_HOLE && offset + length > item.size;
  if (grows) item.size = offset + length;
  touch(state, grows || action != 0, true);
  return ok();
}

Result<uint64_t> Subvolume::lseek(uint64_t ino_node, uint64_t offset, int whence) {
  const uint64_t ino = local(ino_node);
  std::lock_guard lock(mutex_);
  if (volume_.closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return fail(EINVAL, "unsupported whence");
  auto found = inode(ino);
  if (!found) return std::unexpected(found.error());
  ECFS_TRY(check_regular(*(*found)->item));
  return data_->seek(ino, (*found)->item->size, offset, whence);
}

Result<uint64_t> Subvolume::copy_file_range(Subvolume& source, uint64_t ino_in_node,
                                            uint64_t offset_in, uint64_t ino_out_node,
                                            uint64_t offset_out, uint64_t length) {
  const uint64_t ino_in = source.local(ino_in_node);
  const uint64_t ino_out = local(ino_out_node);
  // The volume's lock covers every subvolume, the source included.
  std::lock_guard lock(mutex_);
  await_writeout();  // it may remove or change file data
  // Only the destination changes: the source may be a read-only snapshot.
  ECFS_TRY(check_writable());
  auto in = source.inode(ino_in);
  if (!in) return std::unexpected(in.error());
  ECFS_TRY(check_regular(*(*in)->item));
  const uint64_t in_size = (*in)->item->size;
  auto out = inode(ino_out);
  if (!out) return std::unexpected(out.error());
  ECFS_TRY(check_regular(*(*out)->item));
  if (offset_in >= in_size || length == 0) return 0;
  length = std::min(length, in_size - offset_in);
  ECFS_TRY(check_end(offset_out, length));
  if (&source == this && ino_in == ino_out && offset_in < offset_out + length &&
      offset_out < offset_in + length) {
    return fail(EINVAL, "overlapping ranges in one file");
  }
  // Sharing needs no data space; only edges (or everything, when the two
  // offsets fall differently within a sector) are copied.
  // Extents are shared only where the destination may hold them (a shared
  // extent keeps its context, which names the master key it was written
  // under): between files of the same policy, or of policies that differ
  // only by a rotation, when every key of the source is one of the
  // destination's (fs/key_history.h). Otherwise the data is copied and
  // encrypted under the destination's key. Each inode's context and key
  // come from its own subvolume.
  auto context_in = source.crypt_context(**in);
  if (!context_in) return std::unexpected(context_in.error());
  auto context_out = crypt_context(**out);
  if (!context_out) return std::unexpected(context_out.error());
  if (*context_in) ECFS_TRY(source.crypt_info(**in));
  if (*context_out) ECFS_TRY(crypt_info(**out));
  auto keys_in = source.key_set(**in);
  if (!keys_in) return std::unexpected(keys_in.error());
  auto keys_out = key_set(**out);
  if (!keys_out) return std::unexpected(keys_out.error());
  const bool may_share = (!*context_in && !*context_out) ||
                         (*context_in && *context_out &&
                          same_policy_but_key((*context_in)->policy, (*context_out)->policy) &&
                          (*keys_out)->includes(**keys_in));
  const bool shareable =
      may_share && offset_in % store::kSectorSize == offset_out % store::kSectorSize;
  ECFS_TRY(check_space(shareable ? std::min<uint64_t>(length, 2 * store::kSectorSize) : length));
  InodeState& dst = **out;
  auto delta = data_->copy_range_from(*source.data_, ino_in, in_size, offset_in, ino_out,
                                      dst.item->size, offset_out, length, may_share);
  if (!delta) return abort_change(delta.error());
  add_nbytes(*dst.item, *delta);
  dst.item->size = std::max<uint64_t>(dst.item->size, offset_out + length);
  touch(dst, true, true);
  return length;
}

}  // namespace ecfs::fs
