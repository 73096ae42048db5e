#include "fs/posix_acl.h"

#include <sys/stat.h>

#include <tuple>

namespace ecfs::fs {
namespace {

constexpr size_t kHeaderSize = 4;
constexpr size_t kEntrySize = 8;

AclEntry* find_tag(PosixAcl& acl, uint16_t tag) {
  for (AclEntry& entry : acl.entries) {
    if (entry.tag == tag) return &entry;
  }
  return nullptr;
}

}  // namespace

Result<PosixAcl> decode_posix_acl(ByteSpan xattr) {
  if (xattr.size() < kHeaderSize || (xattr.size() - kHeaderSize) % kEntrySize != 0) {
    return fail(EINVAL, "malformed POSIX ACL");
  }
  if (load_le32(xattr.data()) != kPosixAclXattrVersion) {
    return fail(EINVAL, "unsupported POSIX ACL version");
  }
  PosixAcl acl;
  int user_obj = 0, group_obj = 0, other = 0, mask = 0, named = 0;
  for (size_t pos = kHeaderSize; pos < xattr.size(); pos += kEntrySize) {
    const uint8_t* p = xattr.data() + pos;
    AclEntry entry{static_cast<uint16_t>(p[0] | (p[1] << 8)),
                   static_cast<uint16_t>(p[2] | (p[3] << 8)), load_le32(p + 4)};
    if (entry.perm & ~7u) return fail(EINVAL, "POSIX ACL entry with invalid permissions");
    switch (entry.tag) {
      case kAclUserObj:
        ++user_obj;
        break;
      case kAclGroupObj:
        ++group_obj;
        break;
      case kAclOther:
        ++other;
        break;
      case kAclMask:
        ++mask;
        break;
      case kAclUser:
      case kAclGroup:
        ++named;
        break;
      default:
        return fail(EINVAL, "POSIX ACL entry with an unknown tag");
    }
    if (entry.tag != kAclUser && entry.tag != kAclGroup) entry.id = UINT32_MAX;
    if (!acl.entries.empty()) {
      const AclEntry& prev = acl.entries.back();
      if (std::tie(prev.tag, prev.id) >= std::tie(entry.tag, entry.id)) {
        return fail(EINVAL, "POSIX ACL entries out of order or repeated");
      }
    }
    acl.entries.push_back(entry);
  }
  if (user_obj != 1 || group_obj != 1 || other != 1 || mask > 1 || (named > 0 && mask == 0)) {
    return fail(EINVAL, "POSIX ACL without exactly one owner, group and other entry");
  }
  return acl;
}

Bytes encode_posix_acl(const PosixAcl& acl) {
  Bytes out(kHeaderSize + kEntrySize * acl.entries.size(), 0);
  store_le32(out.data(), kPosixAclXattrVersion);
  uint8_t* p = out.data() + kHeaderSize;
  for (const AclEntry& entry : acl.entries) {
    p[0] = static_cast<uint8_t>(entry.tag);
    p[1] = static_cast<uint8_t>(entry.tag >> 8);
    p[2] = static_cast<uint8_t>(entry.perm);
    p[3] = static_cast<uint8_t>(entry.perm >> 8);
    store_le32(p + 4, entry.id);
    p += kEntrySize;
  }
  return out;
}

std::optional<uint32_t> acl_equivalent_mode(const PosixAcl& acl) {
  for (const AclEntry& entry : acl.entries) {
    if (entry.tag == kAclUser || entry.tag == kAclGroup || entry.tag == kAclMask) {
      return std::nullopt;
    }
  }
  return acl_mode_bits(acl);
}

uint32_t acl_mode_bits(const PosixAcl& acl) {
  uint32_t mode = 0;
  std::optional<uint16_t> group, mask;
  for (const AclEntry& entry : acl.entries) {
    if (entry.tag == kAclUserObj) mode |= uint32_t{entry.perm} << 6;
    if (entry.tag == kAclOther) mode |= entry.perm;
    if (entry.tag == kAclGroupObj) group = entry.perm;
    if (entry.tag == kAclMask) mask = entry.perm;
  }
  mode |= uint32_t{mask.value_or(group.value_or(0))} << 3;
  return mode;
}

uint32_t acl_apply_create_mode(PosixAcl& acl, uint32_t mode) {
  // Each class keeps only what both the ACL and the requested mode allow.
  AclEntry* group_class = find_tag(acl, kAclMask);
  if (group_class == nullptr) group_class = find_tag(acl, kAclGroupObj);
  for (AclEntry& entry : acl.entries) {
    if (entry.tag == kAclUserObj) {
      entry.perm &= (mode >> 6) & 7;
      mode &= (uint32_t{entry.perm} << 6) | ~uint32_t{S_IRWXU};
    } else if (entry.tag == kAclOther) {
      entry.perm &= mode & 7;
      mode &= entry.perm | ~uint32_t{S_IRWXO};
    }
  }
  if (group_class != nullptr) {
    group_class->perm &= (mode >> 3) & 7;
    mode &= (uint32_t{group_class->perm} << 3) | ~uint32_t{S_IRWXG};
  }
  return mode;
}

void acl_apply_chmod(PosixAcl& acl, uint32_t mode) {
  AclEntry* group_class = find_tag(acl, kAclMask);
  if (group_class == nullptr) group_class = find_tag(acl, kAclGroupObj);
  for (AclEntry& entry : acl.entries) {
    if (entry.tag == kAclUserObj) entry.perm = (mode >> 6) & 7;
    if (entry.tag == kAclOther) entry.perm = mode & 7;
  }
  if (group_class != nullptr) group_class->perm = (mode >> 3) & 7;
}

}  // namespace ecfs::fs
