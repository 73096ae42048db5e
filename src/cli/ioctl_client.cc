#include "cli/ioctl_client.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ecfs::cli {

OpenPath& OpenPath::operator=(OpenPath&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

OpenPath::~OpenPath() {
  if (fd_ >= 0) close(fd_);
}

Result<OpenPath> open_for_ioctl(const std::string& path, bool directory) {
  const int fd =
      open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | (directory ? O_DIRECTORY : 0));
  if (fd < 0) {
    const int error = errno;
    std::string meaning;
    // ENOKEY from open: a file in an encrypted directory whose key is not
    // added (fscrypt_file_open).
    if (error == ENOKEY) meaning = ": its encryption key is not added";
    if (error == ENOTDIR && directory) meaning = ": not a directory";
    return fail(error, "opening " + path + meaning);
  }
  return OpenPath(fd);
}

std::string explain_ioctl_errno(IoctlOperation operation, int errno_value) {
  const bool key_operation = operation == IoctlOperation::kAddKey ||
                             operation == IoctlOperation::kRemoveKey ||
                             operation == IoctlOperation::kKeyStatus;
  switch (errno_value) {
    case ENOTTY:
      // Every other filesystem answers an unknown ioctl number so.
      return "not an ecfs mount (the filesystem does not know ecfs's key and policy commands)";
    case EOPNOTSUPP:
      return "this ecfs mount does not support encryption";
    case ENOKEY:
      if (operation == IoctlOperation::kProtector) {
        return "the key must be unlocked (added) by you before a protector can keep it";
      }
      if (operation == IoctlOperation::kSetPolicy) {
        return "the key is not added (add it with 'ecfs key add' first; only the user who added "
               "it, or root, may use it in a policy)";
      }
      if (operation == IoctlOperation::kGetPolicy) return "the encryption key is not added";
      if (operation == IoctlOperation::kRekey) {
        return "both keys must be present: the directory's current one (unlock it) and the "
               "new one, added by you";
      }
      if (operation == IoctlOperation::kRekeyContents) {
        return "the file's current key and the earlier keys its data is under must be present "
               "(unlock the directory with each one's passphrase or key file)";
      }
      return "the key is not present, or was not added by you";
    case EACCES:
    case EPERM:
      if (operation == IoctlOperation::kSetPolicy) {
        return "permission denied: only the directory's owner (or root) may set its policy";
      }
      if (key_operation) {
        return "permission denied (v1 descriptor keys and --all-users need root, "
               "CAP_SYS_ADMIN)";
      }
      if (operation == IoctlOperation::kRemount) {
        return "permission denied (remounting needs CAP_SYS_ADMIN)";
      }
      if (operation == IoctlOperation::kSubvolume) {
        return "permission denied (creating, snapshotting and deleting subvolumes needs "
               "CAP_SYS_ADMIN)";
      }
      if (operation == IoctlOperation::kProtector) {
        return "permission denied: the protector belongs to another user";
      }
      if (operation == IoctlOperation::kRekey) {
        return "permission denied: only the directory's owner (or root) may change its key";
      }
      if (operation == IoctlOperation::kRekeyContents) {
        return "permission denied: only the file's owner (or root) may have it re-encrypted";
      }
      break;
    case ENODATA:
      if (operation == IoctlOperation::kGetPolicy) return "file or directory not encrypted";
      if (operation == IoctlOperation::kRekey) return "the directory is not encrypted";
      if (operation == IoctlOperation::kRekeyContents) return "the file is not encrypted";
      break;
    case EOVERFLOW:
      if (operation == IoctlOperation::kRekey) {
        return "a file there was already under 16 earlier keys (its old extents must be "
               "rewritten first)";
      }
      break;
    case EEXIST:
      if (operation == IoctlOperation::kSetPolicy) {
        return "the directory is already encrypted with a different policy";
      }
      break;
    case ENOTEMPTY:
      if (operation == IoctlOperation::kSetPolicy) {
        return "the directory is not empty (a policy can only be set on an empty directory)";
      }
      if (operation == IoctlOperation::kSubvolume) {
        return "the subvolume holds other subvolumes (delete those first)";
      }
      break;
    case ENOENT:
      if (operation == IoctlOperation::kProtector) {
        return "no such protector, or it does not keep that key";
      }
      break;
    case EDQUOT:
      if (operation == IoctlOperation::kProtector) {
        return "you own as many protectors as one user may (remove some first)";
      }
      break;
    case EBUSY:
      if (operation == IoctlOperation::kProtector) {
        return "it is the last protector of a key: without it the files under that key could "
               "not be unlocked any more (--force removes it anyway)";
      }
      if (operation == IoctlOperation::kSubvolume) {
        return "the source holds other subvolumes, which a snapshot cannot take along "
               "(snapshot those separately)";
      }
      break;
    case EXDEV:
      if (operation == IoctlOperation::kSubvolume) {
        return "a subvolume cannot be placed in an encrypted directory";
      }
      break;
    case ENOTDIR:
      if (operation == IoctlOperation::kSetPolicy) return "not a directory";
      break;
    case EINVAL:
      if (operation == IoctlOperation::kSubvolume) {
        return "not a subvolume (a snapshot's source is a subvolume's root directory; delete "
               "takes subvolumes only)";
      }
      if (operation == IoctlOperation::kSync || operation == IoctlOperation::kRemount) break;
      if (operation == IoctlOperation::kProtector) {
        return "invalid protector record or change (a protector keeps its kind and owner)";
      }
      if (operation == IoctlOperation::kSetPolicy) return "invalid encryption options provided";
      if (operation == IoctlOperation::kGetPolicy) {
        return "file or directory uses an unrecognized encryption policy version";
      }
      return "invalid argument (a key of 16 to 64 bytes is needed)";
    case EROFS:
      if (operation == IoctlOperation::kRemount) {
        return "the image was mounted read-only, or the mount turned read-only after an "
               "error (unmount and mount it again)";
      }
      return "the filesystem is mounted read-only";
    default:
      break;
  }
  return std::strerror(errno_value);
}

Status call_ioctl(int fd, unsigned command, void* argument, IoctlOperation operation,
                  const std::string& what) {
  for (;;) {
    if (ioctl(fd, command, argument) == 0) return ok();
    if (errno != EINTR) break;
  }
  const int error = errno;
  return fail(error, what + ": " + explain_ioctl_errno(operation, error));
}

}  // namespace ecfs::cli
