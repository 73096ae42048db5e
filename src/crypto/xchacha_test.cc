#include "crypto/xchacha.h"

#include <gtest/gtest.h>

#include <string>

namespace ecfs::crypto {
namespace {

Bytes hex(std::string_view s) { return from_hex(s).value(); }

// Applies the kernel's 32-byte xchacha IV (24-byte nonce, then the 64-bit
// little-endian starting block) the way crypto_xchacha_crypt() splits it.
Bytes xchacha12_with_kernel_iv(const Bytes& key, const Bytes& iv, const Bytes& in) {
  Bytes out(in.size());
  xchacha12_xor(key, ByteSpan(iv).first(24), load_le64(iv.data() + 24), in, out);
  return out;
}

// RFC 8439 section 2.3.2, "Test Vector for the ChaCha20 Block Function": the
// same permutation code with 20 rounds.
TEST(ChaCha, Rfc8439BlockFunction) {
  const std::array<uint32_t, 16> state = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574,
                                          0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c,
                                          0x13121110, 0x17161514, 0x1b1a1918, 0x1f1e1d1c,
                                          0x00000001, 0x09000000, 0x4a000000, 0x00000000};
  EXPECT_EQ(to_hex(chacha_block(state, 20)),
            "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
            "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e");
}

// The kernel's crypto/testmgr.h xchacha12_tv_template (vectors 1-3 and 5:
// "Same as XChaCha20 test vectors above, but recomputed the ciphertext with
// XChaCha12, using a modified libsodium").
TEST(XChaCha12, KernelTestmgrZeroPlaintext29) {
  const Bytes key = hex("79c99798ac67300bbb2704c95c341e3245f3dcb21761b98e52ff45b24f304fc4");
  const Bytes iv =
      hex("b33ffd3096479bcfbc9aee49417688a0a2554f8d95389419"
          "0000000000000000");
  EXPECT_EQ(to_hex(xchacha12_with_kernel_iv(key, iv, Bytes(29, 0))),
            "1b787fd7a14168ab3d3fd17b6956b2d543ceebaf36f0299d3afb18ae1b");
}

TEST(XChaCha12, KernelTestmgrZeroPlaintext91) {
  const Bytes key = hex("9d23bd4149cb979ccf3c5c94dd217e9808cb0e50cd0f67812235eaaf601d6232");
  const Bytes iv =
      hex("c047548266b7c370d33566a2425cbf30d82d1eaf5294109e"
          "0000000000000000");
  EXPECT_EQ(to_hex(xchacha12_with_kernel_iv(key, iv, Bytes(91, 0))),
            "fb32091d8305ae4c131f1271f2cab2eb5b83147d83f657772e401f922cf9ec35"
            "341f93dffb30d735030578c1203b7ae362a389dc111145a88289a0f14ec70f11"
            "69dd0c842b895cdcf0de01efc56579238767d650d98dd992545b0e");
}

TEST(XChaCha12, KernelTestmgrZeroKey64) {
  const Bytes key(32, 0);
  const Bytes iv =
      hex("00000000000000000000000067c6697351ff4aec29cdbaab"
          "0000000000000000");
  EXPECT_EQ(to_hex(xchacha12_with_kernel_iv(key, iv, Bytes(64, 0))),
            "df2dc6212a9da1bbc277660c5c46efa7791bb9df55e2f9614c7ba45224afa2da"
            "d18f8fa29e534dc4b85598087c08d418678fef50b15fa5774c25e7862642ca44");
}

// Starts at block 42 (the last 8 IV bytes), so it checks the counter words.
TEST(XChaCha12, KernelTestmgrJabberwockyAtBlock42) {
  const Bytes key = hex("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
  const Bytes iv =
      hex("0000000000000000000000"
          "02765a2e63339fc99a66320db7"
          "2a00000000000000");
  const std::string text =
      "'Twas brillig, and the slithy toves\nDid gyre and gimble in the wabe:\n"
      "All mimsy were the borogoves,\nAnd the mome raths outgrabe.";
  ASSERT_EQ(text.size(), 127u);
  const Bytes plaintext(text.begin(), text.end());
  const std::string expected =
      "b968bc6a24bcccd89b2a8d5b96af56e31161e7a79bce4e7d600248acebd53a26"
      "9d773bb53213868e20822672ae641b7e2e0168b48745a124e44840f0aaaceea9"
      "fc31ad9d89a3bbd2e42513ad0f5edf3c27abb86246223048552c4e84781d0d34"
      "8d3c910a7f5b199f97054ca762478bc5442e2033dda082a9257637e63c675b";
  EXPECT_EQ(to_hex(xchacha12_with_kernel_iv(key, iv, plaintext)), expected);
  // Decryption is the same XOR.
  EXPECT_EQ(xchacha12_with_kernel_iv(key, iv, hex(expected)), plaintext);
}

// Every length crosses the 8-block (AVX2), 4-block and single-block paths
// differently; all must agree with a block-by-block keystream built from
// hchacha() and chacha_block(), and with a split at any block boundary.
TEST(XChaCha12, AllPathsAgreeWithBlockFunction) {
  Bytes key(32), nonce(24);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(3 * i + 1);
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(200 - i);
  const uint64_t start = 0xfffffffeULL;  // the counter carries into word 13

  Bytes subkey(32);
  hchacha(key, ByteSpan(nonce).first(16), 12, subkey);
  Bytes reference;
  for (uint64_t block = start; reference.size() < 1100; ++block) {
    std::array<uint32_t, 16> state = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    for (int i = 0; i < 8; ++i) state[4 + i] = load_le32(subkey.data() + 4 * i);
    state[12] = static_cast<uint32_t>(block);
    state[13] = static_cast<uint32_t>(block >> 32);
    state[14] = load_le32(nonce.data() + 16);
    state[15] = load_le32(nonce.data() + 20);
    const auto bytes = chacha_block(state, 12);
    reference.insert(reference.end(), bytes.begin(), bytes.end());
  }

  for (size_t len :
       {0, 1, 63, 64, 65, 255, 256, 257, 300, 449, 500, 511, 512, 513, 767, 1000, 1100}) {
    const Bytes zeros(len, 0);
    Bytes out(len);
    xchacha12_xor(key, nonce, start, zeros, out);
    EXPECT_EQ(out, Bytes(reference.begin(), reference.begin() + len)) << "len " << len;
  }

  // Resuming at a later block continues the same stream.
  Bytes whole(1024), split(1024);
  xchacha12_xor(key, nonce, start, Bytes(1024, 0), whole);
  xchacha12_xor(key, nonce, start, Bytes(320, 0), MutableByteSpan(split).first(320));
  Bytes rest(704);
  xchacha12_xor(key, nonce, start + 5, Bytes(704, 0), rest);
  std::copy(rest.begin(), rest.end(), split.begin() + 320);
  EXPECT_EQ(whole, split);
}

TEST(XChaCha12, InPlaceMatchesOutOfPlace) {
  const Bytes key(32, 0x42), nonce(24, 0x17);
  Bytes data(777);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  Bytes out(data.size());
  xchacha12_xor(key, nonce, 0, data, out);
  xchacha12_xor(key, nonce, 0, data, data);
  EXPECT_EQ(data, out);
}

// 12 and 20 rounds give different streams (the round count is honoured).
TEST(XChaCha, RoundCountMatters) {
  const Bytes key(32, 1), nonce(24, 2);
  Bytes a(64), b(64);
  xchacha_xor(12, key, nonce, 0, Bytes(64, 0), a);
  xchacha_xor(20, key, nonce, 0, Bytes(64, 0), b);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace ecfs::crypto
