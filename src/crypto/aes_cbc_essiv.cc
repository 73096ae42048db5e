#include "crypto/aes_cbc_essiv.h"

#include <array>
#include <string>

#include "crypto/evp.h"
#include "crypto/evp_mode_cipher.h"
#include "crypto/hash.h"
#include "crypto/secret.h"

namespace ecfs::crypto {
namespace {

// ESSIV (Fruhwirth, "New Methods in Hard Disk Encryption", 2005), as the
// kernel's essiv(cbc(aes),sha256) template (crypto/essiv.c) that fscrypt
// mode 5 uses: IV' = AES-256-ECB(key = SHA-256(contents key), IV), then
// AES-128-CBC(contents key, IV') over the data unit.
class AesCbcEssiv final : public Cipher {
 public:
  AesCbcEssiv(std::unique_ptr<EvpModeCipher> cbc, evp::CipherCtxPtr iv_encryptor)
      : cbc_(std::move(cbc)), iv_encryptors_(iv_encryptor.release()) {}

  std::string_view name() const override { return "AES-128-CBC-ESSIV"; }
  size_t iv_size() const override { return EvpModeCipher::kIvSize; }

  Status encrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    std::array<uint8_t, 16> essiv;
    ECFS_TRY(derive_iv(iv, essiv));
    return cbc_->encrypt(essiv, in, out);
  }
  Status decrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    std::array<uint8_t, 16> essiv;
    ECFS_TRY(derive_iv(iv, essiv));
    return cbc_->decrypt(essiv, in, out);
  }

 private:
  Status derive_iv(ByteSpan iv, MutableByteSpan essiv) const {
    if (iv.size() != essiv.size()) {
      return fail(EINVAL, "AES-128-CBC-ESSIV takes a 16-byte IV, got " + std::to_string(iv.size()));
    }
    auto lease = iv_encryptors_.acquire();
    if (!lease) return std::unexpected(std::move(lease).error());
    // ECB keeps no state between whole blocks, so the context needs no
    // re-initialisation between calls.
    int len = 0;
    if (EVP_EncryptUpdate(lease->get(), essiv.data(), &len, iv.data(), 16) != 1 || len != 16) {
      return evp::fail_openssl(EIO, "ESSIV IV encryption failed");
    }
    return ok();
  }

  std::unique_ptr<EvpModeCipher> cbc_;
  evp::CipherCtxPool iv_encryptors_;
};

}  // namespace

Result<CipherPtr> make_aes128_cbc_essiv(ByteSpan key) {
  if (key.size() != 16) {
    return fail(EINVAL, "AES-128-CBC-ESSIV takes a 16-byte key, got " + std::to_string(key.size()));
  }
  EvpModeRules rules{.name = "AES-128-CBC-ESSIV", .min_message_size = 16, .whole_blocks = true};
  auto cbc = EvpModeCipher::create(rules, evp::cipher(evp::CipherAlgorithm::kAes128Cbc), key);
  if (!cbc) return std::unexpected(std::move(cbc).error());

  auto digest = sha256(key);
  SecretBytes essiv_key = SecretBytes::copy_of(digest);
  secure_zero(digest);
  auto iv_encryptor = evp::keyed_cipher_context(evp::cipher(evp::CipherAlgorithm::kAes256Ecb),
                                                essiv_key.span(), /*encrypt=*/true);
  if (!iv_encryptor) return std::unexpected(std::move(iv_encryptor).error());
  return std::make_unique<AesCbcEssiv>(std::move(*cbc), std::move(*iv_encryptor));
}

}  // namespace ecfs::crypto
