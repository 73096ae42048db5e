// EvpModeCipher: a Cipher backed by one OpenSSL block-cipher mode with a
// 16-byte IV (XTS, CBC, CBC-CTS), keyed once for each direction. The shared
// engine of aes_xts, sm4_xts, aes_cbc_cts and aes_cbc_essiv. Private to
// src/crypto.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "crypto/cipher.h"
#include "crypto/evp.h"

namespace ecfs::crypto {

struct EvpModeRules {
  // The name Cipher::name() reports, e.g. "AES-256-XTS". Must outlive the
  // cipher (string literals).
  std::string_view name;
  // Shortest message the mode takes.
  size_t min_message_size = 16;
  // Longest message; 0 means no limit of ecfs's own.
  size_t max_message_size = 0;
  // Plain CBC takes whole blocks only.
  bool whole_blocks = false;
};

class EvpModeCipher final : public Cipher {
 public:
  static constexpr size_t kIvSize = 16;

  // `params` (may be null) are applied when each direction is keyed, e.g.
  // the CTS variant. EINVAL for a key OpenSSL refuses.
  static Result<std::unique_ptr<EvpModeCipher>> create(const EvpModeRules& rules,
                                                       const EVP_CIPHER* cipher, ByteSpan key,
                                                       const OSSL_PARAM* params = nullptr);

  std::string_view name() const override { return rules_.name; }
  size_t iv_size() const override { return kIvSize; }
  Status encrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    return run(encryptors_, iv, in, out);
  }
  Status decrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    return run(decryptors_, iv, in, out);
  }

  EvpModeCipher(const EvpModeRules& rules, evp::CipherCtxPtr encryptor,
                evp::CipherCtxPtr decryptor);

 private:
  Status check_sizes(ByteSpan iv, ByteSpan in, MutableByteSpan out) const;
  Status run(const evp::CipherCtxPool& pool, ByteSpan iv, ByteSpan in, MutableByteSpan out) const;

  EvpModeRules rules_;
  evp::CipherCtxPool encryptors_;
  evp::CipherCtxPool decryptors_;
};

}  // namespace ecfs::crypto
