#include "fscrypt/policy.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <string>

#include "crypto/random.h"

namespace ecfs::fscrypt {
namespace {

// Byte offsets shared by both versions' policies and contexts.
constexpr size_t kVersionOffset = 0;
constexpr size_t kContentsModeOffset = 1;
constexpr size_t kFilenamesModeOffset = 2;
constexpr size_t kFlagsOffset = 3;
// v1: descriptor at 4..11, context nonce at 12..27.
constexpr size_t kV1DescriptorOffset = 4;
// v2: log2_data_unit_size at 4, reserved 5..7, identifier 8..23, context
// nonce 24..39.
constexpr size_t kV2Log2DataUnitSizeOffset = 4;
constexpr size_t kV2ReservedOffset = 5;
constexpr size_t kV2IdentifierOffset = 8;

static_assert(kV1DescriptorOffset + kKeyDescriptorSize == kPolicyV1Size);
static_assert(kV2IdentifierOffset + kKeyIdentifierSize == kPolicyV2Size);
static_assert(kPolicyV1Size + kNonceSize == kContextV1Size);
static_assert(kPolicyV2Size + kNonceSize == kContextV2Size);
static_assert(kContextV2Size == kMaxContextSize);

std::string hex_byte(uint8_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return std::string("0x") + kDigits[value >> 4] + kDigits[value & 15];
}

// Writes the policy's bytes after the version byte into out[1..].
void write_policy_body(const Policy& policy, uint8_t* out) {
  if (const auto* v1 = std::get_if<PolicyV1>(&policy)) {
    out[kContentsModeOffset] = v1->contents_mode;
    out[kFilenamesModeOffset] = v1->filenames_mode;
    out[kFlagsOffset] = v1->flags;
    std::copy(v1->master_key_descriptor.begin(), v1->master_key_descriptor.end(),
              out + kV1DescriptorOffset);
    return;
  }
  const auto& v2 = std::get<PolicyV2>(policy);
  out[kContentsModeOffset] = v2.contents_mode;
  out[kFilenamesModeOffset] = v2.filenames_mode;
  out[kFlagsOffset] = v2.flags;
  out[kV2Log2DataUnitSizeOffset] = v2.log2_data_unit_size;
  std::copy(v2.reserved.begin(), v2.reserved.end(), out + kV2ReservedOffset);
  std::copy(v2.master_key_identifier.begin(), v2.master_key_identifier.end(),
            out + kV2IdentifierOffset);
}

PolicyV1 read_policy_v1(const uint8_t* in) {
  PolicyV1 policy;
  policy.contents_mode = in[kContentsModeOffset];
  policy.filenames_mode = in[kFilenamesModeOffset];
  policy.flags = in[kFlagsOffset];
  std::copy_n(in + kV1DescriptorOffset, kKeyDescriptorSize, policy.master_key_descriptor.begin());
  return policy;
}

PolicyV2 read_policy_v2(const uint8_t* in) {
  PolicyV2 policy;
  policy.contents_mode = in[kContentsModeOffset];
  policy.filenames_mode = in[kFilenamesModeOffset];
  policy.flags = in[kFlagsOffset];
  policy.log2_data_unit_size = in[kV2Log2DataUnitSizeOffset];
  std::copy_n(in + kV2ReservedOffset, policy.reserved.size(), policy.reserved.begin());
  std::copy_n(in + kV2IdentifierOffset, kKeyIdentifierSize, policy.master_key_identifier.begin());
  return policy;
}

// policy.c `fscrypt_valid_enc_modes_v1`. Deprecated: never add pairs here.
bool valid_modes_v1(uint8_t contents, uint8_t filenames) {
  return (contents == kModeAes256Xts && filenames == kModeAes256Cts) ||
         (contents == kModeAes128Cbc && filenames == kModeAes128Cts) ||
         (contents == kModeAdiantum && filenames == kModeAdiantum);
}

// policy.c `fscrypt_valid_enc_modes_v2`.
bool valid_modes_v2(uint8_t contents, uint8_t filenames) {
  return (contents == kModeAes256Xts && filenames == kModeAes256Hctr2) ||
         (contents == kModeSm4Xts && filenames == kModeSm4Cts) ||
         valid_modes_v1(contents, filenames);
}

Status unsupported(std::string reason) {
  return fail(EINVAL, "unsupported encryption policy: " + reason);
}

Status check_valid_modes(bool valid, uint8_t contents, uint8_t filenames) {
  if (valid) return ok();
  return unsupported("encryption modes (contents " + std::to_string(contents) + ", filenames " +
                     std::to_string(filenames) + ") are not a valid pair");
}

// policy.c `supported_direct_key_modes`: DIRECT_KEY puts the file nonce in
// the IV (bytes 8..23), so one key serves every file; that needs the same
// mode for both and an IV of at least 24 bytes (only Adiantum in practice).
Status check_direct_key_modes(uint8_t contents, uint8_t filenames) {
  if (contents != filenames) {
    return unsupported("DIRECT_KEY needs the same contents and filenames modes");
  }
  constexpr size_t kIvBytesThroughNonce = 8 + kNonceSize;
  const ModeInfo* mode = find_mode(contents);
  if (mode == nullptr || mode->iv_size < kIvBytesThroughNonce) {
    return unsupported("DIRECT_KEY is not allowed with " +
                       std::string(mode ? mode->name : "this mode"));
  }
  return ok();
}

// The highest bit set, as the kernel's fls64 (1-based; 0 for 0).
unsigned fls64(uint64_t value) { return 64 - static_cast<unsigned>(std::countl_zero(value)); }

// policy.c `supported_iv_ino_lblk_policy`: these flags put the inode number
// and a 32-bit block index into the IV, for inline-encryption hardware
// limited to 64-bit (or 32-bit) IVs.
Status check_iv_ino_lblk(const PolicyV2& policy, const FsTraits& traits) {
  const std::string type =
      (policy.flags & kPolicyFlagIvInoLblk64) ? "IV_INO_LBLK_64" : "IV_INO_LBLK_32";
  if (policy.contents_mode != kModeAes256Xts) {
    return unsupported(type + " needs AES-256-XTS contents encryption");
  }
  // An inode number in the IV is only safe if it never changes.
  if (!traits.has_stable_inodes) {
    return unsupported(type + " needs a filesystem with stable inode numbers");
  }
  // Both put (or hash) i_ino as a 32-bit value.
  if (!traits.has_32bit_inodes) {
    return unsupported(type + " needs 32-bit inode numbers");
  }
  // fscrypt_max_file_dun_bits: every data unit index must fit in 32 bits.
  const unsigned du_bits = effective_log2_data_unit_size(Policy(policy), traits.block_size);
  const unsigned size_bits = traits.max_file_size > 1 ? fls64(traits.max_file_size - 1) : 0;
  if (size_bits > du_bits && size_bits - du_bits > 32) {
    return unsupported(type + " needs data unit indexes that fit in 32 bits");
  }
  return ok();
}

// policy.c `fscrypt_supported_v1_policy`.
Status check_v1(const PolicyV1& policy, const FsTraits& traits) {
  ECFS_TRY(check_valid_modes(valid_modes_v1(policy.contents_mode, policy.filenames_mode),
                             policy.contents_mode, policy.filenames_mode));
  if (policy.flags & ~(kPolicyFlagsPadMask | kPolicyFlagDirectKey)) {
    return unsupported("flags " + hex_byte(policy.flags) + " are not valid for v1");
  }
  if (policy.flags & kPolicyFlagDirectKey) {
    ECFS_TRY(check_direct_key_modes(policy.contents_mode, policy.filenames_mode));
  }
  // v1 has no HKDF, hence no way to derive the dirhash key casefolding needs.
  if (traits.is_casefolded) return unsupported("v1 policies can't be used on casefolded dirs");
  return ok();
}

// policy.c `fscrypt_supported_v2_policy`.
Status check_v2(const PolicyV2& policy, const FsTraits& traits) {
  ECFS_TRY(check_valid_modes(valid_modes_v2(policy.contents_mode, policy.filenames_mode),
                             policy.contents_mode, policy.filenames_mode));
  constexpr uint8_t kExclusiveFlags =
      kPolicyFlagDirectKey | kPolicyFlagIvInoLblk64 | kPolicyFlagIvInoLblk32;
  if (policy.flags & ~(kPolicyFlagsPadMask | kExclusiveFlags)) {
    return unsupported("flags " + hex_byte(policy.flags) + " are not valid for v2");
  }
  if (std::popcount(static_cast<unsigned>(policy.flags & kExclusiveFlags)) > 1) {
    return unsupported("flags " + hex_byte(policy.flags) + " are mutually exclusive");
  }
  if (policy.log2_data_unit_size != 0) {
    const unsigned block_bits = static_cast<unsigned>(std::countr_zero(traits.block_size));
    if (!traits.supports_subblock_data_units) {
      return unsupported("the filesystem does not support configuring the data unit size");
    }
    // SECTOR_SHIFT (9) is the smallest unit block-layer crypto handles.
    if (policy.log2_data_unit_size > block_bits || policy.log2_data_unit_size < 9) {
      return unsupported("log2_data_unit_size " + std::to_string(policy.log2_data_unit_size) +
                         " is not in 9.." + std::to_string(block_bits));
    }
    // The hashed-inode IV could wrap in the middle of a block.
    if (policy.log2_data_unit_size != block_bits && (policy.flags & kPolicyFlagIvInoLblk32)) {
      return unsupported("sub-block data units are not supported with IV_INO_LBLK_32");
    }
  }
  if (policy.flags & kPolicyFlagDirectKey) {
    ECFS_TRY(check_direct_key_modes(policy.contents_mode, policy.filenames_mode));
  }
  if (policy.flags & (kPolicyFlagIvInoLblk64 | kPolicyFlagIvInoLblk32)) {
    ECFS_TRY(check_iv_ino_lblk(policy, traits));
  }
  if (std::any_of(policy.reserved.begin(), policy.reserved.end(), [](uint8_t b) { return b; })) {
    return unsupported("reserved bytes are set");
  }
  return ok();
}

}  // namespace

FsTraits FsTraits::ext4(uint32_t block_size) {
  FsTraits traits;
  traits.block_size = block_size;
  traits.has_stable_inodes = true;
  traits.has_32bit_inodes = true;
  traits.max_file_size = ((uint64_t{1} << 32) - 1) * block_size;  // ext4_max_size, extents
  traits.supports_subblock_data_units = true;
  return traits;
}

uint8_t policy_version(const Policy& policy) {
  return std::holds_alternative<PolicyV1>(policy) ? kPolicyV1 : kPolicyV2;
}

uint8_t policy_contents_mode(const Policy& policy) {
  return std::visit([](const auto& p) { return p.contents_mode; }, policy);
}

uint8_t policy_filenames_mode(const Policy& policy) {
  return std::visit([](const auto& p) { return p.filenames_mode; }, policy);
}

uint8_t policy_flags(const Policy& policy) {
  return std::visit([](const auto& p) { return p.flags; }, policy);
}

uint8_t policy_log2_data_unit_size(const Policy& policy) {
  const auto* v2 = std::get_if<PolicyV2>(&policy);
  return v2 ? v2->log2_data_unit_size : 0;
}

KeySpecifier policy_key_specifier(const Policy& policy) {
  if (const auto* v1 = std::get_if<PolicyV1>(&policy)) {
    return KeySpecifier::from_descriptor(v1->master_key_descriptor);
  }
  return KeySpecifier::from_identifier(std::get<PolicyV2>(policy).master_key_identifier);
}

bool policies_equal(const Policy& a, const Policy& b) { return a == b; }

Bytes serialize_policy(const Policy& policy) {
  const bool v1 = std::holds_alternative<PolicyV1>(policy);
  Bytes out(v1 ? kPolicyV1Size : kPolicyV2Size, 0);
  out[kVersionOffset] = v1 ? kPolicyV1 : kPolicyV2;
  write_policy_body(policy, out.data());
  return out;
}

Result<Policy> parse_policy(ByteSpan bytes) {
  if (bytes.empty()) return fail(EINVAL, "empty encryption policy");
  // fscrypt_policy_size: the version byte decides the size.
  switch (bytes[kVersionOffset]) {
    case kPolicyV1:
      if (bytes.size() != kPolicyV1Size) break;
      return Policy(read_policy_v1(bytes.data()));
    case kPolicyV2:
      if (bytes.size() != kPolicyV2Size) break;
      return Policy(read_policy_v2(bytes.data()));
    default:
      return fail(EINVAL,
                  "unknown encryption policy version " + std::to_string(bytes[kVersionOffset]));
  }
  return fail(EINVAL, "encryption policy of version " + std::to_string(bytes[kVersionOffset]) +
                          " has the wrong size " + std::to_string(bytes.size()));
}

uint8_t Context::version() const {
  return std::holds_alternative<PolicyV1>(policy) ? kContextV1 : kContextV2;
}

Bytes serialize_context(const Context& context) {
  const bool v1 = std::holds_alternative<PolicyV1>(context.policy);
  const size_t policy_size = v1 ? kPolicyV1Size : kPolicyV2Size;
  Bytes out(policy_size + kNonceSize, 0);
  out[kVersionOffset] = context.version();
  write_policy_body(context.policy, out.data());
  std::copy(context.nonce.begin(), context.nonce.end(), out.begin() + policy_size);
  return out;
}

Result<Context> parse_context(ByteSpan bytes) {
  if (bytes.empty()) return fail(EINVAL, "empty encryption context");
  // fscrypt_context_is_valid: the size must match the version exactly.
  Context context;
  size_t policy_size = 0;
  switch (bytes[kVersionOffset]) {
    case kContextV1:
      if (bytes.size() != kContextV1Size) break;
      context.policy = read_policy_v1(bytes.data());
      policy_size = kPolicyV1Size;
      break;
    case kContextV2:
      if (bytes.size() != kContextV2Size) break;
      context.policy = read_policy_v2(bytes.data());
      policy_size = kPolicyV2Size;
      break;
    default:
      return fail(EINVAL,
                  "unknown encryption context version " + std::to_string(bytes[kVersionOffset]));
  }
  if (policy_size == 0) {
    return fail(EINVAL, "encryption context of version " + std::to_string(bytes[kVersionOffset]) +
                            " has the wrong size " + std::to_string(bytes.size()));
  }
  std::copy_n(bytes.begin() + policy_size, kNonceSize, context.nonce.begin());
  return context;
}

Result<Policy> policy_from_context_bytes(ByteSpan bytes) {
  auto context = parse_context(bytes);
  if (!context) return std::unexpected(std::move(context).error());
  return std::move(context->policy);
}

Context make_context(const Policy& policy, const Nonce& nonce) { return Context{policy, nonce}; }

Result<Context> new_context(const Policy& policy) {
  Context context{policy, {}};
  ECFS_TRY(crypto::random_bytes(context.nonce));
  return context;
}

Status check_policy_supported(const Policy& policy, const FsTraits& traits) {
  if (const auto* v1 = std::get_if<PolicyV1>(&policy)) return check_v1(*v1, traits);
  return check_v2(std::get<PolicyV2>(policy), traits);
}

unsigned effective_log2_data_unit_size(const Policy& policy, uint32_t block_size) {
  const uint8_t log2 = policy_log2_data_unit_size(policy);
  if (log2 != 0) return log2;
  return static_cast<unsigned>(std::countr_zero(block_size));
}

}  // namespace ecfs::fscrypt
