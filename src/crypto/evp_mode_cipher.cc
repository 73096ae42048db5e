#include "crypto/evp_mode_cipher.h"

#include <climits>
#include <string>

namespace ecfs::crypto {

Result<std::unique_ptr<EvpModeCipher>> EvpModeCipher::create(const EvpModeRules& rules,
                                                             const EVP_CIPHER* cipher, ByteSpan key,
                                                             const OSSL_PARAM* params) {
  auto encryptor = evp::keyed_cipher_context(cipher, key, /*encrypt=*/true, params);
  if (!encryptor) return std::unexpected(std::move(encryptor).error());
  auto decryptor = evp::keyed_cipher_context(cipher, key, /*encrypt=*/false, params);
  if (!decryptor) return std::unexpected(std::move(decryptor).error());
  return std::make_unique<EvpModeCipher>(rules, std::move(*encryptor), std::move(*decryptor));
}

EvpModeCipher::EvpModeCipher(const EvpModeRules& rules, evp::CipherCtxPtr encryptor,
                             evp::CipherCtxPtr decryptor)
    : rules_(rules), encryptors_(encryptor.release()), decryptors_(decryptor.release()) {}

Status EvpModeCipher::check_sizes(ByteSpan iv, ByteSpan in, MutableByteSpan out) const {
  if (iv.size() != kIvSize) {
    return fail(EINVAL,
                std::string(rules_.name) + " takes a 16-byte IV, got " + std::to_string(iv.size()));
  }
  if (in.size() != out.size()) {
    return fail(EINVAL, std::string(rules_.name) + ": input and output sizes differ");
  }
  if (in.size() < rules_.min_message_size) {
    return fail(EINVAL, std::string(rules_.name) + " needs at least " +
                            std::to_string(rules_.min_message_size) + " bytes, got " +
                            std::to_string(in.size()));
  }
  if (rules_.whole_blocks && in.size() % 16 != 0) {
    return fail(EINVAL, std::string(rules_.name) + " takes whole 16-byte blocks, got " +
                            std::to_string(in.size()) + " bytes");
  }
  size_t max = rules_.max_message_size != 0 ? rules_.max_message_size : size_t{INT_MAX};
  if (in.size() > max) {
    return fail(EINVAL, std::string(rules_.name) + " takes at most " + std::to_string(max) +
                            " bytes per message, got " + std::to_string(in.size()));
  }
  if (evp::partially_overlapping(in.data(), out.data(), in.size())) {
    return fail(EINVAL, std::string(rules_.name) + ": input and output partially overlap");
  }
  return ok();
}

Status EvpModeCipher::run(const evp::CipherCtxPool& pool, ByteSpan iv, ByteSpan in,
                          MutableByteSpan out) const {
  ECFS_TRY(check_sizes(iv, in, out));
  auto lease = pool.acquire();
  if (!lease) return std::unexpected(std::move(lease).error());
  EVP_CIPHER_CTX* ctx = lease->get();
  // Re-initialising with only an IV (enc = -1: direction unchanged) keeps
  // the key schedule and resets the per-message state.
  int update_len = 0;
  int final_len = 0;
  if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, iv.data(), -1, nullptr) != 1 ||
      EVP_CipherUpdate(ctx, out.data(), &update_len, in.data(), static_cast<int>(in.size())) != 1 ||
      EVP_CipherFinal_ex(ctx, out.data() + update_len, &final_len) != 1) {
    return evp::fail_openssl(EIO, std::string(rules_.name) + " failed");
  }
  if (static_cast<size_t>(update_len) + static_cast<size_t>(final_len) != in.size()) {
    return fail(EIO, std::string(rules_.name) + " produced a wrong output length");
  }
  return ok();
}

}  // namespace ecfs::crypto
