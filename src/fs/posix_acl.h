// POSIX access control lists in the form Linux passes them through the
// system.posix_acl_access / system.posix_acl_default xattrs
// (include/uapi/linux/posix_acl_xattr.h): a little-endian u32 version (2),
// then 8-byte entries {u16 tag, u16 perm, u32 id}. With FUSE's POSIX ACL
// support the kernel enforces the ACLs; the filesystem stores them, keeps the
// mode and the access ACL in step, and makes a new inode inherit its
// directory's default ACL (POSIX.1e draft 17, as the kernel's fs/posix_acl.c).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::fs {

inline constexpr uint32_t kPosixAclXattrVersion = 2;

enum AclTag : uint16_t {
  kAclUserObj = 0x01,
  kAclUser = 0x02,
  kAclGroupObj = 0x04,
  kAclGroup = 0x08,
  kAclMask = 0x10,
  kAclOther = 0x20,
};

struct AclEntry {
  uint16_t tag = 0;
  uint16_t perm = 0;  // rwx bits (4, 2, 1)
  uint32_t id = 0;    // uid / gid for kAclUser / kAclGroup
  friend bool operator==(const AclEntry&, const AclEntry&) = default;
};

struct PosixAcl {
  std::vector<AclEntry> entries;
};

// EINVAL for a wrong version, size, tag or permission, or an ACL that
// breaks the rules (one USER_OBJ, GROUP_OBJ and OTHER; a MASK whenever
// named entries exist; entries sorted by tag, then id, without duplicates).
Result<PosixAcl> decode_posix_acl(ByteSpan xattr);
Bytes encode_posix_acl(const PosixAcl& acl);

// The permission bits an ACL is equivalent to, or nullopt when it says more
// than the mode can (named entries or a mask): posix_acl_equiv_mode.
std::optional<uint32_t> acl_equivalent_mode(const PosixAcl& acl);

// The mode bits (rwx of owner, group class, other) an access ACL implies;
// the group class is the mask when there is one (posix_acl_update_mode).
uint32_t acl_mode_bits(const PosixAcl& acl);

// A new inode's access ACL from its directory's default ACL: each class is
// limited by the requested `mode`, and the returned mode is limited by the
// ACL (posix_acl_create_masq). `acl` is changed in place.
uint32_t acl_apply_create_mode(PosixAcl& acl, uint32_t mode);

// chmod: the owner, group-class and other entries take the new mode's bits
// (posix_acl_chmod_masq).
void acl_apply_chmod(PosixAcl& acl, uint32_t mode);

}  // namespace ecfs::fs
