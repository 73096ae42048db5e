#include "fs/file_data.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "fs/file_data_test_util.h"

namespace ecfs::fs {
namespace {

using testing::pattern;
using testing::value_or_die;

constexpr uint64_t kSector = store::kSectorSize;
constexpr uint64_t kIno = 257;
constexpr uint64_t kOther = 258;

class FileDataUnitTest : public testing::FileDataTest {
 protected:
  // The nbytes the test tracked equals what the items hold once flushed.
  void expect_nbytes_consistent(uint64_t ino) {
    ASSERT_TRUE(data_->flush(ino));
    EXPECT_EQ(static_cast<uint64_t>(files_[ino].nbytes), allocated_by_items(ino));
  }
  // Writes `bytes` at offset 0 of a new file, flushes, commits and reopens:
  // the file is then one committed extent, whose address is returned.
  uint64_t write_one_extent(uint64_t ino, const Bytes& bytes) {
    write(ino, 0, bytes);
    flush_commit_reopen();
    const std::vector<PlacedExtent> items = extents(ino);
    EXPECT_EQ(items.size(), 1u);
    EXPECT_EQ(committed_refs(items.at(0).item.disk_bytenr), 1u);
    return items.at(0).item.disk_bytenr;
  }
  Result<uint64_t> seek(uint64_t ino, uint64_t offset, int whence) {
    return data_->seek(ino, files_[ino].size, offset, whence);
  }
};

TEST_F(FileDataUnitTest, UnalignedWriteAcrossSectorsReadsBackBeforeAndAfterFlush) {
  const Bytes bytes = pattern(1, 10000);
  write(kIno, 1000, bytes);
  EXPECT_EQ(files_[kIno].nbytes, 3 * 4096);  // sectors 0, 1 and 2
  EXPECT_EQ(data_->dirty_bytes(), 3 * kSector);
  EXPECT_TRUE(data_->has_dirty(kIno));
  Bytes expected(1000, 0);
  expected.insert(expected.end(), bytes.begin(), bytes.end());
  EXPECT_EQ(read_all(kIno), expected);

  ASSERT_TRUE(data_->flush(kIno));
  EXPECT_FALSE(data_->has_dirty(kIno));
  EXPECT_EQ(data_->dirty_bytes(), 0u);
  EXPECT_EQ(read_all(kIno), expected);
  ASSERT_EQ(extents(kIno).size(), 1u);
  EXPECT_EQ(extents(kIno)[0].item.length, 3 * kSector);

  // A partial overwrite across a sector boundary of flushed data reads the
  // old sectors from disk and changes nothing else.
  const Bytes patch = pattern(2, 7);
  write(kIno, 4093, patch);
  EXPECT_EQ(files_[kIno].nbytes, 3 * 4096);
  std::copy(patch.begin(), patch.end(), expected.begin() + 4093);
  EXPECT_EQ(read_all(kIno), expected);
  EXPECT_EQ(read(kIno, 4090, 20), Bytes(expected.begin() + 4090, expected.begin() + 4110));

  flush_commit_reopen();
  EXPECT_EQ(read_all(kIno), expected);
  expect_nbytes_consistent(kIno);
}

TEST_F(FileDataUnitTest, ReadsAreClippedToTheFileSize) {
  write(kIno, 0, pattern(3, 5000));
  EXPECT_EQ(read(kIno, 4000, 4096).size(), 1000u);
  EXPECT_TRUE(read(kIno, 5000, 10).empty());
  EXPECT_TRUE(read(kIno, 9000, 10).empty());
}

TEST_F(FileDataUnitTest, WritesPastTheEndLeaveHoles) {
  const Bytes a = pattern(4, 100);
  const Bytes b = pattern(5, 100);
  write(kIno, 0, a);
  write(kIno, (1 << 20) + 5, b);
  EXPECT_EQ(files_[kIno].nbytes, 2 * 4096);
  Bytes expected((1 << 20) + 105, 0);
  std::copy(a.begin(), a.end(), expected.begin());
  std::copy(b.begin(), b.end(), expected.begin() + (1 << 20) + 5);
  EXPECT_EQ(read_all(kIno), expected);
  EXPECT_EQ(value_or_die(seek(kIno, 0, SEEK_HOLE)), kSector);
  EXPECT_EQ(value_or_die(seek(kIno, 200, SEEK_DATA)), 200u);  // inside the data sector
  EXPECT_EQ(value_or_die(seek(kIno, 5000, SEEK_DATA)), 1u << 20);
  ASSERT_TRUE(data_->flush(kIno));
  EXPECT_EQ(extents(kIno).size(), 2u);
  EXPECT_EQ(read_all(kIno), expected);
  EXPECT_EQ(value_or_die(seek(kIno, 5000, SEEK_DATA)), 1u << 20);
  EXPECT_EQ(value_or_die(seek(kIno, (1 << 20) + 1, SEEK_HOLE)), files_[kIno].size);
  expect_nbytes_consistent(kIno);
  commit_and_check();
}

TEST_F(FileDataUnitTest, TruncateDownInsideASectorThenUpReadsZeros) {
  for (const bool flushed : {false, true}) {
    SCOPED_TRACE(flushed ? "flushed" : "buffered");
    const uint64_t ino = flushed ? kOther : kIno;
    const Bytes bytes = pattern(6, 3 * kSector);
    write(ino, 0, bytes);
    if (flushed) {
      ASSERT_TRUE(data_->flush(ino));
    }
    const int64_t before = files_[ino].nbytes;
    truncate(ino, 5000);
    EXPECT_EQ(files_[ino].nbytes, before - 4096);  // the third sector goes
    truncate(ino, 3 * kSector);
    Bytes expected(bytes.begin(), bytes.begin() + 5000);
    expected.resize(3 * kSector, 0);
    EXPECT_EQ(read_all(ino), expected);
    ASSERT_TRUE(data_->flush(ino));
    EXPECT_EQ(read_all(ino), expected);
    expect_nbytes_consistent(ino);
  }
  flush_commit_reopen();
  truncate(kIno, 1);
  truncate(kIno, 100);
  EXPECT_EQ(read_all(kIno), [] {
    Bytes expected(100, 0);
    expected[0] = pattern(6, 1)[0];
    return expected;
  }());
  truncate(kIno, 0);
  EXPECT_EQ(files_[kIno].nbytes, 0);
  expect_nbytes_consistent(kIno);
  commit_and_check();
}

TEST_F(FileDataUnitTest, PunchSplitsAnExtentIntoTwoItemsWithTheirReferences) {
  const Bytes bytes = pattern(7, 64 << 10);
  const uint64_t bytenr = write_one_extent(kIno, bytes);
  const std::vector<PlacedExtent> before = extents(kIno);

  auto delta = data_->punch_hole(kIno, files_[kIno].size, 16 << 10, 16 << 10);
  ASSERT_TRUE(delta) << delta.error().to_string();
  EXPECT_EQ(*delta, -(16 << 10));
  files_[kIno].nbytes += *delta;
  const std::vector<PlacedExtent> after = extents(kIno);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].offset, 0u);
  EXPECT_EQ(after[0].item.extent_offset, 0u);
  EXPECT_EQ(after[0].item.length, 16u << 10);
  EXPECT_EQ(after[1].offset, 32u << 10);
  EXPECT_EQ(after[1].item.extent_offset, 32u << 10);
  EXPECT_EQ(after[1].item.length, 32u << 10);
  for (const PlacedExtent& extent : after) {
    EXPECT_EQ(extent.item.disk_bytenr, bytenr);
    EXPECT_EQ(extent.item.disk_length, 64u << 10);
    EXPECT_EQ(extent.item.generation, before[0].item.generation);
  }
  Bytes expected = bytes;
  std::fill(expected.begin() + (16 << 10), expected.begin() + (32 << 10), 0);
  EXPECT_EQ(read_all(kIno), expected);
  EXPECT_EQ(value_or_die(seek(kIno, 0, SEEK_HOLE)), 16u << 10);
  EXPECT_EQ(value_or_die(seek(kIno, 16 << 10, SEEK_DATA)), 32u << 10);
  commit_and_check();
  EXPECT_EQ(committed_refs(bytenr), 2u);
  expect_nbytes_consistent(kIno);
}

