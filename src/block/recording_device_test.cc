#include "block/recording_device.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "block/fault_device.h"
#include "block/file_device.h"
#include "block/testing.h"

namespace ecfs::block {
namespace {

using testing::error_of;
using testing::pattern;
using testing::read_back;

constexpr uint64_t kSize = 64 * kBlockSize;

Bytes block_at(const MemoryDevice& image, uint64_t block) {
  Bytes out(kBlockSize);
  EXPECT_TRUE(image.read_at(block * kBlockSize, out));
  return out;
}

Bytes zeros() { return Bytes(kBlockSize, 0); }

const CrashMode kAllModes[] = {CrashMode::kDropAllUnflushed, CrashMode::kKeepAllUnflushed,
                               CrashMode::kRandomSubset, CrashMode::kRandomSubsetWithTears};

// Log: 0 write b0=A | 1 write b1=B | 2 flush | 3 write b2=C | 4 write b3..b5=D
//      5 write b0=E (overwrite) | 6 flush | 7 write b6=F
class RecordingScenario : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(recorder_.write(0, a_));
    ASSERT_TRUE(recorder_.write(kBlockSize, b_));
    ASSERT_TRUE(recorder_.flush());
    ASSERT_TRUE(recorder_.write(2 * kBlockSize, c_));
    ASSERT_TRUE(recorder_.write(3 * kBlockSize, d_));
    ASSERT_TRUE(recorder_.write(0, e_));
    ASSERT_TRUE(recorder_.flush());
    ASSERT_TRUE(recorder_.write(6 * kBlockSize, f_));
  }

  MemoryDevice image(size_t point, CrashMode mode, uint64_t seed = 0) {
    auto result = recorder_.crash_image(point, mode, seed);
    EXPECT_TRUE(result) << result.error().to_string();
    return result ? std::move(*result) : MemoryDevice(0);
  }

  MemoryDevice inner_{kSize};
  RecordingDevice recorder_{inner_};
  const Bytes a_ = pattern(kBlockSize, 1), b_ = pattern(kBlockSize, 2), c_ = pattern(kBlockSize, 3),
              d_ = pattern(3 * kBlockSize, 4), e_ = pattern(kBlockSize, 5),
              f_ = pattern(kBlockSize, 6);
};

TEST_F(RecordingScenario, LogsWritesAndFlushesInOrder) {
  EXPECT_EQ(recorder_.op_count(), 8u);
  EXPECT_EQ(recorder_.flush_points(), (std::vector<size_t>{2, 6}));
  const RecordedOp write = recorder_.op(4);
  EXPECT_EQ(write.kind, RecordedOp::Kind::kWrite);
  EXPECT_EQ(write.offset, 3 * kBlockSize);
  ASSERT_NE(write.data, nullptr);
  EXPECT_EQ(*write.data, d_);
  EXPECT_EQ(recorder_.op(2).kind, RecordedOp::Kind::kFlush);
  // Forwarding: the inner device holds everything.
  EXPECT_EQ(read_back(inner_, 0, kBlockSize), e_);
  EXPECT_EQ(read_back(recorder_, 6 * kBlockSize, kBlockSize), f_);
  EXPECT_EQ(inner_.flush_count(), 2u);
}

TEST_F(RecordingScenario, UnflushedWritesDependOnThePoint) {
  EXPECT_EQ(recorder_.unflushed_writes(0), std::vector<size_t>{});
  EXPECT_EQ(recorder_.unflushed_writes(2), (std::vector<size_t>{0, 1}));  // flush not yet issued
  EXPECT_EQ(recorder_.unflushed_writes(3), std::vector<size_t>{});        // flush returned
  EXPECT_EQ(recorder_.unflushed_writes(6), (std::vector<size_t>{3, 4, 5}));
  EXPECT_EQ(recorder_.unflushed_writes(8), std::vector<size_t>{7});
}

TEST_F(RecordingScenario, CrashAtZeroIsTheInitialImage) {
  for (CrashMode mode : kAllModes) {
    EXPECT_TRUE(image(0, mode, 7).same_contents(MemoryDevice(kSize)));
  }
}

