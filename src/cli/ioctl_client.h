// Issuing ecfs's ioctls (fuse/ioctl_abi.h) from the command
// line, as fscryptctl issues the kernel's: opening the path, the call, and
// what a failure's errno means to a user of that operation.
#pragma once

#include <string>

#include "base/error.h"

namespace ecfs::cli {

// An open file descriptor, closed when dropped. Move-only.
class OpenPath {
 public:
  explicit OpenPath(int fd) : fd_(fd) {}
  OpenPath(OpenPath&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  OpenPath& operator=(OpenPath&& other) noexcept;
  OpenPath(const OpenPath&) = delete;
  OpenPath& operator=(const OpenPath&) = delete;
  ~OpenPath();

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// Opens `path` read-only for an ioctl (O_DIRECTORY too if `directory`).
// The error says "opening PATH" with open(2)'s errno.
Result<OpenPath> open_for_ioctl(const std::string& path, bool directory);

// The operations, for explaining their errors.
enum class IoctlOperation {
  kAddKey,
  kRemoveKey,
  kKeyStatus,
  kSetPolicy,
  kGetPolicy,
  kSync,
  kRemount,
  kSubvolume,
  kProtector,
  kRekey,
  kRekeyContents
};

// What `errno_value` means for `operation`, in the words of a user of
// fscryptctl ("not an ecfs mount" for ENOTTY, "the key is not present or was
// not added by you" for ENOKEY of a removal, ...).
std::string explain_ioctl_errno(IoctlOperation operation, int errno_value);

// ioctl(fd, command, argument), retried on EINTR. On failure an Error with
// the errno, whose message is `what` followed by explain_ioctl_errno.
Status call_ioctl(int fd, unsigned command, void* argument, IoctlOperation operation,
                  const std::string& what);

}  // namespace ecfs::cli