TEST_F(FileDataUnitTest, PunchZeroesPartialEdgeSectorsAndFreesWholeOnes) {
  const Bytes bytes = pattern(8, 5 * kSector);
  write(kIno, 0, bytes);
  ASSERT_TRUE(data_->flush(kIno));
  const uint64_t end = 3 * kSector + 500;
  auto delta = data_->punch_hole(kIno, files_[kIno].size, 1000, end - 1000);
  ASSERT_TRUE(delta) << delta.error().to_string();
  EXPECT_EQ(*delta, -2 * 4096);  // sectors 1 and 2
  files_[kIno].nbytes += *delta;
  Bytes expected = bytes;
  std::fill(expected.begin() + 1000, expected.begin() + end, 0);
  EXPECT_EQ(read_all(kIno), expected);
  EXPECT_EQ(files_[kIno].size, 5 * kSector);  // punching never changes the size

  // A punch inside one sector, and one past the end, free nothing.
  delta = data_->punch_hole(kIno, files_[kIno].size, 4 * kSector + 10, 20);
  ASSERT_TRUE(delta);
  EXPECT_EQ(*delta, 0);
  std::fill(expected.begin() + 4 * kSector + 10, expected.begin() + 4 * kSector + 30, 0);
  delta = data_->punch_hole(kIno, files_[kIno].size, 10 * kSector, 4 * kSector);
  ASSERT_TRUE(delta);
  EXPECT_EQ(*delta, 0);
  EXPECT_EQ(read_all(kIno), expected);
  expect_nbytes_consistent(kIno);
  flush_commit_reopen();
  EXPECT_EQ(read_all(kIno), expected);
}

