// The -o options of `ecfs mount` and of the mount(8) helper
// `mount.fuse.ecfs` (comma-separated, later ones win): what ecfs does with
// each, and which ones pass through to libfuse and the kernel.
//
//   ro, rw                 read-only / read-write (default rw)
//   commit=SECONDS         periodic commit interval (0 = the default, 5 s),
//                          as ext4's and btrfs's commit=
//   subvol=PATH            mount the subvolume at PATH (from the top level's
//                          root) as the root, as btrfs's subvol=
//   unlock=DIR             once mounted, unlock the encrypted directory DIR
//   unlock_key_file=FILE   (under the mount point unless absolute) with the
//                          key-file protector FILE, as `ecfs mount --unlock
//                          DIR --key-file FILE` (for /etc/fstab at boot)
//   allow_other            let other users in (always on when root mounts)
//   debug                  libfuse's request trace on stderr (stays in the
//                          foreground)
//   writeback_cache        (default) the kernel caches written data and
//   no_writeback_cache     sends it in large requests; "no_" sends every
//                          write(2) through at once, so SEEK_DATA/SEEK_HOLE
//                          and st_blocks see data still held by open writers
//   blkdev                 (default when root) mount as fuseblk over a loop
//   no_blkdev              device attached to the image, so that sync(2),
//                          syncfs(2) and a remount read-only commit, and an
//                          unmount returns only once the daemon has
//                          committed and let go of the image
//                          (block/loop_device.h); "no_" mounts plain fuse,
//                          where only fsync(2) and `ecfs sync` commit
//   io_uring               (default) serve requests through io_uring where
//   no_io_uring            the kernel offers it (the fuse module parameter
//                          enable_uring; fuse/ring_channel.h); "no_" keeps
//                          to /dev/fuse
//   read_ahead_kb=N        the mount's readahead window in KiB (0 to 65536;
//                          default 1024; 0 keeps the kernel's 128): set
//                          through sysfs when the mount runs as root
//                          (fuse/backing_device.h)
//   dirty_ratio=N          the mount's share of the system's dirty-page
//                          limit in percent (0 to 100; default 20; 0 keeps
//                          the kernel's strict 1%): set through sysfs when
//                          the mount runs as root (fuse/backing_device.h)
//   default_permissions    accepted; always on (the kernel checks access)
//   suid nosuid dev nodev exec noexec sync async dirsync
//                          passed to the kernel. `ecfs mount` defaults to
//                          nosuid,nodev (libfuse's defaults); the mount(8)
//                          helper run by root to suid,dev, mount(8)'s own
//                          defaults, since mount(8) drops options equal to
//                          its defaults before it runs the helper (an fstab
//                          "suid" would otherwise never arrive)
//   noatime, relatime (default), strictatime (norelatime)
//                          when reads and listings the daemon serves
//                          update the access time (the kernel marks FUSE
//                          inodes S_NOATIME and leaves atime to the daemon;
//                          reads its page cache serves update nothing);
//                          atime and nostrictatime mean relatime. The
//                          kernel's mount flag is set to match, so that
//                          /proc/mounts and a remount see it: strictatime
//                          needs root (set after mounting with
//                          mount_setattr(2); libfuse 3.14 cannot pass it)
//   nodiratime, diratime   listings leave a directory's atime alone (needs
//                          root, as strictatime) / update it (default)
//   lazytime nolazytime    accepted: atime updates always wait in memory for
//                          the next commit, never written on their own
//   defaults auto noauto user nouser users owner group nofail _netdev
//   x-* comment=*          fstab / mount(8) options, accepted and ignored
//
// A remount (mount(8)'s "remount", `mount -o remount,ro MNT`) takes the
// same options, and the ones mount(8) copies from the live mount (the
// kernel's user_id=, group_id=, rootmode=, blksize=, max_read=,
// allow_other, default_permissions).
//
// Anything else is an error (EINVAL naming it) unless `sloppy` (mount -s).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "fs/filesystem.h"

namespace ecfs::fuse {

struct MountConfig {
  bool read_only = false;
  std::string subvolume;                                // subvol=: empty for the top level
  std::optional<std::string> unlock;                    // unlock=DIR
  std::optional<std::string> unlock_key_file;           // unlock_key_file=FILE
  std::optional<std::chrono::seconds> commit_interval;  // unset: the filesystem's default
  bool allow_other = false;
  bool debug = false;
  bool writeback_cache = true;
  bool io_uring = true;
  // Freed space goes back to the host (holes punched in an image file,
  // BLKDISCARD on a block device); nodiscard keeps it.
  bool discard = true;
  // Unset: fuseblk when root (the only one allowed to mount it).
  std::optional<bool> blkdev;
  // Unset: relatime, the default.
  std::optional<fs::AtimeUpdates> atime;
  std::optional<bool> directory_atime;  // unset: diratime, the default
  bool remount = false;                 // "remount" (from mount(8))
  // In a remount: options a live mount cannot change (writeback_cache,
  // io_uring, blkdev, debug and their "no_" forms), as given.
  std::vector<std::string> mount_time_only;
  // Unset: the default, set quietly where permitted; set: asked for, so a
  // failure to apply it is reported.
  std::optional<uint32_t> read_ahead_kb;
  std::optional<uint32_t> dirty_ratio;
  std::vector<std::string> kernel_options;  // passed through, in order
};

// Parses one or more comma-separated lists into `config` (which may already
// hold earlier lists' settings).
Status parse_mount_options(std::string_view list, bool sloppy, MountConfig& config);

}  // namespace ecfs::fuse
