// How the FUSE adapter answers an ioctl (ioctl_abi.h): decodes and checks
// the argument exactly as the kernel checks its fscrypt counterparts
// (fs/crypto/keyring.c, policy.c), plus the ABI's own rules (version,
// reserved fields and unused bytes zero), calls the FileSystem's fscrypt
// operation (or its sync or remount), and builds the struct copied back to
// the caller.
//
// Key bytes: the raw key of ECFS_IOC_ADD_KEY is copied once, into a
// crypto::SecretBytes, and never into an answer or a message. The caller's
// input buffer still holds it; the adapter wipes that (wipe_ioctl_secrets).
//
// Stateless; thread-safe (the FileSystem is).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "fs/filesystem.h"
#include "fscrypt/keyring.h"

namespace ecfs::fuse {

struct IoctlAnswer {
  int error = 0;             // errno for the caller; 0 = success
  std::vector<uint8_t> out;  // on success: the struct copied back to the caller
  // On success of a key change (KeyChange::stale_inodes): inodes whose
  // kernel caches the adapter invalidates once it has replied.
  std::vector<uint64_t> stale_inodes;
  // On success of a key change (KeyChange::stale_names): cached names the
  // adapter invalidates before it replies.
  std::vector<fs::CachedName> stale_names;
  // Why it failed, for the daemon's log (never key bytes or names).
  std::string message;
};

// Answers `command` made on inode `ino` by `caller`. `in` is what the kernel
// copied from the caller (_IOC_SIZE(command) bytes for a restricted ioctl).
// ENOTTY for a command that is not ecfs's; EINVAL for a wrong size, an
// unknown ABI version, nonzero reserved fields or unused bytes, unknown
// flags, or a malformed key specifier or policy; EACCES where the kernel
// checks a capability before anything else; otherwise the FileSystem's
// errno (filesystem.h "fscrypt"). `caller_is_admin`: the caller holds
// CAP_SYS_ADMIN, which ECFS_IOC_REMOUNT needs as mount(2)'s MS_REMOUNT does,
// and ECFS_IOC_SUBVOL_CREATE / _DELETE as btrfs's do without
// user_subvol_rm_allowed (uid 0 alone is not enough; EPERM otherwise).
IoctlAnswer answer_ioctl(fs::FileSystem& filesystem, uint64_t ino, const fscrypt::Caller& caller,
                         unsigned command, ByteSpan in, bool caller_is_admin = false);

// Zeroes whatever secret `command`'s argument carries in `in` (the raw key
// of ECFS_IOC_ADD_KEY), so no copy of it outlives the request in the
// daemon's receive buffer. Does nothing for other commands.
void wipe_ioctl_secrets(unsigned command, MutableByteSpan in);

}  // namespace ecfs::fuse
