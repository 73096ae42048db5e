// mount(8)'s remount of a live ecfs mount (`mount -o remount,ro MNT`, which
// runs the helper with "remount" among the options): the kernel's flags
// change with mount(2), the daemon's state (read-only, atime rule, commit
// interval) with ECFS_IOC_REMOUNT, in the order that leaves nothing
// uncommitted behind a read-only mount.
#pragma once

#include <string>

#include "fuse/mount_options.h"

namespace ecfs::cli {

// Remounts the ecfs mount on `mountpoint` with `config`, read as mount(8)
// gives a remount's options: the whole new state, options not named taking
// mount(8)'s defaults (rw, suid, dev, exec, async), but for the atime
// options, which stay as they are unless one of them is named (then
// relatime and diratime are the defaults), as with the kernel's MS_REMOUNT.
// Returns an exit status (cli/command.h), having printed any error.
int remount_mounted(const std::string& mountpoint, const fuse::MountConfig& config);

}  // namespace ecfs::cli
