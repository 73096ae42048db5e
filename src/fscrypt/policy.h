// Encryption policies and contexts (fs/crypto/policy.c, fscrypt_private.h):
// their exact byte layouts, and the kernel's rules for which policies a
// filesystem supports. A policy is what a user sets on a directory; a context
// is what each encrypted inode stores: its policy plus a random nonce.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <variant>

#include "base/bytes.h"
#include "base/error.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/mode.h"

namespace ecfs::fscrypt {

// Version bytes (include/uapi/linux/fscrypt.h, fscrypt_private.h). The first
// byte of every policy and context on disk and in the ioctl ABI; readers
// dispatch on it, so they can never change. Note the v1 quirk: a v1 policy
// says 0 but a v1 context says 1.
inline constexpr uint8_t kPolicyV1 = 0;   // FSCRYPT_POLICY_V1
inline constexpr uint8_t kPolicyV2 = 2;   // FSCRYPT_POLICY_V2
inline constexpr uint8_t kContextV1 = 1;  // FSCRYPT_CONTEXT_V1
inline constexpr uint8_t kContextV2 = 2;  // FSCRYPT_CONTEXT_V2

// Policy flags (FSCRYPT_POLICY_FLAG_*). Stored in every policy and context
// and they select the key derivation and IV rules, so they can never change.
inline constexpr uint8_t kPolicyFlagsPad4 = 0x00;
inline constexpr uint8_t kPolicyFlagsPad8 = 0x01;
inline constexpr uint8_t kPolicyFlagsPad16 = 0x02;
inline constexpr uint8_t kPolicyFlagsPad32 = 0x03;
inline constexpr uint8_t kPolicyFlagsPadMask = 0x03;
inline constexpr uint8_t kPolicyFlagDirectKey = 0x04;
inline constexpr uint8_t kPolicyFlagIvInoLblk64 = 0x08;
inline constexpr uint8_t kPolicyFlagIvInoLblk32 = 0x10;

// Filename padding in bytes for `flags`: 4 << (flags & 3) (fscrypt.rst).
inline constexpr size_t filename_padding(uint8_t flags) {
  return size_t{4} << (flags & kPolicyFlagsPadMask);
}

// FSCRYPT_FILE_NONCE_SIZE: the per-inode (and per-extent) random nonce.
inline constexpr size_t kNonceSize = 16;
using Nonce = std::array<uint8_t, kNonceSize>;

// Serialized sizes (fscrypt_private.h BUILD_BUG_ONs; no padding anywhere).
inline constexpr size_t kPolicyV1Size = 12;
inline constexpr size_t kPolicyV2Size = 24;
inline constexpr size_t kContextV1Size = 28;
inline constexpr size_t kContextV2Size = 40;
inline constexpr size_t kMaxContextSize = 40;  // FSCRYPT_SET_CONTEXT_MAX_SIZE

// struct fscrypt_policy_v1 minus its version byte:
// version(0) | contents_mode | filenames_mode | flags | master_key_descriptor[8]
struct PolicyV1 {
  uint8_t contents_mode = kModeAes256Xts;
  uint8_t filenames_mode = kModeAes256Cts;
  uint8_t flags = 0;
  KeyDescriptor master_key_descriptor{};
  friend bool operator==(const PolicyV1&, const PolicyV1&) = default;
};

// struct fscrypt_policy_v2 minus its version byte:
// version(2) | contents_mode | filenames_mode | flags | log2_data_unit_size |
// reserved[3] | master_key_identifier[16]
struct PolicyV2 {
  uint8_t contents_mode = kModeAes256Xts;
  uint8_t filenames_mode = kModeAes256Cts;
  uint8_t flags = 0;
  // 0 means "the filesystem block size"; else 9..log2(block size).
  uint8_t log2_data_unit_size = 0;
  std::array<uint8_t, 3> reserved{};  // must be zero to be supported
  KeyIdentifier master_key_identifier{};
  friend bool operator==(const PolicyV2&, const PolicyV2&) = default;
};

// A policy of either version. Equality (==, policies_equal) compares version
// and every byte, as the kernel's memcmp does.
using Policy = std::variant<PolicyV1, PolicyV2>;

// The policy version byte: kPolicyV1 (0) or kPolicyV2 (2).
uint8_t policy_version(const Policy& policy);
uint8_t policy_contents_mode(const Policy& policy);
uint8_t policy_filenames_mode(const Policy& policy);
uint8_t policy_flags(const Policy& policy);
// log2_data_unit_size (0 for v1, which always uses the block size).
uint8_t policy_log2_data_unit_size(const Policy& policy);
// The master key the policy names (descriptor for v1, identifier for v2).
KeySpecifier policy_key_specifier(const Policy& policy);

// fscrypt_policies_equal: same version and byte-identical.
bool policies_equal(const Policy& a, const Policy& b);

// 12 or 24 bytes.
Bytes serialize_policy(const Policy& policy);
// Parses a policy as FS_IOC_SET_ENCRYPTION_POLICY does: the version byte
// selects the size, which must match `bytes.size()` exactly. EINVAL for an
// unknown version or a wrong size. Does not check support (see
// check_policy_supported).
Result<Policy> parse_policy(ByteSpan bytes);

// An inode's context: its policy plus its nonce.
struct Context {
  Policy policy;
  Nonce nonce{};
  // kContextV1 (1) or kContextV2 (2).
  uint8_t version() const;
  friend bool operator==(const Context&, const Context&) = default;
};

// 28 or 40 bytes.
Bytes serialize_context(const Context& context);
// Parses a stored context. The size must match the version byte exactly
// (fscrypt_policy_from_context / fscrypt_context_size): EINVAL otherwise,
// and for an unknown version.
Result<Context> parse_context(ByteSpan bytes);

// fscrypt_policy_from_context.
inline const Policy& policy_from_context(const Context& context) { return context.policy; }
// Same from stored bytes: parse_context, then the policy. EINVAL as parse_context.
Result<Policy> policy_from_context_bytes(ByteSpan bytes);

// A new context for `policy` with `nonce` (fscrypt_new_context).
Context make_context(const Policy& policy, const Nonce& nonce);
// A new context for `policy` with a fresh random nonce. EIO if the CSPRNG fails.
Result<Context> new_context(const Policy& policy);

// What the policy rules need to know about the filesystem and the inode (the
// kernel reads these from the super_block, its s_cop and the inode).
struct FsTraits {
  // The filesystem block size (bytes, a power of two >= 512).
  uint32_t block_size = 4096;
  // s_cop->has_stable_inodes: inode numbers never change (no shrinking or
  // renumbering), a precondition for IV_INO_LBLK_*.
  bool has_stable_inodes = false;
  // s_cop->has_32bit_inodes: inode numbers fit in 32 bits.
  bool has_32bit_inodes = false;
  // sb->s_maxbytes: the largest file size. IV_INO_LBLK_* need every data
  // unit index of a file to fit in 32 bits (fscrypt_max_file_dun_bits =
  // fls64(s_maxbytes - 1) - log2(data unit size)). Default MAX_LFS_FILESIZE.
  uint64_t max_file_size = uint64_t{INT64_MAX};
  // s_cop->supports_subblock_data_units (ext4 and f2fs since 6.7).
  bool supports_subblock_data_units = true;
  // The inode the policy is for is a casefolded directory.
  bool is_casefolded = false;

