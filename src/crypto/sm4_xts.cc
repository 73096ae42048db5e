#include "crypto/sm4_xts.h"

#include <openssl/params.h>

#include <string>

#include "crypto/evp.h"
#include "crypto/evp_mode_cipher.h"
#include "crypto/xts_key.h"

namespace ecfs::crypto {

Result<CipherPtr> make_sm4_xts(ByteSpan key) {
  // Probed at run time rather than by version number, so that a newer
  // OpenSSL (or a provider that adds SM4-XTS) works without a rebuild.
  const EVP_CIPHER* sm4_xts = evp::cipher(evp::CipherAlgorithm::kSm4Xts);
  if (sm4_xts == nullptr) {
    return fail(EOPNOTSUPP, "SM4-XTS is not supported by this OpenSSL (needs 3.2)");
  }
  if (key.size() != 32) {
    return fail(EINVAL, "SM4-XTS takes a 32-byte key, got " + std::to_string(key.size()));
  }
  EvpModeRules rules{.name = "SM4-XTS",
                     .min_message_size = 16,
                     .max_message_size = kXtsMaxMessageSize,
                     .whole_blocks = false};
  ECFS_TRY(check_xts_key_halves(rules.name, key));
  // OpenSSL's SM4-XTS defaults to the tweak arithmetic of GB/T 17964-2021,
  // which differs from IEEE Std 1619's; the kernel's xts(sm4) is the generic
  // IEEE template (crypto/xts.c), so ask for that. ("xts_standard" is
  // OSSL_CIPHER_PARAM_XTS_STANDARD, which 3.0's headers do not define.)
  char ieee[] = "IEEE";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("xts_standard", ieee, 0),
      OSSL_PARAM_construct_end(),
  };
  auto cipher = EvpModeCipher::create(rules, sm4_xts, key, params);
  if (!cipher) return std::unexpected(std::move(cipher).error());
  return CipherPtr(std::move(*cipher));
}

}  // namespace ecfs::crypto
