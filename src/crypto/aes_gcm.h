// AES-256-GCM (NIST SP 800-38D), for the authenticated-encryption mode.
// Nonces are exactly 96 bits and tags exactly 128 bits; other sizes are
// EINVAL. One object may serve many threads at once. Move-only.
#pragma once

#include <memory>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::crypto {

class Aes256Gcm {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;

  static Result<Aes256Gcm> create(ByteSpan key);
  Aes256Gcm(Aes256Gcm&&) noexcept;
  Aes256Gcm& operator=(Aes256Gcm&&) noexcept;
  ~Aes256Gcm();

  // Encrypts `plaintext` into `ciphertext` (same size) and writes the tag.
  Status seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan ciphertext,
              MutableByteSpan tag) const;
  // Verifies the tag and decrypts; EBADMSG when authentication fails, in
  // which case `plaintext` is zeroed.
  Status open(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, ByteSpan tag,
              MutableByteSpan plaintext) const;

 private:
  struct State;
  explicit Aes256Gcm(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ecfs::crypto