TEST_F(FileDataUnitTest, PunchOfBufferedDataDropsIt) {
  write(kIno, 0, pattern(9, 4 * kSector));
  auto delta = data_->punch_hole(kIno, files_[kIno].size, kSector, 2 * kSector);
  ASSERT_TRUE(delta);
  EXPECT_EQ(*delta, -2 * 4096);
  files_[kIno].nbytes += *delta;
  EXPECT_EQ(data_->dirty_bytes(), 2 * kSector);
  EXPECT_EQ(value_or_die(seek(kIno, 0, SEEK_HOLE)), kSector);
  EXPECT_EQ(value_or_die(seek(kIno, kSector, SEEK_DATA)), 3 * kSector);
  expect_nbytes_consistent(kIno);
  EXPECT_EQ(extents(kIno).size(), 2u);
}

TEST_F(FileDataUnitTest, PreallocReadsZerosAndCountsAsData) {
  files_[kIno].size = 64 << 10;  // fallocate mode 0 raises the size
  auto delta = data_->preallocate(kIno, 0, 64 << 10);
  ASSERT_TRUE(delta) << delta.error().to_string();
  EXPECT_EQ(*delta, 64 << 10);
  files_[kIno].nbytes += *delta;
  EXPECT_EQ(read_all(kIno), Bytes(64 << 10, 0));
  EXPECT_EQ(value_or_die(seek(kIno, 100, SEEK_DATA)), 100u);
  EXPECT_EQ(value_or_die(seek(kIno, 100, SEEK_HOLE)), 64u << 10);
  ASSERT_EQ(extents(kIno).size(), 1u);
  EXPECT_EQ(extents(kIno)[0].item.type, FileExtentType::kPrealloc);

  // Writing into it replaces the written sectors only.
  const Bytes bytes = pattern(10, 6000);
  write(kIno, 3000, bytes);
  EXPECT_EQ(files_[kIno].nbytes, 64 << 10);
  Bytes expected(64 << 10, 0);
  std::copy(bytes.begin(), bytes.end(), expected.begin() + 3000);
  EXPECT_EQ(read_all(kIno), expected);
  expect_nbytes_consistent(kIno);
  EXPECT_EQ(extents(kIno).size(), 2u);  // data [0, 12K), prealloc [12K, 64K)
  flush_commit_reopen();
  EXPECT_EQ(read_all(kIno), expected);

  // Preallocating over data only fills the holes.
  delta = data_->preallocate(kIno, 0, 128 << 10);
  ASSERT_TRUE(delta);
  EXPECT_EQ(*delta, 64 << 10);
  files_[kIno].nbytes += *delta;
  EXPECT_EQ(read_all(kIno), expected);
  expect_nbytes_consistent(kIno);
  commit_and_check();
}

