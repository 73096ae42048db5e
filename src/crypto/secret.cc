#include "crypto/secret.h"

#include <openssl/crypto.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

namespace ecfs::crypto {

bool init_secure_heap() {
  // 4 MiB of locked memory holds tens of thousands of prepared keys' raw
  // bytes; the minimum allocation of 16 bytes fits the smallest key.
  static const bool initialised = CRYPTO_secure_malloc_init(4 << 20, 16) == 1;
  return initialised;
}

Status keep_secrets_out_of_core_dumps() {
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return fail(errno, "marking the process not dumpable");
  }
  return ok();
}

SecretBytes::SecretBytes(size_t size) : size_(size) {
  if (size_ == 0) return;
  data_ = static_cast<uint8_t*>(OPENSSL_secure_zalloc(size_));
  if (data_ == nullptr) throw std::bad_alloc();
}

SecretBytes SecretBytes::copy_of(ByteSpan bytes) {
  SecretBytes secret(bytes.size());
  if (!bytes.empty()) std::memcpy(secret.data_, bytes.data(), bytes.size());
  return secret;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { release(); }

void SecretBytes::release() {
  if (data_ != nullptr) OPENSSL_secure_clear_free(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

bool SecretBytes::equals(ByteSpan other) const {
  if (other.size() != size_) return false;
  return size_ == 0 || CRYPTO_memcmp(data_, other.data(), size_) == 0;
}

void secure_zero(MutableByteSpan bytes) {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
}

}  // namespace ecfs::crypto
