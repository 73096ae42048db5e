#include "fuse/adapter.h"

#include <dirent.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "block/io_buffer.h"
#include "fuse/caller_privilege.h"
#include "fuse/channel_io.h"
#include "fuse/ioctl_abi.h"
#include "fuse/ioctl_dispatch.h"
#include "fuse/libfuse.h"

namespace ecfs::fuse {
namespace {

Adapter& adapter_of(fuse_req_t req) { return *static_cast<Adapter*>(fuse_req_userdata(req)); }
fs::FileSystem& fs_of(fuse_req_t req) { return adapter_of(req).filesystem(); }

// Node id <-> inode number (see adapter.h).
uint64_t to_inode(const fs::FileSystem& filesystem, fuse_ino_t node) {
  return node == FUSE_ROOT_ID ? filesystem.root_node() : node;
}
uint64_t to_inode(fuse_req_t req, fuse_ino_t node) { return to_inode(fs_of(req), node); }
fuse_ino_t to_node(const fs::FileSystem& filesystem, uint64_t inode) {
  return inode == filesystem.root_node() ? FUSE_ROOT_ID : inode;
}

fs::Caller caller_of(fuse_req_t req) {
  const fuse_ctx* context = fuse_req_ctx(req);
  fs::Caller caller;
  caller.uid = context->uid;
  caller.gid = context->gid;
  // Set by the kernel for mknod, mkdir and create (protocol 7.12+); with
  // FUSE_CAP_DONT_MASK the mode arrives unmasked and the filesystem applies
  // the umask, or the parent's default ACL instead (POSIX.1e).
  caller.umask = context->umask;
  return caller;
}

void reply_errno(fuse_req_t req, int value) { fuse_reply_err(req, value); }

// Errors the kernel's caller sees as they are; the ones that mean the
// image or the daemon is in trouble are also logged (the message names a
// location, never a file name or data).

void reply_error(fuse_req_t req, const Error& error) {
  int value = error.errno_value();
  if (value <= 0) value = EIO;
  if (value == EIO || value == EUCLEAN) {
    fuse_log(FUSE_LOG_ERR, "ecfs: %s\n", error.to_string().c_str());
  }
  fuse_reply_err(req, value);
}

// `in_encrypted_directory`: the entry's name is a name of an encrypted
// directory, which changes meaning when the directory's key is added or
// removed (plaintext name / no-key name). A key change invalidates the
// names the kernel holds in the old form before it answers
// (KeyChange::stale_names, as the kernel's fscrypt_d_revalidate drops
// no-key dentries once the key is there); a lookup that races with the
// change can still leave one behind, so such entries are trusted for a
// short time only (AdapterOptions::encrypted_entry_timeout_seconds).
fuse_entry_param entry_of(const Adapter& adapter, const fs::Attributes& attributes,
                          bool in_encrypted_directory) {
  fuse_entry_param entry;
  std::memset(&entry, 0, sizeof(entry));
  entry.ino = to_node(adapter.filesystem(), attributes.ino);
  entry.generation = attributes.generation;
  entry.attr = attributes.to_stat();
  entry.attr_timeout = adapter.options().attr_timeout_seconds;
  entry.entry_timeout = in_encrypted_directory ? adapter.options().encrypted_entry_timeout_seconds
                                               : adapter.options().entry_timeout_seconds;
  return entry;
}

// Replies with an entry of directory `parent` whose lookup reference the
// FileSystem already counted; gives it back if the kernel will never know
// about it.
void reply_entry(fuse_req_t req, uint64_t parent, const Result<fs::Attributes>& attributes) {
  if (!attributes) return reply_error(req, attributes.error());
  Adapter& adapter = adapter_of(req);
  const fuse_entry_param entry =
      entry_of(adapter, *attributes, adapter.filesystem().is_encrypted(parent));
  if (fuse_reply_entry(req, &entry) == -ENOENT) adapter.filesystem().forget(attributes->ino, 1);
}

void reply_status(fuse_req_t req, const Status& status) {
  if (!status) return reply_error(req, status.error());
  fuse_reply_err(req, 0);
}

void reply_attributes(fuse_req_t req, const Result<fs::Attributes>& attributes) {
  if (!attributes) return reply_error(req, attributes.error());
  const struct stat st = attributes->to_stat();
  fuse_reply_attr(req, &st, adapter_of(req).options().attr_timeout_seconds);
}

fs::Timestamp timestamp_of(const struct timespec& time) {
  return fs::Timestamp{static_cast<int64_t>(time.tv_sec), static_cast<uint32_t>(time.tv_nsec)};
}

// ---- Lifecycle ---------------------------------------------------------

void op_init(void* userdata, fuse_conn_info* conn) {
  auto& adapter = *static_cast<Adapter*>(userdata);
  const auto want_if_capable = [conn](unsigned capability) {
    if (conn->capable & capability) conn->want |= capability;
  };
  if (adapter.options().writeback_cache && !adapter.filesystem().read_only()) {
    want_if_capable(FUSE_CAP_WRITEBACK_CACHE);
  }
  // The kernel enforces and caches ACLs; the filesystem stores them as
  // xattrs and keeps the mode in step (fs/fuse/acl.c fuse_set_acl: "Fuse
  // userspace is responsible for updating access permissions in the inode").
  want_if_capable(FUSE_CAP_POSIX_ACL);
  // Modes of new inodes arrive without the umask, with the umask beside
  // them, so a parent's default ACL can replace the umask (POSIX.1e).
  want_if_capable(FUSE_CAP_DONT_MASK);
  want_if_capable(FUSE_CAP_READDIRPLUS);
  want_if_capable(FUSE_CAP_READDIRPLUS_AUTO);
  want_if_capable(FUSE_CAP_PARALLEL_DIROPS);
  want_if_capable(FUSE_CAP_ASYNC_READ);
  want_if_capable(FUSE_CAP_IOCTL_DIR);  // key and policy ioctls act on directories
  // File handles (name_to_handle_at(2), NFS): a handle is the inode number
  // and its generation, both stable across mounts; the kernel finds an inode
  // it no longer caches by looking up "." in it, and a directory's parent by
  // "..".
  want_if_capable(FUSE_CAP_EXPORT_SUPPORT);
  // O_TRUNC then reaches us as a setattr of the size (the kernel truncates
  // before the open), so open() needs no truncate of its own.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  // Not the first version of "the server kills suid/sgid": its contract
  // (clear on every write, truncate and chown, whatever the caller's
  // privileges) differs from the VFS's. Version 2 is taken in the INIT reply
  // by channel_io; without it the kernel clears the bits itself and sends
  // the new mode in a setattr (file_remove_privs).
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  // Requests are read and replied from memory: a write's data goes straight
  // from libfuse's buffer to FileSystem::write. Splicing would add a pipe
  // round trip for every request and still need a copy for the write.
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  // An asynchronous O_DIRECT write (io_uring, aio) would complete without
  // the page cache being invalidated after it (fs/fuse/file.c
  // fuse_direct_IO returns -EIOCBQUEUED, and only a synchronous direct write
  // gets the VFS's invalidation once the data is in): a buffered read racing
  // with it caches the old bytes and keeps them. Served synchronously, every
  // direct write is followed by that invalidation.
  conn->want &= ~FUSE_CAP_ASYNC_DIO;
  conn->max_write = adapter.options().max_write;
  if (adapter.options().max_readahead != 0) conn->max_readahead = adapter.options().max_readahead;
  conn->time_gran = 1;  // timestamps are stored with nanoseconds
}

void op_destroy(void* userdata) {
  auto& adapter = *static_cast<Adapter*>(userdata);
  if (Status closed = adapter.close_filesystem(); !closed) {
    fuse_log(FUSE_LOG_ERR, "ecfs: closing the filesystem failed: %s\n",
             closed.error().to_string().c_str());
  }
}

// ---- Names -------------------------------------------------------------

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Adapter& adapter = adapter_of(req);
  const uint64_t dir = to_inode(req, parent);
  auto found = adapter.filesystem().lookup(dir, name);
  // A missing name of an unencrypted directory is answered with a negative
  // entry the kernel caches (ino 0 with a timeout): every way the name can
  // come into being goes through the kernel, which replaces the negative
  // dentry, and path searches (PATH, include paths) stop asking again. In
  // an encrypted directory it is plain ENOENT: a key addition makes names
  // appear without a create the kernel would see.
  // "." and ".." name inodes by number (export: a file handle's inode, a
  // directory's parent): a missing one is ENOENT, which the kernel turns
  // into ESTALE, never a cached negative entry.
  const std::string_view looked_up = name;
  const bool by_number = looked_up == "." || looked_up == "..";
  if (!found && found.error().errno_value() == ENOENT && !by_number &&
      !adapter.filesystem().is_encrypted(dir)) {
    fuse_entry_param negative;
    std::memset(&negative, 0, sizeof(negative));
    negative.entry_timeout = adapter.options().entry_timeout_seconds;
    fuse_reply_entry(req, &negative);
    return;
  }
  reply_entry(req, dir, found);
}

void op_forget(fuse_req_t req, fuse_ino_t node, uint64_t count) {
  fs_of(req).forget(to_inode(req, node), count);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  fs::FileSystem& filesystem = fs_of(req);
  for (size_t i = 0; i < count; ++i)
    filesystem.forget(to_inode(req, forgets[i].ino), forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t node, fuse_file_info*) {
  reply_attributes(req, fs_of(req).getattr(to_inode(req, node)));
}

bool caller_in_group(fuse_req_t req, uint32_t gid);

// Whether the caller of `req` is in group `gid` or holds CAP_FSETID: what
// keeps set-group-ID where the VFS would otherwise clear it (fs/inode.c
// in_group_or_capable).
bool in_group_or_capable(fuse_req_t req, uint32_t gid) {
  return caller_in_group(req, gid) || process_has_capability(fuse_req_ctx(req)->pid, CAP_FSETID);
}

// For fs::SetAttributes::caller_outside_group: a set-group-ID file that is
// not group-executable, and a caller that is not in_group_or_capable
// (fs/attr.c setattr_should_drop_sgid). The kernel asks to kill the bits at
// a chown whoever calls, so the capability counts here too.
bool outside_group(fuse_req_t req, uint32_t mode, uint32_t gid) {
  return (mode & (S_ISGID | S_IXGRP)) == S_ISGID && !in_group_or_capable(req, gid);
}

void op_setattr(fuse_req_t req, fuse_ino_t node, struct stat* attr, int to_set, fuse_file_info*) {
  fs::SetAttributes changes;
  if (to_set & FUSE_SET_ATTR_MODE) changes.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) changes.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) changes.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) changes.size = static_cast<uint64_t>(attr->st_size);
  // The kernel sets both ATIME and ATIME_NOW for utimensat(UTIME_NOW) (and
  // for touch without a time); _NOW wins and the server's clock is used.
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    changes.atime_now = true;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    changes.atime = timestamp_of(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    changes.mtime_now = true;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    changes.mtime = timestamp_of(attr->st_mtim);
  }
  // With write-back caching the kernel keeps ctime and sends it.
  if (to_set & FUSE_SET_ATTR_CTIME) changes.ctime = timestamp_of(attr->st_ctim);
  changes.kill_set_id = current_request().kill_suidgid;
  if (changes.kill_set_id) {
    auto before = fs_of(req).getattr(to_inode(req, node));
    if (!before) return reply_error(req, before.error());
    changes.caller_outside_group = outside_group(req, before->mode, before->gid);
  }
  reply_attributes(req, fs_of(req).setattr(to_inode(req, node), changes));
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  reply_entry(req, to_inode(req, parent),
              fs_of(req).mknod(to_inode(req, parent), name, mode, rdev, caller_of(req)));
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  reply_entry(req, to_inode(req, parent),
              fs_of(req).mkdir(to_inode(req, parent), name, mode, caller_of(req)));
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  reply_entry(req, to_inode(req, parent),
              fs_of(req).symlink(to_inode(req, parent), name, target, caller_of(req)));
}

