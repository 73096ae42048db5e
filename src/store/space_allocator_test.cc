#include "store/space_allocator.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <set>

namespace ecfs::store {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(SpaceAllocatorTest, ReservedAreasAreNeverHandedOut) {
  SpaceAllocator alloc(4 * kMiB, {{0, kMiB}, {64 << 10, 4096}, {2 * kMiB, 4096}});
  EXPECT_EQ(alloc.reserved_bytes(), kMiB + 4096);
  EXPECT_EQ(alloc.free_bytes(), 3 * kMiB - 4096);
  std::set<uint64_t> starts;
  while (true) {
    auto got = alloc.allocate(16384, 16384);
    if (!got) {
      EXPECT_EQ(got.error().errno_value(), ENOSPC);
      break;
    }
    EXPECT_GE(*got, kMiB);
    EXPECT_EQ(*got % 16384, 0u);
    EXPECT_TRUE(*got + 16384 <= 2 * kMiB || *got >= 2 * kMiB + 4096) << *got;
    EXPECT_TRUE(starts.insert(*got).second);
  }
  // 1 MiB below the second copy, and 2 MiB - 16 KiB above it (the node that
  // would straddle the copy is lost to alignment).
  EXPECT_EQ(starts.size(), 64u + 127u);
  // Sector-aligned data still fits into the gap next to the reserved copy.
  auto data = alloc.allocate(4096, 4096);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(*data, 2 * kMiB + 4096);
}

TEST(SpaceAllocatorTest, RejectsBadRequests) {
  SpaceAllocator alloc(kMiB, {});
  EXPECT_EQ(alloc.allocate(0, 4096).error().errno_value(), EINVAL);
  EXPECT_EQ(alloc.allocate(4096, 3000).error().errno_value(), EINVAL);
  EXPECT_EQ(alloc.allocate(2 * kMiB, 4096).error().errno_value(), ENOSPC);
}

TEST(SpaceAllocatorTest, NextFitIsContiguous) {
  SpaceAllocator alloc(kMiB, {});
  uint64_t previous = *alloc.allocate(4096, 4096);
  for (int i = 0; i < 10; ++i) {
    uint64_t next = *alloc.allocate(8192, 4096);
    EXPECT_EQ(next, previous + (i == 0 ? 4096 : 8192));
    previous = next;
  }
}

TEST(SpaceAllocatorTest, PinnedSpaceIsReusedOnlyAfterUnpin) {
  SpaceAllocator alloc(64 * 1024, {});
  std::vector<uint64_t> blocks;
  for (int i = 0; i < 16; ++i) blocks.push_back(*alloc.allocate(4096, 4096));
  EXPECT_EQ(alloc.allocate(4096, 4096).error().errno_value(), ENOSPC);
  ASSERT_TRUE(alloc.pin(blocks[3], 4096).has_value());
  ASSERT_TRUE(alloc.pin(blocks[4], 4096).has_value());
  EXPECT_EQ(alloc.pinned_bytes(), 8192u);
  EXPECT_EQ(alloc.free_bytes(), 0u);
  EXPECT_EQ(alloc.allocate(4096, 4096).error().errno_value(), ENOSPC);
  alloc.unpin_all();
  EXPECT_EQ(alloc.free_bytes(), 8192u);
  // Contiguous after coalescing.
  EXPECT_EQ(*alloc.allocate(8192, 4096), blocks[3]);
}

TEST(SpaceAllocatorTest, DoubleFreeAndOverlapsAreDetected) {
  SpaceAllocator alloc(kMiB, {{0, 65536}});
  uint64_t a = *alloc.allocate(16384, 16384);
  ASSERT_TRUE(alloc.pin(a, 16384).has_value());
  EXPECT_EQ(alloc.pin(a, 16384).error().errno_value(), EUCLEAN);         // pinned twice
  EXPECT_EQ(alloc.pin(a + 16384, 4096).error().errno_value(), EUCLEAN);  // free
  EXPECT_EQ(alloc.pin(0, 4096).error().errno_value(), EUCLEAN);          // reserved
  EXPECT_EQ(alloc.mark_allocated(0, 4096).error().errno_value(), EUCLEAN);
  ASSERT_TRUE(alloc.mark_allocated(200000, 4096).has_value());
  EXPECT_EQ(alloc.mark_allocated(198000, 4096).error().errno_value(), EUCLEAN);
  EXPECT_FALSE(alloc.is_free(200000, 1));
}

// Random allocations and frees against a byte-set model: no range is ever
// handed out twice, and the byte counts always add up.
TEST(SpaceAllocatorTest, RandomAgainstModel) {
  std::mt19937_64 rng(7);
  const uint64_t size = 8 * kMiB;
  SpaceAllocator alloc(size, {{0, kMiB}});
  std::map<uint64_t, uint64_t> live;  // start -> length
  std::vector<std::pair<uint64_t, uint64_t>> pinned;
  for (int step = 0; step < 20000; ++step) {
    const int op = rng() % 10;
    if (op < 6) {
      const uint64_t alignment = (rng() % 2) ? 16384 : 4096;
      const uint64_t length = alignment * (1 + rng() % 8);
      auto got = alloc.allocate(length, alignment);
      if (!got) {
        ASSERT_EQ(got.error().errno_value(), ENOSPC);
        continue;
      }
      ASSERT_EQ(*got % alignment, 0u);
      ASSERT_GE(*got, kMiB);
      ASSERT_LE(*got + length, size);
      auto next = live.lower_bound(*got);
      if (next != live.end()) {
        ASSERT_LE(*got + length, next->first);
      }
      if (next != live.begin()) {
        ASSERT_LE(std::prev(next)->first + std::prev(next)->second, *got);
      }
      for (auto [s, l] : pinned) ASSERT_TRUE(*got + length <= s || s + l <= *got);
      live[*got] = length;
    } else if (op < 9 && !live.empty()) {
      auto it = live.lower_bound(rng() % size);
      if (it == live.end()) it = live.begin();
      ASSERT_TRUE(alloc.pin(it->first, it->second).has_value());
      pinned.emplace_back(it->first, it->second);
      live.erase(it);
    } else {
      alloc.unpin_all();
      pinned.clear();
    }
    uint64_t live_bytes = 0;
    for (auto [s, l] : live) live_bytes += l;
    ASSERT_EQ(alloc.allocated_bytes(), live_bytes);
  }
}

TEST(SpaceAllocatorTest, RemembersTheRangesThatChangedUntilTaken) {
  SpaceAllocator alloc(4 * kMiB, {{0, kMiB}});
  const uint64_t a = *alloc.allocate(4096, 4096);
  const uint64_t b = *alloc.allocate(4096, 4096);
  ASSERT_EQ(b, a + 4096);
  const uint64_t far = *alloc.allocate(8192, 65536);  // leaves a gap after b
  ASSERT_GT(far, b + 4096);
  ASSERT_TRUE(alloc.pin(a, 4096));
  // a and b touch: one range; the pin of a is inside it.
  const std::map<uint64_t, uint64_t> expected{{a, b + 4096}, {far, far + 8192}};
  EXPECT_EQ(alloc.take_changed(), expected);
  EXPECT_TRUE(alloc.take_changed().empty());
  ASSERT_TRUE(alloc.pin(b, 4096));
  alloc.unpin_all();  // a commit: nothing is left to take
  EXPECT_TRUE(alloc.take_changed().empty());
  alloc.mark_all_changed();
  EXPECT_EQ(alloc.take_changed(), (std::map<uint64_t, uint64_t>{{0, 4 * kMiB}}));
}

TEST(SpaceAllocatorTest, UnallocatedSpaceJoinsFreeAndPinnedNeighbours) {
  SpaceAllocator alloc(2 * kMiB, {{0, kMiB}});
  std::vector<uint64_t> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(*alloc.allocate(4096, 4096));
  ASSERT_EQ(blocks[0], kMiB);
  const uint64_t tail = blocks[3] + 4096;  // free from here to the end
  ASSERT_TRUE(alloc.pin(blocks[1], 4096));
  EXPECT_EQ(alloc.unallocated_in(0, 2 * kMiB),
            (std::vector<ByteRange>{{blocks[1], 4096}, {tail, 2 * kMiB - tail}}));
  ASSERT_TRUE(alloc.pin(blocks[3], 4096));
  // The pinned block and the free tail form one range.
  EXPECT_EQ(alloc.unallocated_in(0, 2 * kMiB),
            (std::vector<ByteRange>{{blocks[1], 4096}, {blocks[3], 2 * kMiB - blocks[3]}}));
  EXPECT_EQ(alloc.unallocated_around(tail + 100), (ByteRange{blocks[3], 2 * kMiB - blocks[3]}));
  EXPECT_EQ(alloc.unallocated_around(blocks[3]), (ByteRange{blocks[3], 2 * kMiB - blocks[3]}));
  EXPECT_EQ(alloc.unallocated_around(blocks[2]), std::nullopt);
  EXPECT_EQ(alloc.unallocated_around(0), std::nullopt);  // reserved
  // Clipped to the range asked about.
  EXPECT_EQ(alloc.unallocated_in(blocks[1] + 100, blocks[3] + 8192),
            (std::vector<ByteRange>{{blocks[1] + 100, 4096 - 100}, {blocks[3], 8192}}));
}

TEST(SpaceAllocatorTest, LoadsAFreeListAndRejectsABadOne) {
  const std::vector<ByteRange> reserved{{0, kMiB}};
  auto loaded =
      SpaceAllocator::from_free_ranges(4 * kMiB, reserved, {{kMiB, 8192}, {2 * kMiB, kMiB}});
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(loaded->free_bytes(), 8192 + kMiB);
  EXPECT_EQ(loaded->allocated_bytes(), 3 * kMiB - 8192 - kMiB);
  EXPECT_EQ(*loaded->allocate(8192, 4096), kMiB);
  EXPECT_EQ(*loaded->allocate(4096, 4096), 2 * kMiB);
  EXPECT_TRUE(loaded->take_changed().size() == 2);
  // Allocated space can be freed (it is what the list leaves out).
  EXPECT_TRUE(loaded->pin(kMiB + 8192, 4096));

  const std::vector<std::vector<ByteRange>> bad = {
      {{0, 4096}},                          // reserved
      {{kMiB, 0}},                          // empty
      {{2 * kMiB, 4096}, {kMiB, 4096}},     // out of order
      {{kMiB, 4096}, {kMiB + 4096, 4096}},  // touching: not maximal
      {{kMiB, 8192}, {kMiB + 4096, 4096}},  // overlapping
      {{4 * kMiB - 4096, 8192}},            // past the end
      {{UINT64_MAX - 4095, 4096}},          // wraps
  };
  for (const auto& ranges : bad) {
    auto result = SpaceAllocator::from_free_ranges(4 * kMiB, reserved, ranges);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().errno_value(), EUCLEAN);
  }
}

}  // namespace
}  // namespace ecfs::store
