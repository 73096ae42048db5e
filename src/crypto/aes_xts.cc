#include "crypto/aes_xts.h"

#include <string>

#include "crypto/evp.h"
#include "crypto/evp_mode_cipher.h"
#include "crypto/xts_key.h"

namespace ecfs::crypto {

Result<CipherPtr> make_aes_xts(ByteSpan key) {
  EvpModeRules rules;
  evp::CipherAlgorithm algorithm;
  if (key.size() == 64) {
    rules.name = "AES-256-XTS";
    algorithm = evp::CipherAlgorithm::kAes256Xts;
  } else if (key.size() == 32) {
    rules.name = "AES-128-XTS";
    algorithm = evp::CipherAlgorithm::kAes128Xts;
  } else {
    return fail(EINVAL, "AES-XTS takes a 32- or 64-byte key, got " + std::to_string(key.size()));
  }
  rules.min_message_size = 16;  // one whole block; shorter messages cannot steal
  rules.max_message_size = kXtsMaxMessageSize;
  ECFS_TRY(check_xts_key_halves(rules.name, key));
  auto cipher = EvpModeCipher::create(rules, evp::cipher(algorithm), key);
  if (!cipher) return std::unexpected(std::move(cipher).error());
  return CipherPtr(std::move(*cipher));
}

}  // namespace ecfs::crypto
