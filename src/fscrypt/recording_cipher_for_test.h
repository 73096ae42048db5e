// Test double for crypto::Cipher: a toy length-preserving "cipher" that
// records every IV it is called with, so tests can check which IV each data
// unit or name got for any IV size (including the 32-byte IVs of Adiantum and
// HCTR2, whatever the state of the real implementations). Not encryption.
// Only for *_test.cc files.
#pragma once

#include <mutex>
#include <string_view>
#include <vector>

#include "crypto/cipher.h"

namespace ecfs::fscrypt::test_support {

class RecordingCipher final : public crypto::Cipher {
 public:
  explicit RecordingCipher(size_t iv_size) : iv_size_(iv_size) {}

  std::string_view name() const override { return "recording-test-cipher"; }
  size_t iv_size() const override { return iv_size_; }

  Status encrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    return transform(iv, in, out);
  }
  Status decrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    return transform(iv, in, out);
  }

  // Every IV passed so far, in call order.
  std::vector<Bytes> ivs() const {
    std::lock_guard lock(mutex_);
    return ivs_;
  }

  // The toy keystream byte for position `i` under `iv` (an involution: XOR).
  static uint8_t keystream(ByteSpan iv, size_t i) {
    return static_cast<uint8_t>(iv[i % iv.size()] ^ (i * 31 + 7));
  }

 private:
  Status transform(ByteSpan iv, ByteSpan in, MutableByteSpan out) const {
    if (iv.size() != iv_size_) return fail(EINVAL, "wrong IV size");
    if (in.size() != out.size() || in.size() < 16) return fail(EINVAL, "bad length");
    {
      std::lock_guard lock(mutex_);
      ivs_.emplace_back(iv.begin(), iv.end());
    }
    for (size_t i = 0; i < in.size(); ++i) out[i] = in[i] ^ keystream(iv, i);
    return ok();
  }

  size_t iv_size_;
  mutable std::mutex mutex_;
  mutable std::vector<Bytes> ivs_;
};

}  // namespace ecfs::fscrypt::test_support
