#include "cli/mkfs_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "block/file_device.h"
#include "cli/size_parse.h"
#include "cli/store_text.h"
#include "cli/version.h"
#include "fs/filesystem.h"
#include "store/checksum.h"
#include "store/engine.h"
#include "store/node.h"
#include "store/superblock.h"

namespace ecfs::cli {
namespace {

constexpr const char* kDescription =
    "create an ecfs filesystem in an image file or on a block device\n"
    "\n"
    "  ecfs mkfs [OPTIONS] IMAGE\n"
    "\n"
    "A missing IMAGE is created as a sparse file of --size bytes. An existing regular\n"
    "file is emptied and resized to --size (or keeps its size); a block device is used\n"
    "whole, or its first --size bytes. An IMAGE that already holds an ecfs filesystem\n"
    "is only overwritten with --force.";

constexpr const char* kFooter =
    "Sizes take binary unit suffixes K, M, G, T, P, E (8G = 8 GiB).\n"
    "Exit status: 0 on success; 1 if the filesystem could not be made (existing\n"
    "filesystem without --force, I/O error, image too small); 2 for bad options.\n"
    "\n"
    "Examples:\n"
    "  An 8 GiB image file, created sparse:\n"
    "    ecfs mkfs --size 8G fs.img\n"
    "\n"
    "  A whole block device, labelled, with SHA-256 checksums:\n"
    "    ecfs mkfs -L backup --checksum sha256 /dev/sdb1";

// Where every superblock copy keeps its magic (docs/FORMAT.md "Superblock":
// csum[32] | fsid[16] | bytenr u64 | magic u64 ...).
constexpr size_t kSuperblockMagicOffset = 56;

struct MkfsArgs {
  std::string image;
  std::optional<std::string> size;
  std::optional<std::string> node_size;
  std::string checksum = "crc32c";
  std::optional<std::string> label;
  std::optional<std::string> uuid;
  bool force = false;
  bool quiet = false;
};

int usage_error(const std::string& message) {
  print_error("mkfs", message);
  return kExitUsage;
}

int failure(const std::string& message) {
  print_error("mkfs", message);
  return kExitFailure;
}

// True when any superblock copy on `device` carries the ecfs magic: the
// device holds (or held) an ecfs filesystem, damaged or not.
bool has_ecfs_magic(block::BlockDevice& device) {
  std::array<uint8_t, store::kSuperblockSize> block;
  for (uint64_t offset : store::superblock_offsets_for(device.size())) {
    if (!device.read(offset, block)) continue;
    if (load_le64(block.data() + kSuperblockMagicOffset) == store::kSuperblockMagic) return true;
  }
  return false;
}

// What the existing IMAGE is, if anything.
struct ExistingImage {
  bool exists = false;
  bool is_block_device = false;
  uint64_t size = 0;  // regular files only
};

Result<ExistingImage> inspect_existing(const std::string& path) {
  ExistingImage existing;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return existing;
    return fail(errno, path + ": " + std::strerror(errno));
  }
  existing.exists = true;
  existing.is_block_device = S_ISBLK(st.st_mode);
  if (!existing.is_block_device && !S_ISREG(st.st_mode)) {
    return fail(EINVAL, path + " is neither a regular file nor a block device");
  }
  existing.size = static_cast<uint64_t>(st.st_size);
  return existing;
}

void print_summary(const std::string& image, const store::Superblock& sb) {
  std::printf("ecfs mkfs: created a filesystem on %s\n", image.c_str());
  std::printf("Label:              %s\n", sb.label.empty() ? "(none)" : sb.label.c_str());
  std::printf("UUID:               %s\n", format_uuid(sb.fsid).c_str());
  std::printf("Node size:          %u\n", sb.node_size);
  std::printf("Sector size:        %u\n", sb.sector_size);
  std::printf("Checksum:           %s\n",
              std::string(store::checksum_name(sb.checksum_type)).c_str());
  std::printf("Filesystem size:    %s (%llu bytes)\n", format_size(sb.total_bytes).c_str(),
              static_cast<unsigned long long>(sb.total_bytes));
  std::printf("Generation:         %llu\n", static_cast<unsigned long long>(sb.generation));
  std::printf("Format version:     %u\n", sb.format_version);
}

int run(const MkfsArgs& args) {
  // Everything the user typed is checked before the image is touched.
  std::optional<uint64_t> size;
  if (args.size) {
    auto parsed = parse_size(*args.size);
    if (!parsed) return usage_error(parsed.error().message());
    // As mkfs.btrfs: whole sectors only.
    const uint64_t rounded = *parsed / store::kSectorSize * store::kSectorSize;
    if (rounded == 0) return usage_error("size '" + *args.size + "' is smaller than one sector");
    size = rounded;
  }
  store::MkfsOptions options;
  if (args.node_size) {
    auto parsed = parse_size(*args.node_size);
    if (!parsed) return usage_error(parsed.error().message());
    if (!store::is_valid_node_size(*parsed)) {
      return usage_error("node size '" + *args.node_size +
                         "' is not a power of two from 4K to 64K");
    }
    options.node_size = static_cast<uint32_t>(*parsed);
  }
  auto checksum = store::checksum_type_from_name(args.checksum);
  if (!checksum) {
    return usage_error("unknown checksum '" + args.checksum +
                       "' (crc32c, xxhash64, sha256 or blake2b)");
  }
  options.checksum_type = *checksum;
  if (args.label) {
    if (args.label->size() > store::kMaxLabelSize) {
      return usage_error("label is " + std::to_string(args.label->size()) +
                         " bytes; at most 255 are allowed");
    }
    options.label = *args.label;
  }
  if (args.uuid) {
    auto fsid = parse_uuid(*args.uuid);
    if (!fsid) return usage_error(fsid.error().message());
    options.fsid = *fsid;
  }  // else store::mkfs draws a random version 4 UUID
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  options.origin =
      store::ImageOrigin{program_version(), now.tv_sec, static_cast<uint32_t>(now.tv_nsec)};

  auto existing = inspect_existing(args.image);
  if (!existing) return failure(existing.error().message());
  if (!existing->exists && !size) {
    return usage_error(args.image + " does not exist; give --size to create it");
  }
  if (existing->exists) {
    block::FileDeviceOptions probe_options;
    probe_options.read_only = true;
    auto probe = block::open_file_device(args.image, probe_options);
    if (!probe) return failure(probe.error().message());
    if (has_ecfs_magic(**probe) && !args.force) {
      return failure(args.image + " already holds an ecfs filesystem; use --force to overwrite it");
    }
  }

  block::FileDeviceOptions device_options;
  if (existing->is_block_device) {
    device_options.create_size = size;  // nullopt: the whole device
  } else {
    device_options.create_size =
        size ? *size : existing->size / store::kSectorSize * store::kSectorSize;
    // An existing regular file is emptied, so no stale tree or superblock
    // copy of an earlier filesystem survives beyond the new one's end.
    device_options.replace_existing = existing->exists;
    if (*device_options.create_size == 0) {
      return usage_error(args.image + " is empty; give --size");
    }
  }
  auto device = block::open_file_device(args.image, device_options);
  if (!device) return failure(device.error().message());

  const bool created = !existing->exists;
  const auto give_up = [&](const std::string& message) {
    device->reset();
    if (created) unlink(args.image.c_str());
    return failure(message);
  };
  // The root directory belongs to whoever made the filesystem, so that a
  // user's own image is writable by that user once mounted.
  options.populate = [](store::Engine& engine) {
    return fs::add_root_directory(engine, {.uid = getuid(), .gid = getgid(), .umask = 0});
  };
  if (Status made = store::mkfs(**device, options); !made) {
    return give_up(made.error().message());
  }
  auto sb = store::read_newest_superblock(**device);
  if (!sb) return give_up("the new filesystem does not read back: " + sb.error().message());
  if (!args.quiet) print_summary(args.image, *sb);
  if (std::fflush(stdout) != 0) return failure("writing standard output failed");
  return kExitOk;
}

}  // namespace

void add_mkfs_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<MkfsArgs>();
  CLI::App* command = app.add_subcommand("mkfs", kDescription);
  command->footer(kFooter);
  command->add_option("IMAGE", args->image, "image file or block device")->required();
  command->add_option("-s,--size", args->size, "filesystem size, e.g. 8G (needed to create IMAGE)")
      ->type_name("SIZE");
  command->add_option("-n,--nodesize", args->node_size, "tree node size, 4K to 64K (default 16K)")
      ->type_name("SIZE");
  command
      ->add_option("--checksum,--csum", args->checksum,
                   "checksum of nodes and data: crc32c (default), xxhash64, sha256, blake2b")
      ->type_name("ALGORITHM");
  command->add_option("-L,--label", args->label, "filesystem label (at most 255 bytes)")
      ->type_name("LABEL");
  command->add_option("-U,--uuid", args->uuid, "filesystem UUID (random by default)")
      ->type_name("UUID");
  command->add_flag("-f,--force", args->force, "overwrite an existing ecfs filesystem");
  command->add_flag("-q,--quiet", args->quiet, "print nothing on success");
  command->callback([args, &runner] { runner = [args] { return run(*args); }; });
}

}  // namespace ecfs::cli