TEST_F(FileDataUnitTest, PreallocPastTheEndKeepsTheSizeAndReadsZerosWhenReached) {
  auto delta = data_->preallocate(kIno, 0, 2 * kSector);  // FALLOC_FL_KEEP_SIZE
  ASSERT_TRUE(delta);
  files_[kIno].nbytes += *delta;
  EXPECT_EQ(files_[kIno].nbytes, 2 * 4096);
  EXPECT_EQ(seek(kIno, 0, SEEK_DATA).error().errno_value(), ENXIO);
  const Bytes bytes = pattern(11, 10);
  write(kIno, kSector + 5, bytes);
  Bytes expected(kSector + 15, 0);
  std::copy(bytes.begin(), bytes.end(), expected.begin() + kSector + 5);
  EXPECT_EQ(read_all(kIno), expected);
  EXPECT_EQ(value_or_die(seek(kIno, 0, SEEK_DATA)), 0u);
  expect_nbytes_consistent(kIno);
  commit_and_check();
}

TEST_F(FileDataUnitTest, ZeroRangeKeepsTheSpaceAllocated) {
  const Bytes bytes = pattern(12, 5 * kSector);
  const uint64_t bytenr = write_one_extent(kIno, bytes);
  const uint64_t end = 4 * kSector + 10;
  auto delta = data_->zero_range(kIno, files_[kIno].size, 1000, end - 1000);
  ASSERT_TRUE(delta) << delta.error().to_string();
  EXPECT_EQ(*delta, 0);
  Bytes expected = bytes;
  std::fill(expected.begin() + 1000, expected.begin() + end, 0);
  EXPECT_EQ(read_all(kIno), expected);
  // Sectors 1-3 are now a prealloc window of the same extent: no new space.
  const std::vector<PlacedExtent> items = extents(kIno);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[1].offset, kSector);
  EXPECT_EQ(items[1].item.type, FileExtentType::kPrealloc);
  EXPECT_EQ(items[1].item.disk_bytenr, bytenr);
  EXPECT_EQ(items[1].item.extent_offset, kSector);
  EXPECT_EQ(items[1].item.length, 3 * kSector);
  EXPECT_EQ(value_or_die(seek(kIno, 0, SEEK_HOLE)), files_[kIno].size);
  commit_and_check();
  EXPECT_EQ(committed_refs(bytenr), 3u);
  // Flushing the zeroed edges leaves the old extent only the prealloc window.
  flush_commit_reopen();
  EXPECT_EQ(read_all(kIno), expected);
  EXPECT_EQ(committed_refs(bytenr), 1u);
  expect_nbytes_consistent(kIno);

  // Zeroing holes (and past the end, growing the file) allocates them.
  delta = data_->zero_range(kIno, files_[kIno].size, 8 * kSector + 1, 2 * kSector);
  ASSERT_TRUE(delta);
  EXPECT_EQ(*delta, 3 * 4096);
  files_[kIno].nbytes += *delta;
  files_[kIno].size = 10 * kSector + 1;
  expected.resize(files_[kIno].size, 0);
  EXPECT_EQ(read_all(kIno), expected);
  EXPECT_EQ(value_or_die(seek(kIno, 5 * kSector, SEEK_DATA)), 8 * kSector);
  expect_nbytes_consistent(kIno);
  commit_and_check();
}

TEST_F(FileDataUnitTest, ZeroRangeOfBufferedData) {
  const Bytes bytes = pattern(13, 4 * kSector);
  write(kIno, 0, bytes);
  auto delta = data_->zero_range(kIno, files_[kIno].size, 100, 3 * kSector);
  ASSERT_TRUE(delta) << delta.error().to_string();
  EXPECT_EQ(*delta, 0);
  Bytes expected = bytes;
  std::fill(expected.begin() + 100, expected.begin() + 100 + 3 * kSector, 0);
  EXPECT_EQ(read_all(kIno), expected);
  expect_nbytes_consistent(kIno);
  EXPECT_EQ(read_all(kIno), expected);
  commit_and_check();
}