TEST_F(RecordingScenario, DropAllKeepsExactlyWhatTheLastFlushCovered) {
  MemoryDevice at5 = image(5, CrashMode::kDropAllUnflushed);
  EXPECT_EQ(block_at(at5, 0), a_);
  EXPECT_EQ(block_at(at5, 1), b_);
  EXPECT_EQ(block_at(at5, 2), zeros());
  EXPECT_EQ(block_at(at5, 3), zeros());
  // Point 2: the flush was not issued, so even A and B may be lost.
  MemoryDevice at2 = image(2, CrashMode::kDropAllUnflushed);
  EXPECT_EQ(block_at(at2, 0), zeros());
  MemoryDevice at8 = image(8, CrashMode::kDropAllUnflushed);
  EXPECT_EQ(block_at(at8, 0), e_);
  EXPECT_EQ(block_at(at8, 3), Bytes(d_.begin(), d_.begin() + kBlockSize));
  EXPECT_EQ(block_at(at8, 6), zeros());
}

TEST_F(RecordingScenario, KeepAllIsEverythingIssuedBeforeThePoint) {
  MemoryDevice at5 = image(5, CrashMode::kKeepAllUnflushed);
  EXPECT_EQ(block_at(at5, 0), a_);  // the overwrite (op 5) is not before point 5
  EXPECT_EQ(block_at(at5, 2), c_);
  EXPECT_EQ(block_at(at5, 5), Bytes(d_.begin() + 2 * kBlockSize, d_.end()));
  MemoryDevice at8 = image(8, CrashMode::kKeepAllUnflushed);
  EXPECT_TRUE(at8.same_contents(inner_));
}

TEST_F(RecordingScenario, FlushedWritesSurviveEveryModeAndSeed) {
  for (CrashMode mode : kAllModes) {
    for (uint64_t seed = 0; seed < 50; ++seed) {
      MemoryDevice at8 = image(8, mode, seed);
      ASSERT_EQ(block_at(at8, 0), e_) << "seed " << seed;
      ASSERT_EQ(block_at(at8, 1), b_);
      ASSERT_EQ(block_at(at8, 2), c_);
      ASSERT_EQ(at8.first_different_block(inner_).value_or(6), 6u);
    }
  }
}

TEST_F(RecordingScenario, RandomSubsetKeepsOrDropsWholeWrites) {
  // Over many seeds, every unflushed write is seen both kept and dropped, in
  // every combination (which also models reordering), and never torn.
  std::set<std::vector<bool>> combinations;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    MemoryDevice at6 = image(6, CrashMode::kRandomSubset, seed);
    const bool c_kept = block_at(at6, 2) == c_;
    ASSERT_TRUE(c_kept || block_at(at6, 2) == zeros());
    Bytes d_now(3 * kBlockSize);
    ASSERT_TRUE(at6.read_at(3 * kBlockSize, d_now));
    const bool d_kept = d_now == d_;
    ASSERT_TRUE(d_kept || d_now == Bytes(3 * kBlockSize, 0));
    const bool e_kept = block_at(at6, 0) == e_;
    ASSERT_TRUE(e_kept || block_at(at6, 0) == a_);
    combinations.insert({c_kept, d_kept, e_kept});
  }
  EXPECT_EQ(combinations.size(), 8u);
}

TEST_F(RecordingScenario, TearsKeepSomeBlocksOrASectorPrefix) {
  bool saw_sector_tear = false;
  bool saw_block_tear = false;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    MemoryDevice at6 = image(6, CrashMode::kRandomSubsetWithTears, seed);
    // One-block write C over zeros: a prefix of whole 512-byte sectors.
    const Bytes c_now = block_at(at6, 2);
    size_t prefix = 0;
    while (prefix < kBlockSize && c_now[prefix] == c_[prefix]) ++prefix;
    const size_t sectors = (prefix + kAtomicSectorSize - 1) / kAtomicSectorSize;
    ASSERT_TRUE(std::equal(c_now.begin(), c_now.begin() + sectors * kAtomicSectorSize, c_.begin()))
        << "seed " << seed;
    ASSERT_TRUE(std::all_of(c_now.begin() + sectors * kAtomicSectorSize, c_now.end(),
                            [](uint8_t b) { return b == 0; }))
        << "seed " << seed << ": not a sector prefix";
    if (sectors > 0 && sectors < 8) saw_sector_tear = true;
    // Three-block write D: each block whole, old or new.
    int new_blocks = 0;
    for (int i = 0; i < 3; ++i) {
      const Bytes now = block_at(at6, 3 + i);
      const Bytes expected(d_.begin() + i * kBlockSize, d_.begin() + (i + 1) * kBlockSize);
      ASSERT_TRUE(now == expected || now == zeros()) << "seed " << seed << " block " << i;
      new_blocks += now == expected;
    }
    if (new_blocks == 1 || new_blocks == 2) saw_block_tear = true;
  }
  EXPECT_TRUE(saw_sector_tear);
  EXPECT_TRUE(saw_block_tear);
}

