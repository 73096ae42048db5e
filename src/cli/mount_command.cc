#include "cli/mount_command.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "block/file_device.h"
#include "block/loop_device.h"
#include "cli/background.h"
#include "cli/mount_table.h"
#include "cli/protector_access.h"
#include "cli/remount.h"
#include "cli/unlock_command.h"
#include "fs/filesystem.h"
#include "fuse/backing_device.h"
#include "fuse/mount_options.h"
#include "fuse/session.h"
#include "store/superblock.h"

namespace ecfs::cli {
namespace {

constexpr const char* kDescription =
    "mount an ecfs image through FUSE\n"
    "\n"
    "  ecfs mount [-f] [-o OPTIONS] IMAGE MOUNTPOINT\n"
    "  ecfs mount [-o OPTIONS] IMAGE MOUNTPOINT --unlock DIR [--key-file FILE |\n"
    "             --passphrase-fd N]\n"
    "\n"
    "Opens IMAGE (locking it, so it cannot be mounted twice), mounts it on MOUNTPOINT and\n"
    "serves it from a background process; with -f the process stays in the foreground.\n"
    "Unmount with 'umount MOUNTPOINT' (or fusermount3 -u): buffered data is written out\n"
    "and committed before the process exits. SIGTERM and SIGINT unmount the same way.\n"
    "An image whose previous daemon is still finishing an unmount is waited for (30 s\n"
    "at most); a mounted image is refused.\n"
    "\n"
    "--unlock DIR unlocks an encrypted directory once the mount is up, through its\n"
    "protectors, as 'ecfs unlock' does (for boot: a key file, or --passphrase-fd;\n"
    "in /etc/fstab: -o unlock=DIR,unlock_key_file=FILE); if that fails the filesystem\n"
    "stays mounted, DIR locked, and the exit status is 1.\n"
    "\n"
    "Durability: fsync(2) commits, and a periodic commit (commit=) bounds what a crash\n"
    "loses. Mounted by root, the mount is of type fuseblk over a loop device attached to\n"
    "IMAGE: sync(2), syncfs(2) and a remount read-only then commit too, and umount\n"
    "returns only once everything is committed and IMAGE is free. Mounted by another\n"
    "user, or with -o no_blkdev, the kernel tells the daemon nothing of sync(2):\n"
    "run 'ecfs sync MOUNTPOINT' to commit and wait, and umount returns before the\n"
    "daemon's last commit (a new mount waits for it).\n"
    "\n"
    "Options (-o, comma separated, may be repeated):\n"
    "  ro, rw               read-only or read-write (default)\n"
    "  commit=SECONDS       commit interval (default 5; 0 = default)\n"
    "  unlock=DIR           once mounted, unlock DIR (under the mount point) with the\n"
    "  unlock_key_file=FILE key-file protector FILE, as --unlock DIR --key-file FILE\n"
    "  allow_other          let other users access the mount (always on for root)\n"
    "  debug                print libfuse's request trace (implies -f)\n"
    "  no_writeback_cache   send every write through at once instead of caching it in\n"
    "                       the kernel (slower for small writes; SEEK_DATA/SEEK_HOLE\n"
    "                       then also see data that open files have not flushed)\n"
    "  no_blkdev            mount as plain fuse even as root (see Durability)\n"
    "  no_io_uring          read requests from /dev/fuse even where the kernel offers\n"
    "                       FUSE over io_uring (the fuse module parameter\n"
    "                       enable_uring), which is faster for small operations\n"
    "  nodiscard            keep space that deletes free in IMAGE; by default it goes back\n"
    "                       to the host after each commit (holes punched in an image\n"
    "                       file of 64 KiB and more, BLKDISCARD on a block device)\n"
    "  read_ahead_kb=KIB    the kernel's readahead window for the mount (default 1024,\n"
    "                       set when mounting as root; 0 keeps the kernel's 128)\n"
    "  dirty_ratio=PERCENT  the share of the system's dirty-page limit the mount may\n"
    "                       hold (default 20, set when mounting as root; 0 keeps the\n"
    "                       kernel's strict 1% for FUSE)\n"
    "  suid, dev, exec, noexec, sync, dirsync\n"
    "                       passed to the kernel. 'ecfs mount' defaults to nosuid,nodev;\n"
    "                       mount(8) and fstab (run by root) to suid,dev, as for any\n"
    "                       filesystem: write nosuid,nodev in fstab to keep them off\n"
    "  relatime (default), noatime, strictatime, nodiratime\n"
    "                       when reads update access times; strictatime and nodiratime\n"
    "                       need root\n"
    "\n"
    "A link named mount.fuse.ecfs to this program (and mount.fuseblk.ecfs, which\n"
    "mount(8) runs to remount a mount made by root) makes 'mount -t fuse.ecfs IMAGE DIR',\n"
    "fstab entries of type fuse.ecfs and 'mount -o remount,ro DIR' work. A remount\n"
    "read-only commits everything first.";

constexpr const char* kFooter =
    "Exit status: 0 once the filesystem is mounted (with -f: after it was unmounted\n"
    "cleanly); 1 if it could not be mounted or closing it failed; 2 for bad options.\n"
    "\n"
    "Examples:\n"
    "  Mount, and mount read-only with commits every 30 seconds:\n"
    "    ecfs mount fs.img /mnt\n"
    "    ecfs mount -o ro,commit=30 fs.img /mnt\n"
    "\n"
    "  The same through mount(8), and as a line of /etc/fstab:\n"
    "    mount -t fuse.ecfs -o ro /srv/fs.img /mnt\n"
    "    /srv/fs.img  /mnt  fuse.ecfs  defaults,nofail  0  0";

struct MountArgs {
  std::string image;
  std::string mountpoint;
  std::vector<std::string> options;  // -o lists as given
  bool foreground = false;
  bool sloppy = false;  // unknown -o options are ignored (mount -s)
  bool fake = false;    // check, do not mount (mount -f)
  int ready_fd = -1;    // set in the background child (background.h)
  // --unlock DIR (relative to the mount point unless absolute), with the
  // secret options of `ecfs unlock`.
  std::optional<std::string> unlock;
  SecretOptions secret;
};

int usage_error(const std::string& message) {
  print_error("mount", message);
  return kExitUsage;
}

int failure(const std::string& message) {
  print_error("mount", message);
  return kExitFailure;
}

std::string join_options(const std::vector<std::string>& lists) {
  std::string joined;
  for (const std::string& list : lists) {
    if (list.empty()) continue;
    if (!joined.empty()) joined.push_back(',');
    joined += list;
  }
  return joined;
}

std::optional<std::string> real_path(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) return std::nullopt;
  return std::string(resolved);
}

// What is wrong with the operands and the machine, before anything is opened.
std::optional<std::string> check_paths(const std::string& image, const std::string& mountpoint) {
  struct stat st;
  if (stat(image.c_str(), &st) != 0) {
    if (errno == ENOENT) return "image " + image + " does not exist";
    return "cannot access image " + image + ": " + std::strerror(errno);
  }
  if (stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOENT) return "mountpoint " + mountpoint + " does not exist";
    return "cannot access mountpoint " + mountpoint + ": " + std::strerror(errno);
  }
  if (!S_ISDIR(st.st_mode)) return "mountpoint " + mountpoint + " is not a directory";
  if (stat("/dev/fuse", &st) != 0 || !S_ISCHR(st.st_mode)) {
    return "/dev/fuse is missing: the fuse kernel module is not loaded (try 'modprobe fuse'), "
           "or this container was started without access to /dev/fuse";
  }
  if (access("/dev/fuse", R_OK | W_OK) != 0) {
    return std::string("cannot use /dev/fuse: ") + std::strerror(errno) +
           " (its permissions let only some users mount FUSE filesystems)";
  }
  return std::nullopt;
}

