// Benchmarks of the filesystem's metadata operations without FUSE (part of
// ecfs_bench; `make bench`): the FileSystem over a MemoryDevice, doing what
// the kernel asks for in bench/metadata_storm.cc's phases, so the figures
// are ecfs's own cost per operation; bench/fs_bench.sh measures the same
// through the mount, where each operation also costs FUSE round trips.
//
// * BM_FsCreate: lookup of the new name (ENOENT), create, getattr of the
//   directory, release -- one kernel create (open O_CREAT|O_EXCL + close).
// * BM_FsStat: getattr of an existing file.
// * BM_FsUnlink: unlink, then forget of the kernel's reference (the inode is
//   an orphan until then, and deleted at the forget).
// items_per_second is the operation rate; files go into 100 directories, as
// in the storm; a commit every 5000 operations stands in for the periodic
// commit.
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "block/memory_device.h"
#include "fs/filesystem.h"
#include "store/engine.h"

namespace ecfs::fs {
namespace {

constexpr int kDirectories = 100;
constexpr int kCommitEvery = 5000;
constexpr Caller kOwner{0, 0, 022};

class Storm {
 public:
  Storm() : device_(1ull << 30) {
    if (!store::mkfs(device_, {})) std::abort();
    {
      auto engine = store::Engine::open(device_);
      if (!engine || !format_filesystem(**engine, kOwner)) std::abort();
    }
    auto opened = FileSystem::open(device_);
    if (!opened) std::abort();
    fs_ = std::move(*opened);
    for (int d = 0; d < kDirectories; ++d) {
      dirs_.push_back(fs_->mkdir(kRootDirIno, "d" + std::to_string(d), 0755, kOwner)->ino);
    }
  }
  ~Storm() { (void)fs_->close(); }

  uint64_t dir_of(int64_t i) const { return dirs_[static_cast<size_t>(i % kDirectories)]; }
  static std::string name_of(int64_t i) { return "f" + std::to_string(i); }
  FileSystem& fs() { return *fs_; }
  void maybe_commit(int64_t i) {
    if (i % kCommitEvery == kCommitEvery - 1 && !fs_->sync()) std::abort();
  }

 private:
  block::MemoryDevice device_;
  std::unique_ptr<FileSystem> fs_;
  std::vector<uint64_t> dirs_;
};

void create_files(Storm& storm, int64_t count, std::vector<uint64_t>& inos) {
  for (int64_t i = 0; i < count; ++i) {
    FileSystem& fs = storm.fs();
    const uint64_t dir = storm.dir_of(i);
    if (fs.lookup(dir, Storm::name_of(i))) std::abort();
    auto created = fs.mknod(dir, Storm::name_of(i), S_IFREG | 0644, 0, kOwner);
    if (!created || !fs.open(created->ino, 0)) std::abort();
    benchmark::DoNotOptimize(fs.getattr(dir));
    fs.release(created->ino);
    inos.push_back(created->ino);
    storm.maybe_commit(i);
  }
}

void BM_FsCreate(benchmark::State& state) {
  const int64_t count = state.range(0);
  for (auto _ : state) {
    state.PauseTiming();
    auto storm = std::make_unique<Storm>();
    std::vector<uint64_t> inos;
    state.ResumeTiming();
    create_files(*storm, count, inos);
    state.PauseTiming();
    storm.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_FsCreate)->Arg(20000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_FsStat(benchmark::State& state) {
  const int64_t count = state.range(0);
  Storm storm;
  std::vector<uint64_t> inos;
  create_files(storm, count, inos);
  for (auto _ : state) {
    for (uint64_t ino : inos) benchmark::DoNotOptimize(storm.fs().getattr(ino));
  }
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_FsStat)->Arg(20000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_FsUnlink(benchmark::State& state) {
  const int64_t count = state.range(0);
  for (auto _ : state) {
    state.PauseTiming();
    auto storm = std::make_unique<Storm>();
    std::vector<uint64_t> inos;
    create_files(*storm, count, inos);
    state.ResumeTiming();
    for (int64_t i = 0; i < count; ++i) {
      FileSystem& fs = storm->fs();
      if (!fs.unlink(storm->dir_of(i), Storm::name_of(i))) std::abort();
      benchmark::DoNotOptimize(fs.getattr(storm->dir_of(i)));
      fs.forget(inos[static_cast<size_t>(i)], 1);
      storm->maybe_commit(i);
    }
    state.PauseTiming();
    storm.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_FsUnlink)->Arg(20000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace ecfs::fs
