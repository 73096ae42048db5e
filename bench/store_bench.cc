// Benchmarks of the storage engine (part of ecfs_bench; `make bench`): the
// CoW B+tree on the Engine over a MemoryDevice, so the numbers are the
// engine's own cost (node codec, checksums, copy-on-write, allocation), not
// a disk's.
//
// How to read the results:
//
// * BM_StoreInsert/{sequential,random}: filling a tree with 1M items of 100
//   bytes in one transaction (keys (i, 108, 0) in order, or random
//   objectids). items_per_second is the insert rate at 1M items.
// * BM_StoreLookup/{sequential,random}/CACHE: find() of existing keys in a
//   committed 1M-item tree, with a node cache of 4096 nodes (the engine's
//   default; fewer than the tree's 8000-11000 leaves, so random lookups
//   decode nodes as a real workload would) or 65536 (everything cached: the
//   tree walk alone).
// * BM_StoreCommit/N: commit of a transaction that changed one item in each
//   of N distinct leaves of the 1M-item tree (N = 10, 100, 1000). The counter
//   `per_dirty_leaf` is commit time / N; it should stay roughly flat: commit
//   cost grows with the number of dirty nodes, not with the tree's size.
//   (Each dirty leaf also dirties its share of internal nodes and of the
//   extent tree, which is part of the real cost.)
// * BM_StoreClone/N: clone_tree + commit of a tree of N items (10k, 1M).
//   Rodeh clones share the root, so this must be flat in N; BM_StoreCloneRatio
//   times both sizes alternately in the same run (thread CPU time) and
//   prints `clone_10k_us`, `clone_1M_us` and `ratio_1M_over_10k` (target:
//   close to 1).
//
// * BM_DataWrite/{plain,xor,xts} and BM_DataRead/{plain,xor,xts}: bytes per
//   second of 1 MiB Engine::write_data requests into an extent of the
//   running transaction, and of 1 MiB Engine::read_data_into requests of a
//   committed extent, through the inline-crypt layer (block/inline_crypt.h):
//   bounce buffer, per-sector checksums over the bytes on disk, csum-tree
//   update or lookup, encryption. `plain` passes no crypt context; `xor` a
//   trivial crypter (XOR with the DUN), i.e. the layer's own overhead;
//   `xts` AES-256-XTS through fscrypt::encrypt_data_units with per-extent
//   IVs, as the filesystem's adapter does it.
// * BM_DataPathRatio/{write,read}: the three alternately in the same run
//   (thread CPU time); counters `{plain,xor,xts}_MiBps`, `xor_over_plain`
//   and `xts_over_plain` (throughput ratios; 1.0 = free).
//
// Read the CPU column: the machine is shared, and wall time includes
// waiting for a core.
//
// The 1M-item trees are built once per process (shared fixture) and reused;
// the whole file runs in well under two minutes. Benchmarks never fail the
// test suite; they only print.
#include <benchmark/benchmark.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "block/inline_crypt.h"
#include "block/memory_device.h"
#include "crypto/aes_xts.h"
#include "fscrypt/contents.h"
#include "fscrypt/iv.h"
#include "store/engine.h"
#include "store/items.h"
#include "store/tree_ids.h"

namespace ecfs::store {
namespace {

constexpr size_t kItemSize = 100;
constexpr uint64_t kBigTreeItems = 1'000'000;
constexpr uint64_t kSmallTreeItems = 10'000;
constexpr uint64_t kDeviceSize = 8ull << 30;  // sparse: costs only what is written

// Benchmarks cannot return errors; a failing engine call is a broken build.
template <typename T>
T must(Result<T> result, const char* what) {
  if (!result) {
    std::fprintf(stderr, "store_bench: %s: %s\n", what, result.error().message().c_str());
    std::abort();
  }
  return std::move(*result);
}
void must(Status status, const char* what) {
  if (!status) {
    std::fprintf(stderr, "store_bench: %s: %s\n", what, status.error().message().c_str());
    std::abort();
  }
}

Key sequential_key(uint64_t i) { return Key{i, kExtentDataKey, 0}; }

// The random keys of a tree: distinct objectids from a fixed seed.
std::vector<Key> random_keys(uint64_t count, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<Key> keys(count);
  for (Key& key : keys) key = Key{random() | 1, kExtentDataKey, 0};  // never 0
  return keys;
}

// An item of kItemSize bytes whose contents do not matter but are not all
// the same. Not an EXTENT_DATA head: the engine only reads those in trees
// that hold file extents; a zero head (disk_bytenr 0) is a hole.
Bytes item_data(uint64_t i) {
  Bytes data(kItemSize, static_cast<uint8_t>(i));
  store_le64(data.data(), 0);
  return data;
}

// A formatted memory device with an open engine.
struct Store {
  std::unique_ptr<block::MemoryDevice> device;
  std::unique_ptr<Engine> engine;