bool is_busy(const Error& error) {
  return error.errno_value() == EBUSY || error.errno_value() == EWOULDBLOCK;
}

std::string device_error_message(const std::string& image, const Error& error) {
  switch (error.errno_value()) {
    case EBUSY:
    case EWOULDBLOCK:
      if (auto mount = ecfs_mount_of(image)) {
        return "cannot mount " + image + ": image is in use (mounted on " + mount->mountpoint + ")";
      }
      return "cannot mount " + image +
             ": image is in use (already mounted, or opened by another ecfs command)";
    case ENOENT:
      return "image " + image + " does not exist";
    default:
      return "cannot open image " + image + ": " + error.message();
  }
}

// Messages after the daemon let go of the terminal go to syslog.
struct Reporter {
  bool daemonized = false;
  int fail(const std::string& message) const {
    if (daemonized) {
      syslog(LOG_ERR, "%s", redact_long_hex(message).c_str());
      return kExitFailure;
    }
    return failure(message);
  }
};

// How long a mount waits for the daemon of an earlier mount of the same
// image to finish its last commit and let the image go.
constexpr auto kExitingDaemonWait = std::chrono::seconds(30);

// Opens the image, locked. A lock held by a live mount is refused at once;
// any other holder (a daemon finishing an unmount, an `ecfs fsck`) is
// waited for, for a bounded time, saying so on a terminal.
Result<std::unique_ptr<block::FileDevice>> open_image(const std::string& image, bool read_only) {
  block::FileDeviceOptions device_options;
  device_options.read_only = read_only;
  // The kernel's page cache already holds file data; not caching the image
  // a second time (DESIGN.md "Storage engine shape").
  device_options.direct_io = block::DirectIo::kPrefer;
  auto device = block::open_file_device(image, device_options);
  if (device || !is_busy(device.error())) return device;
  if (ecfs_mount_of(image)) return device;
  if (isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "ecfs mount: waiting for the ecfs process using %s to finish...\n",
                 image.c_str());
  }
  device_options.lock_wait = kExitingDaemonWait;
  return block::open_file_device(image, device_options);
}