void op_readlink(fuse_req_t req, fuse_ino_t node) {
  auto target = fs_of(req).readlink(to_inode(req, node));
  if (!target) return reply_error(req, target.error());
  fuse_reply_readlink(req, target->c_str());
}

void op_link(fuse_req_t req, fuse_ino_t node, fuse_ino_t new_parent, const char* new_name) {
  reply_entry(req, to_inode(req, new_parent),
              fs_of(req).link(to_inode(req, node), to_inode(req, new_parent), new_name));
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, fs_of(req).unlink(to_inode(req, parent), name));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, fs_of(req).rmdir(to_inode(req, parent), name));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
               const char* new_name, unsigned int flags) {
  reply_status(req, fs_of(req).rename(to_inode(req, parent), name, to_inode(req, new_parent),
                                      new_name, flags));
}

// ---- Open files --------------------------------------------------------

// Open files need no handle of their own: the FileSystem counts opens per
// inode. The kernel's page cache stays valid across opens because every
// change goes through it (and copy_file_range / fallocate invalidate what
// they touch), so it is kept.
void set_open_flags(fuse_file_info* fi) {
  fi->fh = 0;
  fi->keep_cache = 1;
}

void op_open(fuse_req_t req, fuse_ino_t node, fuse_file_info* fi) {
  fs::FileSystem& filesystem = fs_of(req);
  const uint64_t inode = to_inode(req, node);
  if (Status opened = filesystem.open(inode, fi->flags); !opened) {
    return reply_error(req, opened.error());
  }
  set_open_flags(fi);
  if (fuse_reply_open(req, fi) == -ENOENT) filesystem.release(inode);
}

