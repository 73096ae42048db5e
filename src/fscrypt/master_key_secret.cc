#include "fscrypt/master_key_secret.h"

#include <cerrno>
#include <string>

namespace ecfs::fscrypt {

Result<MasterKeySecret> MasterKeySecret::create(ByteSpan raw_key) {
  // keyring.c `fscrypt_ioctl_add_key`: raw_size outside 16..64 is EINVAL.
  // 16 bytes is the weakest strength fscrypt offers (AES-128); 64 fills
  // AES-256-XTS's two keys in v1, where the master key is used (almost)
  // directly.
  if (raw_key.size() < kMinKeySize || raw_key.size() > kMaxKeySize) {
    return fail(EINVAL, "a master key is 16 to 64 bytes, not " + std::to_string(raw_key.size()));
  }
  auto hkdf = FscryptHkdf::create(raw_key);
  if (!hkdf) return std::unexpected(std::move(hkdf).error());
  return MasterKeySecret(crypto::SecretBytes::copy_of(raw_key), std::move(*hkdf));
}

}  // namespace ecfs::fscrypt
