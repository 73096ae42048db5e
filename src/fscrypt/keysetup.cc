#include "fscrypt/keysetup.h"

#include <array>
#include <cerrno>
#include <string>

namespace ecfs::fscrypt {
namespace {

Result<crypto::SecretBytes> derive_mode_key(const FscryptHkdf& hkdf, HkdfContext context,
                                            const ModeInfo& mode, const FsUuid* uuid) {
  // keysetup.c `setup_per_mode_enc_key`: info = mode_num [|| s_uuid].
  std::array<uint8_t, 1 + sizeof(FsUuid)> info{};
  size_t info_size = 0;
  info[info_size++] = mode.number;
  if (uuid != nullptr) {
    std::copy(uuid->begin(), uuid->end(), info.begin() + info_size);
    info_size += uuid->size();
  }
  return hkdf.derive(context, ByteSpan(info).first(info_size), mode.key_size);
}

Result<crypto::SipHashKey> derive_siphash_key(const FscryptHkdf& hkdf, HkdfContext context,
                                              ByteSpan info) {
  // keysetup.c `fscrypt_derive_siphash_key`: 16 bytes read as two LE u64s.
  std::array<uint8_t, 16> bytes{};
  const Status status = hkdf.expand(context, info, bytes);
  const crypto::SipHashKey key = crypto::SipHashKey::from_bytes(bytes);
  crypto::secure_zero(bytes);
  ECFS_TRY(status);
  return key;
}

Result<crypto::SecretBytes> derive_v2_key(const MasterKeySecret& master_key, const PolicyV2& policy,
                                          const Nonce& nonce, const ModeInfo& mode,
                                          const FileKeyParams& params) {
  const FscryptHkdf& hkdf = master_key.hkdf();
  // keysetup.c `fscrypt_setup_v2_file_key`. The flags are mutually exclusive
  // (check_policy_supported); the order here is the kernel's.
  if (policy.flags & kPolicyFlagDirectKey) return derive_direct_key(hkdf, mode);
  if (policy.flags & kPolicyFlagIvInoLblk64) {
    return derive_iv_ino_lblk_64_key(hkdf, mode, params.fs_uuid);
  }
  if (policy.flags & kPolicyFlagIvInoLblk32) {
    return derive_iv_ino_lblk_32_key(hkdf, mode, params.fs_uuid);
  }
  return derive_per_file_key(hkdf, nonce, mode);
}

}  // namespace

Result<const ModeInfo*> select_encryption_mode(const Policy& policy, FileKind kind) {
  const uint8_t number =
      kind == FileKind::kRegular ? policy_contents_mode(policy) : policy_filenames_mode(policy);
  return mode_by_number(number);
}

Status check_master_key_size(uint8_t policy_version, const ModeInfo& mode, size_t master_key_size) {
  // v1's KDF consumes key_size bytes of the master key; HKDF takes any size,
  // so v2 asks only for the mode's security strength (a 32-byte key is
  // enough for AES-256-XTS's 64-byte key).
  const size_t min_size = policy_version == kPolicyV1 ? mode.key_size : mode.security_strength;
  if (master_key_size < min_size) {
    return fail(ENOKEY, "master key is too short for " + std::string(mode.name) + " (got " +
                            std::to_string(master_key_size) + " bytes, need " +
                            std::to_string(min_size) + "+)");
  }
  return ok();
}

Result<crypto::SecretBytes> derive_file_key(const MasterKeySecret& master_key,
                                            const Context& context, const FileKeyParams& params) {
  auto mode = select_encryption_mode(context.policy, params.kind);
  if (!mode) return std::unexpected(std::move(mode).error());
  ECFS_TRY(check_master_key_size(policy_version(context.policy), **mode, master_key.size()));

  if (const auto* v1 = std::get_if<PolicyV1>(&context.policy)) {
    // keysetup_v1.c `fscrypt_setup_v1_file_key`.
    if (v1->flags & kPolicyFlagDirectKey) return derive_v1_direct_key(master_key.raw(), **mode);
    return derive_v1_file_key(master_key.raw(), context.nonce, **mode);
  }
  return derive_v2_key(master_key, std::get<PolicyV2>(context.policy), context.nonce, **mode,
                       params);
}

Result<FileKey> setup_file_key(const MasterKeySecret& master_key, const Context& context,
                               const FileKeyParams& params) {
  const bool is_v2 = std::holds_alternative<PolicyV2>(context.policy);
  if (params.need_dirhash_key && !is_v2) {
    return fail(EINVAL, "v1 policies have no dirhash key");
  }
  auto raw_key = derive_file_key(master_key, context, params);
  if (!raw_key) return std::unexpected(std::move(raw_key).error());

  FileKey key;
  key.mode = *select_encryption_mode(context.policy, params.kind);
  auto cipher = prepare_key(*key.mode, raw_key->span());
  if (!cipher) return std::unexpected(std::move(cipher).error());
  key.raw_key = std::move(*raw_key);
  key.cipher = std::move(*cipher);

  if (is_v2 && (policy_flags(context.policy) & kPolicyFlagIvInoLblk32)) {
    // keysetup.c `fscrypt_setup_iv_ino_lblk_32_key`.
    auto hash_key = derive_inode_hash_key(master_key.hkdf());
    if (!hash_key) return std::unexpected(std::move(hash_key).error());
    key.hashed_ino = hash_inode_number(*hash_key, params.inode_number);
  }
  if (params.need_dirhash_key) {
    auto dirhash_key = derive_dirhash_key(master_key.hkdf(), context.nonce);
    if (!dirhash_key) return std::unexpected(std::move(dirhash_key).error());
    key.dirhash_key = *dirhash_key;
  }
  return key;
}

Result<crypto::SecretBytes> derive_per_file_key(const FscryptHkdf& hkdf, const Nonce& nonce,
                                                const ModeInfo& mode) {
  return hkdf.derive(HkdfContext::kPerFileEncKey, nonce, mode.key_size);
}

Result<crypto::SecretBytes> derive_direct_key(const FscryptHkdf& hkdf, const ModeInfo& mode) {
  // Unlike v1, v2 DIRECT_KEY never encrypts with the master key itself: it
  // derives one key per mode, so the master key is only ever an HKDF input.
  return derive_mode_key(hkdf, HkdfContext::kDirectKey, mode, nullptr);
}

Result<crypto::SecretBytes> derive_iv_ino_lblk_64_key(const FscryptHkdf& hkdf, const ModeInfo& mode,
                                                      const FsUuid& uuid) {
  return derive_mode_key(hkdf, HkdfContext::kIvInoLblk64Key, mode, &uuid);
}

Result<crypto::SecretBytes> derive_iv_ino_lblk_32_key(const FscryptHkdf& hkdf, const ModeInfo& mode,
                                                      const FsUuid& uuid) {
  return derive_mode_key(hkdf, HkdfContext::kIvInoLblk32Key, mode, &uuid);
}

Result<crypto::SipHashKey> derive_inode_hash_key(const FscryptHkdf& hkdf) {
  return derive_siphash_key(hkdf, HkdfContext::kInodeHashKey, {});
}

Result<crypto::SipHashKey> derive_dirhash_key(const FscryptHkdf& hkdf, const Nonce& dir_nonce) {
  return derive_siphash_key(hkdf, HkdfContext::kDirhashKey, dir_nonce);
}

uint32_t hash_inode_number(const crypto::SipHashKey& inode_hash_key, uint64_t inode_number) {
  // siphash_1u64 hashes the u64 as 8 little-endian bytes.
  std::array<uint8_t, 8> message{};
  store_le64(message.data(), inode_number);
  return static_cast<uint32_t>(crypto::siphash_2_4(inode_hash_key, message));
}

IvParams inode_iv_params(const Context& context, uint64_t inode_number, uint32_t hashed_ino) {
  switch (iv_scheme_from_policy_flags(policy_flags(context.policy))) {
    case IvScheme::kDirectKey:
      return IvParams::direct_key(context.nonce);
    case IvScheme::kInoLblk64:
      return IvParams::ino_lblk_64(inode_number);
    case IvScheme::kInoLblk32:
      return IvParams::ino_lblk_32(hashed_ino);
    case IvScheme::kDefault:
      break;
  }
  return IvParams::default_scheme();
}

}  // namespace ecfs::fscrypt
