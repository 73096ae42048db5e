#include "cli/sync_command.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "cli/ioctl_client.h"
#include "fuse/ioctl_abi.h"

namespace ecfs::cli {
namespace {

constexpr const char* kDescription =
    "commit a mounted ecfs filesystem and wait until it is durable\n"
    "\n"
    "  ecfs sync PATH\n"
    "\n"
    "PATH is the mountpoint or any file or directory on the mount. Everything written\n"
    "to it before the command started is on stable storage when it returns, and\n"
    "survives a crash of the daemon or the machine. On a mount made by root (of type\n"
    "fuseblk) sync(1) does the same; on other mounts sync(1) only hands the kernel's\n"
    "cached data to the daemon, which commits it within the commit interval.";

constexpr const char* kFooter =
    "Exit status: 0 once committed; 1 if PATH is not on an ecfs mount or the commit\n"
    "failed (the mount then turns read-only; committed data stays).";

int run(const std::string& path) {
  auto opened = open_for_ioctl(path, /*directory=*/false);
  if (!opened) {
    print_error("sync", opened.error().message());
    return kExitFailure;
  }
  // The kernel's dirty pages first: without the write-back they would
  // reach the daemon after its commit.
  if (syncfs(opened->fd()) != 0) {
    print_error("sync", "syncfs " + path + ": " + std::strerror(errno));
    return kExitFailure;
  }
  fuse::SyncArg argument;
  std::memset(&argument, 0, sizeof(argument));
  argument.version = fuse::kIoctlAbiVersion;
  if (Status synced = call_ioctl(opened->fd(), fuse::ECFS_IOC_SYNC, &argument,
                                 IoctlOperation::kSync, "committing " + path);
      !synced) {
    print_error("sync", synced.error().message());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_sync_command(CLI::App& app, CommandRunner& runner) {
  auto path = std::make_shared<std::string>();
  CLI::App* command = app.add_subcommand("sync", kDescription);
  command->footer(kFooter);
  command->add_option("PATH", *path, "the mountpoint, or a path on the mount")->required();
  command->callback([path, &runner] { runner = [path] { return run(*path); }; });
}

}  // namespace ecfs::cli
