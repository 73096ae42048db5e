// The raw-OpenSSL baseline every contents benchmark is measured against: one
// keyed EVP_CIPHER_CTX for AES-256-XTS, re-IVed per data unit
// (EVP_CipherInit_ex2 with the IV, Update, Final) — the least any EVP user
// does per data unit.
#pragma once

#include <openssl/evp.h>
#include <time.h>

#include <cstdint>
#include <cstdlib>

#include "base/bytes.h"

namespace ecfs::bench {

// A fixed AES-256-XTS key whose halves differ.
inline Bytes xts_bench_key() {
  Bytes key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  return key;
}

class RawOpensslXts {
 public:
  RawOpensslXts(bool encrypt, size_t data_unit_size)
      : ctx_(EVP_CIPHER_CTX_new()),
        cipher_(EVP_CIPHER_fetch(nullptr, "AES-256-XTS", nullptr)),
        data_unit_size_(static_cast<int>(data_unit_size)) {
    const Bytes key = xts_bench_key();
    if (ctx_ == nullptr || cipher_ == nullptr ||
        EVP_CipherInit_ex2(ctx_, cipher_, key.data(), nullptr, encrypt ? 1 : 0, nullptr) != 1) {
      std::abort();
    }
  }
  ~RawOpensslXts() {
    EVP_CIPHER_CTX_free(ctx_);
    EVP_CIPHER_free(cipher_);
  }
  RawOpensslXts(const RawOpensslXts&) = delete;
  RawOpensslXts& operator=(const RawOpensslXts&) = delete;

  // One data unit with the 16-byte `iv`.
  void run(const uint8_t* iv, const uint8_t* in, uint8_t* out) {
    int len = 0;
    int final_len = 0;
    if (EVP_CipherInit_ex2(ctx_, nullptr, nullptr, iv, -1, nullptr) != 1 ||
        EVP_CipherUpdate(ctx_, out, &len, in, data_unit_size_) != 1 ||
        EVP_CipherFinal_ex(ctx_, out + len, &final_len) != 1) {
      std::abort();
    }
  }

 private:
  EVP_CIPHER_CTX* ctx_;
  EVP_CIPHER* cipher_;
  int data_unit_size_;
};

// CPU time of the calling thread: interleaved batches timed this way are
// affected alike by other load on the machine.
inline int64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace ecfs::bench
