// Reads finish without the filesystem's lock (FileSystem::read,
// FileData::plan_read): these tests run them against writers that free and
// reuse the very space being read, and check that every read returns whole,
// consistent blocks of the file it asked for.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "block/memory_device.h"
#include "block/wrapping_device.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"

namespace ecfs::fs {
namespace {

using testing::kRootCaller;
using testing::must;

constexpr uint64_t kBlock = 4096;

// Block `index` of version `version` of file `tag`: a header naming all
// three, then a filler derived from them, so a block of another file,
// version or place is recognized.
void fill_block(uint8_t tag, uint32_t version, uint32_t index, uint8_t* out) {
  out[0] = tag;
  std::memcpy(out + 1, &version, sizeof version);
  std::memcpy(out + 5, &index, sizeof index);
  std::memset(out + 9, static_cast<uint8_t>(tag ^ version ^ index), kBlock - 9);
}

// Empty when `block` is a whole block `index` of some version of file `tag`.
std::string block_problem(uint8_t tag, uint32_t index, const uint8_t* block) {
  uint32_t version = 0, stored_index = 0;
  std::memcpy(&version, block + 1, sizeof version);
  std::memcpy(&stored_index, block + 5, sizeof stored_index);
  if (block[0] != tag || stored_index != index) {
    return "block " + std::to_string(index) + " holds block " + std::to_string(stored_index) +
           " of file " + std::to_string(block[0]);
  }
  const uint8_t filler = static_cast<uint8_t>(tag ^ version ^ index);
  for (uint64_t i = 9; i < kBlock; ++i) {
    if (block[i] != filler) return "block " + std::to_string(index) + " is torn";
  }
  return {};
}

// Reads from threads marked slow wait before they reach the device: the
// window between a read's planning and its device read, in which writers
// and commits go on, widened from microseconds to longer than the
// allocator takes to come round the device.
thread_local bool slow_reads = false;
class SlowReadDevice final : public block::WrappingDevice {
 public:
  using WrappingDevice::WrappingDevice;
  Status read(uint64_t offset, MutableByteSpan out) override {
    if (slow_reads) std::this_thread::sleep_for(std::chrono::milliseconds(30));
    return WrappingDevice::read(offset, out);
  }
};

Bytes file_version(uint8_t tag, uint32_t version, uint32_t blocks) {
  Bytes data(blocks * kBlock);
  for (uint32_t i = 0; i < blocks; ++i) fill_block(tag, version, i, data.data() + i * kBlock);
  return data;
}

// A small device, so the allocator comes round to freed space quickly: two
// files rewritten whole and committed over and over while two threads read
// one of them. Each commit makes the space of the previous versions
// reusable; a read that had looked up its extents before such a commit must
// still get them (the commit waits for it), never the other file's blocks
// or a checksum error.
TEST(ConcurrentReadTest, ReadsSeeWholeBlocksWhileWritersReuseFreedSpace) {
  block::MemoryDevice memory(24ull << 20);
  SlowReadDevice device(memory);
  testing::make_filesystem(device);
  auto fs = must(FileSystem::open(device));
  constexpr uint32_t kBlocks = 256;  // 1 MiB per file
  const uint64_t read_file =
      must(fs->mknod(kRootDirIno, "read", S_IFREG | 0644, 0, kRootCaller)).ino;
  const uint64_t other_file =
      must(fs->mknod(kRootDirIno, "other", S_IFREG | 0644, 0, kRootCaller)).ino;
  must(fs->write(read_file, 0, file_version('R', 0, kBlocks)));
  must(fs->sync());

  std::atomic<bool> stop = false;
  std::atomic<uint64_t> reads = 0;
  std::vector<std::string> problems;
  std::mutex problems_mutex;
  auto reader = [&](uint32_t seed) {
    slow_reads = true;
    Bytes out(32 * kBlock);
    uint32_t state = seed;
    while (!stop) {
      state = state * 1103515245 + 12345;
      const uint32_t first = (state >> 8) % (kBlocks - 32);
      auto read = fs->read(read_file, uint64_t{first} * kBlock, out);
      std::string problem;
      if (!read) {
        problem = read.error().to_string();
      } else if (*read != out.size()) {
        problem = "short read of " + std::to_string(*read);
      } else {
        for (uint32_t i = 0; i < 32 && problem.empty(); ++i) {
          problem = block_problem('R', first + i, out.data() + i * kBlock);
        }
      }
      if (!problem.empty()) {
        std::lock_guard lock(problems_mutex);
        problems.push_back(problem);
        return;
      }
      ++reads;
    }
  };
  std::vector<std::thread> readers;
  for (uint32_t seed : {1u, 2u}) readers.emplace_back(reader, seed);

  for (uint32_t version = 1; version <= 200; ++version) {
    must(fs->write(other_file, 0, file_version('O', version, kBlocks)));
    must(fs->write(read_file, 0, file_version('R', version, kBlocks)));
    must(fs->sync());
  }
  stop = true;
  for (std::thread& thread : readers) thread.join();
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_GT(reads.load(), 0u);
  must(fs->close());
  fs.reset();
  testing::expect_full_check_clean(device);
}

}  // namespace
}  // namespace ecfs::fs
