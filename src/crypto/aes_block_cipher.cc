#include "crypto/aes_block_cipher.h"

#include <cassert>
#include <climits>

#include "crypto/evp.h"

namespace ecfs::crypto {

struct Aes256BlockCipher::Pools {
  Pools(EVP_CIPHER_CTX* encrypt_template, EVP_CIPHER_CTX* decrypt_template)
      : encryptors(encrypt_template), decryptors(decrypt_template) {}
  evp::CipherCtxPool encryptors;
  evp::CipherCtxPool decryptors;
};

namespace {

Status run_ecb(const evp::CipherCtxPool& pool, ByteSpan in, MutableByteSpan out) {
  assert(in.size() == out.size() && in.size() % kAesBlockSize == 0);
  assert(in.size() <= static_cast<size_t>(INT_MAX));
  if (in.empty()) return ok();
  auto lease = pool.acquire();
  if (!lease) return std::unexpected(std::move(lease).error());
  int written = 0;
  if (EVP_CipherUpdate(lease->get(), out.data(), &written, in.data(),
                       static_cast<int>(in.size())) != 1 ||
      static_cast<size_t>(written) != in.size()) {
    return evp::fail_openssl(EIO, "AES-256-ECB failed");
  }
  return ok();
}

}  // namespace

Result<Aes256BlockCipher> Aes256BlockCipher::create(ByteSpan key) {
  if (key.size() != kAes256KeySize) {
    return fail(EINVAL, "AES-256 takes a 32-byte key, got " + std::to_string(key.size()));
  }
  const EVP_CIPHER* ecb = evp::cipher(evp::CipherAlgorithm::kAes256Ecb);
  if (ecb == nullptr) return fail(EOPNOTSUPP, "OpenSSL offers no AES-256-ECB");
  auto encryptor = evp::keyed_cipher_context(ecb, key, /*encrypt=*/true);
  if (!encryptor) return std::unexpected(std::move(encryptor).error());
  auto decryptor = evp::keyed_cipher_context(ecb, key, /*encrypt=*/false);
  if (!decryptor) return std::unexpected(std::move(decryptor).error());
  return Aes256BlockCipher(std::make_unique<Pools>(encryptor->release(), decryptor->release()));
}

Aes256BlockCipher::Aes256BlockCipher(std::unique_ptr<Pools> pools) : pools_(std::move(pools)) {}
Aes256BlockCipher::Aes256BlockCipher(Aes256BlockCipher&&) noexcept = default;
Aes256BlockCipher& Aes256BlockCipher::operator=(Aes256BlockCipher&&) noexcept = default;
Aes256BlockCipher::~Aes256BlockCipher() = default;

Status Aes256BlockCipher::encrypt(ByteSpan in, MutableByteSpan out) const {
  return run_ecb(pools_->encryptors, in, out);
}

Status Aes256BlockCipher::decrypt(ByteSpan in, MutableByteSpan out) const {
  return run_ecb(pools_->decryptors, in, out);
}

}  // namespace ecfs::crypto
