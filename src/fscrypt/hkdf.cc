#include "fscrypt/hkdf.h"

#include <array>

namespace ecfs::fscrypt {

Result<FscryptHkdf> FscryptHkdf::create(ByteSpan master_key) {
  // fs/crypto/hkdf.c `fscrypt_init_hkdf`: no salt, which RFC 5869 §2.2
  // defines as HashLen zero bytes. The master key is already high-entropy,
  // so a salt would add nothing.
  auto hkdf = crypto::HkdfSha512::extract({}, master_key);
  if (!hkdf) return std::unexpected(std::move(hkdf).error());
  return FscryptHkdf(std::move(*hkdf));
}

Status FscryptHkdf::expand(HkdfContext context, ByteSpan info, MutableByteSpan out) const {
  // hkdf.c `fscrypt_hkdf_expand`: prefix[0..7] = "fscrypt\0", prefix[8] =
  // context. The NUL keeps the prefix unambiguous; the context byte
  // separates the purposes.
  static_assert(sizeof(kHkdfInfoPrefix) == 8);
  std::array<uint8_t, 9> prefix{};
  for (size_t i = 0; i < sizeof(kHkdfInfoPrefix); ++i) {
    prefix[i] = static_cast<uint8_t>(kHkdfInfoPrefix[i]);
  }
  prefix[8] = static_cast<uint8_t>(context);
  return hkdf_.expand({ByteSpan(prefix), info}, out);
}

Result<crypto::SecretBytes> FscryptHkdf::derive(HkdfContext context, ByteSpan info,
                                                size_t length) const {
  crypto::SecretBytes out(length);
  ECFS_TRY(expand(context, info, out.mutable_span()));
  return out;
}

}  // namespace ecfs::fscrypt
