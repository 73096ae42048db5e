#include "crypto/polyval.h"

#include <cassert>
#include <cstring>

#if defined(__x86_64__)
#include <emmintrin.h>
#include <wmmintrin.h>
#endif

namespace ecfs::crypto {

namespace {

__extension__ typedef unsigned __int128 u128;

struct Element {
  uint64_t lo, hi;
};

Element load(const uint8_t* p) { return {load_le64(p), load_le64(p + 8)}; }

void store(uint8_t* p, Element e) {
  store_le64(p, e.lo);
  store_le64(p + 8, e.hi);
}

// Bits whose position is congruent to k mod 5, in the low and high halves
// of a 128-bit word.
constexpr uint64_t class_mask(int k, int offset) {
  uint64_t mask = 0;
  for (int bit = 0; bit < 64; ++bit) {
    if ((bit + offset) % 5 == k) mask |= uint64_t{1} << bit;
  }
  return mask;
}

constexpr uint64_t kClassLow[5] = {class_mask(0, 0), class_mask(1, 0), class_mask(2, 0),
                                   class_mask(3, 0), class_mask(4, 0)};
constexpr uint64_t kClassHigh[5] = {class_mask(0, 64), class_mask(1, 64), class_mask(2, 64),
                                    class_mask(3, 64), class_mask(4, 64)};

// Carry-less 64x64 -> 128-bit product without secret-dependent branches or
// table lookups. Each operand is split into five parts holding only the bits
// at positions = i (mod 5). An integer product of two parts then has at most
// 13 terms landing on any bit position, and 13 < 2^5, so the carries out of a
// position never reach the next position of the same class: the bit kept at
// each position is the parity of its terms, i.e. the carry-less result.
u128 clmul64(uint64_t a, uint64_t b) {
  const uint64_t a0 = a & kClassLow[0], a1 = a & kClassLow[1], a2 = a & kClassLow[2],
                 a3 = a & kClassLow[3], a4 = a & kClassLow[4];
  const uint64_t b0 = b & kClassLow[0], b1 = b & kClassLow[1], b2 = b & kClassLow[2],
                 b3 = b & kClassLow[3], b4 = b & kClassLow[4];
  const auto mul = [](uint64_t x, uint64_t y) { return static_cast<u128>(x) * y; };
  // Class k collects the products whose classes add up to k (mod 5).
  const u128 z0 = mul(a0, b0) ^ mul(a1, b4) ^ mul(a2, b3) ^ mul(a3, b2) ^ mul(a4, b1);
  const u128 z1 = mul(a0, b1) ^ mul(a1, b0) ^ mul(a2, b4) ^ mul(a3, b3) ^ mul(a4, b2);
  const u128 z2 = mul(a0, b2) ^ mul(a1, b1) ^ mul(a2, b0) ^ mul(a3, b4) ^ mul(a4, b3);
  const u128 z3 = mul(a0, b3) ^ mul(a1, b2) ^ mul(a2, b1) ^ mul(a3, b0) ^ mul(a4, b4);
  const u128 z4 = mul(a0, b4) ^ mul(a1, b3) ^ mul(a2, b2) ^ mul(a3, b1) ^ mul(a4, b0);
  const auto keep = [](u128 z, int k) {
    return z & (static_cast<u128>(kClassHigh[k]) << 64 | kClassLow[k]);
  };
  return keep(z0, 0) | keep(z1, 1) | keep(z2, 2) | keep(z3, 3) | keep(z4, 4);
}

// Montgomery reduction: (c3:c2:c1:c0) * x^-128 mod P. Adding q*P for a
// q < x^128 that clears the low 128 bits leaves a multiple of x^128 (the low
// words go to zero one 64-bit word at a time: P = 1 mod x^64, so q's next
// word is just the current low word), and dividing by x^128 is a shift. The
// other terms of P, x^121 + x^126 + x^127 + x^128, are x^64 times
// x^57 + x^62 + x^63 and x^64.
Element reduce(uint64_t c0, uint64_t c1, uint64_t c2, uint64_t c3) {
  c1 ^= (c0 << 57) ^ (c0 << 62) ^ (c0 << 63);
  c2 ^= c0 ^ (c0 >> 1) ^ (c0 >> 2) ^ (c0 >> 7);
  c2 ^= (c1 << 57) ^ (c1 << 62) ^ (c1 << 63);
  c3 ^= c1 ^ (c1 >> 1) ^ (c1 >> 2) ^ (c1 >> 7);
  return {c2, c3};
}

// dot(a, b) with one Karatsuba level: three 64-bit carry-less products.
Element dot(Element a, Element b) {
  const u128 low = clmul64(a.lo, b.lo);
  const u128 high = clmul64(a.hi, b.hi);
  const u128 mid = clmul64(a.lo ^ a.hi, b.lo ^ b.hi) ^ low ^ high;
  const uint64_t c0 = static_cast<uint64_t>(low);
  const uint64_t c1 = static_cast<uint64_t>(low >> 64) ^ static_cast<uint64_t>(mid);
  const uint64_t c2 = static_cast<uint64_t>(high) ^ static_cast<uint64_t>(mid >> 64);
  const uint64_t c3 = static_cast<uint64_t>(high >> 64);
  return reduce(c0, c1, c2, c3);
}

void absorb_portable(const PolyvalKey& key, uint64_t& lo, uint64_t& hi, const uint8_t* data,
                     size_t blocks) {
  const Element h = load(key.power(0));
  Element s{lo, hi};
  for (size_t i = 0; i < blocks; ++i) {
    const Element x = load(data + kPolyvalBlockSize * i);
    s = dot({s.lo ^ x.lo, s.hi ^ x.hi}, h);
  }
  lo = s.lo;
  hi = s.hi;
}

#if defined(__x86_64__)

bool cpu_has_pclmul() {
  static const bool has = __builtin_cpu_supports("pclmul");
  return has;
}

// Unreduced 256-bit product accumulated as low, middle and high parts
// (schoolbook: the middle part is a.lo*b.hi + a.hi*b.lo).
struct Wide {
  __m128i low, mid, high;
};

__attribute__((target("pclmul"))) inline void accumulate_product(Wide& acc, __m128i a, __m128i b) {
  acc.low = _mm_xor_si128(acc.low, _mm_clmulepi64_si128(a, b, 0x00));
  acc.high = _mm_xor_si128(acc.high, _mm_clmulepi64_si128(a, b, 0x11));
  acc.mid = _mm_xor_si128(acc.mid, _mm_clmulepi64_si128(a, b, 0x01));
  acc.mid = _mm_xor_si128(acc.mid, _mm_clmulepi64_si128(a, b, 0x10));
}

// The reduction of reduce() above, with the shifts by 57, 62 and 63 (and
// 7, 2, 1) done as one carry-less multiplication by x^57 + x^62 + x^63.
__attribute__((target("pclmul"))) inline __m128i reduce_wide(const Wide& acc) {
  const __m128i low = _mm_xor_si128(acc.low, _mm_slli_si128(acc.mid, 8));    // c1:c0
  const __m128i high = _mm_xor_si128(acc.high, _mm_srli_si128(acc.mid, 8));  // c3:c2
  const __m128i poly = _mm_set_epi64x(0, static_cast<int64_t>(0xc200000000000000ULL));
  // Step 1: c1 ^= low64(c0 * K); c2 ^= c0 ^ high64(c0 * K).
  __m128i t = _mm_clmulepi64_si128(low, poly, 0x00);
  __m128i u = _mm_xor_si128(_mm_shuffle_epi32(low, 0x4e), t);  // c1', c0 ^ t.hi
  // Step 2: the same with the new c1, into c2 and c3.
  t = _mm_clmulepi64_si128(u, poly, 0x00);
  const __m128i v = _mm_xor_si128(_mm_shuffle_epi32(u, 0x4e), t);
  return _mm_xor_si128(high, v);
}

__attribute__((target("pclmul"))) void absorb_pclmul(const PolyvalKey& key, uint64_t& lo,
                                                     uint64_t& hi, const uint8_t* data,
                                                     size_t blocks) {
  const auto power = [&key](size_t i) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(key.power(i)));
  };
  __m128i s = _mm_set_epi64x(static_cast<int64_t>(hi), static_cast<int64_t>(lo));

