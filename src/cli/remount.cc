#include "cli/remount.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "cli/command.h"
#include "cli/ioctl_client.h"
#include "cli/mount_table.h"
#include "fuse/backing_device.h"
#include "fuse/ioctl_abi.h"
#include "fuse/mount_flags.h"

namespace ecfs::cli {
namespace {

int failure(const std::string& message) {
  print_error("mount", message);
  return kExitFailure;
}

bool names_atime(const fuse::MountConfig& config) {
  return config.atime.has_value() || config.directory_atime.has_value();
}

// The kernel's flags a remount with `config` asks for: mount(8)'s defaults,
// then the options in their order (later ones win).
fuse::KernelMountFlags kernel_flags(const fuse::MountConfig& config) {
  fuse::KernelMountFlags flags;
  flags.read_only = config.read_only;
  flags.nosuid = false;
  flags.nodev = false;
  flags.noexec = false;
  flags.synchronous = false;
  flags.dirsync = false;
  // As MS_REMOUNT: naming no atime option keeps the mount's (fs/namespace.c
  // path_mount); naming one resets the others to their defaults.
  if (names_atime(config)) {
    flags.atime = config.atime.value_or(fs::AtimeUpdates::kRelative);
    flags.directory_atime = config.directory_atime.value_or(true);
  }
  for (std::string_view option : config.kernel_options) {
    const bool negated = option.starts_with("no");
    const std::string_view name = negated ? option.substr(2) : option;
    if (name == "suid") flags.nosuid = negated;
    if (name == "dev") flags.nodev = negated;
    if (name == "exec") flags.noexec = negated;
    if (option == "sync") flags.synchronous = true;
    if (option == "async") flags.synchronous = false;
    if (option == "dirsync") flags.dirsync = true;
  }
  return flags;
}

fuse::RemountArg daemon_argument(const fuse::MountConfig& config) {
  fuse::RemountArg argument;
  std::memset(&argument, 0, sizeof(argument));
  argument.version = fuse::kIoctlAbiVersion;
  if (config.read_only) argument.flags |= fuse::kRemountReadOnly;
  if (!names_atime(config)) argument.flags |= fuse::kRemountKeepAtime;
  if (!config.directory_atime.value_or(true)) argument.flags |= fuse::kRemountNoDirectoryAtime;
  switch (config.atime.value_or(fs::AtimeUpdates::kRelative)) {
    case fs::AtimeUpdates::kNever:
      argument.atime = fuse::kRemountAtimeNever;
      break;
    case fs::AtimeUpdates::kRelative:
      argument.atime = fuse::kRemountAtimeRelative;
      break;
    case fs::AtimeUpdates::kAlways:
      argument.atime = fuse::kRemountAtimeAlways;
      break;
  }
  if (config.commit_interval) {
    argument.commit_seconds = static_cast<uint32_t>(config.commit_interval->count());
  }
  return argument;
}

std::string explain_kernel_remount(const std::string& mountpoint, const Error& error) {
  if (error.errno_value() == EBUSY) {
    return "cannot remount " + mountpoint + " read-only: files are open for writing on it";
  }
  return error.message();
}

}  // namespace

int remount_mounted(const std::string& mountpoint, const fuse::MountConfig& config) {
  if (geteuid() != 0) return failure("only root may remount (CAP_SYS_ADMIN)");
  char resolved[PATH_MAX];
  if (realpath(mountpoint.c_str(), resolved) == nullptr) {
    return failure("cannot access " + mountpoint + ": " + std::strerror(errno));
  }
  const std::string canonical = resolved;
  const auto mount = ecfs_mount_at(canonical);
  if (!mount) return failure(canonical + " is not an ecfs mount");
  const bool fuseblk = mount->type == "fuseblk.ecfs";
  for (const std::string& option : config.mount_time_only) {
    // mount(8) passes the options of the original mount again (it keeps
    // them in /run/mount/utab): an option the mount already has is no news.
    if ((option == "blkdev" && fuseblk) || (option == "no_blkdev" && !fuseblk)) continue;
    std::fprintf(stderr,
                 "ecfs mount: note: '%s' takes effect only when mounting; the remount leaves "
                 "it as it was\n",
                 option.c_str());
  }

  auto directory = open_for_ioctl(canonical, /*directory=*/true);
  if (!directory) return failure(directory.error().message());
  const fuse::KernelMountFlags flags = kernel_flags(config);
  fuse::RemountArg argument = daemon_argument(config);
  auto tell_daemon = [&]() -> Status {
    return call_ioctl(directory->fd(), fuse::ECFS_IOC_REMOUNT, &argument, IoctlOperation::kRemount,
                      "remounting " + canonical);
  };
  if (config.read_only) {
    // The kernel first: it writes its dirty pages back and stops new
    // writes; the daemon then commits them and freezes.
    if (Status kernel = fuse::remount(canonical, flags); !kernel) {
      return failure(explain_kernel_remount(canonical, kernel.error()));
    }
    if (Status daemon = tell_daemon(); !daemon) return failure(daemon.error().message());
  } else {
    // The daemon first, so that it takes the writes the kernel lets through.
    if (Status daemon = tell_daemon(); !daemon) return failure(daemon.error().message());
    if (Status kernel = fuse::remount(canonical, flags); !kernel) {
      return failure(explain_kernel_remount(canonical, kernel.error()));
    }
  }
  if (config.read_ahead_kb) {
    if (Status set = fuse::set_mount_read_ahead(canonical, *config.read_ahead_kb); !set) {
      return failure("read_ahead_kb: " + set.error().message());
    }
  }
  if (config.dirty_ratio) {
    if (Status set = fuse::set_mount_dirty_ratio(canonical, *config.dirty_ratio); !set) {
      return failure("dirty_ratio: " + set.error().message());
    }
  }
  return kExitOk;
}

}  // namespace ecfs::cli
