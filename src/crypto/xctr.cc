#include "crypto/xctr.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace ecfs::crypto {

namespace {

// Counter blocks are built and encrypted this many at a time, so that one
// OpenSSL call (one pipelined AES-NI pass) covers a whole 4 KiB data unit in
// a couple of calls.
constexpr size_t kChunkBlocks = 128;

void xor_bytes(uint8_t* out, const uint8_t* in, const uint8_t* keystream, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t a, b;
    std::memcpy(&a, in + i, 8);
    std::memcpy(&b, keystream + i, 8);
    a ^= b;
    std::memcpy(out + i, &a, 8);
  }
  for (; i < len; ++i) out[i] = in[i] ^ keystream[i];
}

}  // namespace

Status xctr_xor(const Aes256BlockCipher& aes, ByteSpan iv, ByteSpan in, MutableByteSpan out) {
  if (iv.size() != kXctrIvSize) return fail(EINVAL, "XCTR takes a 16-byte IV");
  if (in.size() != out.size()) return fail(EINVAL, "XCTR output size differs from input size");

  const uint64_t iv_low = load_le64(iv.data());
  const uint64_t iv_high = load_le64(iv.data() + 8);
  alignas(16) uint8_t keystream[kChunkBlocks * kAesBlockSize];
  uint64_t counter = 1;
  Status status = ok();
  for (size_t pos = 0; pos < in.size();) {
    const size_t bytes = std::min(sizeof(keystream), in.size() - pos);
    const size_t blocks = (bytes + kAesBlockSize - 1) / kAesBlockSize;
    for (size_t b = 0; b < blocks; ++b) {
      store_le64(keystream + kAesBlockSize * b, iv_low ^ (counter + b));
      store_le64(keystream + kAesBlockSize * b + 8, iv_high);
    }
    const MutableByteSpan chunk(keystream, blocks * kAesBlockSize);
    status = aes.encrypt(chunk, chunk);
    if (!status) break;
    xor_bytes(out.data() + pos, in.data() + pos, keystream, bytes);
    counter += blocks;
    pos += bytes;
  }
  secure_zero(keystream);
  return status;
}

}  // namespace ecfs::crypto
