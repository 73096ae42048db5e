#include "cli/fsck_command.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "block/file_device.h"
#include "cli/json_writer.h"
#include "cli/size_parse.h"
#include "cli/store_text.h"
#include "store/engine.h"
#include "store/superblock.h"

namespace ecfs::cli {
namespace {

constexpr const char* kDescription =
    "check an ecfs image for consistency (read-only)\n"
    "\n"
    "  ecfs fsck [--json] IMAGE\n"
    "\n"
    "Reads every superblock copy, then walks every tree: node checksums and structure,\n"
    "the reference count of every tree node and data extent against the references\n"
    "found, and free space. The image is opened read-only and never changed; it must\n"
    "not be mounted read-write at the same time.";

constexpr const char* kFooter =
    "Exit status: 0 when the image is consistent; 1 when problems were found or the\n"
    "image could not be read (not an ecfs image, every superblock copy damaged, I/O\n"
    "error); 2 for bad options.";

struct FsckArgs {
  std::string image;
  bool json = false;
};

// Everything fsck learned, for either output format.
struct FsckResult {
  std::optional<store::Superblock> superblock;
  size_t superblock_copies = 0;
  std::vector<std::string> superblock_problems;
  std::optional<store::CheckReport> report;
  std::optional<std::string> fatal;  // why the check could not finish

  size_t problem_count() const {
    return superblock_problems.size() + (report ? report->problems.size() : 0);
  }
  bool clean() const { return !fatal && problem_count() == 0; }
};

FsckResult check_image(const std::string& image) {
  FsckResult result;
  block::FileDeviceOptions device_options;
  device_options.read_only = true;
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
  auto report = (*engine)->check();
  if (!report) {
    result.fatal = "check stopped: " + report.error().message();
    return result;
  }
  result.report = std::move(*report);
  return result;
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
  json.key("superblock_problems");
  json.begin_array();
  for (const std::string& problem : result.superblock_problems) json.value(problem);
  json.end_array();
  if (result.report) {
    const store::CheckReport& report = *result.report;
    json.field("trees", report.trees);
    json.field("tree_nodes", report.tree_nodes);
    json.field("data_extents", report.data_extents);
    json.field("allocated_bytes", report.allocated_bytes);
    json.key("problems");
    json.begin_array();
    for (const std::string& problem : report.problems) json.value(problem);
    json.end_array();
  }
  json.field("problem_count", result.problem_count());
  json.end_object();
  std::fputs(json.text().c_str(), stdout);
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
    for (const std::string& problem : report.problems) std::printf("ERROR: %s\n", problem.c_str());
  }
  if (result.clean()) {
    std::printf("no errors found\n");
  } else if (!result.fatal) {
    std::printf("%zu %s found\n", result.problem_count(),
                result.problem_count() == 1 ? "error" : "errors");
  }
}

int run(const FsckArgs& args) {
  // The check gives no progress callback yet; a person at a terminal at
  // least learns what is going on (DESIGN.md: quiet when not a terminal).
  if (!args.json && isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "ecfs fsck: checking %s ...\n", args.image.c_str());
  }
  const FsckResult result = check_image(args.image);
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
  command->callback([args, &runner] { runner = [args] { return run(*args); }; });
}

}  // namespace ecfs::cli
