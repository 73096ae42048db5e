// The secret half of a master key (fs/crypto/fscrypt_private.h
// `struct fscrypt_master_key_secret`): the raw bytes, which v1 policies use
// directly, and the HKDF state extracted from them, which v2 policies use.
// The keyring owns these; key setup borrows them.
#pragma once

#include <cstddef>
#include <utility>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/secret.h"
#include "fscrypt/hkdf.h"

namespace ecfs::fscrypt {

// FSCRYPT_MIN_KEY_SIZE / FSCRYPT_MAX_KEY_SIZE: the sizes
// FS_IOC_ADD_ENCRYPTION_KEY accepts (keyring.c `fscrypt_ioctl_add_key`).
// Part of the ioctl ABI (and of fscrypt_key's raw[64]), so fixed.
inline constexpr size_t kMinKeySize = 16;
inline constexpr size_t kMaxKeySize = 64;

// Move-only; zeroes its key material on destruction. Thread-safe for
// concurrent const use.
class MasterKeySecret {
 public:
  // Copies `raw_key` into locked memory and runs HKDF-Extract over it.
  // EINVAL unless kMinKeySize <= size <= kMaxKeySize, as the add-key ioctl.
  static Result<MasterKeySecret> create(ByteSpan raw_key);

  MasterKeySecret(MasterKeySecret&&) noexcept = default;
  MasterKeySecret& operator=(MasterKeySecret&&) noexcept = default;

  ByteSpan raw() const { return raw_.span(); }
  size_t size() const { return raw_.size(); }
  const FscryptHkdf& hkdf() const { return hkdf_; }

 private:
  MasterKeySecret(crypto::SecretBytes raw, FscryptHkdf hkdf)
      : raw_(std::move(raw)), hkdf_(std::move(hkdf)) {}

  crypto::SecretBytes raw_;
  FscryptHkdf hkdf_;
};

}  // namespace ecfs::fscrypt