// create = mknod(S_IFREG) + open, answered as one entry with one reference.
void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) {
  fs::FileSystem& filesystem = fs_of(req);
  auto attributes =
      filesystem.mknod(to_inode(req, parent), name, (mode & ~S_IFMT) | S_IFREG, 0, caller_of(req));
  if (!attributes) return reply_error(req, attributes.error());
  if (Status opened = filesystem.open(attributes->ino, fi->flags); !opened) {
    filesystem.forget(attributes->ino, 1);
    return reply_error(req, opened.error());
  }
  set_open_flags(fi);
  const fuse_entry_param entry =
      entry_of(adapter_of(req), *attributes, filesystem.is_encrypted(to_inode(req, parent)));
  if (fuse_reply_create(req, &entry, fi) == -ENOENT) {
    filesystem.release(attributes->ino);
    filesystem.forget(attributes->ino, 1);
  }
}

void op_read(fuse_req_t req, fuse_ino_t node, size_t size, off_t offset, fuse_file_info*) {
  if (offset < 0) return reply_errno(req, EINVAL);
  // A request that came through io_uring is answered from its entry's
  // payload buffer, so the data is read straight into it (page-aligned, as
  // the image's O_DIRECT reads want). Otherwise one buffer per request keeps
  // the worker threads independent (requests are at most max_pages, 1 MiB).
  MutableByteSpan into = RingChannel::reply_space();
  block::IoBuffer own;
  if (into.size() >= size) {
    into = into.first(size);
  } else {
    own = block::IoBuffer(size);
    into = own.first(size);
  }
  auto read = fs_of(req).read(to_inode(req, node), static_cast<uint64_t>(offset), into);
  if (!read) return reply_error(req, read.error());
  fuse_reply_buf(req, reinterpret_cast<const char*>(into.data()), *read);
}