  Store() : device(std::make_unique<block::MemoryDevice>(kDeviceSize, "bench device")) {
    must(mkfs(*device, MkfsOptions{}), "mkfs");
    engine = must(Engine::open(*device), "open");
  }
};

// Inserts `count` items into new tree `id`, committing every 100k items so
// that one transaction's dirty set stays bounded.
void fill_tree(Engine& engine, uint64_t id, uint64_t count, const std::vector<Key>* keys) {
  must(engine.begin(), "begin");
  BTree* tree = must(engine.create_tree(id), "create_tree");
  for (uint64_t i = 0; i < count; ++i) {
    must(tree->insert(keys ? (*keys)[i] : sequential_key(i), item_data(i)), "insert");
    if ((i + 1) % 100'000 == 0 && i + 1 < count) {
      must(engine.commit(), "commit");
      must(engine.begin(), "begin");
      tree = must(engine.open_tree(id), "open_tree");
    }
  }
  must(engine.commit(), "commit");
}

// The shared fixture: one engine holding a 1M-item tree with sequential keys
// (tree 256), one with random keys (257) and a 10k-item tree (258).
constexpr uint64_t kSequentialTree = kFirstFreeTreeId;
constexpr uint64_t kRandomTree = kFirstFreeTreeId + 1;
constexpr uint64_t kSmallTree = kFirstFreeTreeId + 2;
constexpr uint64_t kCloneId = kFirstFreeTreeId + 100;

struct SharedStore {
  Store store;
  std::vector<Key> random;

  SharedStore() : random(random_keys(kBigTreeItems, 1)) {
    fill_tree(*store.engine, kSequentialTree, kBigTreeItems, nullptr);
    fill_tree(*store.engine, kRandomTree, kBigTreeItems, &random);
    fill_tree(*store.engine, kSmallTree, kSmallTreeItems, nullptr);
  }
};

SharedStore& shared_store() {
  static SharedStore* shared = new SharedStore();  // built once, never freed
  return *shared;
}

// ------------------------------------------------------------------ inserts

void BM_StoreInsert(benchmark::State& state, bool random_order) {
  const std::vector<Key> keys = random_order ? random_keys(kBigTreeItems, 2) : std::vector<Key>{};
  std::vector<Bytes> data;
  data.reserve(kBigTreeItems);
  for (uint64_t i = 0; i < kBigTreeItems; ++i) data.push_back(item_data(i));
  for (auto _ : state) {
    state.PauseTiming();
    auto store = std::make_unique<Store>();
    must(store->engine->begin(), "begin");
    BTree* tree = must(store->engine->create_tree(kFirstFreeTreeId), "create_tree");
    state.ResumeTiming();
    for (uint64_t i = 0; i < kBigTreeItems; ++i) {
      must(tree->insert(random_order ? keys[i] : sequential_key(i), data[i]), "insert");
    }
    state.PauseTiming();
    store.reset();  // aborts the transaction; freeing is not the insert's cost
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBigTreeItems));
}
BENCHMARK_CAPTURE(BM_StoreInsert, sequential, false)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_StoreInsert, random, true)->Unit(benchmark::kMillisecond)->Iterations(1);

// ------------------------------------------------------------------ lookups

