// LoopDevice: an image attached to a loop device for as long as a mount
// needs it, the way `mount -o loop` does.
//
// Why: the kernel sends FUSE_SYNCFS (so that sync(2) and syncfs(2) reach the
// daemon) and a synchronous FUSE_DESTROY at unmount only to FUSE mounts of
// type fuseblk, whose source must be a block device. A loop device over the
// image (a regular file, or a block device itself) is that source. Nothing
// reads or writes through it: the daemon keeps doing its I/O on the image
// directly; the mount only holds the loop device open.
//
// The device is configured with LO_FLAGS_AUTOCLEAR (include/uapi/linux/loop.h):
// the kernel detaches it when its last opener lets go. This object holds one
// descriptor until it is destroyed; by then the mount holds its own, so the
// device goes away with the unmount, and with this object when the mount
// never happened. Needs root (CAP_SYS_ADMIN) and /dev/loop-control.
#pragma once

#include <string>

#include "base/error.h"

namespace ecfs::block {

class LoopDevice {
 public:
  // Attaches `backing_path` (read-only when `read_only`) to a free loop
  // device. EACCES/EPERM without the privilege, ENOENT without the loop
  // driver, the host's errno otherwise; messages name the paths.
  static Result<LoopDevice> attach(const std::string& backing_path, bool read_only);

  LoopDevice(LoopDevice&& other) noexcept;
  LoopDevice& operator=(LoopDevice&& other) noexcept;
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  // Closes this process's descriptor (see above).
  ~LoopDevice();

  // "/dev/loopN".
  const std::string& path() const { return path_; }

 private:
  LoopDevice(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_ = -1;
  std::string path_;
};

}  // namespace ecfs::block
