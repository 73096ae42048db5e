// HKDF-SHA512 (RFC 5869), split into its two steps because fscrypt extracts
// once per master key and expands many times (once per file or extent).
// Expand keeps the PRK-keyed HMAC state prepared, so an expand to 64 bytes
// is one HMAC restart from that state, never a re-keying (about 1 µs).
// Move-only; the PRK lives in SecretBytes.
#pragma once

#include <initializer_list>
#include <memory>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/secret.h"

namespace ecfs::crypto {

class HkdfSha512 {
 public:
  // HKDF-Extract. An empty salt means the RFC's default: 64 zero bytes.
  static Result<HkdfSha512> extract(ByteSpan salt, ByteSpan input_key_material);

  HkdfSha512(HkdfSha512&&) noexcept;
  HkdfSha512& operator=(HkdfSha512&&) noexcept;
  ~HkdfSha512();

  // HKDF-Expand with info = concatenation of `info_parts`, filling `out`
  // (at most 255 * 64 bytes, else EINVAL). Thread-safe.
  Status expand(std::initializer_list<ByteSpan> info_parts, MutableByteSpan out) const;

 private:
  struct State;
  explicit HkdfSha512(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ecfs::crypto
