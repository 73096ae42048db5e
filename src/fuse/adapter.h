// Adapter: the libfuse low-level operations of an ecfs mount (DESIGN.md
// layer 6). Each request becomes one fs::FileSystem call; each error becomes
// the errno that call carries. No filesystem logic lives here.
//
// Node ids: the kernel calls the root FUSE_ROOT_ID (1); the filesystem's root
// is its root_node() (256, the top level's root directory, unless a
// subvolume is mounted as the root). Every other node id is the
// filesystem's node id itself (fs/node_ids.h), and so are st_ino and d_ino
// (the root shows its own).
//
// Lookup references: every reply that hands the kernel an entry (lookup,
// mknod, mkdir, symlink, link, create, and readdirplus except "." and "..")
// carries exactly one reference taken by the FileSystem call that made it;
// forget and forget_multi give them back. A reply the kernel refuses
// because the request was interrupted (fuse_reply_* returning -ENOENT)
// gives its reference (and its open) back at once, since no forget or
// release will ever come for it.
//
// Permissions are the kernel's: the session always mounts with
// default_permissions, and with FUSE_CAP_POSIX_ACL the kernel also enforces
// (and caches) POSIX ACLs, which the filesystem stores as the
// system.posix_acl_access / _default xattrs.
//
// Thread-safety: the operations may run on many libfuse worker threads at
// once; the Adapter holds no state of its own besides the once-only close.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

#include "base/error.h"
#include "fs/filesystem.h"

struct fuse_lowlevel_ops;
struct fuse_session;

namespace ecfs::fuse {

struct AdapterOptions {
  // How long the kernel may trust a name -> inode mapping and an inode's
  // attributes without asking again. Every change of a mount goes through
  // the kernel, which invalidates what it changes itself, and the
  // filesystem changes nothing visible on its own (an orphan deleted at
  // forget is one the kernel already dropped), so a long timeout only saves
  // round trips: a stat of a cached file never reaches the daemon. Whatever
  // the filesystem changes on its own later (names turning into no-key
  // names when a key is removed) must be invalidated explicitly
  // (fuse_lowlevel_notify_inval_entry / _inode).
  double entry_timeout_seconds = 60.0;
  double attr_timeout_seconds = 60.0;
  // The same for names in encrypted directories, which change form when
  // the key comes or goes: key changes invalidate them, and a lookup racing
  // with one keeps its old-form name at most this long (adapter.cc
  // entry_of).
  double encrypted_entry_timeout_seconds = 1.0;
  // Largest write request (FUSE_MAX_PAGES lets the kernel send 1 MiB; libfuse
  // derives max_pages from this, and its receive buffer holds 256 pages).
  uint32_t max_write = 1u << 20;
  // Kernel write-back caching of file data (FUSE_CAP_WRITEBACK_CACHE): writes
  // are gathered in the page cache and sent in large requests; the kernel
  // keeps mtime/ctime and sends them with setattr.
  bool writeback_cache = true;
  // The readahead window the INIT reply asks for, in bytes (0: keep the
  // kernel's offer). The kernel takes the smaller of this and the mount's
  // backing-device setting, which serve() raises first (fuse/backing_device.h).
  uint32_t max_readahead = 0;
};

class Adapter {
 public:
  // `on_closed` runs once, right after the filesystem is closed.
  explicit Adapter(fs::FileSystem& filesystem, AdapterOptions options = {},
                   std::function<void()> on_closed = {});
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;

  // The operation table for fuse_session_new(); the session's userdata
  // must be this Adapter.
  static const fuse_lowlevel_ops& operations();

  fs::FileSystem& filesystem() { return filesystem_; }
  const fs::FileSystem& filesystem() const { return filesystem_; }
  const AdapterOptions& options() const { return options_; }

  // The session that serves this Adapter, for notifications to the kernel
  // (cache invalidation after key changes); nullptr before it is set.
  fuse_session* session() const { return session_; }
  void set_session(fuse_session* session) { session_ = session; }

  // Closes the filesystem (writes out buffered data, commits) and runs
  // `on_closed` the first time it is called, from the destroy callback or
  // after the session ended; later calls return the first result.
  Status close_filesystem();

 private:
  fs::FileSystem& filesystem_;
  AdapterOptions options_;
  fuse_session* session_ = nullptr;
  std::function<void()> on_closed_;
  std::mutex close_mutex_;
  std::optional<Status> close_result_;
};

}  // namespace ecfs::fuse
