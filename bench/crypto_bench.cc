// Benchmarks of the crypto layer (part of ecfs_bench; `make bench`).
//
// How to read the results:
//
// * BM_Xts4KiB_EcfsOverRawEvp is the number to watch. It encrypts (or
//   decrypts) the same 4 KiB data units, alternately through ecfs's Cipher
//   (make_aes_xts, AES-256-XTS) and through a bare keyed EVP_CIPHER_CTX
//   (EVP_CipherInit_ex2 with the IV, Update, Final: the least any EVP user
//   does per data unit), in interleaved batches timed with per-thread CPU
//   time, so that other load on the machine hits both sides alike. Its
//   counter `ecfs_over_raw` = raw EVP time / ecfs time, i.e. ecfs's
//   throughput as a fraction of raw OpenSSL's; the target is >= 0.90. The
//   other counters give each side's throughput in bytes per second.
// * BM_Xts4KiB_RawEvp and BM_Xts4KiB_Ecfs measure each side alone
//   (bytes_per_second); on a quiet machine their ratio agrees with the one
//   above. BM_Xts4KiB_Ecfs also runs with 2 threads sharing one Cipher, to
//   show that the context pool does not serialise callers.
// * BM_ExtentKeySetup is per-extent key setup as the filesystem does it:
//   HKDF-Expand (SHA-512) of "fscrypt\0" || 9 || nonce to a 64-byte key,
//   then make_aes_xts. Target: under 5 µs (read the CPU column).
//   BM_HkdfExpand64 and BM_MakeAesXts256 split it into its two halves.
// * BM_SipHashU64_* justify hashing inode numbers with ecfs's own SipHash
//   rather than OpenSSL's EVP_MAC "SIPHASH" (see src/crypto/siphash.cc).
//
// Benchmarks never fail the test suite; they only print.
#include <benchmark/benchmark.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <time.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "crypto/aes_xts.h"
#include "crypto/hkdf.h"
#include "crypto/siphash.h"
#include "raw_openssl_xts.h"

