// Benchmarks of the wide-block modes OpenSSL lacks (part of ecfs_bench).
//
// How to read the results:
//
// * BM_WideBlock4KiB/<mode>_<direction> encrypts or decrypts one 4 KiB data
//   unit per iteration through ecfs's Cipher; bytes_per_second is the
//   throughput. <mode> is Adiantum, AES256HCTR2, or RawXts: a bare keyed
//   OpenSSL AES-256-XTS EVP context on the same buffers, the baseline.
// * BM_WideBlockVsXts4KiB/<mode> alternates batches of <mode> and raw XTS on
//   the same buffers, timed with per-thread CPU time so that other load on
//   the machine hits both alike. Counter `speed_vs_xts` = XTS time / <mode>
//   time: 1.0 means as fast as XTS, 0.5 half as fast.
// * BM_WideBlockPart/* time the pieces per 4 KiB (XChaCha12, NHPoly1305,
//   POLYVAL portable and fastest, XCTR) to show where the time goes.
//
// Benchmarks never fail the test suite; they only print.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <time.h>

#include <array>
#include <cstdlib>
#include <functional>

#include "crypto/adiantum.h"
#include "crypto/aes_block_cipher.h"
#include "crypto/hctr2.h"
#include "crypto/nh.h"
#include "crypto/polyval.h"
#include "crypto/xchacha.h"
#include "crypto/xctr.h"
#include "raw_openssl_xts.h"

namespace ecfs::crypto {
namespace {

constexpr size_t kDataUnit = 4096;

Bytes pattern(size_t size, uint8_t multiplier) {
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(i * multiplier + 1);
  return out;
}

using RawXts = bench::RawOpensslXts;

enum Mode { kAdiantum, kHctr2, kRawXts };

CipherPtr make_mode(Mode mode) {
  const Bytes key = pattern(32, 13);
  auto cipher = mode == kAdiantum ? make_adiantum(key) : make_aes256_hctr2(key);
  if (!cipher) std::abort();
  return std::move(*cipher);
}

// One data unit through `cipher` (or raw XTS when cipher is null).
void run_unit(const Cipher* cipher, RawXts* xts, bool encrypt, uint64_t index, const Bytes& in,
              Bytes& out) {
  std::array<uint8_t, 32> iv = {};
  store_le64(iv.data(), index);
  if (cipher == nullptr) {
    xts->run(iv.data(), in.data(), out.data());
    return;
  }
  const Status status = encrypt ? cipher->encrypt(iv, in, out) : cipher->decrypt(iv, in, out);
  if (!status) std::abort();
}

void BM_WideBlock4KiB(benchmark::State& state, Mode mode, bool encrypt) {
  CipherPtr cipher = mode == kRawXts ? nullptr : make_mode(mode);
  RawXts xts(encrypt, kDataUnit);
  const Bytes in = pattern(kDataUnit, 3);
  Bytes out(kDataUnit);
  uint64_t index = 0;
  for (auto _ : state) {
    run_unit(cipher.get(), &xts, encrypt, index++, in, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kDataUnit));
}

BENCHMARK_CAPTURE(BM_WideBlock4KiB, Adiantum_encrypt, kAdiantum, true);
BENCHMARK_CAPTURE(BM_WideBlock4KiB, Adiantum_decrypt, kAdiantum, false);
BENCHMARK_CAPTURE(BM_WideBlock4KiB, AES256HCTR2_encrypt, kHctr2, true);
BENCHMARK_CAPTURE(BM_WideBlock4KiB, AES256HCTR2_decrypt, kHctr2, false);
BENCHMARK_CAPTURE(BM_WideBlock4KiB, RawXts_encrypt, kRawXts, true);
BENCHMARK_CAPTURE(BM_WideBlock4KiB, RawXts_decrypt, kRawXts, false);

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void BM_WideBlockVsXts4KiB(benchmark::State& state, Mode mode) {
  constexpr int kBatch = 64;
  CipherPtr cipher = make_mode(mode);
  RawXts xts(/*encrypt=*/true, kDataUnit);
  const Bytes in = pattern(kDataUnit, 3);
  Bytes out(kDataUnit);
  double mode_seconds = 0, xts_seconds = 0;
  uint64_t index = 0;
  for (auto _ : state) {
    double start = thread_cpu_seconds();
    for (int i = 0; i < kBatch; ++i) run_unit(cipher.get(), nullptr, true, index++, in, out);
    double middle = thread_cpu_seconds();
    for (int i = 0; i < kBatch; ++i) run_unit(nullptr, &xts, true, index++, in, out);
    double end = thread_cpu_seconds();
    mode_seconds += middle - start;
    xts_seconds += end - middle;
    benchmark::DoNotOptimize(out.data());
  }
  const double bytes = static_cast<double>(state.iterations()) * kBatch * kDataUnit;
  state.counters["speed_vs_xts"] = xts_seconds / mode_seconds;
  state.counters["mode_MBps"] = bytes / mode_seconds / 1e6;
  state.counters["xts_MBps"] = bytes / xts_seconds / 1e6;
}

BENCHMARK_CAPTURE(BM_WideBlockVsXts4KiB, Adiantum, kAdiantum);
BENCHMARK_CAPTURE(BM_WideBlockVsXts4KiB, AES256HCTR2, kHctr2);

// The pieces, each over 4 KiB.
void BM_WideBlockPart(benchmark::State& state, const std::function<void(Bytes&)>& part) {
  Bytes buffer = pattern(kDataUnit, 5);
  for (auto _ : state) {
    part(buffer);
    benchmark::DoNotOptimize(buffer.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kDataUnit));
}

const Bytes kPartKey = pattern(32, 11);

BENCHMARK_CAPTURE(BM_WideBlockPart, XChaCha12, [](Bytes& buffer) {
  const Bytes nonce(24, 9);
  xchacha12_xor(kPartKey, nonce, 0, buffer, buffer);
});

BENCHMARK_CAPTURE(BM_WideBlockPart, NHPoly1305, [](Bytes& buffer) {
  static const NhPoly1305Key key(pattern(kNhPoly1305KeyBytes, 17));
  const auto digest = nhpoly1305(key, buffer);
  buffer[0] ^= digest[0];
});

BENCHMARK_CAPTURE(BM_WideBlockPart, POLYVAL_fastest, [](Bytes& buffer) {
  static const PolyvalKey key(pattern(16, 19));
  PolyvalState polyval;
  polyval.absorb_blocks(key, buffer);
  buffer[0] ^= polyval.digest()[0];
});

BENCHMARK_CAPTURE(BM_WideBlockPart, POLYVAL_portable, [](Bytes& buffer) {
  static const PolyvalKey key(pattern(16, 19));
  PolyvalState polyval;
  polyval.absorb_blocks_portable(key, buffer);
  buffer[0] ^= polyval.digest()[0];
});

BENCHMARK_CAPTURE(BM_WideBlockPart, XCTR, [](Bytes& buffer) {
  static const Aes256BlockCipher aes = std::move(*Aes256BlockCipher::create(kPartKey));
  const Bytes iv(16, 4);
  if (!xctr_xor(aes, iv, buffer, buffer)) std::abort();
});

}  // namespace
}  // namespace ecfs::crypto
