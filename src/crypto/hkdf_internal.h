// The HKDF engine behind HkdfSha512, over any OpenSSL digest. Private to
// src/crypto; hkdf_test.cc runs it with SHA-256 because RFC 5869's published
// test cases (Appendix A) are HMAC-SHA256.
#pragma once

#include <initializer_list>
#include <memory>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/evp.h"
#include "crypto/secret.h"

namespace ecfs::crypto::internal {

// RFC 5869 HKDF. Extract runs once; Expand runs for every derived key (per
// file, per extent), so the PRK-keyed HMAC state is prepared once and kept in
// a pool of contexts: each block T(i) restarts HMAC from that state (a null
// key to EVP_MAC_init) instead of re-keying, and no context is created per
// call. Thread-safe.
class Hkdf {
 public:
  // HKDF-Extract (RFC 5869 §2.2): PRK = HMAC-Hash(salt, IKM); an empty salt
  // means HashLen zero bytes. `digest` must outlive the object.
  static Result<std::unique_ptr<Hkdf>> extract(const EVP_MD* digest, ByteSpan salt,
                                               ByteSpan input_key_material);

  // HKDF-Expand (RFC 5869 §2.3) with info = the concatenation of
  // `info_parts`. EINVAL when out.size() > 255 * HashLen.
  Status expand(std::initializer_list<ByteSpan> info_parts, MutableByteSpan out) const;

  size_t hash_size() const { return hash_size_; }
  // The PRK, for tests against RFC 5869's intermediate values.
  ByteSpan pseudorandom_key() const { return prk_.span(); }

  Hkdf(SecretBytes prk, size_t hash_size, EVP_MAC_CTX* keyed_hmac);

 private:
  SecretBytes prk_;
  size_t hash_size_;
  evp::MacCtxPool hmacs_;
};

}  // namespace ecfs::crypto::internal
