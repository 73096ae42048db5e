#include "crypto/nh.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cassert>
#include <cstring>

namespace ecfs::crypto {

namespace {

inline uint32_t word(const uint8_t* p) { return load_le32(p); }

// Adds NH over `len` bytes (whole 16-byte units) to `sums`. `key` points at
// the key word that pairs with the first unit; each unit advances it by four
// words, and pass i uses the words 4*i further on (Adiantum section 6.3; the
// kernel's nh_generic).
void nh_accumulate(const uint8_t* key, const uint8_t* message, size_t len,
                   uint64_t sums[kNhPasses]) {
  uint64_t s0 = sums[0], s1 = sums[1], s2 = sums[2], s3 = sums[3];
  for (; len >= kNhMessageUnit; len -= kNhMessageUnit) {
    const uint32_t m0 = word(message), m1 = word(message + 4);
    const uint32_t m2 = word(message + 8), m3 = word(message + 12);
    uint32_t k[16];
    for (int i = 0; i < 16; ++i) k[i] = word(key + 4 * i);
    s0 += static_cast<uint64_t>(m0 + k[0]) * (m2 + k[2]);
    s1 += static_cast<uint64_t>(m0 + k[4]) * (m2 + k[6]);
    s2 += static_cast<uint64_t>(m0 + k[8]) * (m2 + k[10]);
    s3 += static_cast<uint64_t>(m0 + k[12]) * (m2 + k[14]);
    s0 += static_cast<uint64_t>(m1 + k[1]) * (m3 + k[3]);
    s1 += static_cast<uint64_t>(m1 + k[5]) * (m3 + k[7]);
    s2 += static_cast<uint64_t>(m1 + k[9]) * (m3 + k[11]);
    s3 += static_cast<uint64_t>(m1 + k[13]) * (m3 + k[15]);
    key += kNhMessageUnit;
    message += kNhMessageUnit;
  }
  sums[0] = s0;
  sums[1] = s1;
  sums[2] = s2;
  sums[3] = s3;
}

#if defined(__x86_64__)
bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// The same sums with AVX2, two 16-byte units per step (one per 128-bit
// half). For pass p the key words of unit u start at word 4u + 4p, so one
// 32-byte load at word 4u + 4p serves both units. Within each half,
// T = M + K, then the products T0*T2 and T1*T3 come from one unsigned 32x32
// -> 64-bit multiply of the shuffles (T0, T1) and (T2, T3).
__attribute__((target("avx2"))) void nh_accumulate_avx2(const uint8_t* key, const uint8_t* message,
                                                        size_t len, uint64_t sums[kNhPasses]) {
  __m256i pass[kNhPasses];
  for (auto& p : pass) p = _mm256_setzero_si256();
  for (; len >= 2 * kNhMessageUnit; len -= 2 * kNhMessageUnit) {
    const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(message));
    for (size_t p = 0; p < kNhPasses; ++p) {
      const __m256i k = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(key + 16 * p));
      const __m256i t = _mm256_add_epi32(m, k);
      const __m256i t01 = _mm256_shuffle_epi32(t, 0x10);  // T0 and T1 in the low words
      const __m256i t23 = _mm256_shuffle_epi32(t, 0x32);  // T2 and T3 in the low words
      pass[p] = _mm256_add_epi64(pass[p], _mm256_mul_epu32(t01, t23));
    }
    key += 2 * kNhMessageUnit;
    message += 2 * kNhMessageUnit;
  }
  // An odd last unit: the same with one 128-bit half.
  __m128i last[kNhPasses] = {};
  if (len != 0) {
    const __m128i m = _mm_loadu_si128(reinterpret_cast<const __m128i*>(message));
    for (size_t p = 0; p < kNhPasses; ++p) {
      const __m128i k = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16 * p));
      const __m128i t = _mm_add_epi32(m, k);
      last[p] = _mm_mul_epu32(_mm_shuffle_epi32(t, 0x10), _mm_shuffle_epi32(t, 0x32));
    }
  }
  alignas(32) uint64_t lanes[6];
  for (size_t p = 0; p < kNhPasses; ++p) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), pass[p]);
    _mm_store_si128(reinterpret_cast<__m128i*>(lanes + 4), last[p]);
    sums[p] += lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5];
  }
}
#endif

void nh_sums(const uint8_t* key, const uint8_t* message, size_t len, uint64_t sums[kNhPasses]) {
#if defined(__x86_64__)
  if (cpu_has_avx2()) {
    nh_accumulate_avx2(key, message, len, sums);
    return;
  }
#endif
  nh_accumulate(key, message, len, sums);
}

}  // namespace

std::array<uint64_t, kNhPasses> nh(ByteSpan key, ByteSpan message) {
  assert(key.size() == kNhKeyBytes);
  assert(message.size() <= kNhMessageBytes && message.size() % kNhMessageUnit == 0);
  std::array<uint64_t, kNhPasses> sums{};
  nh_sums(key.data(), message.data(), message.size(), sums.data());
  return sums;
}

std::array<uint64_t, kNhPasses> nh_portable(ByteSpan key, ByteSpan message) {
  assert(key.size() == kNhKeyBytes);
  assert(message.size() <= kNhMessageBytes && message.size() % kNhMessageUnit == 0);
  std::array<uint64_t, kNhPasses> sums{};
  nh_accumulate(key.data(), message.data(), message.size(), sums.data());
  return sums;
}

NhPoly1305Key::NhPoly1305Key(ByteSpan key)
    : poly_key_(key.first(kPoly1305KeySize)),
      nh_key_(SecretBytes::copy_of(key.subspan(kPoly1305KeySize))) {
  assert(key.size() == kNhPoly1305KeyBytes);
}

std::array<uint8_t, 16> nhpoly1305(const NhPoly1305Key& key, ByteSpan message) {
  const uint8_t* nh_key = key.nh_key().data();
  Poly1305State state;
  size_t offset = 0;
  while (offset < message.size()) {
    const size_t piece = std::min(kNhMessageBytes, message.size() - offset);
    const size_t whole = piece - piece % kNhMessageUnit;
    uint64_t sums[kNhPasses] = {0, 0, 0, 0};
    nh_sums(nh_key, message.data() + offset, whole, sums);
    if (whole < piece) {
      // The kernel zero-pads the final partial unit (crypto_nhpoly1305_final).
      uint8_t unit[kNhMessageUnit] = {};
      std::memcpy(unit, message.data() + offset + whole, piece - whole);
      nh_accumulate(nh_key + whole, unit, kNhMessageUnit, sums);
    }
    uint8_t nh_hash[kNhHashBytes];
    for (size_t i = 0; i < kNhPasses; ++i) store_le64(nh_hash + 8 * i, sums[i]);
    state.absorb_blocks(key.poly_key(), nh_hash);
    offset += piece;
  }
  return state.emit();
}

}  // namespace ecfs::crypto
