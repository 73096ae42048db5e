// Benchmarks of the fscrypt layer as the filesystem uses it (part of
// ecfs_bench; `make bench`). Benchmarks print; they never fail a test.
//
// How to read the results:
//
// * BM_ContentsXts_FscryptOverRawEvp/units:N encrypts runs of N 4 KiB data
//   units through fscrypt::encrypt_data_units (AES-256-XTS, IVs counted from
//   an extent start), alternating batches with raw OpenSSL EVP on the same
//   buffers and timing each side with thread CPU time. Counter
//   `fscrypt_over_raw` = raw time / fscrypt time, i.e. ecfs's throughput as
//   a fraction of raw OpenSSL's. Target: >= 0.90. N = 1 is a lone 4 KiB
//   write; N = 256 a 1 MiB extent written back at once.
// * BM_ContentsAdiantum_OverRawXts is the same for Adiantum (mode 9) against
//   raw OpenSSL AES-256-XTS: Adiantum exists for CPUs without AES
//   instructions, so on this machine it is expected to be slower; the ratio
//   says by how much.
// * BM_ExtentKeySetup_* is per-extent key setup, derive + prepare: HKDF-Expand
//   of the extent nonce (context byte 9) to the mode's key size, then keying
//   the cipher. `Fscrypt` is fscrypt::setup_extent_key alone; `Keyring` is
//   Keyring::new_extent_info, which also draws the random nonce and registers
//   the info with its master key, as a write of a new extent does. Target:
//   under 5 µs (CPU column).
#include <benchmark/benchmark.h>

#include <array>
#include <cstdlib>

#include "crypto/adiantum.h"
#include "crypto/aes_xts.h"
#include "fscrypt/contents.h"
#include "fscrypt/extent.h"
#include "fscrypt/iv.h"
#include "fscrypt/keyring.h"
#include "fscrypt/master_key_secret.h"
#include "fscrypt/policy.h"
#include "raw_openssl_xts.h"

namespace ecfs::fscrypt {
namespace {

constexpr size_t kDataUnit = 4096;

template <typename T>
T must(Result<T> result) {
  if (!result) std::abort();
  return std::move(*result);
}

Bytes master_key_bytes() {
  Bytes key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i + 1);
  return key;
}

// Interleaves batches of `fscrypt_side` and `raw_side` (each processing
// `bytes_per_call`) and reports both throughputs and their ratio.
template <typename FscryptSide, typename RawSide>
void compare_with_raw(benchmark::State& state, size_t bytes_per_call, FscryptSide fscrypt_side,
                      RawSide raw_side) {
  constexpr int kBatch = 8;
  int64_t raw_ns = 0;
  int64_t fscrypt_ns = 0;
  bool raw_first = true;
  for (auto _ : state) {
    for (int side = 0; side < 2; ++side) {
      const bool do_raw = (side == 0) == raw_first;
      const int64_t start = bench::thread_cpu_ns();
      for (int i = 0; i < kBatch; ++i) do_raw ? raw_side() : fscrypt_side();
      (do_raw ? raw_ns : fscrypt_ns) += bench::thread_cpu_ns() - start;
    }
    raw_first = !raw_first;
  }
  const double bytes = static_cast<double>(state.iterations()) * kBatch * bytes_per_call;
  state.counters["raw_Bps"] = bytes / (static_cast<double>(raw_ns) * 1e-9);
  state.counters["fscrypt_Bps"] = bytes / (static_cast<double>(fscrypt_ns) * 1e-9);
  state.counters["fscrypt_over_raw"] =
      static_cast<double>(raw_ns) / static_cast<double>(fscrypt_ns);
  state.SetBytesProcessed(static_cast<int64_t>(2 * bytes));
}

// Runs `units` data units through raw EVP with default-scheme IVs.
void raw_xts_run(bench::RawOpensslXts& raw, const Bytes& in, Bytes& out, size_t units,
                 uint64_t first_index) {
  std::array<uint8_t, 16> iv{};
  for (size_t unit = 0; unit < units; ++unit) {
    store_le64(iv.data(), first_index + unit);
    raw.run(iv.data(), in.data() + unit * kDataUnit, out.data() + unit * kDataUnit);
  }
  benchmark::DoNotOptimize(out.data());
}

void BM_ContentsXts_FscryptOverRawEvp(benchmark::State& state) {
  const size_t units = static_cast<size_t>(state.range(0));
  const crypto::CipherPtr cipher = must(crypto::make_aes_xts(bench::xts_bench_key()));
  bench::RawOpensslXts raw(/*encrypt=*/true, kDataUnit);
  const Bytes in(units * kDataUnit, 0x5a);
  Bytes out(in.size());
  compare_with_raw(
      state, in.size(),
      [&] {
        if (!encrypt_data_units(*cipher, IvParams::default_scheme(), kDataUnit, 0, in, out)) {
          std::abort();
        }
        benchmark::DoNotOptimize(out.data());
      },
      [&] { raw_xts_run(raw, in, out, units, 0); });
}
BENCHMARK(BM_ContentsXts_FscryptOverRawEvp)->ArgName("units")->Arg(1)->Arg(256);

void BM_ContentsAdiantum_OverRawXts(benchmark::State& state) {
  Bytes key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 13 + 1);
  const crypto::CipherPtr cipher = must(crypto::make_adiantum(key));
  bench::RawOpensslXts raw(/*encrypt=*/true, kDataUnit);
  const Bytes in(kDataUnit, 0x5a);
  Bytes out(in.size());
  compare_with_raw(
      state, in.size(),
      [&] {
        if (!encrypt_data_units(*cipher, IvParams::default_scheme(), kDataUnit, 0, in, out)) {
          std::abort();
        }
        benchmark::DoNotOptimize(out.data());
      },
      [&] { raw_xts_run(raw, in, out, 1, 0); });
}
BENCHMARK(BM_ContentsAdiantum_OverRawXts);

PolicyV2 bench_policy(const KeyIdentifier& identifier) {
  PolicyV2 policy;
  policy.master_key_identifier = identifier;
  return policy;
}

void BM_ExtentKeySetup_Fscrypt(benchmark::State& state) {
  const MasterKeySecret master_key = must(MasterKeySecret::create(master_key_bytes()));
  const KeyIdentifier identifier = must(compute_key_identifier(master_key_bytes()));
  ExtentContext context = must(new_extent_context(bench_policy(identifier)));
  uint64_t counter = 0;
  for (auto _ : state) {
    store_le64(context.nonce.data(), ++counter);  // a different extent each time
    ExtentKey key = must(setup_extent_key(master_key, context));
    benchmark::DoNotOptimize(key.cipher.get());
  }
}
BENCHMARK(BM_ExtentKeySetup_Fscrypt);

void BM_ExtentKeySetup_Keyring(benchmark::State& state) {
  Keyring keyring;
  const Caller owner{.uid = 1000, .is_privileged = false};
  const KeyIdentifier identifier = must(keyring.add_v2_key(owner, master_key_bytes()));
  const Context context = must(new_context(bench_policy(identifier)));
  const FileInfoPtr file = must(keyring.setup_file_info(context, FileKind::kRegular, 257));
  for (auto _ : state) {
    ExtentInfoPtr extent = must(keyring.new_extent_info(*file));
    benchmark::DoNotOptimize(extent.get());
  }
}
BENCHMARK(BM_ExtentKeySetup_Keyring);

}  // namespace
}  // namespace ecfs::fscrypt
