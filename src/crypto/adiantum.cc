// Adiantum(XChaCha12, AES-256) as the kernel's adiantum(xchacha12,aes)
// (crypto/adiantum.c), which fscrypt mode 9 uses for contents and names.
//
// A message P of n >= 16 bytes is split into the "bulk" P_L (the first n-16
// bytes) and P_R (the last 16). With H(T, X) = Poly1305_{K_T}(bin_128(|X|
// in bits) || T) + NHPoly1305_{K_M}(X) mod 2^128 (paper section 6.4):
//
//   P_M = P_R + H(T, P_L)        C_M = AES-256_{K_E}(P_M)
//   C_L = P_L XOR XChaCha12_{K_S}(nonce = C_M || 1 || 0...)
//   C_R = C_M - H(T, C_L)        ciphertext = C_L || C_R
//
// and decryption runs the same steps backwards. K_E, K_T and K_M come from
// the XChaCha12 keystream of the user key K_S under the nonce 1 || 0^191
// (adiantum_setkey). The kernel fixes the tweak T at 32 bytes.
#include "crypto/adiantum.h"

#include <array>
#include <cstring>

#include "base/bytes.h"
#include "crypto/aes_block_cipher.h"
#include "crypto/evp.h"
#include "crypto/nh.h"
#include "crypto/poly1305.h"
#include "crypto/secret.h"
#include "crypto/xchacha.h"

namespace ecfs::crypto {

namespace {

constexpr size_t kAdiantumKeySize = 32;
constexpr size_t kTweakSize = 32;  // TWEAK_SIZE in crypto/adiantum.c
constexpr size_t kBlockSize = 16;  // the right-hand part, AES's block
// K_E || K_T || K_M, in the order adiantum_setkey() carves them.
constexpr size_t kDerivedKeyBytes = kAes256KeySize + kPoly1305KeySize + kNhPoly1305KeyBytes;

using Block = std::array<uint8_t, kBlockSize>;

// Addition and subtraction in Z/2^128 of little-endian 16-byte values
// (le128_add / le128_sub in crypto/adiantum.c).
Block add128(const uint8_t* a, const uint8_t* b) {
  const uint64_t low = load_le64(a) + load_le64(b);
  const uint64_t high = load_le64(a + 8) + load_le64(b + 8) + (low < load_le64(a) ? 1 : 0);
  Block r;
  store_le64(r.data(), low);
  store_le64(r.data() + 8, high);
  return r;
}

Block sub128(const uint8_t* a, const uint8_t* b) {
  const uint64_t low = load_le64(a) - load_le64(b);
  const uint64_t high = load_le64(a + 8) - load_le64(b + 8) - (low > load_le64(a) ? 1 : 0);
  Block r;
  store_le64(r.data(), low);
  store_le64(r.data() + 8, high);
  return r;
}

class Adiantum final : public Cipher {
 public:
  Adiantum(SecretBytes stream_key, Aes256BlockCipher block_cipher, Poly1305Key header_key,
           NhPoly1305Key message_key)
      : stream_key_(std::move(stream_key)),
        block_cipher_(std::move(block_cipher)),
        header_key_(std::move(header_key)),
        message_key_(std::move(message_key)) {}

  std::string_view name() const override { return "Adiantum"; }
  size_t iv_size() const override { return kTweakSize; }

  Status encrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    return crypt(iv, in, out, /*encrypting=*/true);
  }
  Status decrypt(ByteSpan iv, ByteSpan in, MutableByteSpan out) const override {
    return crypt(iv, in, out, /*encrypting=*/false);
  }

 private:
  // Poly1305_{K_T}(bin_128(bulk bits) || T): a 16-byte header block holding
  // the bulk length in bits as a little-endian 64-bit value, then the tweak
  // (adiantum_hash_header). Shared by both hash steps of one message.
  Block hash_header(ByteSpan tweak, size_t bulk_len) const {
    uint8_t header[kBlockSize + kTweakSize] = {};
    store_le64(header, static_cast<uint64_t>(bulk_len) * 8);
    std::memcpy(header + kBlockSize, tweak.data(), kTweakSize);
    Poly1305State state;
    state.absorb_blocks(header_key_, header);
    return state.emit();
  }