// Drops the kernel's cached attributes of `node` (a negative offset leaves
// its cached pages alone). The kernel takes no lock of the inode for it, so
// a handler may do it before its own reply.
void invalidate_attributes(fuse_session* session, fuse_ino_t node) {
  if (session == nullptr) return;
  const int result = fuse_lowlevel_notify_inval_inode(session, node, -1, 0);
  if (result != 0 && result != -ENOENT) {
    fuse_log(FUSE_LOG_DEBUG, "ecfs: invalidating the attributes of inode %llu: %s\n",
             static_cast<unsigned long long>(node), std::strerror(-result));
  }
}

void reply_written(fuse_req_t req, const Result<size_t>& written) {
  if (!written) return reply_error(req, written.error());
  fuse_reply_write(req, *written);
}

// Under FUSE_HANDLE_KILLPRIV_V2 an unprivileged write of a set-user-ID (or
// group-executable set-group-ID) file goes through the page cache to the
// server at once, flagged, and the server clears the bits before the data
// lands (fs/fuse/file.c fuse_cache_write_iter, fuse_send_write).
//
// The kernel keeps the mode it cached (it left the change to the server),
// so the server tells it the attributes are stale: otherwise stat, even
// fstat of the writer's own descriptor, would show the bits until the
// cache times out.
// Whether set-group-ID goes from a file of `mode` and group `gid` whose
// data the caller (without CAP_FSETID) changes: from a group-executable
// file always, from any other when the caller is not in its group
// (fs/attr.c setattr_should_drop_sgid).
bool set_group_id_goes(fuse_req_t req, uint32_t mode, uint32_t gid) {
  if ((mode & S_ISGID) == 0) return false;
  return (mode & S_IXGRP) != 0 || !caller_in_group(req, gid);
}

Status kill_set_id(fuse_req_t req, fuse_ino_t node) {
  auto before = fs_of(req).getattr(to_inode(req, node));
  if (!before) return std::unexpected(before.error());
  auto changed = fs_of(req).setattr(
      to_inode(req, node),
      fs::SetAttributes{.kill_set_id = true,
                        .caller_outside_group = outside_group(req, before->mode, before->gid)});
  if (!changed) return std::unexpected(changed.error());
  if (changed->mode != before->mode) invalidate_attributes(adapter_of(req).session(), node);
  return ok();
}

Status kill_set_id_if_asked(fuse_req_t req, fuse_ino_t node) {
  return current_request().kill_suidgid ? kill_set_id(req, node) : ok();
}

// fallocate(2) and copy_file_range(2) change a file's data too, but their
// requests carry no such flag: the kernel's file_modified asks to clear the
// bits, and under FUSE_HANDLE_KILLPRIV_V2 fuse_setattr leaves that to the
// server (fs/fuse/dir.c). So the server applies the VFS rule itself: a
// caller without CAP_FSETID clears set-user-ID, and set-group-ID as
// set_group_id_goes says.
Status kill_set_id_unless_capable(fuse_req_t req, fuse_ino_t node) {
  if (!killpriv_negotiated()) return ok();  // the kernel has done it
  auto attributes = fs_of(req).getattr(to_inode(req, node));
  if (!attributes) return std::unexpected(attributes.error());
  const uint32_t mode = attributes->mode;
  const bool privileged = (mode & S_ISUID) || set_group_id_goes(req, mode, attributes->gid);
  if (!privileged || S_ISDIR(mode)) return ok();
  if (process_has_capability(fuse_req_ctx(req)->pid, CAP_FSETID)) return ok();
  return kill_set_id(req, node);
}

void op_write(fuse_req_t req, fuse_ino_t node, const char* data, size_t size, off_t offset,
              fuse_file_info*) {
  if (offset < 0) return reply_errno(req, EINVAL);
  if (Status killed = kill_set_id_if_asked(req, node); !killed) {
    return reply_error(req, killed.error());
  }
  reply_written(req, fs_of(req).write(to_inode(req, node), static_cast<uint64_t>(offset),
                                      ByteSpan(reinterpret_cast<const uint8_t*>(data), size)));
}

