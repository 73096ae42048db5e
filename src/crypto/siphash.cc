#include "crypto/siphash.h"

#include <bit>
#include <cstdlib>

namespace ecfs::crypto {
namespace {

// SipHash-2-4 as specified in Aumasson & Bernstein, "SipHash: a fast
// short-input PRF" (INDOCRYPT 2012), §2. Written out by hand rather than
// through OpenSSL's EVP_MAC "SIPHASH": fscrypt hashes a single u64 inode
// number per file (fs/crypto/keysetup.c fscrypt_hash_inode_number), and for
// such short inputs the EVP_MAC setup (context, key, output-size parameter)
// costs far more than the hash itself; bench/crypto_bench.cc measures both.
// The function uses only additions, rotations and XORs, so it runs in
// constant time.

struct SipState {
  uint64_t v0, v1, v2, v3;

  void round() {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }

  // c = 2 compression rounds per message word.
  void absorb(uint64_t word) {
    v3 ^= word;
    round();
    round();
    v0 ^= word;
  }

  // d = 4 finalization rounds.
  uint64_t finish() {
    v2 ^= 0xff;
    round();
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

}  // namespace

SipHashKey SipHashKey::from_bytes(ByteSpan key16) {
  // REQUIRES: key16.size() == 16. Callers pass 16 bytes of HKDF output
  // (fscrypt context bytes 5 and 7); any other size is a programming error,
  // and a silently zero or truncated key would be worse than stopping.
  if (key16.size() != 16) std::abort();
  return SipHashKey{.k0 = load_le64(key16.data()), .k1 = load_le64(key16.data() + 8)};
}

uint64_t siphash_2_4(const SipHashKey& key, ByteSpan message) {
  // Initialization constants: "somepseudorandomlygeneratedbytes" (§2.1).
  SipState s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL,
             key.k0 ^ 0x6c7967656e657261ULL, key.k1 ^ 0x7465646279746573ULL};
  const size_t whole = message.size() / 8 * 8;
  for (size_t i = 0; i < whole; i += 8) s.absorb(load_le64(message.data() + i));
  // The last word holds the remaining 0..7 bytes, little-endian, with the
  // message length mod 256 in its top byte.
  uint64_t last = static_cast<uint64_t>(message.size() & 0xff) << 56;
  for (size_t i = whole; i < message.size(); ++i) {
    last |= static_cast<uint64_t>(message[i]) << (8 * (i - whole));
  }
  s.absorb(last);
  return s.finish();
}

}  // namespace ecfs::crypto
