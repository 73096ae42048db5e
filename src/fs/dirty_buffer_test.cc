#include "fs/dirty_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "store/format.h"

namespace ecfs::fs {
namespace {

constexpr uint64_t kSector = store::kSectorSize;

Bytes filled(uint8_t value, size_t size) { return Bytes(size, value); }

// Reads [start, end) of the buffer, 0xee where nothing is buffered.
Bytes contents(const DirtyBuffer& buffer, uint64_t start, uint64_t end) {
  Bytes out(end - start, 0xee);
  for (const auto& [run_start, run] : buffer.runs()) {
    for (uint64_t i = 0; i < run.size(); ++i) {
      const uint64_t at = run_start + i;
      if (at >= start && at < end) out[at - start] = run.data()[i];
    }
  }
  return out;
}

struct FillLog {
  std::vector<uint64_t> sectors;
  DirtyBuffer::SectorFill fill() {
    return [this](uint64_t sector, uint8_t* out) {
      sectors.push_back(sector);
      std::fill(out, out + kSector, static_cast<uint8_t>(0x40 + sectors.size()));
    };
  }
};

TEST(DirtyBufferTest, PartialSectorsAreFilledFirstOnlyWhenNew) {
  DirtyBuffer buffer(1 << 20);
  FillLog log;
  EXPECT_EQ(buffer.store(100, filled(1, 5000), log.fill()), 2 * kSector);
  EXPECT_EQ(log.sectors, (std::vector<uint64_t>{0, kSector}));
  Bytes expected(2 * kSector, 0x41);
  std::fill(expected.begin() + 100, expected.begin() + 5100, 1);
  std::fill(expected.begin() + 5100, expected.end(), 0x42);
  EXPECT_EQ(contents(buffer, 0, 2 * kSector), expected);

  // Inside buffered sectors: no fill, no new bytes.
  EXPECT_EQ(buffer.store(4000, filled(2, 200), log.fill()), 0u);
  EXPECT_EQ(log.sectors.size(), 2u);
  std::fill(expected.begin() + 4000, expected.begin() + 4200, 2);
  EXPECT_EQ(contents(buffer, 0, 2 * kSector), expected);
  EXPECT_EQ(buffer.bytes(), 2 * kSector);

  // One partial sector with both edges inside it: filled once.
  EXPECT_EQ(buffer.store(5 * kSector + 10, filled(3, 10), log.fill()), kSector);
  EXPECT_EQ(log.sectors.size(), 3u);
  EXPECT_EQ(log.sectors.back(), 5 * kSector);
  // Aligned on both ends: nothing to fill.
  EXPECT_EQ(buffer.store(8 * kSector, filled(4, kSector), log.fill()), kSector);
  EXPECT_EQ(log.sectors.size(), 3u);
}

TEST(DirtyBufferTest, AppendsGrowOneRunUpToTheLimit) {
  DirtyBuffer buffer(4 * kSector);
  FillLog log;
  for (uint64_t at = 0; at < 10 * kSector; at += 1000) {
    const size_t n = std::min<uint64_t>(1000, 10 * kSector - at);
    buffer.store(at, filled(static_cast<uint8_t>(at / 1000 + 1), n), log.fill());
  }
  ASSERT_EQ(buffer.runs().size(), 3u);
  uint64_t expected_start = 0;
  for (const auto& [start, run] : buffer.runs()) {
    EXPECT_EQ(start, expected_start);
    EXPECT_LE(run.size(), 4 * kSector);
    expected_start += run.size();
  }
  EXPECT_EQ(expected_start, 10 * kSector);
  // Only new sectors are filled: the ones a write enters part way, once.
  for (uint64_t sector : log.sectors) EXPECT_EQ(sector % kSector, 0u);
  const Bytes data = contents(buffer, 0, 10 * kSector);
  for (uint64_t at = 0; at < 10 * kSector; ++at) {
    ASSERT_EQ(data[at], static_cast<uint8_t>(at / 1000 + 1)) << at;
  }
  EXPECT_EQ(buffer.ranges_in(0, UINT64_MAX), (std::vector<FileRange>{{0, 10 * kSector}}));
  EXPECT_TRUE(buffer.gaps_in(0, 10 * kSector).empty());
}

TEST(DirtyBufferTest, AWriteBridgingRunsKeepsThemDisjoint) {
  DirtyBuffer buffer(1 << 20);
  FillLog log;
  buffer.store(0, filled(1, kSector), log.fill());
  buffer.store(3 * kSector, filled(2, kSector), log.fill());
  EXPECT_EQ(buffer.gaps_in(0, 4 * kSector), (std::vector<FileRange>{{kSector, 3 * kSector}}));
  EXPECT_EQ(buffer.store(100, filled(3, 4 * kSector - 200), log.fill()), 2 * kSector);
  EXPECT_TRUE(log.sectors.empty());
  Bytes expected(4 * kSector, 3);
  std::fill(expected.begin(), expected.begin() + 100, 1);
  std::fill(expected.end() - 100, expected.end(), 2);
  EXPECT_EQ(contents(buffer, 0, 4 * kSector), expected);
  uint64_t previous_end = 0;
  for (const auto& [start, run] : buffer.runs()) {
    EXPECT_GE(start, previous_end);
    previous_end = start + run.size();
  }
  EXPECT_EQ(buffer.bytes(), 4 * kSector);
}

TEST(DirtyBufferTest, DropTrimsAndSplitsRuns) {
  DirtyBuffer buffer(1 << 20);
  FillLog log;
  Bytes data(8 * kSector);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i / kSector + 1);
  buffer.store(0, data, log.fill());
  EXPECT_EQ(buffer.drop(2 * kSector, 3 * kSector), kSector);
  EXPECT_EQ(buffer.runs().size(), 2u);
  EXPECT_EQ(buffer.bytes(), 7 * kSector);
  EXPECT_EQ(buffer.gaps_in(0, 8 * kSector), (std::vector<FileRange>{{2 * kSector, 3 * kSector}}));
  Bytes expected = data;
  std::fill(expected.begin() + 2 * kSector, expected.begin() + 3 * kSector, 0xee);
  EXPECT_EQ(contents(buffer, 0, 8 * kSector), expected);
  EXPECT_EQ(buffer.find(3 * kSector)->first, 3 * kSector);
  EXPECT_EQ(buffer.find(2 * kSector + 5), buffer.runs().end());
  EXPECT_EQ(buffer.first_ending_after(2 * kSector + 5)->first, 3 * kSector);

  EXPECT_EQ(buffer.drop(kSector, UINT64_MAX), 6 * kSector);
  EXPECT_EQ(buffer.bytes(), kSector);
  EXPECT_EQ(buffer.drop(0, kSector), kSector);
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.drop(0, UINT64_MAX), 0u);
}

}  // namespace
}  // namespace ecfs::fs