TEST_F(RecordingScenario, SeedsReplay) {
  for (uint64_t seed : {1u, 2u, 99u}) {
    MemoryDevice first = image(6, CrashMode::kRandomSubsetWithTears, seed);
    MemoryDevice second = image(6, CrashMode::kRandomSubsetWithTears, seed);
    EXPECT_TRUE(first.same_contents(second));
    auto replayed =
        recorder_.crash_image(6, recorder_.choose(6, CrashMode::kRandomSubsetWithTears, seed));
    ASSERT_TRUE(replayed);
    EXPECT_TRUE(replayed->same_contents(first));
  }
}

TEST_F(RecordingScenario, ExplicitChoices) {
  // Ops 3 (C), 4 (D, 3 blocks), 5 (E over A) are unflushed at point 6.
  WriteChoice drop{WriteFate::kDropped, {}, 0};
  WriteChoice keep{WriteFate::kKept, {}, 0};
  WriteChoice tear_blocks{WriteFate::kTorn, {true, false, true}, 0};
  WriteChoice tear_sectors{WriteFate::kTorn, {}, 3};
  std::vector<WriteChoice> choices = {tear_sectors, tear_blocks, keep};
  auto result = recorder_.crash_image(6, choices);
  ASSERT_TRUE(result) << result.error().to_string();
  Bytes expected_c = zeros();
  std::copy(c_.begin(), c_.begin() + 3 * kAtomicSectorSize, expected_c.begin());
  EXPECT_EQ(block_at(*result, 2), expected_c);
  EXPECT_EQ(block_at(*result, 3), Bytes(d_.begin(), d_.begin() + kBlockSize));
  EXPECT_EQ(block_at(*result, 4), zeros());
  EXPECT_EQ(block_at(*result, 5), Bytes(d_.begin() + 2 * kBlockSize, d_.end()));
  EXPECT_EQ(block_at(*result, 0), e_);

  // A later write kept while an earlier one is dropped: reordering.
  choices = {drop, drop, keep};
  result = recorder_.crash_image(6, choices);
  ASSERT_TRUE(result);
  EXPECT_EQ(block_at(*result, 2), zeros());
  EXPECT_EQ(block_at(*result, 0), e_);

  // Choices that do not fit the writes.
  EXPECT_EQ(error_of(recorder_.crash_image(6, std::vector<WriteChoice>{keep, keep})), EINVAL);
  std::vector<WriteChoice> wrong_tear = {keep, WriteChoice{WriteFate::kTorn, {true}, 0}, keep};
  EXPECT_EQ(error_of(recorder_.crash_image(6, wrong_tear)), EINVAL);
  std::vector<WriteChoice> too_many_sectors = {WriteChoice{WriteFate::kTorn, {}, 9}, keep, keep};
  EXPECT_EQ(error_of(recorder_.crash_image(6, too_many_sectors)), EINVAL);
  EXPECT_EQ(error_of(recorder_.crash_image(9, CrashMode::kKeepAllUnflushed)), EINVAL);
}

TEST_F(RecordingScenario, OverlappingKeptWritesLaterWins) {
  ASSERT_TRUE(recorder_.write(6 * kBlockSize, a_));  // op 8 overwrites F (op 7)
  auto both = recorder_.crash_image(9, std::vector<WriteChoice>{{}, {}});
  ASSERT_TRUE(both);
  EXPECT_EQ(block_at(*both, 6), a_);
  auto first_only = recorder_.crash_image(
      9, std::vector<WriteChoice>{{WriteFate::kKept, {}, 0}, {WriteFate::kDropped, {}, 0}});
  ASSERT_TRUE(first_only);
  EXPECT_EQ(block_at(*first_only, 6), f_);
}

TEST_F(RecordingScenario, DiscardingFlushedOpsKeepsTheImages) {
  MemoryDevice before = image(8, CrashMode::kDropAllUnflushed);
  EXPECT_EQ(recorder_.discard_flushed_ops(), 7u);
  EXPECT_EQ(recorder_.op_count(), 1u);
  EXPECT_TRUE(image(0, CrashMode::kKeepAllUnflushed).same_contents(before));
  EXPECT_TRUE(image(1, CrashMode::kDropAllUnflushed).same_contents(before));
  EXPECT_TRUE(image(1, CrashMode::kKeepAllUnflushed).same_contents(inner_));
  EXPECT_EQ(recorder_.discard_flushed_ops(), 0u);
}