  // ext4 with `-O encrypt,stable_inodes` and extents: stable 32-bit inode
  // numbers, s_maxbytes = (2^32 - 1) blocks.
  static FsTraits ext4(uint32_t block_size = 4096);
};

// fscrypt_supported_policy: can this filesystem use `policy` on this inode?
// OK, or EINVAL with the kernel's reason (policy.c; the set-policy ioctl and
// the context loader both turn "unsupported" into EINVAL):
//  * unknown version;
//  * (contents, filenames) not a valid pair for the version
//    (v1: (1,4) (5,6) (9,9); v2 adds (1,10) and (7,8));
//  * flags outside PAD_* | DIRECT_KEY (v1) or PAD_* | DIRECT_KEY |
//    IV_INO_LBLK_64 | IV_INO_LBLK_32 (v2); more than one of the latter three;
//  * DIRECT_KEY with contents != filenames or an IV shorter than 24 bytes;
//  * IV_INO_LBLK_* with contents other than AES-256-XTS, without stable inode
//    numbers, without 32-bit inode numbers, or with data unit indexes that
//    may exceed 32 bits;
//  * log2_data_unit_size not 0 and not 9..log2(block size), or nonzero on a
//    filesystem without sub-block data units, or a sub-block size with
//    IV_INO_LBLK_32;
//  * nonzero reserved bytes (v2);
//  * a v1 policy on a casefolded directory (no dirhash key in v1).
Status check_policy_supported(const Policy& policy, const FsTraits& traits);

// The data unit size a policy gives on a filesystem: log2_data_unit_size, or
// the block size's log2 when that is 0 (or for v1).
unsigned effective_log2_data_unit_size(const Policy& policy, uint32_t block_size);

}  // namespace ecfs::fscrypt
