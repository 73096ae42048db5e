// The key and protector operations of a mounted ecfs filesystem as calls,
// over ecfs's ioctls (fuse/ioctl_abi.h): what `ecfs encrypt`, `unlock`,
// `lock`, `protector` and `status` are made of. Key bytes are copied into
// the ioctl argument only, which is wiped after the call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "crypto/secret.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/policy.h"
#include "fscrypt/protector.h"

namespace ecfs::cli {

// FS_IOC_ADD_ENCRYPTION_KEY for a v2 key: its identifier.
Result<fscrypt::KeyIdentifier> add_master_key(int fd, const crypto::SecretBytes& key,
                                              const std::string& where);

struct KeyRemoval {
  bool files_busy = false;   // some files under the key are still open
  bool other_users = false;  // only the caller's claim went; others remain
};
Result<KeyRemoval> remove_master_key(int fd, const fscrypt::KeyIdentifier& identifier,
                                     bool all_users, const std::string& where);

struct KeyState {
  uint32_t status = 0;  // fuse::kKeyStatus*
  bool added_by_self = false;
  uint32_t user_count = 0;
  bool present() const;
  bool incompletely_removed() const;
};
Result<KeyState> master_key_status(int fd, const fscrypt::KeyIdentifier& identifier,
                                   const std::string& where);

Status set_directory_policy(int fd, const fscrypt::Policy& policy, const std::string& where);
// ENODATA (explained) for an unencrypted file.
Result<fscrypt::Policy> directory_policy(int fd, const std::string& where);
// The master key identifier of the v2 policy of `directory` (open as `fd`);
// EINVAL for a v1 policy, which protectors do not keep.
Result<fscrypt::KeyIdentifier> directory_key(int fd, const std::string& directory);

// Extents and bytes per master key across the mount (ECFS_IOC_KEY_USAGE),
// in identifier order.
struct KeyUsageRow {
  fscrypt::KeyIdentifier identifier{};
  uint64_t extents = 0;
  uint64_t bytes = 0;
};
Result<std::vector<KeyUsageRow>> key_usage(int fd, const std::string& where);

// ECFS_IOC_REKEY on directory `fd`: it, its names, files and symlinks move
// to master key `to` (subdirectories take calls of their own).
struct RekeyCounts {
  uint64_t names = 0;
  uint64_t inodes = 0;
  uint64_t skipped = 0;    // of another policy
  uint64_t not_owned = 0;  // other users'
};
Result<RekeyCounts> rekey_directory(int fd, const fscrypt::KeyIdentifier& to,
                                    const std::string& where);

// ECFS_IOC_REKEY_CONTENTS on regular file `fd`: about `max_bytes` of its
// data under earlier keys re-encrypted under its current key.
struct RekeyContentsCounts {
  uint64_t bytes = 0;
  uint64_t extents = 0;
  uint64_t shared = 0;
  bool done = false;
};
Result<RekeyContentsCounts> rekey_contents(int fd, uint64_t max_bytes, const std::string& where);

// The master keys the inode open as `fd` was under before rotations,
// oldest first (ECFS_IOC_PREVIOUS_KEYS).
Result<std::vector<fscrypt::KeyIdentifier>> previous_keys(int fd, const std::string& where);

// The protector tree, decoded.
struct ProtectorListing {
  std::vector<fscrypt::ProtectorRecord> protectors;
  std::vector<fscrypt::WrappedKeyRecord> wrapped_keys;
  const fscrypt::ProtectorRecord* find(const fscrypt::ProtectorId& id) const;
  // The protectors that wrap `identifier`, in listing order.
  std::vector<const fscrypt::ProtectorRecord*> protecting(
      const fscrypt::KeyIdentifier& identifier) const;
  const fscrypt::WrappedKeyRecord* wrapped(const fscrypt::ProtectorId& protector,
                                           const fscrypt::KeyIdentifier& identifier) const;
};
Result<ProtectorListing> list_protectors(int fd, const std::string& where);
Status put_protector(int fd, const fscrypt::ProtectorRecord& record, const std::string& where);
Status put_wrapped_key(int fd, const fscrypt::WrappedKeyRecord& record, const std::string& where);
Status remove_protector(int fd, const fscrypt::ProtectorId& id, bool force,
                        const std::string& where);
Status remove_wrapped_key(int fd, const fscrypt::ProtectorId& protector,
                          const fscrypt::KeyIdentifier& identifier, bool force,
                          const std::string& where);

}  // namespace ecfs::cli
