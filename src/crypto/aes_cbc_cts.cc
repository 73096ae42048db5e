#include "crypto/aes_cbc_cts.h"

#include <openssl/core_names.h>
#include <openssl/params.h>

#include <string>

#include "crypto/evp.h"
#include "crypto/evp_mode_cipher.h"

namespace ecfs::crypto {

// The kernel's cts(cbc(aes)) (crypto/cts.c) is the CS3 variant of NIST SP
// 800-38A Addendum: the last two ciphertext blocks are always swapped, also
// when the message is a whole number of blocks, and a message of exactly one
// block is plain CBC. RFC 3962 §5 uses the same definition. OpenSSL's
// AES-*-CBC-CTS defaults to CS1, so CS3 is requested explicitly; with it,
// OpenSSL 3.0 matches the kernel at 16 bytes and at multiples of 16
// (aes_cbc_cts_test.cc checks both against RFC 3962).
Result<CipherPtr> make_aes_cbc_cts(ByteSpan key) {
  EvpModeRules rules;
  evp::CipherAlgorithm algorithm;
  if (key.size() == 32) {
    rules.name = "AES-256-CTS-CBC";
    algorithm = evp::CipherAlgorithm::kAes256CbcCts;
  } else if (key.size() == 16) {
    rules.name = "AES-128-CTS-CBC";
    algorithm = evp::CipherAlgorithm::kAes128CbcCts;
  } else {
    return fail(EINVAL,
                "AES-CTS-CBC takes a 16- or 32-byte key, got " + std::to_string(key.size()));
  }
  rules.min_message_size = 16;  // fscrypt pads names to at least 16 bytes
  const EVP_CIPHER* cipher = evp::cipher(algorithm);
  if (cipher == nullptr) {
    return fail(EOPNOTSUPP, std::string(rules.name) + " is not supported by this OpenSSL");
  }
  char cs3[] = "CS3";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_CIPHER_PARAM_CTS_MODE, cs3, 0),
      OSSL_PARAM_construct_end(),
  };
  auto made = EvpModeCipher::create(rules, cipher, key, params);
  if (!made) return std::unexpected(std::move(made).error());
  return CipherPtr(std::move(*made));
}

}  // namespace ecfs::crypto