// The same as write, for data libfuse hands over as a buffer vector: one
// memory buffer (the usual case, passed through without a copy) or
// anything else (a pipe when splicing), gathered first.
void op_write_buf(fuse_req_t req, fuse_ino_t node, fuse_bufvec* data, off_t offset,
                  fuse_file_info*) {
  if (offset < 0) return reply_errno(req, EINVAL);
  if (Status killed = kill_set_id_if_asked(req, node); !killed) {
    return reply_error(req, killed.error());
  }
  const uint64_t position = static_cast<uint64_t>(offset);
  if (data->count - data->idx == 1 && !(data->buf[data->idx].flags & FUSE_BUF_IS_FD)) {
    const fuse_buf& buf = data->buf[data->idx];
    const auto* bytes = static_cast<const uint8_t*>(buf.mem) + data->off;
    return reply_written(req, fs_of(req).write(to_inode(req, node), position,
                                               ByteSpan(bytes, buf.size - data->off)));
  }
  const size_t size = fuse_buf_size(data);
  auto buffer = std::make_unique_for_overwrite<uint8_t[]>(size);
  fuse_bufvec gathered;
  std::memset(&gathered, 0, sizeof(gathered));
  gathered.count = 1;
  gathered.buf[0].size = size;
  gathered.buf[0].mem = buffer.get();
  gathered.buf[0].fd = -1;
  const ssize_t copied = fuse_buf_copy(&gathered, data, static_cast<fuse_buf_copy_flags>(0));
  if (copied < 0) return reply_errno(req, static_cast<int>(-copied));
  reply_written(req, fs_of(req).write(to_inode(req, node), position,
                                      ByteSpan(buffer.get(), static_cast<size_t>(copied))));
}

// close(2): nothing to do. Durability is fsync's (or the periodic
// commit's); a close that committed would make every close a transaction.
void op_release(fuse_req_t req, fuse_ino_t node, fuse_file_info*) {
  fs_of(req).release(to_inode(req, node));
  fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t node, int datasync, fuse_file_info*) {
  reply_status(req, fs_of(req).fsync(to_inode(req, node), datasync != 0));
}

void op_fallocate(fuse_req_t req, fuse_ino_t node, int mode, off_t offset, off_t length,
                  fuse_file_info*) {
  if (offset < 0 || length <= 0) return reply_errno(req, EINVAL);
  if (Status killed = kill_set_id_unless_capable(req, node); !killed) {
    return reply_error(req, killed.error());
  }
  reply_status(req, fs_of(req).fallocate(to_inode(req, node), mode, static_cast<uint64_t>(offset),
                                         static_cast<uint64_t>(length)));
}

void op_lseek(fuse_req_t req, fuse_ino_t node, off_t offset, int whence, fuse_file_info*) {
  if (offset < 0) return reply_errno(req, ENXIO);
  auto position = fs_of(req).lseek(to_inode(req, node), static_cast<uint64_t>(offset), whence);
  if (!position) return reply_error(req, position.error());
  fuse_reply_lseek(req, static_cast<off_t>(*position));
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t node_in, off_t offset_in, fuse_file_info*,
                        fuse_ino_t node_out, off_t offset_out, fuse_file_info*, size_t length,
                        int flags) {
  // copy_file_range(2) defines no flags yet (the kernel rejects others).
  if (flags != 0 || offset_in < 0 || offset_out < 0) return reply_errno(req, EINVAL);
  if (Status killed = kill_set_id_unless_capable(req, node_out); !killed) {
    return reply_error(req, killed.error());
  }
  auto copied = fs_of(req).copy_file_range(to_inode(req, node_in), static_cast<uint64_t>(offset_in),
                                           to_inode(req, node_out),
                                           static_cast<uint64_t>(offset_out), length);
  if (!copied) return reply_error(req, copied.error());
  fuse_reply_write(req, static_cast<size_t>(*copied));
}

// ---- Directories -------------------------------------------------------

// An open directory: where its listing ends (FileSystem::listing_end), taken
// at opendir and again whenever the listing starts over (rewinddir, which
// the kernel keeps to itself, shows up as a read from offset 0).
struct OpenDirectory {
  std::atomic<uint64_t> end;
};

OpenDirectory& open_directory(const fuse_file_info* fi) {
  return *reinterpret_cast<OpenDirectory*>(static_cast<uintptr_t>(fi->fh));
}

// The end of the listing a readdir from `offset` belongs to.
Result<uint64_t> listing_end_for(fuse_req_t req, fuse_ino_t node, off_t offset,
                                 const fuse_file_info* fi) {
  OpenDirectory& directory = open_directory(fi);
  if (offset != 0) return directory.end.load(std::memory_order_relaxed);
  auto end = fs_of(req).listing_end(to_inode(req, node));
  if (end) directory.end.store(*end, std::memory_order_relaxed);
  return end;
}

