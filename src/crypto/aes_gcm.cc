#include "crypto/aes_gcm.h"

#include <algorithm>
#include <climits>
#include <string>

#include "crypto/evp.h"
#include "crypto/secret.h"

namespace ecfs::crypto {

// One keyed AES-256-GCM context per direction, pooled for concurrent callers
// (see evp::ContextPool). Nonces are 96 bits, the size NIST SP 800-38D §8.2
// recommends and the only one ecfs uses; other sizes are EINVAL. Tags are
// the full 128 bits; truncated tags are EINVAL.
struct Aes256Gcm::State {
  State(evp::CipherCtxPtr encryptor, evp::CipherCtxPtr decryptor)
      : sealers(encryptor.release()), openers(decryptor.release()) {}
  evp::CipherCtxPool sealers;
  evp::CipherCtxPool openers;
};

namespace {

Status check_sizes(ByteSpan nonce, ByteSpan tag, ByteSpan in, ByteSpan out) {
  if (nonce.size() != Aes256Gcm::kNonceSize) {
    return fail(EINVAL, "AES-256-GCM takes a 12-byte nonce, got " + std::to_string(nonce.size()));
  }
  if (tag.size() != Aes256Gcm::kTagSize) {
    return fail(EINVAL, "AES-256-GCM takes a 16-byte tag, got " + std::to_string(tag.size()));
  }
  if (in.size() != out.size()) return fail(EINVAL, "AES-256-GCM: input and output sizes differ");
  if (in.size() > INT_MAX) return fail(EINVAL, "AES-256-GCM message too long");
  if (evp::partially_overlapping(in.data(), out.data(), in.size())) {
    return fail(EINVAL, "AES-256-GCM: input and output partially overlap");
  }
  return ok();
}

// Feeds the nonce and the associated data into a leased context.
bool start(EVP_CIPHER_CTX* ctx, int enc, ByteSpan nonce, ByteSpan aad) {
  if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), enc, nullptr) != 1) return false;
  // The AAD goes in with a null output pointer; OpenSSL takes int lengths,
  // so very large AAD goes in pieces.
  for (size_t done = 0; done < aad.size();) {
    const int n = static_cast<int>(std::min<size_t>(aad.size() - done, INT_MAX / 2));
    int len = 0;
    if (EVP_CipherUpdate(ctx, nullptr, &len, aad.data() + done, n) != 1) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Aes256Gcm::Aes256Gcm(std::unique_ptr<State> state) : state_(std::move(state)) {}
Aes256Gcm::Aes256Gcm(Aes256Gcm&&) noexcept = default;
Aes256Gcm& Aes256Gcm::operator=(Aes256Gcm&&) noexcept = default;
Aes256Gcm::~Aes256Gcm() = default;

Result<Aes256Gcm> Aes256Gcm::create(ByteSpan key) {
  if (key.size() != kKeySize) {
    return fail(EINVAL, "AES-256-GCM takes a 32-byte key, got " + std::to_string(key.size()));
  }
  const EVP_CIPHER* gcm = evp::cipher(evp::CipherAlgorithm::kAes256Gcm);
  auto encryptor = evp::keyed_cipher_context(gcm, key, /*encrypt=*/true);
  if (!encryptor) return std::unexpected(std::move(encryptor).error());
  auto decryptor = evp::keyed_cipher_context(gcm, key, /*encrypt=*/false);
  if (!decryptor) return std::unexpected(std::move(decryptor).error());
  return Aes256Gcm(std::make_unique<State>(std::move(*encryptor), std::move(*decryptor)));
}

Status Aes256Gcm::seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan ciphertext,
                       MutableByteSpan tag) const {
  if (!state_) return fail(EINVAL, "seal on a moved-from Aes256Gcm");
  ECFS_TRY(check_sizes(nonce, tag, plaintext, ciphertext));
  auto lease = state_->sealers.acquire();
  if (!lease) return std::unexpected(std::move(lease).error());
  EVP_CIPHER_CTX* ctx = lease->get();
  int update_len = 0;
  int final_len = 0;
  if (!start(ctx, 1, nonce, aad) ||
      EVP_EncryptUpdate(ctx, ciphertext.data(), &update_len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, ciphertext.data() + update_len, &final_len) != 1 ||
      static_cast<size_t>(update_len + final_len) != plaintext.size() ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize), tag.data()) !=
          1) {
    secure_zero(ciphertext);
    secure_zero(tag);
    return evp::fail_openssl(EIO, "AES-256-GCM encryption failed");
  }
  return ok();
}

Status Aes256Gcm::open(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag,
                       MutableByteSpan plaintext) const {
  if (!state_) return fail(EINVAL, "open on a moved-from Aes256Gcm");
  ECFS_TRY(check_sizes(nonce, tag, ciphertext, plaintext));
  auto lease = state_->openers.acquire();
  if (!lease) return std::unexpected(std::move(lease).error());
  EVP_CIPHER_CTX* ctx = lease->get();
  // OpenSSL's ctrl takes a non-const buffer but only reads the tag.
  uint8_t expected_tag[kTagSize];
  std::copy(tag.begin(), tag.end(), expected_tag);
  int update_len = 0;
  if (!start(ctx, 0, nonce, aad) ||
      EVP_DecryptUpdate(ctx, plaintext.data(), &update_len, ciphertext.data(),
                        static_cast<int>(ciphertext.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), expected_tag) !=
          1) {
    secure_zero(plaintext);
    return evp::fail_openssl(EIO, "AES-256-GCM decryption failed");
  }
  int final_len = 0;
  // Final compares the tag in constant time; on a mismatch no byte of the
  // unauthenticated plaintext may reach the caller (SP 800-38D §7.2 step 8).
  if (EVP_DecryptFinal_ex(ctx, plaintext.data() + update_len, &final_len) != 1) {
    secure_zero(plaintext);
    evp::take_error();
    return fail(EBADMSG, "AES-256-GCM authentication failed");
  }
  return ok();
}

}  // namespace ecfs::crypto
