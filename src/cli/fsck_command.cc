#include "cli/fsck_command.h"

#include <cstdio>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "block/file_device.h"
#include "cli/json_writer.h"
#include "cli/progress_line.h"
#include "cli/size_parse.h"
#include "cli/store_text.h"
#include "fs/fs_check.h"
#include "store/engine.h"
#include "store/superblock.h"

namespace ecfs::cli {
namespace {

constexpr const char* kDescription =
    "check an ecfs image for consistency (read-only)\n"
    "\n"
    "  ecfs fsck [--json] [--metadata-only] IMAGE\n"
    "\n"
    "Reads every superblock copy, then walks every tree: node checksums and structure,\n"
    "the reference count of every tree node and data extent against the references\n"
    "found, free space, and every written data sector against its checksum (not with\n"
    "--metadata-only). When the image holds a filesystem, its own rules are checked\n"
    "too: directory entries and back references, link counts, directories reachable\n"
    "from the root, orphans, symlinks and file extents. The image is opened read-only\n"
    "and never changed; it must not be mounted read-write at the same time. On a\n"
    "terminal, progress is shown on stderr.";

constexpr const char* kFooter =
    "Exit status: 0 when the image is consistent; 1 when problems were found or the\n"
    "image could not be read (not an ecfs image, every superblock copy damaged, I/O\n"
    "error); 2 for bad options.\n"
    "\n"
    "Examples:\n"
    "  Check everything, data included:\n"
    "    ecfs fsck fs.img\n"
    "\n"
    "  Trees and counts only, without reading data, as JSON:\n"
    "    ecfs fsck --metadata-only --json fs.img";

struct FsckArgs {
  std::string image;
  bool json = false;
  bool metadata_only = false;
};

// Everything fsck learned, for either output format.
struct FsckResult {
  std::optional<store::Superblock> superblock;
  size_t superblock_copies = 0;
  std::vector<std::string> superblock_problems;
  std::optional<store::CheckReport> report;
  // The filesystem check (fs/fs_check.h); absent when FS_TREE is empty.
  std::optional<fs::FsCheckReport> filesystem;
  std::optional<std::string> filesystem_error;  // why it could not finish (a problem)
  std::optional<std::string> fatal;             // why the check could not finish