TEST_F(FileDataUnitTest, CopyRangeSharesExtentsAndCopyOnWriteSeparatesThem) {
  const Bytes bytes = pattern(14, 1 << 20);
  const uint64_t bytenr = write_one_extent(kIno, bytes);
  const std::vector<PlacedExtent> source = extents(kIno);

  auto delta = data_->copy_range(kIno, files_[kIno].size, 0, kOther, 0, 0, 1 << 20);
  ASSERT_TRUE(delta) << delta.error().to_string();
  EXPECT_EQ(*delta, 1 << 20);
  files_[kOther] = {1 << 20, *delta};
  EXPECT_FALSE(data_->has_dirty(kOther));  // nothing was copied
  const std::vector<PlacedExtent> copy = extents(kOther);
  ASSERT_EQ(copy.size(), 1u);
  EXPECT_EQ(copy[0].item, source[0].item);
  EXPECT_EQ(read_all(kOther), bytes);
  commit_and_check();
  EXPECT_EQ(committed_refs(bytenr), 2u);

  const Bytes patch = pattern(15, kSector);
  write(kOther, kSector, patch);
  flush_commit_reopen();
  EXPECT_EQ(read_all(kIno), bytes);
  Bytes expected = bytes;
  std::copy(patch.begin(), patch.end(), expected.begin() + kSector);
  EXPECT_EQ(read_all(kOther), expected);
  EXPECT_EQ(committed_refs(bytenr), 3u);  // kIno's item and the two pieces around the patch
  expect_nbytes_consistent(kIno);
  expect_nbytes_consistent(kOther);

  ASSERT_TRUE(data_->remove_all(kIno));
  commit_and_check();
  EXPECT_EQ(committed_refs(bytenr), 2u);
  EXPECT_EQ(read_all(kOther), expected);
}

TEST_F(FileDataUnitTest, CopyRangeCopiesUnalignedEdgesAndSharesTheMiddle) {
  const Bytes bytes = pattern(16, 100000);
  write(kIno, 0, bytes);
  const Bytes old = pattern(17, 80000);
  write(kOther, 0, old);
  // 1000 and 5096 are alike modulo 4096.
  auto delta =
      data_->copy_range(kIno, files_[kIno].size, 1000, kOther, files_[kOther].size, 5096, 50000);
  ASSERT_TRUE(delta) << delta.error().to_string();
  files_[kOther].nbytes += *delta;
  Bytes expected = old;
  std::copy(bytes.begin() + 1000, bytes.begin() + 51000, expected.begin() + 5096);
  EXPECT_EQ(read_all(kOther), expected);
  EXPECT_EQ(read_all(kIno), bytes);
  // The source was flushed to be shared; the middle items name its extent.
  const uint64_t source_extent = extents(kIno)[0].item.disk_bytenr;
  ASSERT_TRUE(data_->flush(kOther));
  bool shared = false;
  for (const PlacedExtent& extent : extents(kOther)) {
    if (extent.item.disk_bytenr == source_extent) {
      shared = true;
      EXPECT_EQ(extent.offset, 2 * kSector);
      EXPECT_EQ(extent.item.extent_offset, kSector);
      EXPECT_EQ(extent.item.length, 11 * kSector);  // [8192, 53248) of the destination
    }
  }
  EXPECT_TRUE(shared);
  expect_nbytes_consistent(kOther);
  flush_commit_reopen();
  EXPECT_EQ(read_all(kOther), expected);
}

TEST_F(FileDataUnitTest, CopyRangeAtDifferentAlignmentsCopiesAndKeepsHoles) {
  const Bytes a = pattern(18, kSector);
  const Bytes b = pattern(19, kSector);
  write(kIno, 0, a);
  write(kIno, 1 << 20, b);
  flush_commit_reopen();
  const uint64_t length = (1 << 20) + kSector;
  auto delta = data_->copy_range(kIno, files_[kIno].size, 0, kOther, 0, 1, length);
  ASSERT_TRUE(delta) << delta.error().to_string();
  files_[kOther] = {length + 1, *delta};
  EXPECT_EQ(*delta, 4 * 4096);  // two sectors each straddle two
  Bytes expected(length + 1, 0);
  std::copy(a.begin(), a.end(), expected.begin() + 1);
  std::copy(b.begin(), b.end(), expected.begin() + 1 + (1 << 20));
  EXPECT_EQ(read_all(kOther), expected);
  EXPECT_EQ(value_or_die(seek(kOther, 0, SEEK_HOLE)), 2 * kSector);
  expect_nbytes_consistent(kOther);
  flush_commit_reopen();
  EXPECT_EQ(read_all(kOther), expected);
}

TEST_F(FileDataUnitTest, CopyRangeSharesTheLastPartialSectorAtTheEnd) {
  const Bytes bytes = pattern(20, 10000);
  write(kIno, 0, bytes);
  auto delta = data_->copy_range(kIno, files_[kIno].size, 0, kOther, 0, 0, 10000);
  ASSERT_TRUE(delta) << delta.error().to_string();
  files_[kOther] = {10000, *delta};
  EXPECT_EQ(*delta, 3 * 4096);
  EXPECT_FALSE(data_->has_dirty(kOther));
  EXPECT_EQ(read_all(kOther), bytes);
  // Growing the copy exposes zeros, as for the source.
  truncate(kOther, 12288);
  Bytes expected = bytes;
  expected.resize(12288, 0);
  EXPECT_EQ(read_all(kOther), expected);
  commit_and_check();
}

