// AES-256 as a bare block cipher over whole 16-byte blocks (ECB on
// OpenSSL's EVP API), for the wide-block modes that build on it: the single
// block of Adiantum and HCTR2, HCTR2's key derivation, and XCTR's keystream.
// AES itself is never implemented here (OpenSSL uses AES-NI when present).
#pragma once

#include <memory>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::crypto {

inline constexpr size_t kAesBlockSize = 16;
inline constexpr size_t kAes256KeySize = 32;

// Keyed once, then used by any number of threads at the same time (each call
// borrows its own EVP context from a pool). Move-only; the key schedule lives
// in OpenSSL's contexts, which OpenSSL zeroes when they are freed.
class Aes256BlockCipher {
 public:
  // EINVAL unless key.size() == 32; ENOMEM if OpenSSL cannot allocate.
  static Result<Aes256BlockCipher> create(ByteSpan key);

  Aes256BlockCipher(Aes256BlockCipher&&) noexcept;
  Aes256BlockCipher& operator=(Aes256BlockCipher&&) noexcept;
  Aes256BlockCipher(const Aes256BlockCipher&) = delete;
  Aes256BlockCipher& operator=(const Aes256BlockCipher&) = delete;
  ~Aes256BlockCipher();

  // ECB over whole blocks; `in` and `out` have the same size, a multiple of
  // 16, and are the same buffer or disjoint. Errors only from OpenSSL (EIO)
  // or allocation (ENOMEM).
  Status encrypt(ByteSpan in, MutableByteSpan out) const;
  Status decrypt(ByteSpan in, MutableByteSpan out) const;

 private:
  struct Pools;
  explicit Aes256BlockCipher(std::unique_ptr<Pools> pools);

  std::unique_ptr<Pools> pools_;
};

}  // namespace ecfs::crypto
