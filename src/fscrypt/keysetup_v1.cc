// v1 key setup (fs/crypto/keysetup_v1.c): the legacy AES-128-ECB KDF and
// DIRECT_KEY with the master key itself. Kept only for compatibility with
// existing v1 directories; the KDF is reversible (a leaked file key gives
// back the master key), which is why v2 moved to HKDF.
#include <cerrno>
#include <string>

#include "crypto/aes_ecb.h"
#include "fscrypt/keysetup.h"

namespace ecfs::fscrypt {
namespace {

// The v1 rule of keysetup.c `fscrypt_valid_master_key_size`: the KDF
// encrypts key_size bytes of the master key, so it must have that many.
Status check_v1_master_key(ByteSpan master_key, const ModeInfo& mode) {
  return check_master_key_size(kPolicyV1, mode, master_key.size());
}

}  // namespace

Result<crypto::SecretBytes> derive_v1_file_key(ByteSpan master_key, const Nonce& nonce,
                                               const ModeInfo& mode) {
  ECFS_TRY(check_v1_master_key(master_key, mode));
  // keysetup_v1.c `derive_key_aes`: AES-128-ECB keyed by the 16-byte nonce
  // over the first key_size bytes of the master key (all key sizes are whole
  // AES blocks), the ciphertext being the file key.
  crypto::SecretBytes derived(mode.key_size);
  ECFS_TRY(
      crypto::aes128_ecb_encrypt(nonce, master_key.first(mode.key_size), derived.mutable_span()));
  return derived;
}

Result<crypto::SecretBytes> derive_v1_direct_key(ByteSpan master_key, const ModeInfo& mode) {
  ECFS_TRY(check_v1_master_key(master_key, mode));
  // The per-file nonce goes into IV bytes 8..23 instead of into the key
  // (policy.c `supported_direct_key_modes`), so the IV must reach byte 24.
  if (mode.iv_size < 8 + kNonceSize) {
    return fail(EINVAL, "DIRECT_KEY is not allowed with " + std::string(mode.name));
  }
  return crypto::SecretBytes::copy_of(master_key.first(mode.key_size));
}

}  // namespace ecfs::fscrypt
