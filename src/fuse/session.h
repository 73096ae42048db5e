// Serving one ecfs mount with libfuse: the session, the mount, the
// multi-threaded request loop, stopping on a signal, the unmount and the
// final close of the filesystem.
//
// Stopping. `fusermount3 -u MNT` (or umount) ends the loop: the kernel
// first writes back its cached dirty pages through the still-running
// server, then drops the connection; serve() then closes the filesystem
// (buffered data written out, committed) and returns. On a fuseblk mount
// the kernel sends FUSE_DESTROY first and the unmount waits for its
// answer, which comes once the filesystem is closed and the image let go. SIGINT, SIGTERM and
// SIGHUP take the same path: a dedicated thread receives them and unmounts
// the mount itself (lazily if it is busy, like umount -l; the server keeps
// serving the processes still inside until they leave). libfuse's own
// handlers (fuse_set_signal_handlers) are not used because they leave the
// loop before unmounting, which would drop whatever the kernel still holds
// in its write-back cache. A second signal while a busy mount is draining
// commits what the filesystem has and exits at once.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "fs/filesystem.h"
#include "fuse/adapter.h"
#include "fuse/mount_flags.h"

namespace ecfs::fuse {

struct SessionOptions {
  std::string fsname;  // the mount's source in /proc/mounts and df: the image path
  // Mount as fuseblk with this block device (a loop device over the image,
  // block/loop_device.h) as the source, which then replaces `fsname`: the
  // kernel sends FUSE_SYNCFS at sync(2) and syncfs(2), answered with a
  // commit, and a FUSE_DESTROY at unmount that it waits for, answered once
  // the filesystem is closed and `on_closed` has run. Root only.
  std::string block_device;
  // Runs once the filesystem is closed, before serve() returns or (on a
  // fuseblk mount) before the unmount does: lets go of the image.
  std::function<void()> on_closed;
  bool read_only = false;
  bool allow_other = false;
  bool debug = false;                       // libfuse's request trace on stderr
  std::vector<std::string> kernel_options;  // generic mount flags (nosuid, noatime, ...)
  // Mount flags libfuse cannot pass (strictatime, nodiratime), set right
  // after mounting (fuse/mount_flags.h). Root only: a failure fails serve().
  std::optional<KernelMountFlags> mount_flags;
  // The mount's readahead window (fuse/backing_device.h); 0 keeps the kernel's.
  // A failure to set it is logged as a warning when `read_ahead_required`,
  // else ignored (a mount by a user may not write sysfs).
  uint32_t read_ahead_kb = 0;
  bool read_ahead_required = false;
  // The mount's share of the system's dirty-page limit in percent, without
  // the kernel's strict per-mount limit (fuse/backing_device.h); 0 keeps the
  // kernel's 1%, strictly. Warnings as for read_ahead_kb.
  uint32_t dirty_ratio = 0;
  bool dirty_ratio_required = false;
  AdapterOptions adapter;
  // Worker threads. The FileSystem serializes its calls, so more threads
  // mostly help requests that wait (reads of cold data, fsync) not to stall
  // the rest. Idle workers all stay: under a burst of writes libfuse would
  // otherwise end and start threads by the dozen, and each new one faults in
  // a fresh 1 MiB request buffer and stack.
  unsigned max_threads = 8;
  unsigned max_idle_threads = 8;
  bool clone_fd = true;  // one /dev/fuse descriptor per worker (less lock contention)
  // Serve through io_uring where the kernel offers it (fuse/ring_channel.h);
  // the workers above then see only forgets and interrupts.
  bool io_uring = true;
};

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, and so in every
// thread it starts afterwards, and ignores SIGPIPE. REQUIRED before the
// FileSystem is opened (its commit thread must not take these signals,
// which serve() receives with a signalfd).
void block_stop_signals();

// Sends libfuse's messages and the adapter's to syslog (daemon mode, once
// stderr is gone).
void log_to_syslog();

// Mounts `filesystem` at `mountpoint` (absolute path) with default_permissions,
// fsname=options.fsname and subtype=ecfs, calls `on_mounted` once the mount
// exists, serves requests until unmounted or signalled, and then closes the
// filesystem. Returns the first failure: of the mount (EINVAL for options
// libfuse refused, EIO when the mount itself failed, after libfuse printed
// why), of the loop, or of the close.
// REQUIRES: block_stop_signals() was called before `filesystem` was opened.
Status serve(fs::FileSystem& filesystem, const std::string& mountpoint,
             const SessionOptions& options, const std::function<void()>& on_mounted);

}  // namespace ecfs::fuse
