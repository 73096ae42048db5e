// Test-only (included by *_test.cc only): checks shared by the wide-block
// length-preserving modes (Adiantum, HCTR2), which have the same interface
// and the same kernel contract: 32-byte key, 32-byte tweak, any message of at
// least 16 bytes, ciphertext equal to the kernel's skcipher of that name.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "crypto/af_alg_test_util.h"
#include "crypto/cipher.h"
#include "crypto/testing.h"

namespace ecfs::crypto::testing {

struct WideBlockVector {
  const char* key;
  const char* tweak;
  const char* plaintext;
  const char* ciphertext;
};

using CipherFactory = Result<CipherPtr> (*)(ByteSpan key);

inline Bytes random_bytes(std::mt19937& rng, size_t size) {
  Bytes out(size);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

inline CipherPtr make_or_fail(CipherFactory make, ByteSpan key) {
  auto cipher = make(key);
  EXPECT_TRUE(cipher.has_value()) << (cipher ? "" : cipher.error().to_string());
  return cipher ? std::move(*cipher) : nullptr;
}

// Encrypts and decrypts each vector, out of place and in place.
inline void expect_known_answers(CipherFactory make, std::span<const WideBlockVector> vectors) {
  for (const WideBlockVector& v : vectors) {
    const Bytes plaintext = hex(v.plaintext);
    SCOPED_TRACE("vector of " + std::to_string(plaintext.size()) + " bytes");
    CipherPtr cipher = make_or_fail(make, hex(v.key));
    ASSERT_NE(cipher, nullptr);
    const Bytes tweak = hex(v.tweak);
    Bytes out(plaintext.size());
    ASSERT_TRUE(cipher->encrypt(tweak, plaintext, out).has_value());
    EXPECT_EQ(to_hex(out), v.ciphertext);
    Bytes back(out.size());
    ASSERT_TRUE(cipher->decrypt(tweak, out, back).has_value());
    EXPECT_EQ(back, plaintext);

    Bytes in_place = plaintext;
    ASSERT_TRUE(cipher->encrypt(tweak, in_place, in_place).has_value());
    EXPECT_EQ(to_hex(in_place), v.ciphertext);
    ASSERT_TRUE(cipher->decrypt(tweak, in_place, in_place).has_value());
    EXPECT_EQ(in_place, plaintext);
  }
}

// Random keys, tweaks and messages of many lengths decrypt back, and a wide
// block's defining property holds: one flipped plaintext bit anywhere, or a
// different tweak, changes every 16-byte block of the ciphertext.
inline void expect_round_trips_and_diffusion(CipherFactory make) {
  std::mt19937 rng(720);
  for (size_t len : {16,  17,  31,   32,   33,   63,   64,   100,  255,  256,
                     496, 512, 1000, 1024, 1040, 4080, 4095, 4096, 4097, 8192}) {
    SCOPED_TRACE("length " + std::to_string(len));
    CipherPtr cipher = make_or_fail(make, random_bytes(rng, 32));
    ASSERT_NE(cipher, nullptr);
    const Bytes tweak = random_bytes(rng, 32);
    const Bytes plaintext = random_bytes(rng, len);
    Bytes ciphertext(len), back(len);
    ASSERT_TRUE(cipher->encrypt(tweak, plaintext, ciphertext).has_value());
    EXPECT_NE(ciphertext, plaintext);
    ASSERT_TRUE(cipher->decrypt(tweak, ciphertext, back).has_value());
    EXPECT_EQ(back, plaintext);

    const auto expect_all_blocks_differ = [&](const Bytes& other, const char* what) {
      for (size_t offset = 0; offset < len; offset += 16) {
        const size_t n = std::min<size_t>(16, len - offset);
        EXPECT_NE(Bytes(ciphertext.begin() + offset, ciphertext.begin() + offset + n),
                  Bytes(other.begin() + offset, other.begin() + offset + n))
            << what << ": block at " << offset << " unchanged";
      }
    };
    for (size_t position : {size_t{0}, len / 2, len - 1}) {
      Bytes changed = plaintext;
      changed[position] ^= 0x10;
      Bytes other(len);
      ASSERT_TRUE(cipher->encrypt(tweak, changed, other).has_value());
      expect_all_blocks_differ(other, "flipped plaintext bit");
    }
    Bytes other_tweak = tweak;
    other_tweak[31] ^= 1;
    Bytes other(len);
    ASSERT_TRUE(cipher->encrypt(other_tweak, plaintext, other).has_value());
    expect_all_blocks_differ(other, "different tweak");
  }
}

// Every size rule of crypto/cipher.h, with EINVAL as the kernel returns it.
inline void expect_rejects_bad_sizes(CipherFactory make) {
  for (size_t key_size : {0, 16, 31, 33, 64}) {
    EXPECT_EQ(error_of(make(Bytes(key_size, 7))), EINVAL) << "key of " << key_size;
  }
  CipherPtr cipher = make_or_fail(make, Bytes(32, 7));
  ASSERT_NE(cipher, nullptr);
  EXPECT_EQ(cipher->iv_size(), 32u);
  const Bytes tweak(32, 1);
  Bytes out(64);
  for (size_t tweak_size : {0, 16, 24, 31, 33}) {
    const Bytes bad_tweak(tweak_size, 1);
    EXPECT_EQ(error_of(cipher->encrypt(bad_tweak, Bytes(64, 0), out)), EINVAL);
    EXPECT_EQ(error_of(cipher->decrypt(bad_tweak, Bytes(64, 0), out)), EINVAL);
  }
  for (size_t len : {0, 1, 15}) {
    Bytes short_out(len);
    EXPECT_EQ(error_of(cipher->encrypt(tweak, Bytes(len, 0), short_out)), EINVAL) << len;
    EXPECT_EQ(error_of(cipher->decrypt(tweak, Bytes(len, 0), short_out)), EINVAL) << len;
  }
  Bytes wrong_out(63);
  EXPECT_EQ(error_of(cipher->encrypt(tweak, Bytes(64, 0), wrong_out)), EINVAL);
  Bytes buffer(80, 3);
  EXPECT_EQ(error_of(cipher->encrypt(tweak, ByteSpan(buffer).first(64),
                                     MutableByteSpan(buffer).subspan(8, 64))),
            EINVAL)
      << "partially overlapping input and output";
}

// One Cipher shared by several threads at once (crypto/cipher.h promises
// thread safety) gives every thread the single-threaded answers.
inline void expect_thread_safe(CipherFactory make) {
  std::mt19937 rng(1441);
  CipherPtr cipher = make_or_fail(make, random_bytes(rng, 32));
  ASSERT_NE(cipher, nullptr);
  constexpr int kThreads = 4, kMessages = 64;
  std::vector<Bytes> tweaks, plaintexts, expected;
  for (int i = 0; i < kMessages; ++i) {
    tweaks.push_back(random_bytes(rng, 32));
    plaintexts.push_back(random_bytes(rng, 16 + rng() % 4081));
    expected.emplace_back(plaintexts.back().size());
    ASSERT_TRUE(cipher->encrypt(tweaks.back(), plaintexts.back(), expected.back()).has_value());
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (int i = 0; i < kMessages; ++i) {
          Bytes out(plaintexts[i].size()), back(plaintexts[i].size());
          if (!cipher->encrypt(tweaks[i], plaintexts[i], out) || out != expected[i] ||
              !cipher->decrypt(tweaks[i], out, back) || back != plaintexts[i]) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// The running kernel as judge: random keys, tweaks and messages of many
// lengths (16..4096, most not multiples of 16) through ecfs and through
// AF_ALG must agree both ways. Returns the reason to skip, if the kernel
// cannot serve `kernel_name`.
inline std::optional<std::string> compare_with_kernel(CipherFactory make,
                                                      std::string_view kernel_name) {
  std::mt19937 rng(2018);
  {
    auto probe = KernelSkcipher::open(kernel_name, Bytes(32, 0));
    if (!probe) return probe.error();
  }
  std::vector<size_t> lengths = {16,  17,   31,   32,   33,   47,   48,   255,  256, 511,
                                 512, 1023, 1024, 1025, 1040, 2000, 4080, 4095, 4096};
  std::uniform_int_distribution<size_t> any_length(16, 4096);
  for (int i = 0; i < 200; ++i) lengths.push_back(any_length(rng));
  for (size_t len : lengths) {
    SCOPED_TRACE("length " + std::to_string(len));
    const Bytes key = random_bytes(rng, 32);
    const Bytes tweak = random_bytes(rng, 32);
    const Bytes plaintext = random_bytes(rng, len);
    CipherPtr ours = make_or_fail(make, key);
    auto kernel = KernelSkcipher::open(kernel_name, key);
    if (ours == nullptr || !kernel) {
      ADD_FAILURE() << (kernel ? "ecfs refused the key" : kernel.error());
      return std::nullopt;
    }
    Bytes ciphertext(len);
    EXPECT_TRUE(ours->encrypt(tweak, plaintext, ciphertext).has_value());
    auto kernel_ciphertext = kernel->crypt(/*encrypt=*/true, tweak, plaintext);
    if (!kernel_ciphertext) {
      ADD_FAILURE() << kernel_ciphertext.error();
      return std::nullopt;
    }
    EXPECT_EQ(to_hex(ciphertext), to_hex(*kernel_ciphertext));

    Bytes decrypted(len);
    EXPECT_TRUE(ours->decrypt(tweak, *kernel_ciphertext, decrypted).has_value());
    EXPECT_EQ(decrypted, plaintext);
    auto kernel_plaintext = kernel->crypt(/*encrypt=*/false, tweak, ciphertext);
    if (!kernel_plaintext) {
      ADD_FAILURE() << kernel_plaintext.error();
      return std::nullopt;
    }
    EXPECT_EQ(*kernel_plaintext, plaintext);
    if (::testing::Test::HasFailure()) break;  // one mismatch tells the story
  }
  return std::nullopt;
}

}  // namespace ecfs::crypto::testing
