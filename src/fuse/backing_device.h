// The kernel's backing-device settings of one FUSE mount
// (/sys/class/bdi/<major>:<minor>/, writable by root only; a mount by
// another user keeps the kernel's values).
//
// Readahead: a FUSE superblock gets a backing device of its own whose
// readahead starts at 128 KiB (fs/fuse/inode.c fuse_bdi_init:
// VM_READAHEAD_PAGES), and the INIT reply's max_readahead can only lower it
// (process_init_reply keeps the smaller). So the mount raises the device's
// value before it answers INIT, and asks for the same in the reply. A
// sequential reader then has several large requests in flight, which the
// server answers in parallel (reads finish without the filesystem's lock),
// instead of one 128 KiB request at a time.
//
// Dirty pages: the kernel lets a FUSE mount hold 1% of the system's
// dirty-page limit and enforces that share strictly (fuse_bdi_init:
// BDI_CAP_STRICTLIMIT, bdi_set_max_ratio 1), so that a server which stops
// answering cannot pin much memory, and one that writes through the page
// cache cannot deadlock on its own dirty pages. ecfs writes its image with
// O_DIRECT and is a trusted daemon, so it takes a share like a disk
// filesystem's: without it, a writer of scattered 4 KiB blocks is held to
// ~45 MiB of dirty data and throttled to the rate of FUSE write round trips
// (14 k writes/s here, against 200 k with a 20% share).
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace ecfs::fuse {

// What `ecfs mount` sets unless told otherwise (-o read_ahead_kb=N).
inline constexpr uint32_t kDefaultReadAheadKib = 1024;
// The share of the system's dirty-page limit, in percent, a mount takes
// unless told otherwise (-o dirty_ratio=N).
inline constexpr uint32_t kDefaultDirtyRatio = 20;

// The name of the mount's backing device under /sys/class/bdi: its device
// number, with "-fuseblk" after it for a fuseblk mount (whose device number
// is that of its block device), from /proc/self/mountinfo: the top-most
// mount there. Reads no file of the mount, so it may be called before the
// server answers requests. ENOENT when nothing is mounted there.
Result<std::string> mount_backing_device_name(const std::string& mountpoint);

// Writes `kib` into the mount's backing-device read_ahead_kb. EACCES /
// EPERM without root; ENOENT as mount_backing_device_name.
Status set_mount_read_ahead(const std::string& mountpoint, uint32_t kib);

// Lets the mount hold `percent` of the system's dirty-page limit (the
// device's max_ratio), without the strict per-device limit (strict_limit
// 0). Errors as set_mount_read_ahead.
Status set_mount_dirty_ratio(const std::string& mountpoint, uint32_t percent);

}  // namespace ecfs::fuse
