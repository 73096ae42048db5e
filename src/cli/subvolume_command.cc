#include "cli/subvolume_command.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli/ioctl_client.h"
#include "cli/json_writer.h"
#include "fuse/ioctl_abi.h"

namespace ecfs::cli {
namespace {

constexpr const char* kDescription =
    "create, snapshot, list and delete subvolumes of a mounted ecfs filesystem\n"
    "\n"
    "  ecfs subvolume create PATH\n"
    "  ecfs subvolume snapshot [-r] SOURCE DEST\n"
    "  ecfs subvolume list MOUNTPOINT [--json]\n"
    "  ecfs subvolume show PATH\n"
    "  ecfs subvolume delete PATH...\n"
    "  ecfs subvolume sync MOUNTPOINT\n"
    "\n"
    "A subvolume is a directory tree of its own; a snapshot is a subvolume that starts as\n"
    "a copy of another, made at once whatever its size and sharing all its data until\n"
    "either side changes. Snapshots of encrypted directories need no key: they keep the\n"
    "ciphertext, names and contexts as they are. Files cannot be renamed or hard-linked\n"
    "from one subvolume to another (EXDEV). Run 'ecfs subvolume COMMAND --help' for one\n"
    "command.";

constexpr const char* kFooter =
    "Exit status: 0 on success; 1 if the operation failed; 2 for bad usage.\n"
    "create, snapshot and delete need CAP_SYS_ADMIN, as btrfs's do.";

constexpr const char* kSubvolumeExamples =
    "\n"
    "\n"
    "Examples:\n"
    "  Make a subvolume:\n"
    "    ecfs subvolume create /mnt/home\n"
    "\n"
    "  Snapshot it read-only (no key needed, even if it holds encrypted files):\n"
    "    ecfs subvolume snapshot -r /mnt/home /mnt/home@monday\n"
    "\n"
    "  List the subvolumes, and delete the snapshot:\n"
    "    ecfs subvolume list /mnt\n"
    "    ecfs subvolume delete /mnt/home@monday";

// The directory that would hold `path` and the last name of it.
struct Placement {
  std::string parent;
  std::string name;
};

Result<Placement> split_path(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  Placement placement;
  if (slash == std::string::npos) {
    placement.parent = ".";
    placement.name = trimmed;
  } else {
    placement.parent = slash == 0 ? "/" : trimmed.substr(0, slash);
    placement.name = trimmed.substr(slash + 1);
  }
  if (placement.name.empty() || placement.name == "." || placement.name == "..") {
    return fail(EINVAL, "'" + path + "' does not end in a name");
  }
  if (placement.name.size() >= fuse::kSubvolNameBytes) {
    return fail(ENAMETOOLONG, "the name in '" + path + "' is longer than 255 bytes");
  }
  return placement;
}

fuse::SubvolArg subvol_arg(const std::string& name) {
  fuse::SubvolArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.name_len = static_cast<uint32_t>(name.size());
  std::memcpy(arg.name, name.data(), name.size());
  return arg;
}

int fail_with(const char* command, const Error& error) {
  print_error(command, error.message());
  return error.errno_value() == EINVAL &&
                 error.message().find("does not end in a name") != std::string::npos
             ? kExitUsage
             : kExitFailure;
}

int run_create(const std::string& path) {
  auto placement = split_path(path);
  if (!placement) return fail_with("subvolume create", placement.error());
  auto dir = open_for_ioctl(placement->parent, /*directory=*/true);
  if (!dir) return fail_with("subvolume create", dir.error());
  fuse::SubvolArg arg = subvol_arg(placement->name);
  if (Status created = call_ioctl(dir->fd(), fuse::ECFS_IOC_SUBVOL_CREATE, &arg,
                                  IoctlOperation::kSubvolume, "creating " + path);
      !created) {
    return fail_with("subvolume create", created.error());
  }
  std::printf("Create subvolume '%s'\n", path.c_str());
  return kExitOk;
}

struct SnapshotArgs {
  std::string source;
  std::string dest;
  bool read_only = false;
};

int run_snapshot(const SnapshotArgs& args) {
  auto source = open_for_ioctl(args.source, /*directory=*/true);
  if (!source) return fail_with("subvolume snapshot", source.error());
  struct stat source_stat {};
  if (fstat(source->fd(), &source_stat) != 0) {
    print_error("subvolume snapshot", "stat " + args.source + ": " + std::strerror(errno));
    return kExitFailure;
  }
  // DEST names the snapshot, or an existing directory to put it in under
  // the source's name (as btrfs subvolume snapshot).
  std::string dest = args.dest;
  struct stat dest_stat {};
  if (stat(dest.c_str(), &dest_stat) == 0 && S_ISDIR(dest_stat.st_mode)) {
    auto source_name = split_path(args.source);
    if (!source_name) return fail_with("subvolume snapshot", source_name.error());
    dest += "/" + source_name->name;
  }
  auto placement = split_path(dest);
  if (!placement) return fail_with("subvolume snapshot", placement.error());
  auto dir = open_for_ioctl(placement->parent, /*directory=*/true);
  if (!dir) return fail_with("subvolume snapshot", dir.error());
  struct stat dir_stat {};
  if (fstat(dir->fd(), &dir_stat) != 0 || dir_stat.st_dev != source_stat.st_dev) {
    print_error(
        "subvolume snapshot",
        "'" + placement->parent + "' is not on the same ecfs mount as '" + args.source + "'");
    return kExitFailure;
  }
  // The kernel's dirty pages go to the daemon first, so that the snapshot
  // holds everything written before it.
  if (syncfs(source->fd()) != 0) {
    print_error("subvolume snapshot", "syncfs " + args.source + ": " + std::strerror(errno));
    return kExitFailure;
  }
  fuse::SubvolArg arg = subvol_arg(placement->name);
  arg.source = source_stat.st_ino;
  if (args.read_only) arg.flags |= fuse::kSubvolReadOnly;
  if (Status made =
          call_ioctl(dir->fd(), fuse::ECFS_IOC_SUBVOL_CREATE, &arg, IoctlOperation::kSubvolume,
                     "snapshotting " + args.source + " as " + dest);
      !made) {
    return fail_with("subvolume snapshot", made.error());
  }
  std::printf("Create %ssnapshot of '%s' in '%s'\n", args.read_only ? "a readonly " : "a ",
              args.source.c_str(), dest.c_str());
  return kExitOk;
}

Result<fuse::SubvolInfoArg> query(int fd, uint32_t which, uint64_t after) {
  auto arg = std::make_unique<fuse::SubvolInfoArg>();
  std::memset(arg.get(), 0, sizeof(*arg));
  arg->version = fuse::kIoctlAbiVersion;
  arg->which = which;
  arg->id = after;
  ECFS_TRY(call_ioctl(fd, fuse::ECFS_IOC_SUBVOL_INFO, arg.get(), IoctlOperation::kSubvolume,
                      "reading subvolume information"));
  return *arg;
}

std::string uuid_text(const uint8_t (&bytes)[16]) {
  bool zero = true;
  for (uint8_t byte : bytes) zero = zero && byte == 0;
  if (zero) return "-";
  char out[37];
  std::snprintf(out, sizeof(out),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
                bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8],
                bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
  return out;
}

std::string time_text(int64_t seconds) {
  const time_t t = static_cast<time_t>(seconds);
  tm local{};
  localtime_r(&t, &local);
  char out[64];
  strftime(out, sizeof(out), "%Y-%m-%d %H:%M:%S %z", &local);
  return out;
}

std::string path_of(const fuse::SubvolInfoArg& info) {
  return std::string(reinterpret_cast<const char*>(info.path), info.path_len);
}

struct ListArgs {
  std::string mountpoint;
  bool json = false;
};

int run_list(const ListArgs& args) {
  auto opened = open_for_ioctl(args.mountpoint, /*directory=*/false);
  if (!opened) return fail_with("subvolume list", opened.error());
  std::vector<fuse::SubvolInfoArg> found;
  for (uint64_t after = 0;;) {
    auto next = query(opened->fd(), fuse::kSubvolInfoNext, after);
    if (!next) return fail_with("subvolume list", next.error());
    if (next->id == 0) break;
    after = next->id;
    found.push_back(*next);
  }
  if (args.json) {
    JsonWriter json;
    json.begin_object();
    json.key("subvolumes");
    json.begin_array();
    for (const fuse::SubvolInfoArg& info : found) {
      json.begin_object();
      json.field("id", info.id);
      json.field("parent_id", info.parent_id);
      json.field("path", path_of(info));
      json.field("uuid", uuid_text(info.uuid));
      json.field("parent_uuid", uuid_text(info.parent_uuid));
      json.field("generation", info.created_generation);
      json.field("read_only", (info.flags & fuse::kSubvolReadOnly) != 0);
      json.field("deleted", (info.flags & fuse::kSubvolInfoDeleted) != 0);
      json.field("otime", static_cast<uint64_t>(info.otime_sec));
      json.field("inode", info.root_node);
      json.end_object();
    }
    json.end_array();
    json.end_object();
    std::printf("%s\n", json.text().c_str());
    return kExitOk;
  }
  // btrfs subvolume list's shape; the top level (id 5) is not listed.
  for (const fuse::SubvolInfoArg& info : found) {
    if (info.id == 5) continue;
    if (info.flags & fuse::kSubvolInfoDeleted) {
      std::printf("ID %llu gen %llu deleted (being dropped)\n",
                  static_cast<unsigned long long>(info.id),
                  static_cast<unsigned long long>(info.created_generation));
      continue;
    }
    std::printf("ID %llu gen %llu top level %llu path %s%s\n",
                static_cast<unsigned long long>(info.id),
                static_cast<unsigned long long>(info.created_generation),
                static_cast<unsigned long long>(info.parent_id), path_of(info).c_str(),
                (info.flags & fuse::kSubvolReadOnly) ? " (readonly)" : "");
  }
  return kExitOk;
}

int run_show(const std::string& path) {
  auto opened = open_for_ioctl(path, /*directory=*/false);
  if (!opened) return fail_with("subvolume show", opened.error());
  auto info = query(opened->fd(), fuse::kSubvolInfoOfFile, 0);
  if (!info) return fail_with("subvolume show", info.error());
  const std::string where = info->id == 5 ? "<FS_TREE>" : path_of(*info);
  std::printf("%s\n", where.c_str());
  std::printf("\tName: \t\t\t%s\n",
              info->id == 5 ? "<FS_TREE>" : where.substr(where.rfind('/') + 1).c_str());
  std::printf("\tUUID: \t\t\t%s\n", uuid_text(info->uuid).c_str());
  std::printf("\tParent UUID: \t\t%s\n", uuid_text(info->parent_uuid).c_str());
  std::printf("\tCreation time: \t\t%s\n",
              info->id == 5 ? "-" : time_text(info->otime_sec).c_str());
  std::printf("\tSubvolume ID: \t\t%llu\n", static_cast<unsigned long long>(info->id));
  std::printf("\tGeneration: \t\t%llu\n",
              static_cast<unsigned long long>(info->created_generation));
  std::printf("\tParent ID: \t\t%llu\n", static_cast<unsigned long long>(info->parent_id));
  std::printf("\tFlags: \t\t\t%s\n", (info->flags & fuse::kSubvolReadOnly) ? "readonly" : "-");
  return kExitOk;
}

int run_delete(const std::vector<std::string>& paths) {
  int status = kExitOk;
  for (const std::string& path : paths) {
    auto placement = split_path(path);
    if (!placement) {
      status = fail_with("subvolume delete", placement.error());
      continue;
    }
    auto dir = open_for_ioctl(placement->parent, /*directory=*/true);
    if (!dir) {
      status = fail_with("subvolume delete", dir.error());
      continue;
    }
    fuse::SubvolArg arg = subvol_arg(placement->name);
    std::printf("Delete subvolume '%s'\n", path.c_str());
    if (Status deleted = call_ioctl(dir->fd(), fuse::ECFS_IOC_SUBVOL_DELETE, &arg,
                                    IoctlOperation::kSubvolume, "deleting " + path);
        !deleted) {
      status = fail_with("subvolume delete", deleted.error());
    }
  }
  return status;
}

int run_sync(const std::string& mountpoint) {
  auto opened = open_for_ioctl(mountpoint, /*directory=*/false);
  if (!opened) return fail_with("subvolume sync", opened.error());
  fuse::SyncArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  if (Status done = call_ioctl(opened->fd(), fuse::ECFS_IOC_SUBVOL_SYNC, &arg,
                               IoctlOperation::kSubvolume, "waiting for deleted subvolumes");
      !done) {
    return fail_with("subvolume sync", done.error());
  }
  return kExitOk;
}

}  // namespace

void add_subvolume_command(CLI::App& app, CommandRunner& runner) {
  CLI::App* subvolume = app.add_subcommand("subvolume", kDescription);
  subvolume->require_subcommand(1);
  subvolume->footer(std::string(kFooter) + kSubvolumeExamples);

  auto create_path = std::make_shared<std::string>();
  CLI::App* create = subvolume->add_subcommand(
      "create", "create an empty subvolume at PATH (its directory must exist)");
  create->add_option("PATH", *create_path, "where the new subvolume appears")->required();
  create->callback(
      [create_path, &runner] { runner = [create_path] { return run_create(*create_path); }; });

  auto snapshot_args = std::make_shared<SnapshotArgs>();
  CLI::App* snapshot = subvolume->add_subcommand(
      "snapshot",
      "snapshot the subvolume SOURCE (its root directory) as DEST, or into the existing "
      "directory DEST under SOURCE's name");
  snapshot->add_flag("-r,--readonly", snapshot_args->read_only, "make a read-only snapshot");
  snapshot->add_option("SOURCE", snapshot_args->source, "a subvolume's root directory")->required();
  snapshot->add_option("DEST", snapshot_args->dest, "the snapshot's path")->required();
  snapshot->callback([snapshot_args, &runner] {
    runner = [snapshot_args] { return run_snapshot(*snapshot_args); };
  });

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list = subvolume->add_subcommand(
      "list", "list the subvolumes of the mount (ID, generation, parent, path)");
  list->add_option("MOUNTPOINT", list_args->mountpoint, "the ecfs mount")->required();
  list->add_flag("--json", list_args->json, "print JSON (the top level and deleted ones too)");
  list->callback([list_args, &runner] { runner = [list_args] { return run_list(*list_args); }; });

  auto show_path = std::make_shared<std::string>();
  CLI::App* show = subvolume->add_subcommand("show", "show the subvolume that holds PATH");
  show->add_option("PATH", *show_path, "a path on the mount")->required();
  show->callback([show_path, &runner] { runner = [show_path] { return run_show(*show_path); }; });

  auto delete_paths = std::make_shared<std::vector<std::string>>();
  CLI::App* remove = subvolume->add_subcommand(
      "delete",
      "delete subvolumes: their names go at once, their space comes back in the background");
  remove->add_option("PATH", *delete_paths, "subvolumes to delete")->required();
  remove->callback(
      [delete_paths, &runner] { runner = [delete_paths] { return run_delete(*delete_paths); }; });

  auto sync_path = std::make_shared<std::string>();
  CLI::App* sync = subvolume->add_subcommand(
      "sync", "wait until every deleted subvolume's space has been given back");
  sync->add_option("MOUNTPOINT", *sync_path, "the ecfs mount")->required();
  sync->callback([sync_path, &runner] { runner = [sync_path] { return run_sync(*sync_path); }; });
}

}  // namespace ecfs::cli
