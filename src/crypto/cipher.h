// Cipher: a length-preserving cipher keyed once and used with a per-message
// IV (the tweak). Every fscrypt contents and filenames mode has this shape:
// XTS and CBC-ESSIV for data units, CBC-CTS for names, Adiantum and HCTR2
// for both (Documentation/filesystems/fscrypt.rst, "Encryption modes").
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::crypto {

class Cipher {
 public:
  virtual ~Cipher() = default;

  // The algorithm's name as the command line spells it, e.g. "AES-256-XTS".
  virtual std::string_view name() const = 0;
  // Bytes of IV every call takes (16, or 32 for Adiantum and HCTR2).
  virtual size_t iv_size() const = 0;

  // Encrypts `in` into `out` (same size; `in` and `out` may be the same
  // buffer). EINVAL for a wrong IV size or a message length the mode cannot
  // take (e.g. shorter than 16 bytes, or not whole blocks for CBC).
  // Thread-safe: one Cipher may serve many threads at once.
  virtual Status encrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const = 0;
  virtual Status decrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const = 0;
};

using CipherPtr = std::unique_ptr<Cipher>;

}  // namespace ecfs::crypto
