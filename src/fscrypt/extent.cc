#include "fscrypt/extent.h"

#include <algorithm>
#include <cerrno>
#include <string>

#include "crypto/random.h"
#include "fscrypt/keysetup.h"

namespace ecfs::fscrypt {
namespace {

constexpr size_t kVersionOffset = 0;
constexpr size_t kModeOffset = 1;
constexpr size_t kIdentifierOffset = 2;
constexpr size_t kNonceOffset = kIdentifierOffset + kKeyIdentifierSize;
static_assert(kNonceOffset + kExtentNonceSize == kExtentContextSize);
static_assert(kExtentNonceSize == kNonceSize);

Status not_allowed(const std::string& reason) {
  return fail(EINVAL, "extent encryption is not allowed: " + reason);
}

}  // namespace

std::array<uint8_t, kExtentContextSize> serialize_extent_context(const ExtentContext& context) {
  std::array<uint8_t, kExtentContextSize> out{};
  out[kVersionOffset] = kExtentContextV1;
  out[kModeOffset] = context.contents_mode;
  std::copy(context.master_key_identifier.begin(), context.master_key_identifier.end(),
            out.begin() + kIdentifierOffset);
  std::copy(context.nonce.begin(), context.nonce.end(), out.begin() + kNonceOffset);
  return out;
}

Result<ExtentContext> parse_extent_context(ByteSpan bytes) {
  if (bytes.size() < kExtentContextSize) {
    return fail(EINVAL, "extent encryption context is " + std::to_string(bytes.size()) +
                            " bytes, fewer than 34");
  }
  if (bytes[kVersionOffset] != kExtentContextV1) {
    return fail(EINVAL, "unknown extent encryption context version " +
                            std::to_string(bytes[kVersionOffset]));
  }
  ExtentContext context;
  context.contents_mode = bytes[kModeOffset];
  std::copy_n(bytes.begin() + kIdentifierOffset, kKeyIdentifierSize,
              context.master_key_identifier.begin());
  std::copy_n(bytes.begin() + kNonceOffset, kExtentNonceSize, context.nonce.begin());
  return context;
}

Status check_extent_encryption_allowed(const Policy& inode_policy) {
  // Josef Bacik's RFC: "reflink is basically impossible for v1 with direct
  // key, and is problematic for the lblk related options". v1 has no key
  // identifier to put in the context; DIRECT_KEY and IV_INO_LBLK_* tie the
  // IV to the inode (its nonce or number), which a shared extent cannot.
  const auto* v2 = std::get_if<PolicyV2>(&inode_policy);
  if (v2 == nullptr) return not_allowed("it needs a v2 encryption policy");
  if (v2->flags & kPolicyFlagDirectKey) return not_allowed("the policy has DIRECT_KEY");
  if (v2->flags & kPolicyFlagIvInoLblk64) return not_allowed("the policy has IV_INO_LBLK_64");
  if (v2->flags & kPolicyFlagIvInoLblk32) return not_allowed("the policy has IV_INO_LBLK_32");
  return ok();
}

Result<ExtentContext> make_extent_context(const Policy& inode_policy, const Nonce& nonce) {
  ECFS_TRY(check_extent_encryption_allowed(inode_policy));
  const auto& v2 = std::get<PolicyV2>(inode_policy);
  return ExtentContext{v2.contents_mode, v2.master_key_identifier, nonce};
}

Result<ExtentContext> new_extent_context(const Policy& inode_policy) {
  Nonce nonce{};
  ECFS_TRY(crypto::random_bytes(nonce));
  return make_extent_context(inode_policy, nonce);
}

Result<ExtentContext> load_extent_context(ByteSpan bytes, const Policy& inode_policy) {
  auto context = parse_extent_context(bytes);
  if (!context) return context;
  ECFS_TRY(check_extent_encryption_allowed(inode_policy));
  // The series only accepts extents keyed exactly like their inode, so a
  // reflink needs identical policies (fscrypt-format.md §2.5). A future
  // re-keying may relax this (§4 open question 4).
  const auto& v2 = std::get<PolicyV2>(inode_policy);
  if (context->contents_mode != v2.contents_mode) {
    return fail(EINVAL, "extent encryption mode " + std::to_string(context->contents_mode) +
                            " differs from the inode's " + std::to_string(v2.contents_mode));
  }
  if (context->master_key_identifier != v2.master_key_identifier) {
    return fail(EINVAL, "extent master key identifier differs from the inode's");
  }
  return context;
}

Result<crypto::SecretBytes> derive_extent_key(const FscryptHkdf& hkdf, const ExtentContext& context,
                                              HkdfContext hkdf_context) {
  auto mode = mode_by_number(context.contents_mode);
  if (!mode) return std::unexpected(std::move(mode).error());
  return hkdf.derive(hkdf_context, context.nonce, (*mode)->key_size);
}

Result<ExtentKey> setup_extent_key(const MasterKeySecret& master_key, const ExtentContext& context,
                                   HkdfContext hkdf_context) {
  auto mode = mode_by_number(context.contents_mode);
  if (!mode) return std::unexpected(std::move(mode).error());
  ECFS_TRY(check_master_key_size(kPolicyV2, **mode, master_key.size()));
  auto raw_key = derive_extent_key(master_key.hkdf(), context, hkdf_context);
  if (!raw_key) return std::unexpected(std::move(raw_key).error());
  auto cipher = prepare_key(**mode, raw_key->span());
  if (!cipher) return std::unexpected(std::move(cipher).error());
  ExtentKey key;
  key.mode = *mode;
  key.raw_key = std::move(*raw_key);
  key.cipher = std::move(*cipher);
  return key;
}

Result<uint64_t> extent_data_unit_number(uint64_t offset_in_extent, unsigned log2_data_unit_size) {
  if (log2_data_unit_size >= 64) {
    return fail(EINVAL, "data unit size 2^" + std::to_string(log2_data_unit_size) + " is absurd");
  }
  const uint64_t unit_mask = (uint64_t{1} << log2_data_unit_size) - 1;
  if (offset_in_extent & unit_mask) {
    return fail(EINVAL, "extent offset " + std::to_string(offset_in_extent) +
                            " is not a multiple of the data unit size");
  }
  return offset_in_extent >> log2_data_unit_size;
}

}  // namespace ecfs::fscrypt
