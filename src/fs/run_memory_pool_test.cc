#include "fs/run_memory_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "fs/dirty_buffer.h"

namespace ecfs::fs {
namespace {

constexpr size_t kBlock = 1 << 20;

bool page_aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE)) == 0;
}

TEST(RunMemoryPoolTest, GivenBackBlocksAreReusedUpToTheBound) {
  RunMemoryPool pool(kBlock, 2);
  uint8_t* a = pool.take();
  uint8_t* b = pool.take();
  uint8_t* c = pool.take();
  EXPECT_TRUE(page_aligned(a) && page_aligned(b) && page_aligned(c));
  std::memset(a, 1, kBlock);  // the whole block is usable
  pool.give_back(a);
  pool.give_back(b);
  pool.give_back(c);  // past the bound: unmapped
  EXPECT_EQ(pool.free_blocks(), 2u);
  uint8_t* again = pool.take();
  EXPECT_TRUE(again == a || again == b);
  pool.give_back(again);
}

TEST(RunMemoryPoolTest, FreeBlocksGoBackOnlyWhenIdle) {
  RunMemoryPool pool(kBlock, 4);
  pool.give_back(pool.take());
  // Taken since the last call: the writes may go on, the block stays.
  EXPECT_EQ(pool.release_idle(), 0u);
  EXPECT_EQ(pool.free_blocks(), 1u);
  // Nothing taken since: unmapped.
  EXPECT_EQ(pool.release_idle(), kBlock);
  EXPECT_EQ(pool.free_blocks(), 0u);
}

TEST(RunMemoryPoolTest, LongRunsOfADirtyBufferLiveInPoolBlocks) {
  RunMemoryPool pool(kBlock, 4);
  DirtyBuffer buffer(kBlock, &pool);
  auto no_fill = [](uint64_t, uint8_t*) { FAIL() << "whole sectors need no fill"; };
  // A short run stays in malloc'd memory; growing past a 32nd of a block
  // moves it into a block, with its bytes.
  const Bytes first(4096, 0x11);
  buffer.store(0, first, no_fill);
  const Bytes rest(kBlock - 4096, 0x22);
  buffer.store(4096, rest, no_fill);
  ASSERT_EQ(buffer.runs().size(), 1u);
  const SectorRun& run = buffer.runs().begin()->second;
  EXPECT_TRUE(page_aligned(run.data()));
  EXPECT_EQ(run.data()[0], 0x11);
  EXPECT_EQ(run.data()[4095], 0x11);
  EXPECT_EQ(run.data()[4096], 0x22);
  EXPECT_EQ(run.data()[kBlock - 1], 0x22);
  const uint8_t* block = run.data();
  // Dropped, the block goes back to the pool and serves the next long run.
  buffer.drop(0, UINT64_MAX);
  EXPECT_EQ(pool.free_blocks(), 1u);
  buffer.store(8 * kBlock, Bytes(kBlock, 0x33), no_fill);
  EXPECT_EQ(buffer.runs().begin()->second.data(), block);
  EXPECT_EQ(pool.free_blocks(), 0u);
}

}  // namespace
}  // namespace ecfs::fs