void op_opendir(fuse_req_t req, fuse_ino_t node, fuse_file_info* fi) {
  auto end = fs_of(req).listing_end(to_inode(req, node));
  if (!end) return reply_error(req, end.error());
  auto directory = std::make_unique<OpenDirectory>();
  directory->end = *end;
  fi->fh = reinterpret_cast<uintptr_t>(directory.get());
  if (fuse_reply_open(req, fi) == 0) directory.release();
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete &open_directory(fi);
  fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t node, int datasync, fuse_file_info*) {
  reply_status(req, fs_of(req).fsync(to_inode(req, node), datasync != 0));
}

// d_type -> the type bits of st_mode (DTTOIF).
mode_t mode_of_dirent_type(uint8_t type) { return static_cast<mode_t>(type) << 12; }

// The cookie of each entry is the offset that continues after it, which is
// what fuse_add_direntry's `off` means; the kernel hands it back as the
// next request's offset.
void op_readdir(fuse_req_t req, fuse_ino_t node, size_t size, off_t offset, fuse_file_info* fi) {
  if (offset < 0) return reply_errno(req, EINVAL);
  auto end = listing_end_for(req, node, offset, fi);
  if (!end) return reply_error(req, end.error());
  std::vector<char> buffer(size);
  size_t used = 0;
  // fuse_add_direntry only formats bytes: calling it from inside the
  // FileSystem's listing (under its lock) is safe.
  const Status listed = fs_of(req).readdir(
      to_inode(req, node), static_cast<uint64_t>(offset),
      [&](const fs::DirListEntry& entry) {
        struct stat st;
        std::memset(&st, 0, sizeof(st));
        st.st_ino = entry.ino;
        st.st_mode = mode_of_dirent_type(entry.type);
        const size_t needed =
            fuse_add_direntry(req, buffer.data() + used, size - used, entry.name.c_str(), &st,
                              static_cast<off_t>(entry.cookie));
        if (needed > size - used) return false;
        used += needed;
        return true;
      },
      *end);
  if (!listed) return reply_error(req, listed.error());
  fuse_reply_buf(req, buffer.data(), used);
}

// readdirplus: every entry with its attributes, each but "." and ".."
// carrying the lookup reference the kernel counts when it links the entry
// (fs/fuse/readdir.c fuse_direntplus_link); a reply the kernel no longer
// takes gives those references back.
void op_readdirplus(fuse_req_t req, fuse_ino_t node, size_t size, off_t offset,
                    fuse_file_info* fi) {
  if (offset < 0) return reply_errno(req, EINVAL);
  auto end = listing_end_for(req, node, offset, fi);
  if (!end) return reply_error(req, end.error());
  fs::FileSystem& filesystem = fs_of(req);
  const Adapter& adapter = adapter_of(req);
  const uint64_t directory = to_inode(req, node);
  const bool encrypted_directory = filesystem.is_encrypted(directory);
  std::vector<char> buffer(size);
  size_t used = 0;
  std::vector<uint64_t> referenced;  // inodes whose reference this reply carries
  // fuse_add_direntry_plus only formats bytes, so it may run under the
  // FileSystem's lock; sizing first keeps a reference from being taken for
  // an entry that does not fit.
  const Status listed = filesystem.readdir_plus(
      directory, static_cast<uint64_t>(offset),
      [&](const fs::DirListEntry& entry, const fs::Attributes* attributes) {
        const size_t needed =
            fuse_add_direntry_plus(req, nullptr, 0, entry.name.c_str(), nullptr, 0);
        if (needed > size - used) return false;
        fuse_entry_param param;
        std::memset(&param, 0, sizeof(param));
        if (attributes != nullptr) {
          param = entry_of(adapter, *attributes, encrypted_directory);
          referenced.push_back(attributes->ino);
        } else {
          // "." and "..", or an entry whose inode could not be read: no
          // node id (0), which the kernel shows but does not link or count.
          param.attr.st_ino = entry.ino;
          param.attr.st_mode = mode_of_dirent_type(entry.type);
        }
        used += fuse_add_direntry_plus(req, buffer.data() + used, size - used, entry.name.c_str(),
                                       &param, static_cast<off_t>(entry.cookie));
        return true;
      },
      *end);
  if (!listed) {
    for (uint64_t inode : referenced) filesystem.forget(inode, 1);
    return reply_error(req, listed.error());
  }
  if (fuse_reply_buf(req, buffer.data(), used) == -ENOENT) {
    for (uint64_t inode : referenced) filesystem.forget(inode, 1);
  }
}

// ---- Filesystem-wide ---------------------------------------------------

void op_statfs(fuse_req_t req, fuse_ino_t) {
  auto stats = fs_of(req).statfs();
  if (!stats) return reply_error(req, stats.error());
  struct statvfs out;
  std::memset(&out, 0, sizeof(out));
  out.f_bsize = stats->block_size;
  out.f_frsize = stats->block_size;
  out.f_blocks = stats->total_blocks;
  out.f_bfree = stats->free_blocks;
  out.f_bavail = stats->available_blocks;
  // statvfs counts all inodes and the free ones; FsStats counts used and free.
  out.f_files = stats->files + stats->free_files;
  out.f_ffree = stats->free_files;
  out.f_favail = stats->free_files;
  out.f_namemax = stats->max_name_length;
  fuse_reply_statfs(req, &out);
}