// Lookups go through a read-only engine of their own, opened on the shared
// device with a node cache of state.range(0) nodes: 4096 (the default, fewer
// than the tree's leaves) or 65536 (every node stays decoded), to separate
// the tree walk from node decoding.
void BM_StoreLookup(benchmark::State& state, bool random_order) {
  SharedStore& shared = shared_store();
  OpenOptions options;
  options.read_only = true;
  options.node_cache_capacity = static_cast<size_t>(state.range(0));
  auto engine = must(Engine::open(*shared.store.device, options), "open read-only");
  BTree tree =
      must(engine->committed_tree(random_order ? kRandomTree : kSequentialTree), "committed_tree");
  // Untimed warm-up: one pass over the tree decodes every node once, so
  // the big cache starts full and the small one starts as it would after a
  // scan.
  uint64_t seen = 0;
  must(tree.for_each(Key::min(), Key::max(),
                     [&](const Key&, ByteSpan) {
                       ++seen;
                       return true;
                     }),
       "for_each");
  if (seen != kBigTreeItems) std::abort();
  std::mt19937_64 pick(3);
  uint64_t next = 0;
  for (auto _ : state) {
    const Key key = random_order ? shared.random[pick() % kBigTreeItems]
                                 : sequential_key(next++ % kBigTreeItems);
    auto found = must(tree.find(key), "find");
    if (!found) std::abort();
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(BM_StoreLookup, sequential, false)->Arg(4096)->Arg(65536)->MinTime(0.5);
BENCHMARK_CAPTURE(BM_StoreLookup, random, true)->Arg(4096)->Arg(65536)->MinTime(0.5);

// ------------------------------------------------------------------- commit

void BM_StoreCommit(benchmark::State& state) {
  SharedStore& shared = shared_store();
  Engine& engine = *shared.store.engine;
  const auto dirty_leaves = static_cast<uint64_t>(state.range(0));
  // Keys this far apart are in distinct leaves (a leaf holds ~130 items of
  // 100 bytes in 16 KiB).
  const uint64_t stride = kBigTreeItems / dirty_leaves;
  uint64_t round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    must(engine.begin(), "begin");
    BTree* tree = must(engine.open_tree(kSequentialTree), "open_tree");
    for (uint64_t i = 0; i < dirty_leaves; ++i) {
      must(tree->update(sequential_key(i * stride + round % stride), item_data(round)), "update");
    }
    ++round;
    state.ResumeTiming();
    must(engine.commit(), "commit");
  }
  state.counters["per_dirty_leaf"] = benchmark::Counter(
      static_cast<double>(dirty_leaves),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * dirty_leaves));
}
BENCHMARK(BM_StoreCommit)->Arg(10)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// -------------------------------------------------------------------- clone

// One clone of `source` and its commit; the clone is dropped afterwards
// (untimed by the caller).
void clone_and_commit(Engine& engine, uint64_t source) {
  must(engine.begin(), "begin");
  must(engine.clone_tree(source, kCloneId), "clone_tree");
  must(engine.commit(), "commit");
}

void drop_clone(Engine& engine) {
  must(engine.begin(), "begin");
  must(engine.drop_tree(kCloneId), "drop_tree");
  must(engine.commit(), "commit");
}

void BM_StoreClone(benchmark::State& state) {
  Engine& engine = *shared_store().store.engine;
  const uint64_t source =
      state.range(0) == static_cast<int64_t>(kSmallTreeItems) ? kSmallTree : kSequentialTree;
  for (auto _ : state) {
    clone_and_commit(engine, source);
    state.PauseTiming();
    drop_clone(engine);
    state.ResumeTiming();
  }
}
BENCHMARK(BM_StoreClone)->Arg(kSmallTreeItems)->Arg(kBigTreeItems)->Unit(benchmark::kMicrosecond);

