// Snapshots and mounts against the size of the tree (part of ecfs_bench;
// `make bench`), the figures issue 17 sets targets for:
//
// * BM_SnapshotEncryptedTree/N: a read-only snapshot of a subvolume holding
//   N files (4 KiB each) in an encrypted directory, through
//   FileSystem::snapshot (which commits first; nothing is pending). A
//   snapshot is a Rodeh clone, so its time must not grow with N: the 100 k
//   figure within 2x of the 1 k one, and under 50 ms.
// * BM_MountTime/N: FileSystem::open of an image holding N empty files,
//   then close. Nothing at mount may read every inode: the 1 M figure
//   within 1.5x of the 10 k one.
// * BM_SnapshotMountRatio: both ratios in one run, as counters
//   (snapshot_100k_over_1k from 21 paired snapshots after three of warm-up,
//   mount_1M_over_10k from 7 paired mounts), what the inode count every
//   mount used to make added at 1 M files (inode_walk_1M_ms), and what the
//   first write after a mount pays to load the free-space map from the
//   free-space tree (space_map_10k_ms, space_map_1M_ms: it follows the
//   fragmentation of free space, not the file count).
//
// Every figure runs over a MemoryDevice, so the device's speed does not
// enter; what is measured is the work the code does.
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "block/memory_device.h"
#include "fs/filesystem.h"
#include "store/engine.h"
#include "store/tree_ids.h"

