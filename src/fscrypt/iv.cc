#include "fscrypt/iv.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace ecfs::fscrypt {
namespace {

// FSCRYPT_POLICY_FLAG_* (include/uapi/linux/fscrypt.h); stored in every
// encryption context, so their values can never change.
constexpr uint8_t kFlagDirectKey = 0x04;
constexpr uint8_t kFlagIvInoLblk64 = 0x08;
constexpr uint8_t kFlagIvInoLblk32 = 0x10;

constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();

}  // namespace

IvScheme iv_scheme_from_policy_flags(uint8_t flags) {
  // Same order of tests as fscrypt_generate_iv().
  if (flags & kFlagIvInoLblk64) return IvScheme::kInoLblk64;
  if (flags & kFlagIvInoLblk32) return IvScheme::kInoLblk32;
  if (flags & kFlagDirectKey) return IvScheme::kDirectKey;
  return IvScheme::kDefault;
}

IvParams IvParams::direct_key(const std::array<uint8_t, kNonceSize>& nonce) {
  IvParams params;
  params.scheme = IvScheme::kDirectKey;
  params.nonce = nonce;
  return params;
}

IvParams IvParams::ino_lblk_64(uint64_t inode_number) {
  IvParams params;
  params.scheme = IvScheme::kInoLblk64;
  params.inode_number = inode_number;
  return params;
}

IvParams IvParams::ino_lblk_32(uint32_t hashed_inode_number) {
  IvParams params;
  params.scheme = IvScheme::kInoLblk32;
  params.hashed_inode_number = hashed_inode_number;
  return params;
}

Status check_iv_params(const IvParams& params, size_t iv_size, uint64_t first_index,
                       uint64_t count) {
  if (iv_size != 16 && iv_size != IvParams::kMaxIvSize) {
    return fail(EINVAL, "IV size must be 16 or 32 bytes");
  }
  if (count == 0) count = 1;
  if (first_index > std::numeric_limits<uint64_t>::max() - (count - 1)) {
    return fail(EINVAL, "data unit index range wraps around 2^64");
  }
  const uint64_t last_index = first_index + (count - 1);
  switch (params.scheme) {
    case IvScheme::kDefault:
      return ok();
    case IvScheme::kDirectKey:
      if (iv_size < IvParams::kMinDirectKeyIvSize) {
        return fail(EINVAL, "DIRECT_KEY needs a mode with an IV of at least 24 bytes");
      }
      return ok();
    case IvScheme::kInoLblk64:
      if (params.inode_number > kMaxU32) {
        return fail(EINVAL, "IV_INO_LBLK_64 needs an inode number below 2^32");
      }
      [[fallthrough]];
    case IvScheme::kInoLblk32:
      if (last_index > kMaxU32) {
        return fail(EINVAL, "IV_INO_LBLK_* needs data unit indices below 2^32");
      }
      return ok();
  }
  return fail(EINVAL, "unknown IV scheme");
}

void write_iv(const IvParams& params, uint64_t index, MutableByteSpan iv) {
  std::fill(iv.begin(), iv.end(), uint8_t{0});
  uint64_t word = index;
  switch (params.scheme) {
    case IvScheme::kDefault:
      break;
    case IvScheme::kDirectKey:
      std::memcpy(iv.data() + 8, params.nonce.data(), IvParams::kNonceSize);
      break;
    case IvScheme::kInoLblk64:
      word = (params.inode_number << 32) | index;
      break;
    case IvScheme::kInoLblk32:
      // Truncation to u32 is the rule: the sum wraps mod 2^32.
      word = static_cast<uint32_t>(params.hashed_inode_number + static_cast<uint32_t>(index));
      break;
  }
  store_le64(iv.data(), word);
}

Result<Iv> generate_iv(const IvParams& params, uint64_t index, size_t iv_size) {
  ECFS_TRY(check_iv_params(params, iv_size, index));
  Iv iv;
  iv.size = iv_size;
  write_iv(params, index, {iv.bytes.data(), iv_size});
  return iv;
}

}  // namespace ecfs::fscrypt
