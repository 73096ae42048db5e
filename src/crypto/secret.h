// SecretBytes: a buffer for key material. It lives in OpenSSL's secure heap
// (mlock'ed, excluded from core dumps) once init_secure_heap() has run, is
// zeroed before its memory is released, and can be moved but never copied
// by accident: duplicating a key must be spelled `SecretBytes::copy_of`.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::crypto {

// Sets up OpenSSL's locked secure heap for key material. Call once, early in
// main(). Best effort: when the memory-lock limit forbids it, SecretBytes
// still zeroes on drop but is not locked; the return value says which.
bool init_secure_heap();

// Marks the process not dumpable (prctl PR_SET_DUMPABLE 0): no core dump
// is written, and other processes of the same user cannot ptrace it or
// read its memory. The secure heap is left out of dumps already, but keys
// also live expanded in cipher contexts, and Argon2id's working memory
// holds what a passphrase turns into. Call once, early in main(), in every
// process that may hold key material (the command line and the daemon).
// The errno when the kernel refuses.
Status keep_secrets_out_of_core_dumps();

class SecretBytes {
 public:
  SecretBytes() = default;
  // A zero-filled secret of `size` bytes.
  explicit SecretBytes(size_t size);
  static SecretBytes copy_of(ByteSpan bytes);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  ByteSpan span() const { return {data_, size_}; }
  MutableByteSpan mutable_span() { return {data_, size_}; }

  // Constant-time comparison of contents (sizes may differ).
  bool equals(ByteSpan other) const;

 private:
  void release();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Zeroes memory in a way the compiler cannot optimise away.
void secure_zero(MutableByteSpan bytes);

}  // namespace ecfs::crypto
