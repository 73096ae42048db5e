// How the FUSE adapter answers an ioctl (ioctl_abi.h): checks that the
// command is one of ecfs's and that its argument is well formed, then
// (today) reports that the operation is not wired yet.
// Stateless; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "base/bytes.h"

namespace ecfs::fuse {

struct IoctlAnswer {
  int error = 0;             // errno for the caller; 0 = success
  std::vector<uint8_t> out;  // on success: the struct copied back to the caller
};

// `in` is what the kernel copied from the caller (_IOC_SIZE(command) bytes
// for a restricted ioctl). ENOTTY for a command that is not ecfs's; EINVAL
// for a wrong size or an unknown ABI version; otherwise EOPNOTSUPP until
// the fscrypt issue connects the keyring and the policies.
IoctlAnswer answer_ioctl(unsigned command, ByteSpan in);

}  // namespace ecfs::fuse