// ---- Extended attributes -----------------------------------------------

// Whether the caller of `req` is in group `gid` (its fsgid or one of its
// supplementary groups, which libfuse reads from /proc).
bool caller_in_group(fuse_req_t req, uint32_t gid) {
  if (fuse_req_ctx(req)->gid == gid) return true;
  std::vector<gid_t> groups(64);
  for (;;) {
    const int count = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
    if (count < 0) return false;  // unknown: the rule then clears the bit
    if (static_cast<size_t>(count) > groups.size()) {
      groups.resize(static_cast<size_t>(count));
      continue;
    }
    return std::find(groups.begin(), groups.begin() + count, gid) != groups.begin() + count;
  }
}

// Setting a file's access ACL clears set-group-ID when the caller is neither
// in the file's group nor holds CAP_FSETID, as chmod does (fs/posix_acl.c
// posix_acl_update_mode). With FUSE_POSIX_ACL the kernel leaves the mode to
// the server (fs/fuse/acl.c fuse_set_acl), and its request to clear the bit
// (FUSE_SETXATTR_ACL_KILL_SGID) needs FUSE_SETXATTR_EXT, which libfuse 3.14
// cannot decode; so the server applies the rule itself. The kernel drops
// its cached attributes after the call.
Status apply_acl_set_group_id_rule(fuse_req_t req, fuse_ino_t node) {
  auto attributes = fs_of(req).getattr(to_inode(req, node));
  if (!attributes) return std::unexpected(attributes.error());
  if ((attributes->mode & S_ISGID) == 0 || in_group_or_capable(req, attributes->gid)) return ok();
  auto changed = fs_of(req).setattr(
      to_inode(req, node),
      fs::SetAttributes{.mode = attributes->mode & 07777 & ~static_cast<uint32_t>(S_ISGID)});
  if (!changed) return std::unexpected(changed.error());
  return ok();
}

void op_setxattr(fuse_req_t req, fuse_ino_t node, const char* name, const char* value, size_t size,
                 int flags) {
  Status set = fs_of(req).setxattr(to_inode(req, node), name,
                                   ByteSpan(reinterpret_cast<const uint8_t*>(value), size), flags);
  if (set && std::string_view(name) == "system.posix_acl_access") {
    set = apply_acl_set_group_id_rule(req, node);
  }
  reply_status(req, set);
}

// getxattr(2) / listxattr(2) size protocol: size 0 asks for the length;
// a buffer that is too small is ERANGE.
void reply_sized(fuse_req_t req, const void* data, size_t length, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, length);
  } else if (length > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, static_cast<const char*>(data), length);
  }
}

void op_getxattr(fuse_req_t req, fuse_ino_t node, const char* name, size_t size) {
  auto value = fs_of(req).getxattr(to_inode(req, node), name);
  if (!value) return reply_error(req, value.error());
  reply_sized(req, value->data(), value->size(), size);
}

// The names without "trusted." ones. Local filesystems list those only to
// CAP_SYS_ADMIN (fs/xattr.c trusted_xattr_list), and FUSE leaves the
// listing to the server; only the adapter knows the caller. uid 0 stands
// for the capability (a FUSE server cannot see the caller's capabilities).
std::string without_trusted_names(const std::string& names) {
  std::string kept;
  for (size_t start = 0; start < names.size();) {
    size_t end = names.find('\0', start);
    if (end == std::string::npos) end = names.size();
    const std::string_view name(names.data() + start, end - start);
    if (!name.starts_with("trusted.")) {
      kept.append(name);
      kept.push_back('\0');
    }
    start = end + 1;
  }
  return kept;
}

void op_listxattr(fuse_req_t req, fuse_ino_t node, size_t size) {
  auto names = fs_of(req).listxattr(to_inode(req, node));
  if (!names) return reply_error(req, names.error());
  if (fuse_req_ctx(req)->uid != 0) *names = without_trusted_names(*names);
  reply_sized(req, names->data(), names->size(), size);
}

void op_removexattr(fuse_req_t req, fuse_ino_t node, const char* name) {
  reply_status(req, fs_of(req).removexattr(to_inode(req, node), name));
}

// ---- ioctl -------------------------------------------------------------

