#include "crypto/aes_ecb.h"

#include <climits>
#include <string>

#include "crypto/evp.h"

namespace ecfs::crypto {

// Called once per file open under a v1 policy (fs/crypto/keysetup_v1.c
// derive_key_aes), so a fresh context per call is cheap enough and keeps no
// key schedule alive afterwards.
Status aes128_ecb_encrypt(ByteSpan key, ByteSpan in, MutableByteSpan out) {
  if (key.size() != 16) {
    return fail(EINVAL, "AES-128-ECB takes a 16-byte key, got " + std::to_string(key.size()));
  }
  if (in.size() != out.size()) return fail(EINVAL, "AES-128-ECB: input and output sizes differ");
  if (in.size() % 16 != 0 || in.size() > INT_MAX - 16) {
    return fail(EINVAL, "AES-128-ECB takes whole 16-byte blocks, got " + std::to_string(in.size()) +
                            " bytes");
  }
  if (evp::partially_overlapping(in.data(), out.data(), in.size())) {
    return fail(EINVAL, "AES-128-ECB: input and output partially overlap");
  }
  if (in.empty()) return ok();
  auto ctx = evp::keyed_cipher_context(evp::cipher(evp::CipherAlgorithm::kAes128Ecb), key,
                                       /*encrypt=*/true);
  if (!ctx) return std::unexpected(std::move(ctx).error());
  int update_len = 0;
  int final_len = 0;
  if (EVP_EncryptUpdate(ctx->get(), out.data(), &update_len, in.data(),
                        static_cast<int>(in.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx->get(), out.data() + update_len, &final_len) != 1 ||
      static_cast<size_t>(update_len + final_len) != in.size()) {
    return evp::fail_openssl(EIO, "AES-128-ECB encryption failed");
  }
  return ok();
}

}  // namespace ecfs::crypto
