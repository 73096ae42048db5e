#include "fuse/ioctl_dispatch.h"

#include <cerrno>
#include <cstring>

#include "fuse/ioctl_abi.h"

namespace ecfs::fuse {

IoctlAnswer answer_ioctl(unsigned command, ByteSpan in) {
  const size_t expected = ioctl_argument_size(command);
  // A command of someone else's: "inappropriate ioctl for device", as
  // every filesystem answers (fs/ioctl.c vfs_ioctl returns -ENOIOCTLCMD,
  // turned into ENOTTY).
  if (expected == 0) return {ENOTTY, {}};
  // The kernel copies exactly _IOC_SIZE bytes, so a short argument can
  // only come from a caller that bypassed the number; reject it all the same.
  if (in.size() != expected) return {EINVAL, {}};
  uint32_t version = 0;
  std::memcpy(&version, in.data(), sizeof(version));
  if (version != kIoctlAbiVersion) return {EINVAL, {}};
  // The fscrypt issue wires these to the keyring (ADD_KEY, REMOVE_KEY,
  // KEY_STATUS) and to the filesystem's policies (SET_POLICY, GET_POLICY).
  return {EOPNOTSUPP, {}};
}

}  // namespace ecfs::fuse