TEST(RecordingDeviceTest, StartsFromTheInnerDevicesContents) {
  testing::TempDir dir;
  FileDeviceOptions options;
  options.create_size = kSize;
  auto file = open_file_device(dir.file("image"), options);
  ASSERT_TRUE(file);
  const Bytes old_data = pattern(kBlockSize, 10);
  ASSERT_TRUE((*file)->write(9 * kBlockSize, old_data));
  RecordingDevice recorder(**file);  // not a MemoryDevice: read at construction
  ASSERT_TRUE(recorder.write(10 * kBlockSize, pattern(kBlockSize, 11)));
  auto at0 = recorder.crash_image(0, CrashMode::kKeepAllUnflushed);
  ASSERT_TRUE(at0);
  EXPECT_EQ(block_at(*at0, 9), old_data);
  EXPECT_EQ(block_at(*at0, 10), zeros());
  auto dropped = recorder.crash_image(1, CrashMode::kDropAllUnflushed);
  ASSERT_TRUE(dropped);
  EXPECT_EQ(block_at(*dropped, 9), old_data);
  EXPECT_EQ(block_at(*dropped, 10), zeros());
}

TEST(RecordingDeviceTest, FailedFlushIsNoBarrierAndFailedWritesAreNotLogged) {
  MemoryDevice memory(kSize);
  FaultDevice faulty(memory);
  RecordingDevice recorder(faulty);
  faulty.fail_nth(FaultOp::kFlush, 1, EIO);
  faulty.fail_nth(FaultOp::kWrite, 2, EIO);
  ASSERT_TRUE(recorder.write(0, pattern(kBlockSize, 1)));
  EXPECT_EQ(error_of(recorder.write(kBlockSize, pattern(kBlockSize, 2))), EIO);
  EXPECT_EQ(error_of(recorder.flush()), EIO);
  EXPECT_EQ(recorder.op_count(), 2u);
  EXPECT_EQ(recorder.op(1).kind, RecordedOp::Kind::kFlushFailed);
  EXPECT_TRUE(recorder.flush_points().empty());
  EXPECT_EQ(recorder.unflushed_writes(2), std::vector<size_t>{0});
  auto image = recorder.crash_image(2, CrashMode::kDropAllUnflushed);
  ASSERT_TRUE(image);
  EXPECT_EQ(block_at(*image, 0), zeros());
}

// A device whose flush waits until the test opens a gate, to see how a write
// that completes while a flush runs is recorded.
class GatedFlushDevice final : public WrappingDevice {
 public:
  using WrappingDevice::WrappingDevice;
  Status flush() override {
    std::unique_lock lock(mutex_);
    flush_started_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    return inner().flush();
  }
  std::string describe() const override { return "gated"; }
  void wait_for_flush() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return flush_started_; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool flush_started_ = false;
  bool open_ = false;
};

TEST(RecordingDeviceTest, WriteCompletingDuringAFlushIsNotCoveredByIt) {
  MemoryDevice memory(kSize);
  GatedFlushDevice gated(memory);
  RecordingDevice recorder(gated);
  ASSERT_TRUE(recorder.write(0, pattern(kBlockSize, 1)));
  std::thread flusher([&] { EXPECT_TRUE(recorder.flush()); });
  gated.wait_for_flush();
  EXPECT_EQ(recorder.op(1).kind, RecordedOp::Kind::kFlushInFlight);
  ASSERT_TRUE(recorder.write(kBlockSize, pattern(kBlockSize, 2)));  // races with the flush
  // While the flush runs it is no barrier at all.
  EXPECT_EQ(recorder.unflushed_writes(3), (std::vector<size_t>{0, 2}));
  gated.open();
  flusher.join();
  EXPECT_EQ(recorder.flush_points(), std::vector<size_t>{1});
  EXPECT_EQ(recorder.unflushed_writes(3), std::vector<size_t>{2});
  auto image = recorder.crash_image(3, CrashMode::kDropAllUnflushed);
  ASSERT_TRUE(image);
  EXPECT_EQ(block_at(*image, 0), pattern(kBlockSize, 1));
  EXPECT_EQ(block_at(*image, 1), zeros());
}

}  // namespace
}  // namespace ecfs::block