// Drops the names the kernel may cache in their form before a key change
// (filesystem.h KeyChange::stale_names). Before the reply, so that the
// caller of `ecfs key add/remove` finds the new names at once; the daemon
// holds no lock meanwhile, so requests the kernel has in flight in those
// directories (it holds their i_rwsem while it waits) are served. ENOENT
// means the kernel holds no such name.
void invalidate_names(fuse_session* session, const fs::FileSystem& filesystem,
                      const std::vector<fs::CachedName>& names) {
  if (session == nullptr) return;
  for (const fs::CachedName& cached : names) {
    const int result = fuse_lowlevel_notify_inval_entry(session, to_node(filesystem, cached.parent),
                                                        cached.name.data(), cached.name.size());
    if (result != 0 && result != -ENOENT) {
      // Never the name itself: it may be a plaintext name.
      fuse_log(FUSE_LOG_DEBUG, "ecfs: invalidating a name in directory %llu: %s\n",
               static_cast<unsigned long long>(cached.parent), std::strerror(-result));
    }
  }
}

// Drops what the kernel caches of inodes whose contents, attributes or
// symlink targets changed meaning with a key (filesystem.h KeyChange): the
// FUSE counterpart of the kernel evicting inodes on key removal. ENOENT
// means the kernel holds nothing of that inode.
void invalidate_inodes(fuse_session* session, const fs::FileSystem& filesystem,
                       const std::vector<uint64_t>& inodes) {
  if (session == nullptr) return;
  for (const uint64_t ino : inodes) {
    const int result = fuse_lowlevel_notify_inval_inode(session, to_node(filesystem, ino), 0, 0);
    if (result != 0 && result != -ENOENT) {
      fuse_log(FUSE_LOG_DEBUG, "ecfs: invalidating inode %llu: %s\n",
               static_cast<unsigned long long>(ino), std::strerror(-result));
    }
  }
}

void op_ioctl(fuse_req_t req, fuse_ino_t node, unsigned int command, void*, fuse_file_info*,
              unsigned flags, const void* in, size_t in_size, size_t out_size) {
  // Unrestricted ioctls exist only for CUSE; a FUSE mount never sends them.
  if (flags & FUSE_IOCTL_UNRESTRICTED) return reply_errno(req, ENOTTY);
  Adapter& adapter = adapter_of(req);
  const fuse_ctx* context = fuse_req_ctx(req);
  const fscrypt::Caller caller = fscrypt_caller(context->uid, context->pid);
  // The argument lies in libfuse's receive buffer, which is writable (the
  // const is the API's): a raw key in it is wiped once answered.
  const MutableByteSpan argument(static_cast<uint8_t*>(const_cast<void*>(in)), in_size);
  const bool needs_admin = command == ECFS_IOC_REMOUNT || command == ECFS_IOC_SUBVOL_CREATE ||
                           command == ECFS_IOC_SUBVOL_DELETE;
  const bool is_admin = needs_admin && process_has_capability(context->pid, CAP_SYS_ADMIN);
  const IoctlAnswer answer =
      answer_ioctl(adapter.filesystem(), to_inode(req, node), caller, command, argument, is_admin);
  wipe_ioctl_secrets(command, argument);
  invalidate_names(adapter.session(), adapter.filesystem(), answer.stale_names);
  if (answer.error != 0) {
    reply_error(req, Error(answer.error, answer.message));
  } else if (answer.out.size() > out_size) {
    reply_errno(req, EINVAL);
  } else {
    fuse_reply_ioctl(req, 0, answer.out.data(), answer.out.size());
  }
  // Only after the reply: the caller's ioctl must not wait for the kernel
  // to drop caches (the invalidation may need the same inodes' locks).
  invalidate_inodes(adapter.session(), adapter.filesystem(), answer.stale_inodes);
}

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof(ops));
  ops.init = op_init;
  ops.destroy = op_destroy;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.write_buf = op_write_buf;
  // No flush: close(2) has nothing to do here (data reaches the filesystem
  // in write requests, and with the write-back cache the kernel writes back
  // and reports write errors before it would send FLUSH). Left out, the
  // first FLUSH is answered ENOSYS and the kernel sends no more
  // (fs/fuse/file.c fuse_flush: no_flush), saving a round trip per close.
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.releasedir = op_releasedir;
  ops.fsyncdir = op_fsyncdir;
  ops.statfs = op_statfs;
  ops.setxattr = op_setxattr;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  ops.create = op_create;
  ops.fallocate = op_fallocate;
  ops.lseek = op_lseek;
  ops.copy_file_range = op_copy_file_range;
  ops.ioctl = op_ioctl;
  // Not set: access (default_permissions: the kernel checks), getlk/setlk/
  // flock (the kernel keeps locks locally), bmap and poll (no meaning here).
  return ops;
}

}  // namespace

Adapter::Adapter(fs::FileSystem& filesystem, AdapterOptions options,
                 std::function<void()> on_closed)
    : filesystem_(filesystem), options_(options), on_closed_(std::move(on_closed)) {}

const fuse_lowlevel_ops& Adapter::operations() {
  static const fuse_lowlevel_ops ops = make_operations();
  return ops;
}

Status Adapter::close_filesystem() {
  std::lock_guard lock(close_mutex_);
  if (!close_result_) {
    close_result_ = filesystem_.close();
    if (on_closed_) on_closed_();
  }
  return *close_result_;
}

}  // namespace ecfs::fuse