double thread_cpu_seconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Both sizes alternately, timed in this thread's CPU time, so that other load
// on the machine hits them alike.
void BM_StoreCloneRatio(benchmark::State& state) {
  Engine& engine = *shared_store().store.engine;
  double small_seconds = 0, big_seconds = 0;
  bool small_first = true;
  for (auto _ : state) {
    // Alternate the order too, so neither size always follows the other's
    // drop.
    const std::array<uint64_t, 2> order =
        small_first ? std::array<uint64_t, 2>{kSmallTree, kSequentialTree}
                    : std::array<uint64_t, 2>{kSequentialTree, kSmallTree};
    small_first = !small_first;
    for (const uint64_t source : order) {
      const double start = thread_cpu_seconds();
      clone_and_commit(engine, source);
      const double elapsed = thread_cpu_seconds() - start;
      (source == kSmallTree ? small_seconds : big_seconds) += elapsed;
      drop_clone(engine);
    }
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["clone_10k_us"] = small_seconds / n * 1e6;
  state.counters["clone_1M_us"] = big_seconds / n * 1e6;
  state.counters["ratio_1M_over_10k"] = big_seconds / small_seconds;
}
BENCHMARK(BM_StoreCloneRatio)->Unit(benchmark::kMillisecond)->MinTime(0.5);

// ------------------------------------------------------------- data path

constexpr size_t kDataRequest = 1 << 20;
constexpr uint64_t kDataExtent = 64ull << 20;  // writes cycle through it
constexpr uint32_t kDataUnit = 4096;

// The cheapest crypter that still touches every byte: XOR of each 64-bit
// word with its DUN.
class XorCrypter final : public block::DataUnitCrypter {
 public:
  uint32_t data_unit_size() const override { return kDataUnit; }
  Status encrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    for (size_t at = 0; at < in.size(); at += 8) {
      store_le64(out.data() + at, load_le64(in.data() + at) ^ (first_dun + at / kDataUnit));
    }
    return ok();
  }
  Status decrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    return encrypt(first_dun, in, out);
  }
};

// AES-256-XTS with fscrypt's per-extent IVs (le64 DUN): the filesystem's
// adapter in miniature.
class XtsCrypter final : public block::DataUnitCrypter {
 public:
  XtsCrypter() {
    Bytes key(64);
    for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 3 + 1);
    cipher_ = must(crypto::make_aes_xts(key), "make_aes_xts");
  }
  uint32_t data_unit_size() const override { return kDataUnit; }
  Status encrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    return fscrypt::encrypt_data_units(*cipher_, fscrypt::IvParams::default_scheme(), kDataUnit,
                                       first_dun, in, out);
  }
  Status decrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    return fscrypt::decrypt_data_units(*cipher_, fscrypt::IvParams::default_scheme(), kDataUnit,
                                       first_dun, in, out);
  }

 private:
  crypto::CipherPtr cipher_;
};

enum Mode { kPlain = 0, kXor = 1, kXts = 2 };
constexpr std::array<const char*, 3> kModeNames = {"plain", "xor", "xts"};

const block::DataUnitCrypter* crypter_for(Mode mode) {
  static const XorCrypter xor_crypter;
  static const XtsCrypter xts_crypter;
  switch (mode) {
    case kXor:
      return &xor_crypter;
    case kXts:
      return &xts_crypter;
    case kPlain:
      break;
  }
  return nullptr;
}

// An engine over a sparse memory device with one data extent allocated in
// a running transaction (for writes) and one committed extent per mode
// holding its encrypted data (for reads).
struct DataStore {
  block::MemoryDevice device{kDeviceSize, "bench device"};
  std::unique_ptr<Engine> engine;
  std::array<uint64_t, 3> committed{};
  uint64_t writable = 0;
  Bytes data = Bytes(kDataRequest);