namespace ecfs::fs {
namespace {

constexpr Caller kOwner{0, 0, 022};
constexpr fscrypt::Caller kKeyRoot{0, true};

template <typename T>
T or_die(Result<T> result) {
  if (!result) {
    std::fprintf(stderr, "%s\n", result.error().to_string().c_str());
    std::abort();
  }
  return std::move(*result);
}
void or_die(Status status) {
  if (!status) {
    std::fprintf(stderr, "%s\n", status.error().to_string().c_str());
    std::abort();
  }
}

std::unique_ptr<block::MemoryDevice> formatted_device(uint64_t size) {
  auto device = std::make_unique<block::MemoryDevice>(size);
  or_die(store::mkfs(*device, {}));
  auto engine = or_die(store::Engine::open(*device));
  or_die(format_filesystem(*engine, kOwner));
  return device;
}

// A mounted image with subvolume "vol" holding `files` files of 4 KiB in
// the encrypted directory vol/secret, in 100 subdirectories.
struct EncryptedTree {
  std::unique_ptr<block::MemoryDevice> device;
  std::unique_ptr<FileSystem> fs;
  uint64_t vol = 0;
  int snapshots = 0;
};

EncryptedTree encrypted_tree(int64_t files) {
  EncryptedTree tree;
  tree.device = formatted_device(4ull << 30);
  tree.fs = or_die(FileSystem::open(*tree.device));
  FileSystem& fs = *tree.fs;
  or_die(fs.create_subvolume(kRootDirIno, "vol", kOwner));
  tree.vol = or_die(fs.lookup(kRootDirIno, "vol")).ino;
  const Bytes key(64, 0x42);
  auto added = or_die(fs.add_key(kKeyRoot, fscrypt::KeySpecifier::from_identifier({}), key));
  fscrypt::PolicyV2 policy;
  std::copy(added.key.bytes().begin(), added.key.bytes().end(),
            policy.master_key_identifier.begin());
  const uint64_t secret = or_die(fs.mkdir(tree.vol, "secret", 0700, kOwner)).ino;
  or_die(fs.set_policy(secret, policy, kKeyRoot));
  std::vector<uint64_t> dirs;
  for (int d = 0; d < 100; ++d) {
    dirs.push_back(or_die(fs.mkdir(secret, "d" + std::to_string(d), 0755, kOwner)).ino);
  }
  const std::string data(4096, 'x');
  for (int64_t i = 0; i < files; ++i) {
    const uint64_t ino = or_die(fs.mknod(dirs[static_cast<size_t>(i % 100)],
                                         "f" + std::to_string(i), S_IFREG | 0644, 0, kOwner))
                             .ino;
    or_die(fs.write(ino, 0, as_bytes(data)));
    if (i % 20000 == 19999) or_die(fs.sync());
  }
  or_die(fs.sync());
  return tree;
}

double snapshot_ms(EncryptedTree& tree) {
  const auto start = std::chrono::steady_clock::now();
  or_die(tree.fs->snapshot(tree.vol, kRootDirIno, "snap" + std::to_string(tree.snapshots++),
                           /*read_only=*/true));
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

void BM_SnapshotEncryptedTree(benchmark::State& state) {
  EncryptedTree tree = encrypted_tree(state.range(0));
  for (auto _ : state) state.SetIterationTime(snapshot_ms(tree) / 1000);
  or_die(tree.fs->close());
}
BENCHMARK(BM_SnapshotEncryptedTree)
    ->Arg(1000)
    ->Arg(100000)
    ->Iterations(20)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// An unmounted image holding `files` empty files in 1000 directories.
std::unique_ptr<block::MemoryDevice> image_with_files(int64_t files) {
  auto device = formatted_device(8ull << 30);
  auto fs = or_die(FileSystem::open(*device));
  std::vector<uint64_t> dirs;
  for (int d = 0; d < 1000; ++d) {
    dirs.push_back(or_die(fs->mkdir(kRootDirIno, "d" + std::to_string(d), 0755, kOwner)).ino);
  }
  for (int64_t i = 0; i < files; ++i) {
    const uint64_t dir = dirs[static_cast<size_t>(i % 1000)];
    const uint64_t ino =
        or_die(fs->mknod(dir, "f" + std::to_string(i), S_IFREG | 0644, 0, kOwner)).ino;
    fs->forget(ino, 1);
    if (i % 50000 == 49999) or_die(fs->sync());
  }
  or_die(fs->close());
  return device;
}

double mount_ms(block::MemoryDevice& device) {
  const auto start = std::chrono::steady_clock::now();
  auto fs = or_die(FileSystem::open(device));
  benchmark::DoNotOptimize(fs->statfs());
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  or_die(fs->close());
  return ms;
}

// Loading the free-space map, which the first allocation of a mount does.
double space_map_ms(block::MemoryDevice& device) {
  auto engine = or_die(store::Engine::open(device));
  const auto start = std::chrono::steady_clock::now();
  const store::SpaceAllocator* map = or_die(engine->space_map());
  benchmark::DoNotOptimize(map);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// What every mount did before it stopped counting inodes: a walk of the
// whole top-level tree, counting INODE_ITEMs (for the "before" figure).
double inode_walk_ms(block::MemoryDevice& device) {
  auto engine = or_die(store::Engine::open(device));
  const auto start = std::chrono::steady_clock::now();
  store::BTree tree = or_die(engine->committed_tree(store::kFsTreeId));
  uint64_t inodes = 0;
  or_die(tree.for_each(store::Key::min(), store::Key::max(), [&](const store::Key& key, ByteSpan) {
    if (key.type == kInodeItemKey) ++inodes;
    return true;
  }));
  benchmark::DoNotOptimize(inodes);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

void BM_MountTime(benchmark::State& state) {
  auto device = image_with_files(state.range(0));
  for (auto _ : state) state.SetIterationTime(mount_ms(*device) / 1000);
}
BENCHMARK(BM_MountTime)
    ->Arg(10000)
    ->Arg(1000000)
    ->Iterations(10)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Paired rounds: small and large alternate, so that the machine's drift
// touches both; the ratio of the medians is reported.
void BM_SnapshotMountRatio(benchmark::State& state) {
  EncryptedTree small_tree = encrypted_tree(1000);
  EncryptedTree large_tree = encrypted_tree(100000);
  auto small_image = image_with_files(10000);
  auto large_image = image_with_files(1000000);
  std::vector<double> snap_small, snap_large, mount_small, mount_large, walk_large, map_small,
      map_large;
  for (int warm_up = 0; warm_up < 3; ++warm_up) {
    snapshot_ms(small_tree);
    snapshot_ms(large_tree);
  }
  for (auto _ : state) {
    for (int round = 0; round < 21; ++round) {
      snap_small.push_back(snapshot_ms(small_tree));
      snap_large.push_back(snapshot_ms(large_tree));
    }
    for (int round = 0; round < 7; ++round) {
      mount_small.push_back(mount_ms(*small_image));
      mount_large.push_back(mount_ms(*large_image));
    }
    for (int round = 0; round < 3; ++round) walk_large.push_back(inode_walk_ms(*large_image));
    for (int round = 0; round < 7; ++round) {
      map_small.push_back(space_map_ms(*small_image));
      map_large.push_back(space_map_ms(*large_image));
    }
  }
  state.counters["snapshot_1k_ms"] = median(snap_small);
  state.counters["snapshot_100k_ms"] = median(snap_large);
  state.counters["snapshot_100k_over_1k"] = median(snap_large) / median(snap_small);
  state.counters["mount_10k_ms"] = median(mount_small);
  state.counters["mount_1M_ms"] = median(mount_large);
  state.counters["mount_1M_over_10k"] = median(mount_large) / median(mount_small);
  // What counting the inodes at mount added before (no longer done).
  state.counters["inode_walk_1M_ms"] = median(walk_large);
  state.counters["space_map_10k_ms"] = median(map_small);
  state.counters["space_map_1M_ms"] = median(map_large);
  or_die(small_tree.fs->close());
  or_die(large_tree.fs->close());
}
BENCHMARK(BM_SnapshotMountRatio)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ecfs::fs