  size_t problem_count() const {
    return superblock_problems.size() + (report ? report->problems.size() : 0) +
           (filesystem ? filesystem->problems.size() : 0) + (filesystem_error ? 1 : 0);
  }
  bool clean() const { return !fatal && problem_count() == 0; }
};

// The POSIX layer's invariants of every subvolume, when FS_TREE holds
// anything (`ecfs mkfs` puts the root directory there; a bare engine image
// has none).
void check_filesystem_tree(store::Engine& engine, FsckResult& result) {
  auto tree = engine.committed_tree(store::kFsTreeId);
  if (!tree) {
    if (tree.error().errno_value() != ENOENT) result.filesystem_error = tree.error().message();
    return;
  }
  auto first = tree->lower_bound(store::Key::min());
  if (!first) {
    result.filesystem_error = first.error().message();
    return;
  }
  if (!*first) return;
  auto report = fs::check_all_subvolumes(engine);
  if (!report) {
    result.filesystem_error = report.error().message();
    return;
  }
  result.filesystem = std::move(*report);
}

FsckResult check_image(const std::string& image, const store::CheckOptions& check_options) {
  FsckResult result;
  block::FileDeviceOptions device_options;
  device_options.read_only = true;
  // A just-unmounted filesystem's daemon may still be committing.
  device_options.lock_wait = std::chrono::seconds(5);
  auto device = block::open_file_device(image, device_options);
  if (!device) {
    result.fatal = device.error().message();
    return result;
  }
  result.superblock_copies = store::superblock_offsets_for((*device)->size()).size();
  auto sb = store::read_newest_superblock(**device, &result.superblock_problems);
  if (!sb) {
    result.fatal = sb.error().message();
    return result;
  }
  result.superblock = *sb;
  store::OpenOptions open_options;
  open_options.read_only = true;
  auto engine = store::Engine::open(**device, open_options);
  if (!engine) {
    result.fatal = "cannot open the filesystem: " + engine.error().message();
    return result;
  }
  auto report = (*engine)->check(check_options);
  if (!report) {
    result.fatal = "check stopped: " + report.error().message();
    return result;
  }
  result.report = std::move(*report);
  check_filesystem_tree(**engine, result);
  return result;
}

// One summary value of a check report: a count or a flag.
struct ReportValue {
  const char* name;
  std::variant<uint64_t, bool> value;
};

// One list of a check report's messages ("problems", "warnings").
struct ReportMessages {
  const char* name;
  const std::vector<std::string>& messages;
};

// `name`: the messages as an array of strings.
void json_messages(JsonWriter& json, const char* name, const std::vector<std::string>& messages) {
  json.key(name);
  json.begin_array();
  for (const std::string& message : messages) json.value(message);
  json.end_array();
}

// The fields of one check report (the engine's or the filesystem's): its
// summary values in the order given, then each of its message lists.
void json_report(JsonWriter& json, std::initializer_list<ReportValue> values,
                 std::initializer_list<ReportMessages> lists) {
  for (const ReportValue& value : values) {
    std::visit([&](auto v) { json.field(value.name, v); }, value.value);
  }
  for (const ReportMessages& list : lists) json_messages(json, list.name, list.messages);
}

// "filesystem": the counts, problems and warnings of the filesystem check,
// or null when the image holds no filesystem.
void json_filesystem(JsonWriter& json, const FsckResult& result) {
  json.key("filesystem");
  if (result.filesystem) {
    const fs::FsCheckReport& fs_report = *result.filesystem;
    json.begin_object();
    json_report(json,
                {{"inodes", fs_report.inodes},
                 {"directories", fs_report.directories},
                 {"regular_files", fs_report.regular_files},
                 {"symlinks", fs_report.symlinks},
                 {"special_files", fs_report.special_files},
                 {"entries", fs_report.entries},
                 {"extents", fs_report.extents},
                 {"xattrs", fs_report.xattrs},
                 {"orphans", fs_report.orphans}},
                {{"problems", fs_report.problems}, {"warnings", fs_report.warnings}});
    json.end_object();
  } else {
    json.null_value();
  }
  if (result.filesystem_error) json.field("filesystem_error", *result.filesystem_error);
}

void print_json(const std::string& image, const FsckResult& result) {
  JsonWriter json;
  json.begin_object();
  json.field("image", image);
  json.field("clean", result.clean());
  if (result.fatal) json.field("error", *result.fatal);
  json.key("superblock");
  if (result.superblock) {
    const store::Superblock& sb = *result.superblock;
    json.begin_object();
    json.field("uuid", format_uuid(sb.fsid));
    json.field("label", sb.label);
    json.field("generation", sb.generation);
    json.field("copy_bytenr", sb.bytenr);
    json.field("copies", result.superblock_copies);
    json.end_object();
  } else {
    json.null_value();
  }
  json_messages(json, "superblock_problems", result.superblock_problems);
  if (result.report) {
    const store::CheckReport& report = *result.report;
    json_report(json,
                {{"trees", report.trees},
                 {"tree_nodes", report.tree_nodes},
                 {"data_extents", report.data_extents},
                 {"allocated_bytes", report.allocated_bytes},
                 {"data_verified", report.data_verified},
                 {"data_sectors_checked", report.data_sectors_checked}},
                {{"problems", report.problems}});
    json_filesystem(json, result);
  }
  json.field("problem_count", result.problem_count());
  json.end_object();
  std::fputs(json.text().c_str(), stdout);
}

// The filesystem check's counts, then its problems and warnings.
void print_filesystem_text(const FsckResult& result) {
  if (result.filesystem) {
    const fs::FsCheckReport& fs_report = *result.filesystem;
    const auto number = [](uint64_t value) { return static_cast<unsigned long long>(value); };
    std::printf(
        "Inodes:           %llu (%llu directories, %llu regular files, %llu symlinks, "
        "%llu special files)\n",
        number(fs_report.inodes), number(fs_report.directories), number(fs_report.regular_files),
        number(fs_report.symlinks), number(fs_report.special_files));
    std::printf("Names:            %llu\n", number(fs_report.entries));
    std::printf("File extents:     %llu\n", number(fs_report.extents));
    std::printf("Xattrs:           %llu\n", number(fs_report.xattrs));
    std::printf("Orphans:          %llu\n", number(fs_report.orphans));
    for (const std::string& problem : fs_report.problems) {
      std::printf("ERROR: filesystem: %s\n", problem.c_str());
    }
    for (const std::string& warning : fs_report.warnings) {
      std::printf("WARNING: filesystem: %s\n", warning.c_str());
    }
  }
  if (result.filesystem_error) {
    std::printf("ERROR: filesystem check stopped: %s\n", result.filesystem_error->c_str());
  }
}

void print_text(const std::string& image, const FsckResult& result) {
  std::printf("Checking filesystem on %s\n", image.c_str());
  if (result.superblock) {
    const store::Superblock& sb = *result.superblock;
    std::printf("UUID:             %s\n", format_uuid(sb.fsid).c_str());
    if (!sb.label.empty()) std::printf("Label:            %s\n", sb.label.c_str());
    std::printf("Generation:       %llu\n", static_cast<unsigned long long>(sb.generation));
    std::printf("Superblock:       using the copy at %llu (%zu %s on the device)\n",
                static_cast<unsigned long long>(sb.bytenr), result.superblock_copies,
                result.superblock_copies == 1 ? "copy" : "copies");
  }
  for (const std::string& problem : result.superblock_problems) {
    std::printf("ERROR: superblock %s\n", problem.c_str());
  }
  if (result.report) {
    const store::CheckReport& report = *result.report;
    std::printf("Trees:            %llu\n", static_cast<unsigned long long>(report.trees));
    std::printf("Tree nodes:       %llu\n", static_cast<unsigned long long>(report.tree_nodes));
    std::printf("Data extents:     %llu\n", static_cast<unsigned long long>(report.data_extents));
    std::printf("Allocated:        %s (%llu bytes)\n", format_size(report.allocated_bytes).c_str(),
                static_cast<unsigned long long>(report.allocated_bytes));
    if (report.data_verified) {
      std::printf("Data sectors:     %llu verified against their checksums\n",
                  static_cast<unsigned long long>(report.data_sectors_checked));
    } else {
      std::printf("Data sectors:     not read (--metadata-only: checksum items checked only)\n");
    }
    for (const std::string& problem : report.problems) std::printf("ERROR: %s\n", problem.c_str());
  }
  print_filesystem_text(result);
  if (result.clean()) {
    std::printf("no errors found\n");
  } else if (!result.fatal) {
    std::printf("%zu %s found\n", result.problem_count(),
                result.problem_count() == 1 ? "error" : "errors");
  }
}

int run(const FsckArgs& args) {
  store::CheckOptions check_options;
  check_options.verify_data = !args.metadata_only;
  // Only on a terminal (DESIGN.md: long operations stay quiet otherwise).
  ProgressLine progress("ecfs fsck");
  if (progress.enabled()) {
    check_options.progress = [&progress](const store::CheckProgress& at) {
      progress.update(std::string("checking ") + at.phase, at.done, at.total);
    };
  }
  const FsckResult result = check_image(args.image, check_options);
  progress.clear();
  if (args.json) {
    print_json(args.image, result);
  } else {
    print_text(args.image, result);
  }
  if (std::fflush(stdout) != 0) {
    print_error("fsck", "writing standard output failed");
    return kExitFailure;
  }
  if (result.fatal) {
    print_error("fsck", *result.fatal);
    return kExitFailure;
  }
  if (!result.clean()) {
    print_error("fsck", "errors found in " + args.image + " (" +
                            std::to_string(result.problem_count()) + ")");
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_fsck_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<FsckArgs>();
  CLI::App* command = app.add_subcommand("fsck", kDescription);
  command->alias("check");
  command->footer(kFooter);
  command->add_option("IMAGE", args->image, "image file or block device")->required();
  command->add_flag("--json", args->json, "print the report as JSON");
  command->add_flag("--metadata-only", args->metadata_only,
                    "check the trees only; do not read data sectors against their checksums");
  command->callback([args, &runner] { runner = [args] { return run(*args); }; });
}

}  // namespace ecfs::cli