TEST_F(FileDataUnitTest, CopyRangeWithinOneFile) {
  const Bytes bytes = pattern(21, 4 * kSector);
  write(kIno, 0, bytes);
  auto overlap =
      data_->copy_range(kIno, files_[kIno].size, 0, kIno, files_[kIno].size, 100, 2 * kSector);
  ASSERT_FALSE(overlap);
  EXPECT_EQ(overlap.error().errno_value(), EINVAL);
  auto delta = data_->copy_range(kIno, files_[kIno].size, 0, kIno, files_[kIno].size, 2 * kSector,
                                 2 * kSector);
  ASSERT_TRUE(delta) << delta.error().to_string();
  EXPECT_EQ(*delta, 0);
  Bytes expected = bytes;
  std::copy(bytes.begin(), bytes.begin() + 2 * kSector, expected.begin() + 2 * kSector);
  EXPECT_EQ(read_all(kIno), expected);
  expect_nbytes_consistent(kIno);
  // One extent now backs both halves.
  const std::vector<PlacedExtent> items = extents(kIno);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].item.disk_bytenr, items[1].item.disk_bytenr);
  flush_commit_reopen();
  EXPECT_EQ(read_all(kIno), expected);
}

TEST_F(FileDataUnitTest, CopyRangeWithinOneFileToItsEndKeepsZerosPastTheEnd) {
  // The copy's head lands in the source's last sector, past its old end, so
  // that sector must not be shared as "zeros past the end".
  const Bytes bytes = pattern(31, 10000);
  write(kIno, 0, bytes);
  auto delta = data_->copy_range(kIno, 10000, 2500, kIno, 10000, 10692, 7500);
  ASSERT_TRUE(delta) << delta.error().to_string();
  files_[kIno].nbytes += *delta;
  files_[kIno].size = 18192;
  truncate(kIno, 20480);
  Bytes expected = bytes;
  expected.resize(20480, 0);
  std::copy(bytes.begin() + 2500, bytes.end(), expected.begin() + 10692);
  EXPECT_EQ(read_all(kIno), expected);
  expect_nbytes_consistent(kIno);
}

TEST_F(FileDataUnitTest, SeekFollowsLseekRules) {
  write(kIno, 2 * kSector, pattern(22, 100));
  EXPECT_EQ(value_or_die(seek(kIno, 0, SEEK_HOLE)), 0u);
  EXPECT_EQ(value_or_die(seek(kIno, 0, SEEK_DATA)), 2 * kSector);
  EXPECT_EQ(value_or_die(seek(kIno, 2 * kSector + 50, SEEK_HOLE)), 2 * kSector + 100);
  EXPECT_EQ(seek(kIno, 2 * kSector + 100, SEEK_DATA).error().errno_value(), ENXIO);
  EXPECT_EQ(seek(kIno, 2 * kSector + 100, SEEK_HOLE).error().errno_value(), ENXIO);
  EXPECT_EQ(seek(kIno, 0, SEEK_SET).error().errno_value(), EINVAL);
  truncate(kIno, 10 * kSector);
  EXPECT_EQ(seek(kIno, 3 * kSector, SEEK_DATA).error().errno_value(), ENXIO);
  EXPECT_EQ(value_or_die(seek(kIno, 3 * kSector, SEEK_HOLE)), 3 * kSector);
}

