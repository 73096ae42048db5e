#include "fuse/mount_options.h"

#include <array>
#include <charconv>
#include <cstdint>

namespace ecfs::fuse {
namespace {

// Generic mount flags (mount(8) "FILESYSTEM-INDEPENDENT MOUNT OPTIONS")
// that libfuse 3.14 turns into mount(2) flags (lib/mount.c mount_flags).
constexpr std::array<std::string_view, 9> kKernelFlags = {
    "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async", "dirsync"};

// Options of fstab and mount(8) itself, meaningless to a filesystem; fstab
// lines may carry them all. lazytime is what ecfs does anyway.
constexpr std::array<std::string_view, 12> kIgnored = {
    "defaults", "auto",  "noauto", "user",    "nouser",   "users",
    "owner",    "group", "nofail", "_netdev", "lazytime", "nolazytime"};

// What mount(8) copies from a live FUSE mount into a remount's options:
// the kernel's own mount parameters, which cannot change.
constexpr std::array<std::string_view, 5> kLiveMountParameters = {
    "user_id=", "group_id=", "rootmode=", "blksize=", "max_read="};

template <size_t N>
bool is_one_of(std::string_view option, const std::array<std::string_view, N>& names) {
  for (std::string_view name : names)
    if (option == name) return true;
  return false;
}

bool is_live_mount_parameter(std::string_view option) {
  for (std::string_view prefix : kLiveMountParameters) {
    if (option.starts_with(prefix)) return true;
  }
  return false;
}

// The value of `name`=`value`: a decimal number from 0 to `max`, naming
// `unit` in the error.
Result<uint32_t> parse_number(std::string_view name, std::string_view value, uint32_t max,
                              std::string_view unit) {
  uint32_t number = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (value.empty() || error != std::errc() || end != value.data() + value.size() || number > max) {
    return fail(EINVAL, std::string(name) + "= takes a number of " + std::string(unit) +
                            " from 0 to " + std::to_string(max) + ", not '" + std::string(value) +
                            "'");
  }
  return number;
}

Status parse_commit(std::string_view value, MountConfig& config) {
  // A day is far beyond any sensible interval; larger values are typos.
  auto seconds = parse_number("commit", value, 86400, "seconds");
  if (!seconds) return std::unexpected(seconds.error());
  if (*seconds == 0) {
    config.commit_interval.reset();
  } else {
    config.commit_interval = std::chrono::seconds(*seconds);
  }
  return ok();
}

Status parse_read_ahead(std::string_view value, MountConfig& config) {
  // The kernel takes more, but a window beyond 64 MiB only wastes memory.
  auto kib = parse_number("read_ahead_kb", value, 65536, "KiB");
  if (!kib) return std::unexpected(kib.error());
  config.read_ahead_kb = *kib;
  return ok();
}

Status parse_dirty_ratio(std::string_view value, MountConfig& config) {
  auto percent = parse_number("dirty_ratio", value, 100, "percent");
  if (!percent) return std::unexpected(percent.error());
  config.dirty_ratio = *percent;
  return ok();
}

// Options only a new mount can apply.
constexpr std::array<std::string_view, 9> kMountTimeOnly = {
    "debug",       "writeback_cache", "no_writeback_cache", "blkdev", "no_blkdev", "io_uring",
    "no_io_uring", "discard",         "nodiscard"};

// Mount-time options that carry a value.
bool is_mount_time_only_value(std::string_view option) {
  return option.starts_with("subvol=") || option.starts_with("unlock=") ||
         option.starts_with("unlock_key_file=");
}

Status parse_one(std::string_view option, bool sloppy, MountConfig& config) {
  if (option.empty()) return ok();
  if (config.remount && (is_one_of(option, kMountTimeOnly) || is_mount_time_only_value(option))) {
    config.mount_time_only.emplace_back(option);
    return ok();
  }
  if (option == "ro") {
    config.read_only = true;
  } else if (option == "rw") {
    config.read_only = false;
  } else if (option.starts_with("commit=")) {
    return parse_commit(option.substr(7), config);
  } else if (option.starts_with("subvol=")) {
    // A path from the top level's root; a leading '/' is allowed (btrfs's
    // subvol=/home is the same as subvol=home).
    std::string_view path = option.substr(7);
    while (path.starts_with('/')) path.remove_prefix(1);
    config.subvolume = std::string(path);
  } else if (option.starts_with("unlock=")) {
    if (option.size() == 7) return fail(EINVAL, "unlock= needs a directory");
    config.unlock = std::string(option.substr(7));
  } else if (option.starts_with("unlock_key_file=")) {
    if (option.size() == 16) return fail(EINVAL, "unlock_key_file= needs a file");
    config.unlock_key_file = std::string(option.substr(16));
  } else if (option.starts_with("read_ahead_kb=")) {
    return parse_read_ahead(option.substr(14), config);
  } else if (option.starts_with("dirty_ratio=")) {
    return parse_dirty_ratio(option.substr(12), config);
  } else if (option == "allow_other") {
    config.allow_other = true;
  } else if (option == "debug") {
    config.debug = true;
  } else if (option == "writeback_cache") {
    config.writeback_cache = true;
  } else if (option == "no_writeback_cache") {
    config.writeback_cache = false;
  } else if (option == "blkdev") {
    config.blkdev = true;
  } else if (option == "no_blkdev") {
    config.blkdev = false;
  } else if (option == "discard") {
    config.discard = true;
  } else if (option == "nodiscard") {
    config.discard = false;
  } else if (option == "io_uring") {
    config.io_uring = true;
  } else if (option == "no_io_uring") {
    config.io_uring = false;
  } else if (option == "default_permissions") {
    // Always on.
  } else if (option == "noatime") {
    config.atime = fs::AtimeUpdates::kNever;
  } else if (option == "atime" || option == "relatime" || option == "nostrictatime") {
    config.atime = fs::AtimeUpdates::kRelative;
  } else if (option == "strictatime" || option == "norelatime") {
    config.atime = fs::AtimeUpdates::kAlways;
  } else if (option == "nodiratime") {
    config.directory_atime = false;
  } else if (option == "diratime") {
    config.directory_atime = true;
  } else if (option == "remount") {
    config.remount = true;
  } else if (config.remount && is_live_mount_parameter(option)) {
    // Copied by mount(8) from the live mount; unchanged.
  } else if (is_one_of(option, kKernelFlags)) {
    config.kernel_options.emplace_back(option);
  } else if (is_one_of(option, kIgnored) || option.starts_with("x-") ||
             option.starts_with("comment=")) {
    // For mount(8) and fstab only.
  } else if (!sloppy) {
    return fail(EINVAL, "unknown mount option '" + std::string(option) + "'");
  }
  return ok();
}

}  // namespace

Status parse_mount_options(std::string_view list, bool sloppy, MountConfig& config) {
  // mount(8) puts "remount" anywhere in the list; the options copied from
  // the live mount may come before it.
  for (size_t start = 0; start <= list.size();) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    if (list.substr(start, end - start) == "remount") config.remount = true;
    start = end + 1;
  }
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    ECFS_TRY(parse_one(list.substr(start, end - start), sloppy, config));
    start = end + 1;
  }
  return ok();
}

}  // namespace ecfs::fuse
