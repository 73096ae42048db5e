// The kernel's readahead for one FUSE mount.
//
// A FUSE superblock gets a backing device of its own whose readahead starts
// at 128 KiB (fs/fuse/inode.c fuse_bdi_init: VM_READAHEAD_PAGES), and the
// INIT reply's max_readahead can only lower it (process_init_reply keeps
// the smaller). So the mount raises the device's value through sysfs before
// it answers INIT, and asks for the same in the reply. A sequential reader then has one 128 KiB
// request in flight at a time: each waits for an O_DIRECT read of the image
// and its checksums (and decryption) before the next is sent. A larger
// window lets the kernel send several large requests at once, which the
// server answers in parallel (reads finish without the filesystem's lock).
// The sysfs file is /sys/class/bdi/<major>:<minor>/read_ahead_kb, writable
// by root only; a mount by another user keeps the kernel's 128 KiB.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace ecfs::fuse {

// What `ecfs mount` sets unless told otherwise (-o read_ahead_kb=N).
inline constexpr uint32_t kDefaultReadAheadKib = 1024;

// The device number ("major:minor") of the mount at `mountpoint` (a
// canonical path), from /proc/self/mountinfo: the top-most mount there.
// Reads no file of the mount, so it may be called before the server
// answers requests. ENOENT when nothing is mounted there.
Result<std::string> mount_device_number(const std::string& mountpoint);

// Writes `kib` into the mount's backing-device read_ahead_kb. EACCES /
// EPERM without root; ENOENT as mount_device_number.
Status set_mount_read_ahead(const std::string& mountpoint, uint32_t kib);

}  // namespace ecfs::fuse
