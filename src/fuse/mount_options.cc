#include "fuse/mount_options.h"

#include <array>
#include <charconv>
#include <cstdint>

namespace ecfs::fuse {
namespace {

// Generic mount flags (mount(8) "FILESYSTEM-INDEPENDENT MOUNT OPTIONS")
// that libfuse 3.14 turns into mount(2) flags (lib/mount.c mount_flags).
constexpr std::array<std::string_view, 11> kKernelFlags = {"suid",    "nosuid", "dev",    "nodev",
                                                           "exec",    "noexec", "sync",   "async",
                                                           "dirsync", "atime",  "noatime"};

// Options of fstab and mount(8) itself, meaningless to a filesystem, and
// atime variants libfuse 3.14 cannot pass to mount(2) (a FUSE mount gets
// the kernel's default, relatime); fstab lines may carry them all.
constexpr std::array<std::string_view, 18> kIgnored = {
    "defaults",    "auto",          "noauto",     "user",     "nouser",   "users",
    "owner",       "group",         "nofail",     "_netdev",  "relatime", "norelatime",
    "strictatime", "nostrictatime", "nodiratime", "diratime", "lazytime", "nolazytime"};

template <size_t N>
bool is_one_of(std::string_view option, const std::array<std::string_view, N>& names) {
  for (std::string_view name : names)
    if (option == name) return true;
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

Status parse_one(std::string_view option, bool sloppy, MountConfig& config) {
  if (option.empty()) return ok();
  if (option == "ro") {
    config.read_only = true;
  } else if (option == "rw") {
    config.read_only = false;
  } else if (option.starts_with("commit=")) {
    return parse_commit(option.substr(7), config);
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
  } else if (option == "io_uring") {
    config.io_uring = true;
  } else if (option == "no_io_uring") {
    config.io_uring = false;
  } else if (option == "default_permissions") {
    // Always on.
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
