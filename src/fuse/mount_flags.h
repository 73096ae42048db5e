// The kernel's flags of a live ecfs mount, changed with mount(2)'s
// MS_REMOUNT: the atime flags libfuse 3.14 cannot pass when it mounts
// (relatime, strictatime, nodiratime: it knows only atime and noatime), and
// mount(8)'s remount (`mount -o remount,ro MNT`), which changes the
// superblock's read-only state and the mount's flags at once. Root only
// (CAP_SYS_ADMIN); EPERM otherwise.
#pragma once

#include <optional>
#include <string>

#include "base/error.h"
#include "fs/filesystem.h"

namespace ecfs::fuse {

// The flags a remount sets; unset ones keep their current value.
struct KernelMountFlags {
  std::optional<bool> read_only;
  std::optional<bool> nosuid;
  std::optional<bool> nodev;
  std::optional<bool> noexec;
  std::optional<bool> synchronous;  // sync
  std::optional<bool> dirsync;
  std::optional<fs::AtimeUpdates> atime;
  std::optional<bool> directory_atime;
};

// The per-mount flags only, with mount_setattr(2), e.g. the atime flags
// right after mounting; the superblock is left alone. Sends no request to
// the filesystem, so the daemon may call it before it serves requests.
// (`read_only` changes the mount, not the superblock; `synchronous` and
// `dirsync` are superblock flags and are not set here.)
Status change_mount_flags(const std::string& mountpoint, const KernelMountFlags& flags);

// The superblock's read-only state and the mount's flags (MS_REMOUNT), as
// mount(8) gives them: the ones left unset keep their current value. Reads
// the current flags with statvfs(2), which the daemon answers: never call it
// from the daemon itself. The
// kernel writes the mount's dirty pages back before it turns read-only, and
// sends a fuseblk mount's server FUSE_SYNCFS (fs/super.c reconfigure_super,
// sync_filesystem).
Status remount(const std::string& mountpoint, const KernelMountFlags& flags);

}  // namespace ecfs::fuse