int serve_in_this_process(const MountArgs& args, const fuse::MountConfig& config,
                          const std::string& image, const std::string& mountpoint) {
  // Before any thread exists (the filesystem's commit thread): the stop
  // signals are taken by the session's own watcher (fuse/session.h).
  fuse::block_stop_signals();

  auto device = open_image(image, config.read_only);
  if (!device) return failure(device_error_message(image, device.error()));
  if (auto superblock = store::read_newest_superblock(**device); !superblock) {
    return failure(image + " is not an ecfs image (" + superblock.error().message() + ")");
  }

  fs::MountOptions mount_options;
  mount_options.read_only = config.read_only;
  if (config.commit_interval) mount_options.commit_interval = *config.commit_interval;
  mount_options.subvolume = config.subvolume;
  mount_options.atime = config.atime.value_or(fs::AtimeUpdates::kRelative);
  mount_options.directory_atime = config.directory_atime.value_or(true);
  mount_options.discard = config.discard;
  auto filesystem = fs::FileSystem::open(**device, mount_options);
  if (!filesystem) {
    return failure("cannot open the filesystem on " + image + ": " + filesystem.error().message());
  }

  fuse::SessionOptions session_options;
  session_options.fsname = image;
  session_options.read_only = config.read_only;
  // root mounts for everyone (as a system mount does); others ask for it.
  session_options.allow_other = config.allow_other || geteuid() == 0;
  session_options.debug = config.debug;
  session_options.kernel_options = config.kernel_options;
  if (geteuid() == 0) {
    // The kernel's atime flags, as the daemon's rule above (libfuse passes
    // none but noatime).
    if (config.atime || config.directory_atime) {
      fuse::KernelMountFlags flags;
      flags.atime = config.atime;
      flags.directory_atime = config.directory_atime;
      session_options.mount_flags = flags;
    }
  } else if (config.atime == fs::AtimeUpdates::kNever) {
    session_options.kernel_options.emplace_back("noatime");
  }
  session_options.adapter.writeback_cache = config.writeback_cache;
  session_options.io_uring = config.io_uring;
  session_options.read_ahead_kb = config.read_ahead_kb.value_or(fuse::kDefaultReadAheadKib);
  session_options.read_ahead_required = config.read_ahead_kb.has_value();
  session_options.dirty_ratio = config.dirty_ratio.value_or(fuse::kDefaultDirtyRatio);
  session_options.dirty_ratio_required = config.dirty_ratio.has_value();

  // fuseblk over a loop device (fuse/session.h SessionOptions::block_device),
  // an IMAGE that is a block device too: the daemon holds IMAGE open
  // exclusively, and the kernel claims a fuseblk mount's source the same way.
  std::optional<block::LoopDevice> loop;
  if (config.blkdev.value_or(geteuid() == 0)) {
    auto attached = block::LoopDevice::attach(image, config.read_only);
    if (!attached) {
      if (config.blkdev) return failure("-o blkdev: " + attached.error().to_string());
      std::fprintf(stderr,
                   "ecfs mount: warning: mounting as plain fuse (%s): sync(2) will not "
                   "commit; use 'ecfs sync %s'\n",
                   attached.error().to_string().c_str(), mountpoint.c_str());
    } else {
      loop = std::move(*attached);
      session_options.block_device = loop->path();
    }
  }
  // The image is let go as soon as the filesystem is closed: before the
  // answer to a fuseblk unmount, so that a mount right after it finds the
  // image free.
  block::FileDevice& image_device = **device;
  session_options.on_closed = [&image_device] { image_device.close(); };

  Reporter reporter;
  const Status served = fuse::serve(**filesystem, mountpoint, session_options, [&] {
    // The mount holds the loop device now; with this process's descriptor
    // gone, the device goes with the unmount (LO_FLAGS_AUTOCLEAR).
    loop.reset();
    if (args.ready_fd < 0) return;
    fuse::log_to_syslog();
    report_ready(args.ready_fd);
    reporter.daemonized = true;
  });
  if (!served) return reporter.fail(image + ": " + served.error().message());
  return kExitOk;
}