TEST_F(FileDataUnitTest, FlushWritesRunsAsExtentsOfAtMostTheMaximumSize) {
  options_.max_extent_size = 64 << 10;
  data_ = std::make_unique<FileData>(*engine_, store::kFsTreeId, options_);
  const Bytes bytes = pattern(23, 200 << 10);
  for (size_t at = 0; at < bytes.size(); at += 10000) {
    const size_t n = std::min<size_t>(10000, bytes.size() - at);
    write(kIno, at, ByteSpan(bytes).subspan(at, n));
  }
  EXPECT_EQ(data_->dirty_bytes(), 200u << 10);
  ASSERT_TRUE(data_->flush_all());
  EXPECT_EQ(data_->dirty_bytes(), 0u);
  const std::vector<PlacedExtent> items = extents(kIno);
  ASSERT_EQ(items.size(), 4u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(items[i].item.length, 64u << 10);
  EXPECT_EQ(items[3].item.length, 8u << 10);
  EXPECT_EQ(read_all(kIno), bytes);
  commit_and_check();
}

TEST_F(FileDataUnitTest, BoundedWriteoutsTakeWholeGroupsInInodeOrder) {
  // Runs, and so groups, of 64 KiB at most.
  options_.max_extent_size = 64 << 10;
  data_ = std::make_unique<FileData>(*engine_, store::kFsTreeId, options_);
  const Bytes first = pattern(25, 200 << 10);
  const Bytes second = pattern(26, 40 << 10);
  const Bytes third = pattern(27, 24 << 10);
  write(kIno, 0, first);
  write(kOther, 0, second);
  write(kOther, 1 << 20, third);
  const uint64_t buffered = first.size() + second.size() + third.size();

  // 100 KiB asked: two whole groups (the second passes the bound), from the
  // start of the lowest inode.
  Result<Writeout> writeout = data_->begin_writeout(100 << 10);
  ASSERT_TRUE(writeout);
  EXPECT_EQ(writeout->bytes(), 128u << 10);
  EXPECT_EQ(data_->dirty_bytes(), buffered - (128 << 10));
  EXPECT_EQ(data_->writing_out_bytes(), 128u << 10);
  EXPECT_TRUE(data_->writing_out(kIno, 0, 128 << 10));
  EXPECT_FALSE(data_->writing_out(kIno, 128 << 10, first.size()));
  EXPECT_FALSE(data_->writing_out(kOther, 0, 2 << 20));
  EXPECT_EQ(data_->begin_writeout(1).error().errno_value(), EBUSY);
  ASSERT_TRUE(writeout->write());
  ASSERT_TRUE(data_->finish_writeout(std::move(*writeout)));
  EXPECT_EQ(extents(kIno).size(), 2u);
  EXPECT_EQ(data_->writing_out_bytes(), 0u);

  // The next ones go on where it stopped, one group when asked for less;
  // then nothing is left.
  writeout = data_->begin_writeout(1);
  ASSERT_TRUE(writeout);
  EXPECT_EQ(writeout->bytes(), 64u << 10);
  EXPECT_FALSE(data_->writing_out(kOther, 0, 2 << 20));
  ASSERT_TRUE(writeout->write());
  ASSERT_TRUE(data_->finish_writeout(std::move(*writeout)));
  writeout = data_->begin_writeout(1 << 20);
  ASSERT_TRUE(writeout);
  EXPECT_EQ(writeout->bytes(), (8 << 10) + second.size() + third.size());
  ASSERT_TRUE(writeout->write());
  ASSERT_TRUE(data_->finish_writeout(std::move(*writeout)));
  EXPECT_EQ(data_->dirty_bytes(), 0u);
  writeout = data_->begin_writeout(1 << 20);
  ASSERT_TRUE(writeout);
  EXPECT_TRUE(writeout->empty());

  EXPECT_EQ(extents(kIno).size(), 4u);
  EXPECT_EQ(read_all(kIno), first);
  EXPECT_EQ(read(kOther, 0, second.size()), second);
  EXPECT_EQ(read(kOther, 1 << 20, third.size()), third);
  commit_and_check();
}

TEST_F(FileDataUnitTest, ReadReportsChecksumMismatchAsEio) {
  const uint64_t bytenr = write_one_extent(kIno, pattern(24, 2 * kSector));
  const uint8_t garbage[1] = {0};
  ASSERT_TRUE(device_.write_at(bytenr + kSector + 7, garbage));
  EXPECT_EQ(read(kIno, 0, 10).size(), 10u);  // the first sector is intact
  Bytes out(100);
  auto got = data_->read(kIno, files_[kIno].size, kSector, out);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().errno_value(), EIO);
  EXPECT_NE(got.error().message().find("inode 257"), std::string::npos);
  // A partial write into the damaged sector must read it first: EIO too.
  auto written = data_->write(kIno, files_[kIno].size, kSector + 1, pattern(25, 1));
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().errno_value(), EIO);
  EXPECT_FALSE(data_->has_dirty(kIno));
}

