// The ecfs mounts of this mount namespace, read from /proc/self/mountinfo:
// which image each one serves, so that `ecfs mount` can tell a live mount
// of an image (refused at once) from a daemon that is still finishing an
// unmount (waited for), and mount(8)'s remount can find its mount.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ecfs::cli {

struct EcfsMount {
  std::string mountpoint;
  std::string type;    // "fuse.ecfs" or "fuseblk.ecfs"
  std::string source;  // the image, or the loop device over it (fuseblk)
  std::string image;   // the image: the source, or the loop device's backing file
  bool read_only = false;
};

// Every mount of type fuse.ecfs or fuseblk.ecfs, in mount order.
std::vector<EcfsMount> ecfs_mounts();

// The top-most ecfs mount on `mountpoint` (a canonical path), if any.
std::optional<EcfsMount> ecfs_mount_at(const std::string& mountpoint);

// An ecfs mount of `image` (a canonical path), if any.
std::optional<EcfsMount> ecfs_mount_of(const std::string& image);

}  // namespace ecfs::cli
