// The -o options of `ecfs mount` and of the mount(8) helper
// `mount.fuse.ecfs` (comma-separated, later ones win): what ecfs does with
// each, and which ones pass through to libfuse and the kernel.
//
//   ro, rw                 read-only / read-write (default rw)
//   commit=SECONDS         periodic commit interval (0 = the default, 5 s),
//                          as ext4's and btrfs's commit=
//   allow_other            let other users in (always on when root mounts)
//   debug                  libfuse's request trace on stderr (stays in the
//                          foreground)
//   writeback_cache        (default) the kernel caches written data and
//   no_writeback_cache     sends it in large requests; "no_" sends every
//                          write(2) through at once, so SEEK_DATA/SEEK_HOLE
//                          and st_blocks see data still held by open writers
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
//   suid nosuid dev nodev exec noexec sync async dirsync atime noatime
//                          passed to the kernel (libfuse's defaults are
//                          nosuid,nodev)
//   defaults auto noauto user nouser users owner group nofail _netdev
//   x-* comment=*          fstab / mount(8) options, accepted and ignored
//   relatime norelatime strictatime nostrictatime diratime nodiratime
//   lazytime nolazytime    accepted and ignored: libfuse 3.14 cannot pass
//                          them (the mount gets the kernel default, relatime)
//
// Anything else is an error (EINVAL naming it) unless `sloppy` (mount -s).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace ecfs::fuse {

struct MountConfig {
  bool read_only = false;
  std::optional<std::chrono::seconds> commit_interval;  // unset: the filesystem's default
  bool allow_other = false;
  bool debug = false;
  bool writeback_cache = true;
  bool io_uring = true;
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