  DataStore() {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + 7);
    must(mkfs(device, MkfsOptions{}), "mkfs");
    engine = must(Engine::open(device), "open");
    must(engine->begin(), "begin");
    BTree* tree = must(engine->open_tree(kFsTreeId), "open_tree");
    for (int mode = kPlain; mode <= kXts; ++mode) {
      const uint64_t extent = must(engine->allocate_data(kDataRequest), "allocate_data");
      const block::CryptContext crypt{crypter_for(static_cast<Mode>(mode)), 0};
      must(engine->write_data(extent, data, crypt.crypter ? &crypt : nullptr), "write_data");
      const auto inode = static_cast<uint64_t>(256 + mode);
      must(tree->insert(Key{inode, kExtentDataKey, 0}, encode_file_extent_ref(FileExtentRef{
                                                           extent, kDataRequest, 0, kDataRequest})),
           "insert");
      must(
          engine->add_data_ref(extent, kDataRequest, DataRef{kFsTreeId, inode, 0, 0, kDataRequest}),
          "add_data_ref");
      committed[static_cast<size_t>(mode)] = extent;
    }
    must(engine->commit(), "commit");
    must(engine->begin(), "begin");
    writable = must(engine->allocate_data(kDataExtent), "allocate_data");
  }
};

DataStore& data_store() {
  static DataStore* store = new DataStore();  // built once, never freed
  return *store;
}

// One request of `mode`; `round` picks the place in the writable extent.
void write_once(DataStore& store, Mode mode, uint64_t round) {
  const uint64_t offset = (round % (kDataExtent / kDataRequest)) * kDataRequest;
  const block::CryptContext crypt{crypter_for(mode), offset / kDataUnit};
  must(store.engine->write_data(store.writable + offset, store.data,
                                crypt.crypter ? &crypt : nullptr),
       "write_data");
}

void read_once(DataStore& store, Mode mode, MutableByteSpan out) {
  const block::CryptContext crypt{crypter_for(mode), 0};
  must(store.engine->read_data_into(store.committed[mode], out, crypt.crypter ? &crypt : nullptr),
       "read_data_into");
}

void BM_DataWrite(benchmark::State& state, Mode mode) {
  DataStore& store = data_store();
  uint64_t round = 0;
  for (auto _ : state) write_once(store, mode, round++);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kDataRequest));
}
BENCHMARK_CAPTURE(BM_DataWrite, plain, kPlain)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK_CAPTURE(BM_DataWrite, xor, kXor)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK_CAPTURE(BM_DataWrite, xts, kXts)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

void BM_DataRead(benchmark::State& state, Mode mode) {
  DataStore& store = data_store();
  Bytes out(kDataRequest);
  for (auto _ : state) {
    read_once(store, mode, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kDataRequest));
}
BENCHMARK_CAPTURE(BM_DataRead, plain, kPlain)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK_CAPTURE(BM_DataRead, xor, kXor)->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK_CAPTURE(BM_DataRead, xts, kXts)->Unit(benchmark::kMicrosecond)->MinTime(0.5);

// The three modes alternately, so that other load on the machine hits them
// alike; reports MiB/s of each and the ratios to plain.
void BM_DataPathRatio(benchmark::State& state, bool writes) {
  DataStore& store = data_store();
  Bytes out(kDataRequest);
  std::array<double, 3> seconds{};
  uint64_t round = 0;
  for (auto _ : state) {
    for (int mode = kPlain; mode <= kXts; ++mode) {
      const double start = thread_cpu_seconds();
      if (writes) {
        write_once(store, static_cast<Mode>(mode), round++);
      } else {
        read_once(store, static_cast<Mode>(mode), out);
      }
      seconds[static_cast<size_t>(mode)] += thread_cpu_seconds() - start;
    }
  }
  const double mib = static_cast<double>(state.iterations()) * kDataRequest / (1 << 20);
  for (size_t mode = 0; mode < 3; ++mode) {
    state.counters[std::string(kModeNames[mode]) + "_MiBps"] = mib / seconds[mode];
  }
  state.counters["xor_over_plain"] = seconds[kPlain] / seconds[kXor];
  state.counters["xts_over_plain"] = seconds[kPlain] / seconds[kXts];
}
BENCHMARK_CAPTURE(BM_DataPathRatio, write, true)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK_CAPTURE(BM_DataPathRatio, read, false)->Unit(benchmark::kMillisecond)->MinTime(1.0);

}  // namespace
}  // namespace ecfs::store
