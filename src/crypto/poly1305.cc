#include "crypto/poly1305.h"

#include <cassert>
#include <cstring>

namespace ecfs::crypto {

namespace {

__extension__ typedef unsigned __int128 u128;

// RFC 8439 section 2.5.1: "r[3], r[7], r[11], and r[15] are required to
// have their top four bits clear ... r[4], r[8], and r[12] are required to
// have their bottom two bits clear". As two little-endian 64-bit words:
constexpr uint64_t kClampLow = 0x0ffffffc0fffffffULL;
constexpr uint64_t kClampHigh = 0x0ffffffc0ffffffcULL;

}  // namespace

Poly1305Key::Poly1305Key(ByteSpan r_bytes) : r_(kPoly1305KeySize) {
  assert(r_bytes.size() == kPoly1305KeySize);
  store_le64(r_.data(), load_le64(r_bytes.data()) & kClampLow);
  store_le64(r_.data() + 8, load_le64(r_bytes.data() + 8) & kClampHigh);
}

uint64_t Poly1305Key::r0() const { return load_le64(r_.data()); }
uint64_t Poly1305Key::r1() const { return load_le64(r_.data() + 8); }

// h is kept as h0 + h1*2^64 + h2*2^128 with h2 small (at most 6 between
// calls), only partially reduced mod p = 2^130 - 5. Multiplication by r uses
// 2^130 = 5 (mod p): because clamping makes r1 a multiple of 4,
// h1*r1*2^128 = h1*(5*r1/4) (mod p) exactly, so s1 = r1 + r1/4 folds the
// high partial products back without a second reduction pass.
void Poly1305State::absorb(const Poly1305Key& key, uint64_t m0, uint64_t m1, uint64_t hibit) {
  const uint64_t r0 = key.r0();
  const uint64_t r1 = key.r1();
  const uint64_t s1 = r1 + (r1 >> 2);

  u128 t = static_cast<u128>(h0_) + m0;
  h0_ = static_cast<uint64_t>(t);
  t = static_cast<u128>(h1_) + m1 + static_cast<uint64_t>(t >> 64);
  h1_ = static_cast<uint64_t>(t);
  h2_ += hibit + static_cast<uint64_t>(t >> 64);

  // r0 < 2^60 and s1 < 2^61 after clamping, h2 <= 7: none of these overflow.
  const u128 d0 = static_cast<u128>(h0_) * r0 + static_cast<u128>(h1_) * s1;
  u128 d1 = static_cast<u128>(h0_) * r1 + static_cast<u128>(h1_) * r0 + static_cast<u128>(h2_) * s1;
  uint64_t d2 = h2_ * r0;

  d1 += d0 >> 64;
  d2 += static_cast<uint64_t>(d1 >> 64);
  h0_ = static_cast<uint64_t>(d0);
  h1_ = static_cast<uint64_t>(d1);

  // Fold bits 130 and up back in: x*2^130 = 5x (mod p).
  const uint64_t carry = (d2 >> 2) * 5;
  h2_ = d2 & 3;
  t = static_cast<u128>(h0_) + carry;
  h0_ = static_cast<uint64_t>(t);
  t = static_cast<u128>(h1_) + static_cast<uint64_t>(t >> 64);
  h1_ = static_cast<uint64_t>(t);
  h2_ += static_cast<uint64_t>(t >> 64);
}

void Poly1305State::absorb_blocks(const Poly1305Key& key, ByteSpan data) {
  assert(data.size() % kPoly1305BlockSize == 0);
  for (size_t i = 0; i + kPoly1305BlockSize <= data.size(); i += kPoly1305BlockSize) {
    absorb(key, load_le64(data.data() + i), load_le64(data.data() + i + 8), 1);
  }
}

void Poly1305State::absorb_partial_block(const Poly1305Key& key, ByteSpan data) {
  assert(!data.empty() && data.size() < kPoly1305BlockSize);
  uint8_t block[kPoly1305BlockSize] = {};
  std::memcpy(block, data.data(), data.size());
  block[data.size()] = 1;
  absorb(key, load_le64(block), load_le64(block + 8), 0);
}

std::array<uint8_t, 16> Poly1305State::emit() const {
  uint64_t h0 = h0_, h1 = h1_, h2 = h2_;
  // Two folds leave h < 2^130; then h mod p is h - p exactly when h + 5
  // reaches 2^130. Selected with masks, without branching on secret data.
  for (int fold = 0; fold < 2; ++fold) {
    const uint64_t carry = (h2 >> 2) * 5;
    h2 &= 3;
    u128 t = static_cast<u128>(h0) + carry;
    h0 = static_cast<uint64_t>(t);
    t = static_cast<u128>(h1) + static_cast<uint64_t>(t >> 64);
    h1 = static_cast<uint64_t>(t);
    h2 += static_cast<uint64_t>(t >> 64);
  }
  u128 t = static_cast<u128>(h0) + 5;
  const uint64_t g0 = static_cast<uint64_t>(t);
  t = static_cast<u128>(h1) + static_cast<uint64_t>(t >> 64);
  const uint64_t g1 = static_cast<uint64_t>(t);
  const uint64_t g2 = h2 + static_cast<uint64_t>(t >> 64);
  const uint64_t use_g = 0 - (g2 >> 2);  // all ones when h + 5 >= 2^130
  h0 = (h0 & ~use_g) | (g0 & use_g);
  h1 = (h1 & ~use_g) | (g1 & use_g);

  std::array<uint8_t, 16> out;
  store_le64(out.data(), h0);
  store_le64(out.data() + 8, h1);
  return out;
}

std::array<uint8_t, 16> Poly1305State::emit_with_pad(ByteSpan s) const {
  assert(s.size() == 16);
  std::array<uint8_t, 16> out = emit();
  u128 t = static_cast<u128>(load_le64(out.data())) + load_le64(s.data());
  store_le64(out.data(), static_cast<uint64_t>(t));
  store_le64(out.data() + 8,
             load_le64(out.data() + 8) + load_le64(s.data() + 8) + static_cast<uint64_t>(t >> 64));
  return out;
}

std::array<uint8_t, 16> poly1305_mac(ByteSpan key, ByteSpan message) {
  assert(key.size() == 32);
  const Poly1305Key r(key.first(kPoly1305KeySize));
  Poly1305State state;
  const size_t whole = message.size() - message.size() % kPoly1305BlockSize;
  state.absorb_blocks(r, message.first(whole));
  if (whole < message.size()) state.absorb_partial_block(r, message.subspan(whole));
  return state.emit_with_pad(key.subspan(kPoly1305KeySize));
}

}  // namespace ecfs::crypto