  // Eight blocks per reduction: S' = (S + X1)*H^8 + X2*H^7 + ... + X8*H.
  while (blocks >= PolyvalKey::kPowers) {
    Wide acc = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    for (size_t i = 0; i < PolyvalKey::kPowers; ++i) {
      __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + kPolyvalBlockSize * i));
      if (i == 0) x = _mm_xor_si128(x, s);
      accumulate_product(acc, x, power(PolyvalKey::kPowers - 1 - i));
    }
    s = reduce_wide(acc);
    data += kPolyvalBlockSize * PolyvalKey::kPowers;
    blocks -= PolyvalKey::kPowers;
  }
  for (; blocks > 0; --blocks, data += kPolyvalBlockSize) {
    Wide acc = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data));
    accumulate_product(acc, _mm_xor_si128(x, s), power(0));
    s = reduce_wide(acc);
  }

  alignas(16) uint64_t out[2];
  _mm_store_si128(reinterpret_cast<__m128i*>(out), s);
  lo = out[0];
  hi = out[1];
}

#endif  // __x86_64__

}  // namespace

PolyvalKey::PolyvalKey(ByteSpan h) : powers_(kPolyvalBlockSize * kPowers) {
  assert(h.size() == kPolyvalBlockSize);
  const Element base = load(h.data());
  Element power = base;
  for (size_t i = 0; i < kPowers; ++i) {
    store(powers_.data() + kPolyvalBlockSize * i, power);
    power = dot(power, base);
  }
}

void PolyvalState::absorb_blocks(const PolyvalKey& key, ByteSpan blocks) {
  assert(blocks.size() % kPolyvalBlockSize == 0);
#if defined(__x86_64__)
  if (cpu_has_pclmul()) {
    absorb_pclmul(key, lo_, hi_, blocks.data(), blocks.size() / kPolyvalBlockSize);
    return;
  }
#endif
  absorb_portable(key, lo_, hi_, blocks.data(), blocks.size() / kPolyvalBlockSize);
}

void PolyvalState::absorb_blocks_portable(const PolyvalKey& key, ByteSpan blocks) {
  assert(blocks.size() % kPolyvalBlockSize == 0);
  absorb_portable(key, lo_, hi_, blocks.data(), blocks.size() / kPolyvalBlockSize);
}

std::array<uint8_t, kPolyvalBlockSize> PolyvalState::digest() const {
  std::array<uint8_t, kPolyvalBlockSize> out;
  store(out.data(), {lo_, hi_});
  return out;
}

std::array<uint8_t, kPolyvalBlockSize> polyval_dot(ByteSpan a, ByteSpan b) {
  assert(a.size() == kPolyvalBlockSize && b.size() == kPolyvalBlockSize);
  std::array<uint8_t, kPolyvalBlockSize> out;
  store(out.data(), dot(load(a.data()), load(b.data())));
  return out;
}

bool polyval_uses_pclmul() {
#if defined(__x86_64__)
  return cpu_has_pclmul();
#else
  return false;
#endif
}

}  // namespace ecfs::crypto