TEST_F(FileDataUnitTest, ReadAndSeekOutsideATransactionSeeTheCommittedState) {
  const Bytes bytes = pattern(32, 3 * kSector);
  write(kIno, kSector, bytes);
  flush_commit_reopen();
  engine_->abort();  // as on a read-only mount
  EXPECT_EQ(read_all(kIno), [&] {
    Bytes expected(kSector, 0);
    expected.insert(expected.end(), bytes.begin(), bytes.end());
    return expected;
  }());
  EXPECT_EQ(value_or_die(seek(kIno, 0, SEEK_DATA)), kSector);
  EXPECT_EQ(value_or_die(seek(kIno, kSector, SEEK_HOLE)), 4 * kSector);
  ASSERT_TRUE(engine_->begin());
}

TEST_F(FileDataUnitTest, RemoveAllDropsItemsAndBuffers) {
  const uint64_t bytenr = write_one_extent(kIno, pattern(26, 3 * kSector));
  write(kIno, 10 * kSector, pattern(27, 10));
  ASSERT_TRUE(data_->remove_all(kIno));
  EXPECT_FALSE(data_->has_dirty(kIno));
  EXPECT_EQ(data_->dirty_bytes(), 0u);
  EXPECT_TRUE(extents(kIno).empty());
  commit_and_check();
  EXPECT_EQ(committed_refs(bytenr), 0u);
}

TEST_F(FileDataUnitTest, ErrorsCarryTheRightErrno) {
  ASSERT_TRUE(engine_->commit());
  EXPECT_EQ(data_->write(kIno, 0, 0, pattern(28, 1)).error().errno_value(), EINVAL);
  EXPECT_EQ(data_->truncate(kIno, 10, 0).error().errno_value(), EINVAL);
  EXPECT_EQ(data_->flush_all().error().errno_value(), EINVAL);
  ASSERT_TRUE(engine_->begin());

  EXPECT_EQ(data_->write(kIno, 0, kMaxFileSize, pattern(29, 1)).error().errno_value(), EFBIG);
  EXPECT_EQ(data_->write(kIno, 0, kMaxFileSize - 1, pattern(29, 2)).error().errno_value(), EFBIG);
  EXPECT_EQ(data_->write(kIno, 0, UINT64_MAX, pattern(29, 2)).error().errno_value(), EFBIG);
  EXPECT_TRUE(data_->write(kIno, 0, kMaxFileSize - 1, pattern(29, 1)));
  files_[kIno] = {kMaxFileSize, 4096};
  EXPECT_EQ(read(kIno, kMaxFileSize - 1, 10), pattern(29, 1));
  EXPECT_EQ(data_->truncate(kIno, kMaxFileSize, kMaxFileSize + 1).error().errno_value(), EFBIG);
  EXPECT_EQ(data_->punch_hole(kIno, 0, 0, 0).error().errno_value(), EINVAL);
  EXPECT_EQ(data_->punch_hole(kIno, 0, kMaxFileSize, 1).error().errno_value(), EFBIG);
  EXPECT_EQ(data_->preallocate(kIno, 0, 0).error().errno_value(), EINVAL);
  EXPECT_EQ(data_->zero_range(kIno, 0, 5, 0).error().errno_value(), EINVAL);
  EXPECT_EQ(data_->copy_range(kIno, 10, 0, kOther, 0, kMaxFileSize, 10).error().errno_value(),
            EFBIG);
  ASSERT_TRUE(data_->flush_all());
  commit_and_check();
}

TEST_F(FileDataUnitTest, PreallocWithoutRoomFailsWithEnospcAndChangesNothing) {
  write(kIno, 0, pattern(30, kSector));
  const std::vector<PlacedExtent> before = extents(kIno);
  auto delta = data_->preallocate(kIno, 0, 1ull << 40);
  ASSERT_FALSE(delta);
  EXPECT_EQ(delta.error().errno_value(), ENOSPC);
  EXPECT_EQ(extents(kIno).size(), before.size());
  delta = data_->zero_range(kIno, files_[kIno].size, 0, 1ull << 40);
  ASSERT_FALSE(delta);
  EXPECT_EQ(delta.error().errno_value(), ENOSPC);
  EXPECT_EQ(read_all(kIno), pattern(30, kSector));
  expect_nbytes_consistent(kIno);
  commit_and_check();
}

}  // namespace
}  // namespace ecfs::fs
