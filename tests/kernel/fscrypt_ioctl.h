// The kernel's fscrypt user API, driven from the tests: add and remove master
// keys, set and get policies, read nonces (Documentation/filesystems/
// fscrypt.rst, "User API"). Policies travel as the bytes ecfs serializes, so
// the kernel also judges ecfs's policy layout (older <linux/fscrypt.h> lack
// the v2 `log2_data_unit_size` field anyway).
#pragma once

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/fscrypt.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::kernel_test {

// The error for a failed ioctl; call right after it, before errno changes.
inline std::unexpected<Error> ioctl_failure(const char* what) {
  const int error = errno;
  return fail(error, std::string(what) + " failed");
}

// struct fscrypt_add_key_arg followed by the raw key (raw_size set).
inline std::vector<uint8_t> add_key_buffer(ByteSpan raw_key) {
  std::vector<uint8_t> buffer(sizeof(fscrypt_add_key_arg), 0);
  buffer.insert(buffer.end(), raw_key.begin(), raw_key.end());
  reinterpret_cast<fscrypt_add_key_arg*>(buffer.data())->raw_size =
      static_cast<uint32_t>(raw_key.size());
  return buffer;
}

// FS_IOC_ADD_ENCRYPTION_KEY with an IDENTIFIER specifier (v2 policies): the
// kernel computes and returns the key identifier.
inline Result<std::array<uint8_t, 16>> add_key_v2(int fs_fd, ByteSpan raw_key) {
  if (raw_key.size() > FSCRYPT_MAX_KEY_SIZE) return fail(EINVAL, "key too long");
  std::vector<uint8_t> buffer = add_key_buffer(raw_key);
  auto* arg = reinterpret_cast<fscrypt_add_key_arg*>(buffer.data());
  arg->key_spec.type = FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER;
  int rc = ioctl(fs_fd, FS_IOC_ADD_ENCRYPTION_KEY, buffer.data());
  std::array<uint8_t, 16> identifier{};
  std::memcpy(identifier.data(), arg->key_spec.u.identifier, identifier.size());
  std::fill(buffer.begin(), buffer.end(), 0);
  if (rc != 0) return ioctl_failure("FS_IOC_ADD_ENCRYPTION_KEY (identifier)");
  return identifier;
}

// FS_IOC_ADD_ENCRYPTION_KEY with a DESCRIPTOR specifier (v1 policies; needs
// CAP_SYS_ADMIN). The descriptor is chosen by the caller, as with the legacy
// session keyring.
inline Status add_key_v1(int fs_fd, ByteSpan descriptor, ByteSpan raw_key) {
  if (raw_key.size() > FSCRYPT_MAX_KEY_SIZE || descriptor.size() != FSCRYPT_KEY_DESCRIPTOR_SIZE)
    return fail(EINVAL, "bad key or descriptor size");
  std::vector<uint8_t> buffer = add_key_buffer(raw_key);
  auto* arg = reinterpret_cast<fscrypt_add_key_arg*>(buffer.data());
  arg->key_spec.type = FSCRYPT_KEY_SPEC_TYPE_DESCRIPTOR;
  std::copy(descriptor.begin(), descriptor.end(), arg->key_spec.u.descriptor);
  int rc = ioctl(fs_fd, FS_IOC_ADD_ENCRYPTION_KEY, buffer.data());
  std::fill(buffer.begin(), buffer.end(), 0);
  if (rc != 0) return ioctl_failure("FS_IOC_ADD_ENCRYPTION_KEY (descriptor)");
  return ok();
}

// FS_IOC_REMOVE_ENCRYPTION_KEY; returns removal_status_flags
// (FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY, ..._OTHER_USERS).
inline Result<uint32_t> remove_key(int fs_fd, uint32_t spec_type, ByteSpan spec) {
  fscrypt_remove_key_arg arg{};
  arg.key_spec.type = spec_type;
  std::memcpy(arg.key_spec.u.identifier, spec.data(), spec.size());
  if (ioctl(fs_fd, FS_IOC_REMOVE_ENCRYPTION_KEY, &arg) != 0)
    return ioctl_failure("FS_IOC_REMOVE_ENCRYPTION_KEY");
  return arg.removal_status_flags;
}

// FS_IOC_GET_ENCRYPTION_KEY_STATUS; returns FSCRYPT_KEY_STATUS_*.
inline Result<uint32_t> key_status(int fs_fd, uint32_t spec_type, ByteSpan spec) {
  fscrypt_get_key_status_arg arg{};
  arg.key_spec.type = spec_type;
  std::memcpy(arg.key_spec.u.identifier, spec.data(), spec.size());
  if (ioctl(fs_fd, FS_IOC_GET_ENCRYPTION_KEY_STATUS, &arg) != 0)
    return ioctl_failure("FS_IOC_GET_ENCRYPTION_KEY_STATUS");
  return arg.status;
}

// FS_IOC_SET_ENCRYPTION_POLICY with a serialized v1 (12-byte) or v2
// (24-byte) policy; the kernel reads the version byte to know which.
inline Status set_policy(int dir_fd, ByteSpan policy) {
  Bytes copy(policy.begin(), policy.end());
  if (ioctl(dir_fd, FS_IOC_SET_ENCRYPTION_POLICY, copy.data()) != 0)
    return ioctl_failure("FS_IOC_SET_ENCRYPTION_POLICY");
  return ok();
}

// FS_IOC_GET_ENCRYPTION_POLICY_EX: the policy bytes as the kernel reports
// them (struct fscrypt_get_policy_ex_arg: u64 policy_size, then the policy).
inline Result<Bytes> get_policy(int fd) {
  uint8_t buffer[8 + 24] = {};
  uint64_t capacity = 24;
  std::memcpy(buffer, &capacity, sizeof capacity);
  if (ioctl(fd, FS_IOC_GET_ENCRYPTION_POLICY_EX, buffer) != 0)
    return ioctl_failure("FS_IOC_GET_ENCRYPTION_POLICY_EX");
  uint64_t size = 0;
  std::memcpy(&size, buffer, sizeof size);
  if (size > 24) return fail(EOVERFLOW, "policy larger than 24 bytes");
  return Bytes(buffer + 8, buffer + 8 + size);
}

// FS_IOC_GET_ENCRYPTION_NONCE (Linux 5.7+): the 16-byte nonce of the
// file's encryption context.
inline Result<std::array<uint8_t, 16>> get_nonce(int fd) {
  std::array<uint8_t, 16> nonce{};
  if (ioctl(fd, FS_IOC_GET_ENCRYPTION_NONCE, nonce.data()) != 0)
    return ioctl_failure("FS_IOC_GET_ENCRYPTION_NONCE");
  return nonce;
}

// One mapped range of a file (FIEMAP), in bytes.
struct MappedExtent {
  uint64_t logical = 0;
  uint64_t physical = 0;
  uint64_t length = 0;
  uint32_t flags = 0;
};

// FS_IOC_FIEMAP with FIEMAP_FLAG_SYNC, so delayed allocations are written
// and mapped first.
inline Result<std::vector<MappedExtent>> map_extents(int fd) {
  constexpr size_t kBatch = 64;
  std::vector<MappedExtent> extents;
  uint64_t start = 0;
  for (;;) {
    std::vector<uint8_t> buffer(sizeof(fiemap) + kBatch * sizeof(fiemap_extent));
    auto* map = reinterpret_cast<fiemap*>(buffer.data());
    map->fm_start = start;
    map->fm_length = FIEMAP_MAX_OFFSET - start;
    map->fm_flags = FIEMAP_FLAG_SYNC;
    map->fm_extent_count = kBatch;
    if (ioctl(fd, FS_IOC_FIEMAP, map) != 0) return ioctl_failure("FS_IOC_FIEMAP");
    if (map->fm_mapped_extents == 0) return extents;
    bool last = false;
    for (uint32_t i = 0; i < map->fm_mapped_extents; ++i) {
      const fiemap_extent& e = map->fm_extents[i];
      extents.push_back({e.fe_logical, e.fe_physical, e.fe_length, e.fe_flags});
      start = e.fe_logical + e.fe_length;
      last = last || (e.fe_flags & FIEMAP_EXTENT_LAST) != 0;
    }
    if (last) return extents;
  }
}

}  // namespace ecfs::kernel_test