// The rest of run(), with -o unlock= turned into --unlock.
int run_with_unlock(const MountArgs& args, const fuse::MountConfig& config, bool foreground,
                    const std::string& image, const std::string& mountpoint) {
  if (args.unlock && foreground) {
    return usage_error("--unlock needs a background mount (not -f or -o debug)");
  }
  if (!args.unlock && (args.secret.passphrase || args.secret.key_file ||
                       args.secret.passphrase_fd || args.secret.protector)) {
    return usage_error(
        "--passphrase, --key-file, --passphrase-fd and --protector go with --unlock DIR");
  }
  // The daemon must not inherit the passphrase's descriptor.
  if (args.secret.passphrase_fd) {
    const int flags = fcntl(*args.secret.passphrase_fd, F_GETFD);
    if (flags < 0 || fcntl(*args.secret.passphrase_fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
      return usage_error("--passphrase-fd " + std::to_string(*args.secret.passphrase_fd) +
                         " is not an open descriptor");
    }
  }
  if (args.fake) return kExitOk;

  if (!foreground) {
    std::vector<std::string> child = {"mount", image, mountpoint, "--foreground"};
    if (const std::string options = join_options(args.options); !options.empty()) {
      child.insert(child.end(), {"-o", options});
    }
    if (args.sloppy) child.push_back("--sloppy");
    const int mounted = run_in_background(child);
    if (mounted != kExitOk || !args.unlock) return mounted;
    // Mounted: now the directory's key, through its protectors. A failure
    // leaves the filesystem mounted and locked, and says so.
    const std::string directory =
        args.unlock->starts_with('/') ? *args.unlock : mountpoint + "/" + *args.unlock;
    const int unlocked = unlock_directory("mount", directory, args.secret);
    if (unlocked != kExitOk) {
      print_error("mount", mountpoint + " is mounted, but " + directory + " stays locked");
    }
    return unlocked;
  }
  return serve_in_this_process(args, config, image, mountpoint);
}

int run(const MountArgs& args) {
  fuse::MountConfig config;
  for (const std::string& list : args.options) {
    if (Status parsed = fuse::parse_mount_options(list, args.sloppy, config); !parsed) {
      return usage_error(parsed.error().message());
    }
  }
  if (config.remount) return remount_mounted(args.mountpoint, config);
  if (config.blkdev == true && geteuid() != 0) {
    return usage_error("-o blkdev needs root (only root may mount a fuseblk filesystem)");
  }
  // A user's FUSE mount gets its flags from fusermount3, which sets no atime
  // flag but noatime.
  if (geteuid() != 0 && config.atime == fs::AtimeUpdates::kAlways) {
    return usage_error("strictatime needs root (a user's FUSE mount is relatime or noatime)");
  }
  if (geteuid() != 0 && config.directory_atime == false) {
    return usage_error("nodiratime needs root (a user's FUSE mount cannot set it)");
  }
  if (auto problem = check_paths(args.image, args.mountpoint)) return failure(*problem);
  const auto image = real_path(args.image);
  const auto mountpoint = real_path(args.mountpoint);
  if (!image || !mountpoint)
    return failure(std::string("resolving paths: ") + std::strerror(errno));
  const bool foreground = args.foreground || config.debug || args.ready_fd >= 0;
  // -o unlock=DIR[,unlock_key_file=FILE] is --unlock DIR [--key-file FILE]
  // (the background child, which gets the options too, leaves it to its
  // parent).
  MountArgs with_options = args;
  if (config.unlock && args.ready_fd < 0) {
    if (args.unlock) return usage_error("both -o unlock= and --unlock");
    with_options.unlock = config.unlock;
    if (config.unlock_key_file) {
      if (args.secret.key_file) return usage_error("both -o unlock_key_file= and --key-file");
      with_options.secret.key_file = config.unlock_key_file;
    }
  } else if (config.unlock_key_file && args.ready_fd < 0) {
    return usage_error("unlock_key_file= goes with unlock=DIR");
  }
  return run_with_unlock(with_options, config, foreground, *image, *mountpoint);
}

}  // namespace