namespace ecfs::crypto {
namespace {

constexpr size_t kDataUnit = 4096;

// The data-unit IV fscrypt uses by default: le64(index), zero-padded.
void set_iv(std::array<uint8_t, 16>& iv, uint64_t index) { store_le64(iv.data(), index); }

using bench::RawOpensslXts;
using bench::thread_cpu_ns;

const Cipher& ecfs_xts() {
  static const CipherPtr cipher = [] {
    auto made = make_aes_xts(bench::xts_bench_key());
    if (!made) std::abort();
    return std::move(*made);
  }();
  return *cipher;
}

void ecfs_run(const Cipher& cipher, bool encrypt, ByteSpan iv, ByteSpan in, MutableByteSpan out) {
  Status status = encrypt ? cipher.encrypt(iv, in, out) : cipher.decrypt(iv, in, out);
  if (!status) std::abort();
}

// Arg 0: 1 = encrypt, 0 = decrypt.
void BM_Xts4KiB_EcfsOverRawEvp(benchmark::State& state) {
  const bool encrypt = state.range(0) == 1;
  RawOpensslXts raw(encrypt, kDataUnit);
  const Cipher& cipher = ecfs_xts();
  Bytes in(kDataUnit, 0x5a), out(kDataUnit);
  std::array<uint8_t, 16> iv{};
  constexpr int kBatch = 32;
  int64_t raw_ns = 0;
  int64_t ecfs_ns = 0;
  uint64_t index = 0;
  bool raw_first = true;
  for (auto _ : state) {
    for (int side = 0; side < 2; ++side) {
      const bool do_raw = (side == 0) == raw_first;
      const int64_t start = thread_cpu_ns();
      for (int i = 0; i < kBatch; ++i) {
        set_iv(iv, index++);
        if (do_raw) {
          raw.run(iv.data(), in.data(), out.data());
        } else {
          ecfs_run(cipher, encrypt, iv, in, out);
        }
        benchmark::DoNotOptimize(out.data());
      }
      (do_raw ? raw_ns : ecfs_ns) += thread_cpu_ns() - start;
    }
    raw_first = !raw_first;
  }
  const double bytes = static_cast<double>(state.iterations()) * kBatch * kDataUnit;
  state.counters["raw_Bps"] = bytes / (static_cast<double>(raw_ns) * 1e-9);
  state.counters["ecfs_Bps"] = bytes / (static_cast<double>(ecfs_ns) * 1e-9);
  state.counters["ecfs_over_raw"] = static_cast<double>(raw_ns) / static_cast<double>(ecfs_ns);
  state.SetBytesProcessed(static_cast<int64_t>(2 * bytes));
}
BENCHMARK(BM_Xts4KiB_EcfsOverRawEvp)->ArgName("encrypt")->Arg(1)->Arg(0);

void BM_Xts4KiB_RawEvp(benchmark::State& state) {
  RawOpensslXts raw(/*encrypt=*/true, kDataUnit);
  Bytes in(kDataUnit, 0x5a), out(kDataUnit);
  std::array<uint8_t, 16> iv{};
  uint64_t index = 0;
  for (auto _ : state) {
    set_iv(iv, index++);
    raw.run(iv.data(), in.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kDataUnit));
}
BENCHMARK(BM_Xts4KiB_RawEvp);

void BM_Xts4KiB_Ecfs(benchmark::State& state) {
  const Cipher& cipher = ecfs_xts();
  Bytes in(kDataUnit, 0x5a), out(kDataUnit);
  std::array<uint8_t, 16> iv{};
  uint64_t index = static_cast<uint64_t>(state.thread_index()) << 32;
  for (auto _ : state) {
    set_iv(iv, index++);
    ecfs_run(cipher, /*encrypt=*/true, iv, in, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kDataUnit));
}
BENCHMARK(BM_Xts4KiB_Ecfs)->Threads(1)->Threads(2);

// fscrypt's HKDF info prefix with the per-extent context byte (9, the v7
// btrfs series).
Bytes extent_info_prefix() {
  Bytes prefix = {'f', 's', 'c', 'r', 'y', 'p', 't', 0, 9};
  return prefix;
}

const HkdfSha512& master_hkdf() {
  static const HkdfSha512 hkdf = [] {
    auto made = HkdfSha512::extract({}, bench::xts_bench_key());
    if (!made) std::abort();
    return std::move(*made);
  }();
  return hkdf;
}

void BM_ExtentKeySetup(benchmark::State& state) {
  const HkdfSha512& hkdf = master_hkdf();
  const Bytes prefix = extent_info_prefix();
  std::array<uint8_t, 16> nonce{};
  std::array<uint8_t, 64> key;
  uint64_t counter = 0;
  for (auto _ : state) {
    store_le64(nonce.data(), ++counter);
    if (!hkdf.expand({prefix, nonce}, key)) std::abort();
    auto cipher = make_aes_xts(key);
    if (!cipher) std::abort();
    benchmark::DoNotOptimize(cipher->get());
  }
  std::memset(key.data(), 0, key.size());
}
BENCHMARK(BM_ExtentKeySetup);

void BM_HkdfExpand64(benchmark::State& state) {
  const HkdfSha512& hkdf = master_hkdf();
  const Bytes prefix = extent_info_prefix();
  std::array<uint8_t, 16> nonce{};
  std::array<uint8_t, 64> key;
  uint64_t counter = 0;
  for (auto _ : state) {
    store_le64(nonce.data(), ++counter);
    if (!hkdf.expand({prefix, nonce}, key)) std::abort();
    benchmark::DoNotOptimize(key.data());
  }
}
BENCHMARK(BM_HkdfExpand64);

void BM_MakeAesXts256(benchmark::State& state) {
  Bytes key = bench::xts_bench_key();
  for (auto _ : state) {
    ++key[0];  // a different key each time, as for extents
    auto cipher = make_aes_xts(key);
    if (!cipher) std::abort();
    benchmark::DoNotOptimize(cipher->get());
  }
}
BENCHMARK(BM_MakeAesXts256);

// One little-endian u64 (an inode number), as fscrypt_hash_inode_number.
void BM_SipHashU64_Ecfs(benchmark::State& state) {
  const SipHashKey key = SipHashKey::from_bytes(ByteSpan(bench::xts_bench_key()).first(16));
  uint64_t ino = 0;
  uint8_t word[8];
  for (auto _ : state) {
    store_le64(word, ++ino);
    benchmark::DoNotOptimize(siphash_2_4(key, word));
  }
}
BENCHMARK(BM_SipHashU64_Ecfs);

// The cheapest per-call EVP_MAC use: one reused context, re-keyed per call
// (SipHash keys are just two words, so keying is not the cost; the EVP layer
// is).
void BM_SipHashU64_EvpMac(benchmark::State& state) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  const Bytes full_key = bench::xts_bench_key();
  const Bytes key(full_key.begin(), full_key.begin() + 16);
  size_t size = 8;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
      OSSL_PARAM_construct_end(),
  };
  uint64_t ino = 0;
  uint8_t word[8];
  uint8_t out[8];
  for (auto _ : state) {
    store_le64(word, ++ino);
    size_t out_len = 0;
    if (EVP_MAC_init(ctx, key.data(), key.size(), params) != 1 ||
        EVP_MAC_update(ctx, word, sizeof word) != 1 ||
        EVP_MAC_final(ctx, out, &out_len, sizeof out) != 1) {
      std::abort();
    }
    benchmark::DoNotOptimize(load_le64(out));
  }
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
}
BENCHMARK(BM_SipHashU64_EvpMac);

}  // namespace
}  // namespace ecfs::crypto
