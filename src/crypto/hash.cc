#include "crypto/hash.h"

#include <cstdlib>

#include "crypto/evp.h"

namespace ecfs::crypto {
namespace {

// EVP_Digest fails only when allocation fails or the digest is missing from
// the default provider; neither leaves a sensible value to return, and a
// wrong hash would silently corrupt keys, so it aborts.
template <size_t N>
std::array<uint8_t, N> digest(const EVP_MD* md, ByteSpan data) {
  std::array<uint8_t, N> out;
  unsigned int len = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1 ||
      len != N) {
    std::abort();
  }
  return out;
}

}  // namespace

std::array<uint8_t, 32> sha256(ByteSpan data) { return digest<32>(evp::sha256(), data); }

std::array<uint8_t, 64> sha512(ByteSpan data) { return digest<64>(evp::sha512(), data); }

}  // namespace ecfs::crypto