void add_mount_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<MountArgs>();
  CLI::App* command = app.add_subcommand("mount", kDescription);
  command->footer(kFooter);
  command->add_option("IMAGE", args->image, "image file or block device")->required();
  command->add_option("MOUNTPOINT", args->mountpoint, "directory to mount on")->required();
  command->add_flag("-f,--foreground", args->foreground, "stay in the foreground");
  command->add_option("-o,--options", args->options, "mount options (see above)")
      ->type_name("OPTIONS")
      ->allow_extra_args(false);
  command->add_flag("--sloppy", args->sloppy, "ignore unknown mount options")->group("");
  command
      ->add_option("--unlock", args->unlock,
                   "once mounted, unlock this encrypted directory (under MOUNTPOINT unless "
                   "absolute), as 'ecfs unlock' does")
      ->type_name("DIR");
  add_secret_options(*command, args->secret, true);
  command->add_option("--ready-fd", args->ready_fd, "internal: report readiness here")->group("");
  command->callback([args, &runner] { runner = [args] { return run(*args); }; });
}

bool is_mount_helper_name(std::string_view argv0) {
  const size_t slash = argv0.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? argv0 : argv0.substr(slash + 1);
  // mount(8) runs mount.fuseblk.ecfs to remount a fuseblk mount: it names
  // the helper after the live mount's type.
  return name == "mount.fuse.ecfs" || name == "mount.fuseblk.ecfs" || name == "mount.ecfs";
}

int run_mount_helper(int argc, char** argv) {
  MountArgs args;
  std::vector<std::string> operands;
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "-o" || argument == "-t" || argument == "-N") {
      if (i + 1 >= argc) return usage_error(std::string(argument) + " needs a value");
      const std::string value = argv[++i];
      if (argument == "-o") args.options.push_back(value);
      if (argument == "-N") return usage_error("mount namespaces (-N) are not supported");
    } else if (argument.starts_with("-o")) {
      args.options.emplace_back(argument.substr(2));
    } else if (argument.size() > 1 && argument[0] == '-') {
      for (char flag : argument.substr(1)) {
        switch (flag) {
          case 's':
            args.sloppy = true;
            break;
          case 'f':  // "fake": mount(8) -f
            args.fake = true;
            break;
          case 'n':  // no /etc/mtab: there is none to write
          case 'v':
            break;
          default:
            return usage_error(std::string("unknown option -") + flag +
                               " (usage: mount.fuse.ecfs IMAGE DIR [-sfnv] [-o OPTIONS])");
        }
      }
    } else {
      operands.emplace_back(argument);
    }
  }
  if (operands.size() != 2) {
    return usage_error("usage: mount.fuse.ecfs IMAGE DIR [-sfnv] [-o OPTIONS]");
  }
  args.image = operands[0];
  args.mountpoint = operands[1];
  // mount(8) leaves out the options equal to its defaults (suid, dev,
  // exec), so a helper run by root starts from them, not from libfuse's
  // nosuid,nodev: an fstab "suid" then takes effect.
  if (geteuid() == 0) args.options.insert(args.options.begin(), "suid,dev");
  return run(args);
}

}  // namespace ecfs::cli
