#include "fuse/backing_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "base/mountinfo.h"

namespace ecfs::fuse {
namespace {

struct MountEntry {
  std::string device;  // "major:minor"
  std::string type;    // "fuse.ecfs", "fuseblk.ecfs", ...
};

// The top-most mount at `mountpoint` in /proc/self/mountinfo.
Result<MountEntry> mount_entry(const std::string& mountpoint) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  if (!mountinfo) return fail(errno ? errno : EIO, "cannot read /proc/self/mountinfo");
  // Fields: mount id, parent id, major:minor, root, mount point, options,
  // optional fields, "-", filesystem type, source, super options.
  std::string line;
  std::optional<MountEntry> found;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point, field;
    if (!(fields >> id >> parent >> device >> root >> point)) continue;
    if (unescape_mountinfo_field(point) != mountpoint) continue;
    while (fields >> field && field != "-") {
    }
    std::string type;
    fields >> type;
    found = MountEntry{device, type};  // the last one is on top
  }
  if (!found) return fail(ENOENT, "nothing is mounted on " + mountpoint);
  return *found;
}

}  // namespace

Result<std::string> mount_backing_device_name(const std::string& mountpoint) {
  auto entry = mount_entry(mountpoint);
  if (!entry) return std::unexpected(entry.error());
  // A fuseblk superblock's device number is its block device's, whose own
  // backing device carries that name: the mount's gets a suffix
  // (fs/fuse/inode.c fuse_bdi_init).
  if (entry->type == "fuseblk" || entry->type.starts_with("fuseblk.")) {
    return entry->device + "-fuseblk";
  }
  return entry->device;
}

namespace {

// Writes `value` into the file `name` of the mount's backing device.
Status set_device_value(const std::string& mountpoint, const std::string& name, uint64_t value) {
  auto device = mount_backing_device_name(mountpoint);
  if (!device) return std::unexpected(device.error());
  const std::string path = "/sys/class/bdi/" + *device + "/" + name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno, "cannot open " + path + ": " + std::strerror(errno));
  const std::string text = std::to_string(value) + "\n";
  const ssize_t written = ::write(fd, text.data(), text.size());
  const int write_errno = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    return fail(written < 0 ? write_errno : EIO,
                "cannot set " + path + ": " + std::strerror(written < 0 ? write_errno : EIO));
  }
  return ok();
}

}  // namespace

Status set_mount_read_ahead(const std::string& mountpoint, uint32_t kib) {
  return set_device_value(mountpoint, "read_ahead_kb", kib);
}

Status set_mount_dirty_ratio(const std::string& mountpoint, uint32_t percent) {
  ECFS_TRY(set_device_value(mountpoint, "max_ratio", percent));
  return set_device_value(mountpoint, "strict_limit", 0);
}

}  // namespace ecfs::fuse
