#include "crypto/xctr.h"

#include <gtest/gtest.h>

#include <string>

#include "crypto/testing.h"

namespace ecfs::crypto {
namespace {

using testing::error_of;
using testing::hex;

struct XctrVector {
  const char* key;
  const char* iv;
  const char* plaintext;
  const char* ciphertext;
};

// The kernel's crypto/testmgr.h vectors for xctr(aes) (added with HCTR2 in
// Linux 5.19; read from a 6.6 tree), their AES-256 entries (klen = 32):
// lengths 1, 15, 16, 17, 31, 48 and 128 bytes.
constexpr XctrVector kKernelVectors[] = {
    {"05603a7e609046186c60baeb12d7bed1d3f610469df10cb473e39327a82c13aa",
     "f596d1b6cb44d8d03edb92800894cdd3", "78", "c5"},
    {"35ca38f3d9d634efcdeea32686bafb4501fa5267ffc59daa649a05bb8520a7f2",
     "e3daf5ff42598786ee7bd6b46a2544ff", "44671e0453d24bd996330754e48e20",
     "cc554079475c8ba6ca7b9f50e321ea"},
    {"afd91414d5dbc9ce765c5abf43052924c41368cce837bdb94120f55348d0a2d6",
     "a7b400087910aef502bf85b2694cc604", "ac6aa80cb084bf4cae9420587e009389",
     "d5aae2e9864c954edeb615cbdc1f1338"},
    {"ede38be71c17bf4a02e2fc76acf53c005ddcfc83eb45b4cb596260ec699c1645",
     "e40e2b90d2fa942e10e5642b972815c7", "e653ff600ec451e4934de555c5d9ad4852",
     "ba2528f5cf319180da2b955f20cbfb9fc6"},
    {"775cc0739a6497912feee020c204592e97d2a770b3b0216b8fbfb851a8ea0f62",
     "318e1fcdfd23eb7f8a1f1b23532744e5",
     "cdff8c9b945a513f409356936639631fbfe6a4fabe799303f5667416fce4ce",
     "8bd3c3ce66f8664cadd6f50fd8995a75a13cab0b213657728829e9ea4a8de9"},
    {"a12f4ddefea1ffa873dde3e295fcea9cd080420cb8433e9939380a8ce8453a7b",
     "32c46fb11443d187e26f5a5802367e2a",
     "9e5c1ef1d67d0957184855da7d44f96daccd59bb10a29467d16ffe6b4a11e804"
     "09264f8d5da17b42f94b66763812fefe",
     "42bca764159a04712c5f94ba893aadbc87b3f4094f570618dc8420f76485ca3b"
     "abe6335634605d4b2e1613d477de2d2b"},
    {"fbf5b73da69542bfd2946c740fbc5a28353c515884fb7d11161e00973708b716",
     "9b535740e6d9a72778d49bd2291d24a9",
     "8b02600a3eb71059c3acd52a7581f2db55ca658644fbfe9126bb45b246223e08"
     "a2bf46cb687d457ba16a3c6e25ebed317a8b47f9deec3d8709202efaba8b9bc5"
     "6c259c9d2ae8ab903f86ee611321d4dee10c95fc5c8a6e0a73cf0869444ede25"
     "afaa5604c4b360443b8b3deeae424bd29a6ca08e5206b2d15d38306d279b1ad8",
     "a37833789595970753a3a15b183227f70912537083b56a9f266d100de01ce62b"
     "7000dca160ef1beec5a55117aeccf2edc46007dfd57ae9903c9f965d72655def"
     "d09432c4859078a12e64f6ee8e743f202f123b3dd5398e5af98fce945d821866"
     "14af4cfee091c34a85cfe7e8f7cbf031887dc95b719d5fd2faeda624dabbb184"},
};

TEST(Xctr, KernelTestmgrVectors) {
  for (const XctrVector& v : kKernelVectors) {
    auto aes = Aes256BlockCipher::create(hex(v.key));
    ASSERT_TRUE(aes.has_value());
    const Bytes plaintext = hex(v.plaintext);
    Bytes out(plaintext.size());
    ASSERT_TRUE(xctr_xor(*aes, hex(v.iv), plaintext, out).has_value());
    EXPECT_EQ(to_hex(out), v.ciphertext) << "length " << plaintext.size();
    // XCTR is its own inverse; here also in place.
    ASSERT_TRUE(xctr_xor(*aes, hex(v.iv), out, out).has_value());
    EXPECT_EQ(out, plaintext);
  }
}

// Longer than one internal chunk (2 KiB): the counter continues across it.
TEST(Xctr, KeystreamBlocksAreAesOfIvXorCounter) {
  auto aes = Aes256BlockCipher::create(testing::counting_bytes(32));
  ASSERT_TRUE(aes.has_value());
  const Bytes iv = hex("00112233445566778899aabbccddeeff");
  Bytes keystream(5000);
  ASSERT_TRUE(xctr_xor(*aes, iv, Bytes(5000, 0), keystream).has_value());
  for (uint64_t i : {1, 2, 128, 129, 300, 313}) {
    Bytes block = iv;
    store_le64(block.data(), load_le64(iv.data()) ^ i);
    ASSERT_TRUE(aes->encrypt(block, block).has_value());
    const size_t offset = 16 * (i - 1);
    const size_t n = std::min<size_t>(16, keystream.size() - offset);
    EXPECT_EQ(Bytes(block.begin(), block.begin() + n),
              Bytes(keystream.begin() + offset, keystream.begin() + offset + n))
        << "block " << i;
  }
}

TEST(Xctr, RejectsBadSizes) {
  auto aes = Aes256BlockCipher::create(Bytes(32, 1));
  ASSERT_TRUE(aes.has_value());
  Bytes out(20);
  EXPECT_EQ(error_of(xctr_xor(*aes, Bytes(15, 0), Bytes(20, 0), out)), EINVAL);
  EXPECT_EQ(error_of(xctr_xor(*aes, Bytes(16, 0), Bytes(21, 0), out)), EINVAL);
}

// FIPS-197 appendix C.3 (AES-256): the block cipher under XCTR and under
// Adiantum / HCTR2's single block.
TEST(Aes256BlockCipher, Fips197AppendixC3) {
  auto aes = Aes256BlockCipher::create(testing::counting_bytes(32));
  ASSERT_TRUE(aes.has_value());
  const Bytes plaintext = hex("00112233445566778899aabbccddeeff");
  Bytes block(16);
  ASSERT_TRUE(aes->encrypt(plaintext, block).has_value());
  EXPECT_EQ(to_hex(block), "8ea2b7ca516745bfeafc49904b496089");
  ASSERT_TRUE(aes->decrypt(block, block).has_value());
  EXPECT_EQ(block, plaintext);
}

TEST(Aes256BlockCipher, RejectsWrongKeySize) {
  EXPECT_EQ(error_of(Aes256BlockCipher::create(Bytes(16, 0))), EINVAL);
  EXPECT_EQ(error_of(Aes256BlockCipher::create(Bytes(33, 0))), EINVAL);
}

}  // namespace
}  // namespace ecfs::crypto
