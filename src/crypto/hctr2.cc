// HCTR2 with AES-256 as the kernel's hctr2(aes) (crypto/hctr2.c), which
// fscrypt mode 10 uses for contents and names.
//
// A message P of n >= 16 bytes is split into M (the first 16 bytes) and N
// (the rest). With hbar = E_K(0^128), L = E_K(bin_128(1)) and
// H(T, X) = POLYVAL(hbar, bin_128(2*|T| + 2 + [16 does not divide |X|])
//                         || T || pad(X))
// where |T| counts bits and pad(X) appends 0x01 and zeros to a partial last
// block (paper section 3; hctr2_hash_tweaklen, hctr2_hash_message):
//
//   MM = M XOR H(T, N)     UU = E_K(MM)     S = MM XOR UU XOR L
//   V  = N XOR XCTR_K(S)   U  = UU XOR H(T, V)       ciphertext = U || V
//
// and decryption mirrors it with D_K. The kernel fixes T at 32 bytes.
#include "crypto/hctr2.h"

#include <array>
#include <cstring>

#include "base/bytes.h"
#include "crypto/aes_block_cipher.h"
#include "crypto/evp.h"
#include "crypto/polyval.h"
#include "crypto/secret.h"
#include "crypto/xctr.h"

namespace ecfs::crypto {

namespace {

constexpr size_t kHctr2KeySize = 32;
constexpr size_t kTweakSize = 32;  // TWEAK_SIZE in crypto/hctr2.c
constexpr size_t kBlockSize = 16;

using Block = std::array<uint8_t, kBlockSize>;

void xor_into(uint8_t* r, const uint8_t* a) {
  for (size_t i = 0; i < kBlockSize; ++i) r[i] ^= a[i];
}

class Hctr2 final : public Cipher {
 public:
  Hctr2(Aes256BlockCipher block_cipher, PolyvalKey hash_key, SecretBytes l)
      : block_cipher_(std::move(block_cipher)), hash_key_(std::move(hash_key)), l_(std::move(l)) {}

  std::string_view name() const override { return "AES-256-HCTR2"; }
  size_t iv_size() const override { return kTweakSize; }

  Status encrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    return crypt(iv, in, out, /*encrypting=*/true);
  }
  Status decrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    return crypt(iv, in, out, /*encrypting=*/false);
  }

 private:
  // POLYVAL over the tweak-length block and the tweak. The length block
  // depends only on whether the message is whole blocks, so both hash steps
  // of one message continue from the same state.
  PolyvalState hash_tweak(ByteSpan tweak, size_t message_len) const {
    uint8_t length_block[kBlockSize] = {};
    const bool has_remainder = message_len % kBlockSize != 0;
    store_le64(length_block, kTweakSize * 8 * 2 + 2 + (has_remainder ? 1 : 0));
    PolyvalState state;
    state.absorb_blocks(hash_key_, length_block);
    state.absorb_blocks(hash_key_, tweak);
    return state;
  }

  // H(T, bulk) from the hashed tweak: whole blocks, then a partial block
  // padded with 0x01 and zeros.
  Block hash(PolyvalState state, ByteSpan bulk) const {
    const size_t whole = bulk.size() - bulk.size() % kBlockSize;
    state.absorb_blocks(hash_key_, bulk.first(whole));
    if (whole < bulk.size()) {
      uint8_t last[kBlockSize] = {};
      std::memcpy(last, bulk.data() + whole, bulk.size() - whole);
      last[bulk.size() - whole] = 0x01;
      state.absorb_blocks(hash_key_, last);
    }
    return state.digest();
  }

  Status crypt(ByteSpan tweak, ByteSpan in, MutableByteSpan out, bool encrypting) const {
    if (tweak.size() != kTweakSize) return fail(EINVAL, "HCTR2 takes a 32-byte tweak");
    if (in.size() < kBlockSize) return fail(EINVAL, "HCTR2 needs at least 16 bytes");
    if (out.size() != in.size()) return fail(EINVAL, "HCTR2 output size differs from input");
    if (evp::partially_overlapping(in.data(), out.data(), in.size())) {
      return fail(EINVAL, "HCTR2 input and output partially overlap");
    }
    const ByteSpan in_bulk = in.subspan(kBlockSize);
    const MutableByteSpan out_bulk = out.subspan(kBlockSize);
    const PolyvalState hashed_tweak = hash_tweak(tweak, in.size());

    // MM = M XOR H(T, N), or UU = U XOR H(T, V). Read before any write, so
    // in == out is fine.
    Block first = hash(hashed_tweak, in_bulk);
    xor_into(first.data(), in.data());
    Block second;
    if (encrypting) {
      ECFS_TRY(block_cipher_.encrypt(first, second));  // UU = E(MM)
    } else {
      ECFS_TRY(block_cipher_.decrypt(first, second));  // MM = D(UU)
    }

    // S = MM XOR UU XOR L, the XCTR IV either way.
    Block s = first;
    xor_into(s.data(), second.data());
    xor_into(s.data(), l_.data());
    const Status streamed = xctr_xor(block_cipher_, s, in_bulk, out_bulk);
    secure_zero(s);
    if (!streamed) return streamed;

    // U = UU XOR H(T, V), or M = MM XOR H(T, N).
    Block last = hash(hashed_tweak, out_bulk);
    xor_into(last.data(), second.data());
    std::memcpy(out.data(), last.data(), kBlockSize);
    return ok();
  }

  Aes256BlockCipher block_cipher_;
  PolyvalKey hash_key_;  // hbar = E_K(0)
  SecretBytes l_;        // L = E_K(1)
};

}  // namespace

Result<CipherPtr> make_aes256_hctr2(ByteSpan key) {
  if (key.size() != kHctr2KeySize) {
    return fail(EINVAL, "AES-256-HCTR2 takes a 32-byte key, got " + std::to_string(key.size()));
  }
  auto block_cipher = Aes256BlockCipher::create(key);
  if (!block_cipher) return std::unexpected(std::move(block_cipher).error());

  // hctr2_setkey: hbar = E_K(0^128), L = E_K(1 as a little-endian block).
  SecretBytes derived(2 * kBlockSize);
  derived.data()[kBlockSize] = 0x01;
  ECFS_TRY(block_cipher->encrypt(derived.span(), derived.mutable_span()));
  PolyvalKey hash_key(derived.span().first(kBlockSize));
  SecretBytes l = SecretBytes::copy_of(derived.span().subspan(kBlockSize));
  return std::make_unique<Hctr2>(std::move(*block_cipher), std::move(hash_key), std::move(l));
}

}  // namespace ecfs::crypto
