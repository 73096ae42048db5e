#include "cli/mount_table.h"

#include <fstream>
#include <sstream>

#include "base/mountinfo.h"

namespace ecfs::cli {
namespace {

// The file behind loop device `device` ("/dev/loopN"), or "" if it is not
// a loop device or is detached.
std::string loop_backing_file(const std::string& device) {
  constexpr std::string_view kPrefix = "/dev/loop";
  if (!device.starts_with(kPrefix)) return "";
  std::ifstream in("/sys/block/" + device.substr(5) + "/loop/backing_file");
  std::string path;
  std::getline(in, path);
  return path;
}

bool has_option(const std::string& list, std::string_view option) {
  std::istringstream options(list);
  std::string item;
  while (std::getline(options, item, ',')) {
    if (item == option) return true;
  }
  return false;
}

}  // namespace

std::vector<EcfsMount> ecfs_mounts() {
  std::vector<EcfsMount> mounts;
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  // Fields: mount id, parent id, major:minor, root, mount point, mount
  // options, optional fields, "-", type, source, superblock options.
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point, options, field, type, source;
    if (!(fields >> id >> parent >> device >> root >> point >> options)) continue;
    while (fields >> field && field != "-") {
    }
    if (!(fields >> type >> source)) continue;
    if (type != "fuse.ecfs" && type != "fuseblk.ecfs") continue;
    EcfsMount mount;
    mount.mountpoint = unescape_mountinfo_field(point);
    mount.type = type;
    mount.source = unescape_mountinfo_field(source);
    mount.image = type == "fuseblk.ecfs" ? loop_backing_file(mount.source) : mount.source;
    if (mount.image.empty()) mount.image = mount.source;
    mount.read_only = has_option(options, "ro");
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

std::optional<EcfsMount> ecfs_mount_at(const std::string& mountpoint) {
  std::optional<EcfsMount> found;
  for (EcfsMount& mount : ecfs_mounts()) {
    if (mount.mountpoint == mountpoint) found = std::move(mount);  // the last is on top
  }
  return found;
}

std::optional<EcfsMount> ecfs_mount_of(const std::string& image) {
  for (EcfsMount& mount : ecfs_mounts()) {
    if (mount.image == image) return std::move(mount);
  }
  return std::nullopt;
}

}  // namespace ecfs::cli
