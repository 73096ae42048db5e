// Key checks shared by the XTS modes (aes_xts.cc, sm4_xts.cc). Private to
// src/crypto.
#pragma once

#include <openssl/crypto.h>

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::crypto {

// IEEE Std 1619-2018 (and NIST SP 800-38E) allow at most 2^20 blocks per
// data unit; OpenSSL enforces the same limit.
inline constexpr size_t kXtsMaxMessageSize = size_t{1} << 24;

// An XTS key is two cipher keys, key1 (data) || key2 (tweak). Equal halves
// turn XTS into a mode with a known weakness (Rogaway, "Efficient
// Instantiations of Tweakable Blockciphers", 2004, §6), so OpenSSL's FIPS
// provider rejects them and so does ecfs: EINVAL. The comparison is
// constant-time.
inline Status check_xts_key_halves(std::string_view mode_name, ByteSpan key) {
  const size_t half = key.size() / 2;
  if (CRYPTO_memcmp(key.data(), key.data() + half, half) == 0) {
    return fail(EINVAL, std::string(mode_name) + " key halves must differ");
  }
  return ok();
}

}  // namespace ecfs::crypto
