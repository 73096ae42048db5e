#include "crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <string>

#include "crypto/hkdf_internal.h"

namespace ecfs::crypto {
namespace internal {
namespace {

constexpr size_t kMaxHashSize = EVP_MAX_MD_SIZE;

// A new HMAC context over `digest`, keyed with `key`.
Result<evp::MacCtxPtr> keyed_hmac(const EVP_MD* digest, ByteSpan key) {
  if (evp::hmac() == nullptr) return evp::fail_openssl(EOPNOTSUPP, "HMAC is not available");
  evp::MacCtxPtr ctx(EVP_MAC_CTX_new(evp::hmac()));
  if (!ctx) return evp::fail_openssl(ENOMEM, "cannot allocate an HMAC context");
  // OSSL_PARAM wants a mutable pointer; OpenSSL only reads the name.
  std::string name = EVP_MD_get0_name(digest);
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.data(), 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1) {
    return evp::fail_openssl(EINVAL, "cannot key HMAC");
  }
  return ctx;
}

}  // namespace

Hkdf::Hkdf(SecretBytes prk, size_t hash_size, EVP_MAC_CTX* keyed_hmac)
    : prk_(std::move(prk)), hash_size_(hash_size), hmacs_(keyed_hmac) {}

Result<std::unique_ptr<Hkdf>> Hkdf::extract(const EVP_MD* digest, ByteSpan salt,
                                            ByteSpan input_key_material) {
  if (digest == nullptr) return fail(EOPNOTSUPP, "HKDF digest is not available");
  const size_t hash_size = static_cast<size_t>(EVP_MD_get_size(digest));
  // RFC 5869 §2.2: "if not provided, [salt] is set to a string of HashLen
  // zeros". fscrypt always takes this path (fs/crypto/hkdf.c).
  const std::array<uint8_t, kMaxHashSize> zeros{};
  if (salt.empty()) salt = ByteSpan(zeros.data(), hash_size);

  auto extractor = keyed_hmac(digest, salt);
  if (!extractor) return std::unexpected(std::move(extractor).error());
  SecretBytes prk(hash_size);
  size_t prk_len = 0;
  if (EVP_MAC_update(extractor->get(), input_key_material.data(), input_key_material.size()) != 1 ||
      EVP_MAC_final(extractor->get(), prk.data(), &prk_len, prk.size()) != 1 ||
      prk_len != hash_size) {
    return evp::fail_openssl(EIO, "HKDF-Extract failed");
  }

  auto expander = keyed_hmac(digest, prk.span());
  if (!expander) return std::unexpected(std::move(expander).error());
  return std::make_unique<Hkdf>(std::move(prk), hash_size, expander->release());
}

Status Hkdf::expand(std::initializer_list<ByteSpan> info_parts, MutableByteSpan out) const {
  if (out.size() > 255 * hash_size_) {
    return fail(EINVAL, "HKDF-Expand can produce at most " + std::to_string(255 * hash_size_) +
                            " bytes, asked for " + std::to_string(out.size()));
  }
  if (out.empty()) return ok();
  auto lease = hmacs_.acquire();
  if (!lease) return std::unexpected(std::move(lease).error());
  EVP_MAC_CTX* ctx = lease->get();

  // T(0) = empty; T(i) = HMAC-Hash(PRK, T(i-1) | info | i); OKM = the first
  // L bytes of T(1) | T(2) | ... (RFC 5869 §2.3).
  std::array<uint8_t, kMaxHashSize> block;
  Status status = ok();
  size_t done = 0;
  for (unsigned counter = 1; done < out.size(); ++counter) {
    // A null key restarts HMAC from the state keyed with the PRK.
    bool good = EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1;
    if (good && counter > 1) good = EVP_MAC_update(ctx, block.data(), hash_size_) == 1;
    for (ByteSpan part : info_parts) {
      if (good && !part.empty()) good = EVP_MAC_update(ctx, part.data(), part.size()) == 1;
    }
    const uint8_t counter_byte = static_cast<uint8_t>(counter);
    size_t block_len = 0;
    if (good) good = EVP_MAC_update(ctx, &counter_byte, 1) == 1;
    if (good) good = EVP_MAC_final(ctx, block.data(), &block_len, block.size()) == 1;
    if (!good || block_len != hash_size_) {
      status = evp::fail_openssl(EIO, "HKDF-Expand failed");
      break;
    }
    const size_t n = std::min(hash_size_, out.size() - done);
    std::copy_n(block.begin(), n, out.begin() + done);
    done += n;
  }
  secure_zero(block);
  if (!status) secure_zero(out);
  return status;
}

}  // namespace internal

struct HkdfSha512::State {
  std::unique_ptr<internal::Hkdf> hkdf;
};

HkdfSha512::HkdfSha512(std::unique_ptr<State> state) : state_(std::move(state)) {}
HkdfSha512::HkdfSha512(HkdfSha512&&) noexcept = default;
HkdfSha512& HkdfSha512::operator=(HkdfSha512&&) noexcept = default;
HkdfSha512::~HkdfSha512() = default;

Result<HkdfSha512> HkdfSha512::extract(ByteSpan salt, ByteSpan input_key_material) {
  auto hkdf = internal::Hkdf::extract(evp::sha512(), salt, input_key_material);
  if (!hkdf) return std::unexpected(std::move(hkdf).error());
  return HkdfSha512(std::make_unique<State>(State{std::move(*hkdf)}));
}

Status HkdfSha512::expand(std::initializer_list<ByteSpan> info_parts, MutableByteSpan out) const {
  if (!state_) return fail(EINVAL, "HKDF-Expand on a moved-from HkdfSha512");
  return state_->hkdf->expand(info_parts, out);
}

}  // namespace ecfs::crypto
