#include "crypto/evp.h"

#include <openssl/err.h>

#include <array>
#include <cstdint>

namespace ecfs::crypto::evp {

namespace {

constexpr std::array<const char*, 9> kCipherNames = {
    "AES-128-ECB", "AES-256-ECB", "AES-128-CBC", "AES-128-CBC-CTS", "AES-256-CBC-CTS",
    "AES-128-XTS", "AES-256-XTS", "SM4-XTS",     "AES-256-GCM",
};
static_assert(kCipherNames.size() == static_cast<size_t>(CipherAlgorithm::kAes256Gcm) + 1);

std::array<EVP_CIPHER*, kCipherNames.size()> fetch_all_ciphers() {
  std::array<EVP_CIPHER*, kCipherNames.size()> fetched{};
  for (size_t i = 0; i < kCipherNames.size(); ++i) {
    fetched[i] = EVP_CIPHER_fetch(nullptr, kCipherNames[i], nullptr);
  }
  // A missing algorithm (SM4-XTS before OpenSSL 3.2) leaves an error on the
  // queue; it is reported later, as EOPNOTSUPP, by whoever asks for it.
  ERR_clear_error();
  return fetched;
}

}  // namespace

const EVP_CIPHER* cipher(CipherAlgorithm algorithm) {
  static const std::array<EVP_CIPHER*, kCipherNames.size()> fetched = fetch_all_ciphers();
  return fetched[static_cast<size_t>(algorithm)];
}

const EVP_MD* sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

const EVP_MD* sha512() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  return md;
}

EVP_MAC* hmac() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

std::string take_error() {
  std::string text;
  while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, nullptr, nullptr)) {
    const char* reason = ERR_reason_error_string(code);
    if (!text.empty()) text += "; ";
    text += reason != nullptr ? reason : "unknown OpenSSL error";
  }
  return text;
}

std::unexpected<Error> fail_openssl(int errno_value, std::string_view what) {
  std::string message(what);
  if (std::string detail = take_error(); !detail.empty()) message += ": " + detail;
  return fail(errno_value, std::move(message));
}

EVP_CIPHER_CTX* duplicate(const EVP_CIPHER_CTX* ctx) {
  EVP_CIPHER_CTX* copy = EVP_CIPHER_CTX_new();
  if (copy == nullptr) return nullptr;
  if (EVP_CIPHER_CTX_copy(copy, ctx) != 1) {
    EVP_CIPHER_CTX_free(copy);
    return nullptr;
  }
  return copy;
}

Result<CipherCtxPtr> keyed_cipher_context(const EVP_CIPHER* cipher, ByteSpan key, bool encrypt,
                                          const OSSL_PARAM* params) {
  if (cipher == nullptr) {
    return fail(EOPNOTSUPP,
                "this OpenSSL does not provide the cipher (is a FIPS-only provider "
                "configured?)");
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return fail_openssl(ENOMEM, "cannot allocate a cipher context");
  if (static_cast<size_t>(EVP_CIPHER_get_key_length(cipher)) != key.size()) {
    return fail(EINVAL, std::string(EVP_CIPHER_get0_name(cipher)) + " takes a " +
                            std::to_string(EVP_CIPHER_get_key_length(cipher)) + "-byte key, got " +
                            std::to_string(key.size()));
  }
  if (EVP_CipherInit_ex2(ctx.get(), cipher, key.data(), nullptr, encrypt ? 1 : 0, params) != 1) {
    return fail_openssl(EINVAL, std::string("cannot key ") + EVP_CIPHER_get0_name(cipher));
  }
  // Every mode ecfs drives through EVP is length-preserving, but only ECB
  // and plain CBC pad. Padding is switched off for those alone: OpenSSL 3.0
  // re-sends the "no padding" setting as a parameter on every re-init
  // (evp_cipher_init_internal), a cost the per-data-unit path of XTS need
  // not pay.
  const int mode = EVP_CIPHER_get_mode(cipher);
  const bool pads = (mode == EVP_CIPH_ECB_MODE || mode == EVP_CIPH_CBC_MODE) &&
                    (EVP_CIPHER_get_flags(cipher) & EVP_CIPH_FLAG_CTS) == 0;
  if (pads && EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) {
    return fail_openssl(EINVAL, "cannot disable padding");
  }
  return ctx;
}

bool partially_overlapping(const uint8_t* a, const uint8_t* b, size_t n) {
  // Compare as integers: relational operators on pointers into different
  // objects are unspecified.
  auto x = reinterpret_cast<std::uintptr_t>(a);
  auto y = reinterpret_cast<std::uintptr_t>(b);
  return x != y && n != 0 && (x < y ? y - x < n : x - y < n);
}

}  // namespace ecfs::crypto::evp