  // H(T, bulk) given the header hash.
  Block hash(const Block& header_hash, ByteSpan bulk) const {
    const auto message_hash = nhpoly1305(message_key_, bulk);
    return add128(header_hash.data(), message_hash.data());
  }

  Status crypt(ByteSpan tweak, ByteSpan in, MutableByteSpan out, bool encrypting) const {
    if (tweak.size() != kTweakSize) return fail(EINVAL, "Adiantum takes a 32-byte tweak");
    if (in.size() < kBlockSize) return fail(EINVAL, "Adiantum needs at least 16 bytes");
    if (out.size() != in.size()) return fail(EINVAL, "Adiantum output size differs from input");
    if (evp::partially_overlapping(in.data(), out.data(), in.size())) {
      return fail(EINVAL, "Adiantum input and output partially overlap");
    }
    const size_t bulk_len = in.size() - kBlockSize;
    const Block header_hash = hash_header(tweak, bulk_len);

    // First hash step: P_M = P_R + H(T, P_L), or C_M = C_R + H(T, C_L).
    // Read before anything is written, so in == out is fine.
    Block middle = add128(in.data() + bulk_len, hash(header_hash, in.first(bulk_len)).data());
    if (encrypting) ECFS_TRY(block_cipher_.encrypt(middle, middle));  // C_M

    // The stream cipher nonce is C_M || le32(1) || 0 (adiantum_crypt sets
    // words 4..7 of its 32-byte IV to 1, 0, 0, 0; the last two are the
    // starting block counter, 0).
    uint8_t nonce[kXChaChaNonceSize] = {};
    std::memcpy(nonce, middle.data(), kBlockSize);
    nonce[kBlockSize] = 1;
    xchacha12_xor(stream_key_.span(), nonce, 0, in.first(bulk_len), out.first(bulk_len));

    if (!encrypting) ECFS_TRY(block_cipher_.decrypt(middle, middle));  // P_M

    // Second hash step: C_R = C_M - H(T, C_L), or P_R = P_M - H(T, P_L).
    const Block right = sub128(middle.data(), hash(header_hash, out.first(bulk_len)).data());
    std::memcpy(out.data() + bulk_len, right.data(), kBlockSize);
    return ok();
  }

  SecretBytes stream_key_;  // K_S, the user's key
  Aes256BlockCipher block_cipher_;
  Poly1305Key header_key_;     // K_T
  NhPoly1305Key message_key_;  // K_M
};

}  // namespace

Result<CipherPtr> make_adiantum(ByteSpan key) {
  if (key.size() != kAdiantumKeySize) {
    return fail(EINVAL, "Adiantum takes a 32-byte key, got " + std::to_string(key.size()));
  }
  // K_E || K_T || K_M = XChaCha12(K_S, nonce = 1 || 0^191), the keystream
  // read by encrypting zeros (adiantum_setkey).
  SecretBytes derived(kDerivedKeyBytes);
  uint8_t nonce[kXChaChaNonceSize] = {1};
  xchacha12_xor(key, nonce, 0, derived.span(), derived.mutable_span());

  const ByteSpan all = derived.span();
  auto block_cipher = Aes256BlockCipher::create(all.first(kAes256KeySize));
  if (!block_cipher) return std::unexpected(std::move(block_cipher).error());
  Poly1305Key header_key(all.subspan(kAes256KeySize, kPoly1305KeySize));
  NhPoly1305Key message_key(all.subspan(kAes256KeySize + kPoly1305KeySize));
  return std::make_unique<Adiantum>(SecretBytes::copy_of(key), std::move(*block_cipher),
                                    std::move(header_key), std::move(message_key));
}

}  // namespace ecfs::crypto
