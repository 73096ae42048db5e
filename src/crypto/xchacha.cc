#include "crypto/xchacha.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cassert>
#include <cstring>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace ecfs::crypto {

namespace {

// "expand 32-byte k", the constant words of every 256-bit-key ChaCha state.
constexpr uint32_t kSigma[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};

// Written as macros so that the same text serves scalar words and GCC
// vector types (one lane per ChaCha block).
#define ECFS_CHACHA_ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define ECFS_CHACHA_QUARTER_ROUND(a, b, c, d) \
  do {                                        \
    a += b;                                   \
    d ^= a;                                   \
    d = ECFS_CHACHA_ROTL(d, 16);              \
    c += d;                                   \
    b ^= c;                                   \
    b = ECFS_CHACHA_ROTL(b, 12);              \
    a += b;                                   \
    d ^= a;                                   \
    d = ECFS_CHACHA_ROTL(d, 8);               \
    c += d;                                   \
    b ^= c;                                   \
    b = ECFS_CHACHA_ROTL(b, 7);               \
  } while (0)

// The ChaCha permutation: `rounds` rounds, alternating column and diagonal
// rounds (Bernstein 2008, section 2).
template <typename V>
[[gnu::always_inline]] inline void permute(V* x, int rounds) {
  for (int i = 0; i < rounds; i += 2) {
    ECFS_CHACHA_QUARTER_ROUND(x[0], x[4], x[8], x[12]);
    ECFS_CHACHA_QUARTER_ROUND(x[1], x[5], x[9], x[13]);
    ECFS_CHACHA_QUARTER_ROUND(x[2], x[6], x[10], x[14]);
    ECFS_CHACHA_QUARTER_ROUND(x[3], x[7], x[11], x[15]);
    ECFS_CHACHA_QUARTER_ROUND(x[0], x[5], x[10], x[15]);
    ECFS_CHACHA_QUARTER_ROUND(x[1], x[6], x[11], x[12]);
    ECFS_CHACHA_QUARTER_ROUND(x[2], x[7], x[8], x[13]);
    ECFS_CHACHA_QUARTER_ROUND(x[3], x[4], x[9], x[14]);
  }
}

#undef ECFS_CHACHA_QUARTER_ROUND
#undef ECFS_CHACHA_ROTL

// Keystream for kLanes consecutive blocks starting at the counter in
// state[12..13], computed with one vector lane per block.
template <typename V, int kLanes>
[[gnu::always_inline]] inline void keystream_lanes(const uint32_t state[16], int rounds,
                                                   uint8_t* out) {
  V input[16];
  for (int i = 0; i < 16; ++i) input[i] = V{} + state[i];
  const uint64_t counter = state[12] | static_cast<uint64_t>(state[13]) << 32;
  for (int lane = 0; lane < kLanes; ++lane) {
    const uint64_t block = counter + static_cast<uint64_t>(lane);
    input[12][lane] = static_cast<uint32_t>(block);
    input[13][lane] = static_cast<uint32_t>(block >> 32);
  }
  V x[16];
  for (int i = 0; i < 16; ++i) x[i] = input[i];
  permute(x, rounds);
  uint32_t words[16][kLanes];
  for (int i = 0; i < 16; ++i) {
    x[i] += input[i];
    std::memcpy(words[i], &x[i], sizeof(V));
  }
  for (int lane = 0; lane < kLanes; ++lane) {
    for (int i = 0; i < 16; ++i) store_le32(out + kChaChaBlockSize * lane + 4 * i, words[i][lane]);
  }
  secure_zero({reinterpret_cast<uint8_t*>(words), sizeof(words)});
}

typedef uint32_t Lanes4 __attribute__((vector_size(16)));

// Four blocks at once. 16-byte vectors are SSE2 on x86-64 (always present)
// and NEON on AArch64; elsewhere GCC lowers them to scalar code.
void keystream4(const uint32_t state[16], int rounds, uint8_t* out) {
  keystream_lanes<Lanes4, 4>(state, rounds, out);
}

#if defined(__x86_64__)
bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// Rotations by whole bytes are byte shuffles (one instruction instead of
// shift, shift, or); 12 and 7 need the shifts.
#define ECFS_AVX2_ROTL(v, n) \
  _mm256_or_si256(_mm256_slli_epi32(v, n), _mm256_srli_epi32(v, 32 - (n)))
#define ECFS_AVX2_QUARTER_ROUND(a, b, c, d)                 \
  do {                                                      \
    a = _mm256_add_epi32(a, b);                             \
    d = _mm256_shuffle_epi8(_mm256_xor_si256(d, a), rot16); \
    c = _mm256_add_epi32(c, d);                             \
    b = _mm256_xor_si256(b, c);                             \
    b = ECFS_AVX2_ROTL(b, 12);                              \
    a = _mm256_add_epi32(a, b);                             \
    d = _mm256_shuffle_epi8(_mm256_xor_si256(d, a), rot8);  \
    c = _mm256_add_epi32(c, d);                             \
    b = _mm256_xor_si256(b, c);                             \
    b = ECFS_AVX2_ROTL(b, 7);                               \
  } while (0)

// Transposes eight vectors holding word w of blocks 0..7 (w = first..first+7)
// into, for each block, its eight words, and XORs them into `out`.
__attribute__((target("avx2"))) inline void transpose_xor(const __m256i* a, const uint8_t* in,
                                                          uint8_t* out) {
  const __m256i t0 = _mm256_unpacklo_epi32(a[0], a[1]), t1 = _mm256_unpackhi_epi32(a[0], a[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(a[2], a[3]), t3 = _mm256_unpackhi_epi32(a[2], a[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(a[4], a[5]), t5 = _mm256_unpackhi_epi32(a[4], a[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(a[6], a[7]), t7 = _mm256_unpackhi_epi32(a[6], a[7]);
  // u[k]: the words from a[0..3] of block k (low half) and of block k + 4
  // (high half); v[k]: the same from a[4..7].
  const __m256i u[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                        _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
  const __m256i v[4] = {_mm256_unpacklo_epi64(t4, t6), _mm256_unpackhi_epi64(t4, t6),
                        _mm256_unpacklo_epi64(t5, t7), _mm256_unpackhi_epi64(t5, t7)};
  for (int k = 0; k < 4; ++k) {
    // Block k from the low 128-bit halves, block k + 4 from the high ones.
    const __m256i low = _mm256_permute2x128_si256(u[k], v[k], 0x20);
    const __m256i high = _mm256_permute2x128_si256(u[k], v[k], 0x31);
    uint8_t* block_k = out + kChaChaBlockSize * k;
    uint8_t* block_k4 = out + kChaChaBlockSize * (k + 4);
    const uint8_t* in_k = in + kChaChaBlockSize * k;
    const uint8_t* in_k4 = in + kChaChaBlockSize * (k + 4);
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(block_k),
        _mm256_xor_si256(low, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in_k))));
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(block_k4),
        _mm256_xor_si256(high, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in_k4))));
  }
}

// out = in XOR the keystream of the eight blocks starting at the counter in
// state[12..13]: 512 bytes, one 32-bit lane per block, transposed in
// registers straight into the XOR (no keystream buffer).
__attribute__((target("avx2"))) void xor8_avx2(const uint32_t state[16], int rounds,
                                               const uint8_t* in, uint8_t* out) {
  const __m256i rot16 = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3,
                                         0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  const __m256i rot8 = _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0,
                                        1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
  __m256i input[16];
  for (int i = 0; i < 16; ++i) input[i] = _mm256_set1_epi32(static_cast<int>(state[i]));
  alignas(32) uint32_t counter_low[8], counter_high[8];
  const uint64_t counter = state[12] | static_cast<uint64_t>(state[13]) << 32;
  for (int lane = 0; lane < 8; ++lane) {
    counter_low[lane] = static_cast<uint32_t>(counter + lane);
    counter_high[lane] = static_cast<uint32_t>((counter + lane) >> 32);
  }
  input[12] = _mm256_load_si256(reinterpret_cast<const __m256i*>(counter_low));
  input[13] = _mm256_load_si256(reinterpret_cast<const __m256i*>(counter_high));

  __m256i x[16];
  for (int i = 0; i < 16; ++i) x[i] = input[i];
  for (int i = 0; i < rounds; i += 2) {
    ECFS_AVX2_QUARTER_ROUND(x[0], x[4], x[8], x[12]);
    ECFS_AVX2_QUARTER_ROUND(x[1], x[5], x[9], x[13]);
    ECFS_AVX2_QUARTER_ROUND(x[2], x[6], x[10], x[14]);
    ECFS_AVX2_QUARTER_ROUND(x[3], x[7], x[11], x[15]);
    ECFS_AVX2_QUARTER_ROUND(x[0], x[5], x[10], x[15]);
    ECFS_AVX2_QUARTER_ROUND(x[1], x[6], x[11], x[12]);
    ECFS_AVX2_QUARTER_ROUND(x[2], x[7], x[8], x[13]);
    ECFS_AVX2_QUARTER_ROUND(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 16; ++i) x[i] = _mm256_add_epi32(x[i], input[i]);
  transpose_xor(x, in, out);                // words 0..7 of each block
  transpose_xor(x + 8, in + 32, out + 32);  // words 8..15
}

#undef ECFS_AVX2_QUARTER_ROUND
#undef ECFS_AVX2_ROTL
#endif

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

void advance_counter(uint32_t state[16], uint64_t blocks) {
  const uint64_t counter = (state[12] | static_cast<uint64_t>(state[13]) << 32) + blocks;
  state[12] = static_cast<uint32_t>(counter);
  state[13] = static_cast<uint32_t>(counter >> 32);
}

}  // namespace

std::array<uint8_t, kChaChaBlockSize> chacha_block(const std::array<uint32_t, 16>& state,
                                                   int rounds) {
  uint32_t x[16];
  std::copy(state.begin(), state.end(), x);
  permute(x, rounds);
  std::array<uint8_t, kChaChaBlockSize> out;
  for (int i = 0; i < 16; ++i) store_le32(out.data() + 4 * i, x[i] + state[i]);
  secure_zero({reinterpret_cast<uint8_t*>(x), sizeof(x)});
  return out;
}

void hchacha(ByteSpan key, ByteSpan nonce, int rounds, MutableByteSpan subkey) {
  assert(key.size() == kChaChaKeySize && nonce.size() == kHChaChaNonceSize);
  assert(subkey.size() == kChaChaKeySize);
  uint32_t x[16];
  for (int i = 0; i < 4; ++i) x[i] = kSigma[i];
  for (int i = 0; i < 8; ++i) x[4 + i] = load_le32(key.data() + 4 * i);
  for (int i = 0; i < 4; ++i) x[12 + i] = load_le32(nonce.data() + 4 * i);
  permute(x, rounds);
  // draft-irtf-cfrg-xchacha section 2.2: no feed-forward; the subkey is
  // words 0-3 then 12-15.
  for (int i = 0; i < 4; ++i) {
    store_le32(subkey.data() + 4 * i, x[i]);
    store_le32(subkey.data() + 16 + 4 * i, x[12 + i]);
  }
  secure_zero({reinterpret_cast<uint8_t*>(x), sizeof(x)});
}

void xchacha_xor(int rounds, ByteSpan key, ByteSpan nonce, uint64_t counter, ByteSpan in,
                 MutableByteSpan out) {
  assert(key.size() == kChaChaKeySize && nonce.size() == kXChaChaNonceSize);
  assert(in.size() == out.size());

  uint32_t state[16];
  {
    uint8_t subkey[kChaChaKeySize];
    hchacha(key, nonce.first(kHChaChaNonceSize), rounds, subkey);
    for (int i = 0; i < 4; ++i) state[i] = kSigma[i];
    for (int i = 0; i < 8; ++i) state[4 + i] = load_le32(subkey + 4 * i);
    secure_zero(subkey);
  }
  state[12] = static_cast<uint32_t>(counter);
  state[13] = static_cast<uint32_t>(counter >> 32);
  state[14] = load_le32(nonce.data() + 16);
  state[15] = load_le32(nonce.data() + 20);

  alignas(64) uint8_t keystream[8 * kChaChaBlockSize];
  size_t pos = 0;
  while (pos < in.size()) {
    const size_t blocks_left = (in.size() - pos + kChaChaBlockSize - 1) / kChaChaBlockSize;
    size_t blocks;
#if defined(__x86_64__)
    if (blocks_left >= 5 && cpu_has_avx2()) {
      if (in.size() - pos >= 8 * kChaChaBlockSize) {
        xor8_avx2(state, rounds, in.data() + pos, out.data() + pos);
        advance_counter(state, 8);
        pos += 8 * kChaChaBlockSize;
        continue;
      }
      // A tail of 257 to 511 bytes: eight blocks of keystream in one pass
      // beat a four-block pass plus single blocks.
      std::memset(keystream, 0, sizeof(keystream));
      xor8_avx2(state, rounds, keystream, keystream);
      blocks = 8;
    } else
#endif
        if (blocks_left >= 4) {
      keystream4(state, rounds, keystream);
      blocks = 4;
    } else {
      std::array<uint32_t, 16> block_state;
      std::copy(std::begin(state), std::end(state), block_state.begin());
      auto block = chacha_block(block_state, rounds);
      std::memcpy(keystream, block.data(), block.size());
      secure_zero(block);
      secure_zero({reinterpret_cast<uint8_t*>(block_state.data()), sizeof(block_state)});
      blocks = 1;
    }
    const size_t bytes = std::min(blocks * kChaChaBlockSize, in.size() - pos);
    xor_bytes(out.data() + pos, in.data() + pos, keystream, bytes);
    advance_counter(state, blocks);
    pos += bytes;
  }
  secure_zero(keystream);
  secure_zero({reinterpret_cast<uint8_t*>(state), sizeof(state)});
}

}  // namespace ecfs::crypto
