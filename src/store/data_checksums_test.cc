#include "store/data_checksums.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "block/fault_device.h"
#include "block/memory_device.h"
#include "block/recording_device.h"
#include "store/checksum.h"
#include "store/engine_test_util.h"
#include "store/node.h"

namespace ecfs::store {
namespace {

using testing::problems_of;
using testing::read_all;
using testing::space_map;
using testing::TreeContents;
using testing::value_or_die;

constexpr uint64_t kMiB = 1 << 20;

Bytes random_data(uint64_t seed, size_t size) {
  std::mt19937_64 rng(seed);
  Bytes out(size);
  for (uint8_t& byte : out) byte = static_cast<uint8_t>(rng());
  return out;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class DataChecksumsTest : public ::testing::Test {
 protected:
  explicit DataChecksumsTest(ChecksumType type = ChecksumType::kCrc32c)
      : type_(type), device_(80 * kMiB) {}

  void SetUp() override {
    MkfsOptions options;
    options.node_size = 4096;  // small nodes: many checksum items
    options.checksum_type = type_;
    ECFS_ASSERT_OK(mkfs(device_, options));
    reopen();
  }

  void reopen() {
    engine_.reset();
    engine_ = value_or_die(Engine::open(device_));
  }

  ChecksumType type() const { return type_; }
  size_t csum_size() const { return checksum_size(type()); }

  // A data extent of `length` bytes holding `data` (written in one call),
  // referenced by file extent item (inode, EXTENT_DATA, 0) of the FS tree.
  uint64_t write_extent(uint64_t inode, const Bytes& data) {
    const uint64_t extent = value_or_die(engine_->allocate_data(data.size()));
    EXPECT_TRUE(engine_->write_data(extent, data));
    reference(extent, data.size(), inode);
    return extent;
  }

  void reference(uint64_t extent, uint64_t length, uint64_t inode) {
    BTree* tree = value_or_die(engine_->open_tree(kFsTreeId));
    const FileExtentRef ref{extent, length, 0, length};
    ASSERT_TRUE(tree->insert(Key{inode, kExtentDataKey, 0}, encode_file_extent_ref(ref)));
    ASSERT_TRUE(engine_->add_data_ref(extent, length, DataRef{kFsTreeId, inode, 0, 0, length}));
  }

  void unreference(uint64_t extent, uint64_t length, uint64_t inode) {
    BTree* tree = value_or_die(engine_->open_tree(kFsTreeId));
    ASSERT_TRUE(tree->remove(Key{inode, kExtentDataKey, 0}));
    ASSERT_TRUE(engine_->drop_data_ref(extent, length, DataRef{kFsTreeId, inode, 0, 0, length}));
  }

  TreeContents committed_csums() {
    return value_or_die(read_all(value_or_die(engine_->committed_tree(kCsumTreeId))));
  }

  CheckReport check() {
    auto report = engine_->check();
    EXPECT_TRUE(report) << report.error().to_string();
    return report ? *report : CheckReport{};
  }

  void expect_clean() {
    const CheckReport report = check();
    EXPECT_TRUE(report.clean()) << problems_of(report);
  }

  // Flips one bit of the byte at `offset` on the device, behind the engine.
  void flip_bit(uint64_t offset) {
    uint8_t byte = 0;
    ASSERT_TRUE(device_.read_at(offset, MutableByteSpan(&byte, 1)));
    byte ^= 0x10;
    ASSERT_TRUE(device_.write_at(offset, ByteSpan(&byte, 1)));
  }

  ChecksumType type_;
  block::MemoryDevice device_;
  std::unique_ptr<Engine> engine_;
};

// The same, once per checksum type.
class DataChecksumsTypeTest : public DataChecksumsTest,
                              public ::testing::WithParamInterface<ChecksumType> {
 protected:
  DataChecksumsTypeTest() : DataChecksumsTest(GetParam()) {}
};

std::string type_name(const ::testing::TestParamInfo<ChecksumType>& param) {
  return std::string(checksum_name(param.param));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DataChecksumsTypeTest,
                         ::testing::Values(ChecksumType::kCrc32c, ChecksumType::kXxhash64,
                                           ChecksumType::kSha256, ChecksumType::kBlake2b),
                         type_name);

TEST_P(DataChecksumsTypeTest, RoundTripThroughCommitAndReopen) {
  const Bytes data = random_data(1, 64 * 1024);
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = write_extent(300, data);
  // Readable inside the transaction that wrote it.
  EXPECT_EQ(value_or_die(engine_->read_data(extent, data.size())), data);
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_EQ(value_or_die(engine_->read_data(extent, data.size())), data);
  // A part of the extent.
  EXPECT_EQ(value_or_die(engine_->read_data(extent + 8192, 12288)),
            Bytes(data.begin() + 8192, data.begin() + 8192 + 12288));

  // One item: the sectors' own checksums, unpadded.
  const TreeContents csums = committed_csums();
  ASSERT_EQ(csums.size(), 1u);
  EXPECT_EQ(csums.begin()->first, (Key{kExtentCsumObjectid, kExtentCsumKey, extent}));
  EXPECT_EQ(csums.begin()->second, compute_sector_checksums(type(), data));
  ASSERT_EQ(csums.begin()->second.size(), 16 * csum_size());
  const Checksum first = compute_checksum(type(), ByteSpan(data).first(kSectorSize));
  EXPECT_TRUE(
      std::equal(first.begin(), first.begin() + csum_size(), csums.begin()->second.begin()));

  reopen();
  EXPECT_EQ(value_or_die(engine_->read_data(extent, data.size())), data);
  const CheckReport report = check();
  EXPECT_TRUE(report.clean()) << problems_of(report);
  EXPECT_EQ(report.data_sectors_checked, 16u);
}

TEST_P(DataChecksumsTypeTest, FlippedBitIsEioNamingTheSectorAndFsckReportsIt) {
  const Bytes data = random_data(2, 32 * 1024);
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = write_extent(300, data);
  ECFS_ASSERT_OK(engine_->commit());
  const uint64_t bad_sector = extent + 3 * kSectorSize;
  flip_bit(bad_sector + 100);

  auto read = engine_->read_data(extent, data.size());
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().errno_value(), EIO);
  EXPECT_TRUE(contains(read.error().message(), "data checksum mismatch")) << read.error().message();
  EXPECT_TRUE(contains(read.error().message(), "byte offset " + std::to_string(bad_sector)))
      << read.error().message();
  // The other sectors still read.
  EXPECT_EQ(value_or_die(engine_->read_data(extent, 3 * kSectorSize)),
            Bytes(data.begin(), data.begin() + 3 * kSectorSize));
  EXPECT_EQ(engine_->read_data(bad_sector, kSectorSize).error().errno_value(), EIO);

  const CheckReport report = check();
  ASSERT_EQ(report.problems.size(), 1u) << problems_of(report);
  EXPECT_TRUE(contains(report.problems[0], "data checksum mismatch"));
  EXPECT_TRUE(contains(report.problems[0], "byte offset " + std::to_string(bad_sector)));
  EXPECT_EQ(report.data_sectors_checked, 8u);

  flip_bit(bad_sector + 100);  // repaired
  EXPECT_EQ(value_or_die(engine_->read_data(extent, data.size())), data);
  expect_clean();
}

// block::FaultDevice's corrupt_reads: the medium returns a flipped bit.
TEST_F(DataChecksumsTest, CorruptReadsFromTheDeviceAreEio) {
  const Bytes data = random_data(3, 16 * 1024);
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = write_extent(300, data);
  ECFS_ASSERT_OK(engine_->commit());
  engine_.reset();
  block::FaultDevice faulty(device_);
  auto engine = value_or_die(Engine::open(faulty));
  faulty.corrupt_reads(extent + 2 * kSectorSize, kSectorSize, 9);
  auto read = engine->read_data(extent, data.size());
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().errno_value(), EIO);
  EXPECT_TRUE(
      contains(read.error().message(), "data checksum mismatch in the data sector at byte offset " +
                                           std::to_string(extent + 2 * kSectorSize)))
      << read.error().message();
  auto report = value_or_die(engine->check());
  ASSERT_EQ(report.problems.size(), 1u) << problems_of(report);
  EXPECT_TRUE(contains(report.problems[0], std::to_string(extent + 2 * kSectorSize)));
  faulty.heal();
  EXPECT_EQ(value_or_die(engine->read_data(extent, data.size())), data);
}

TEST_F(DataChecksumsTest, SectorsNeverWrittenHaveNoChecksum) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = value_or_die(engine_->allocate_data(4 * kSectorSize));
  const Bytes first = random_data(4, kSectorSize);
  ECFS_ASSERT_OK(engine_->write_data(extent, first));
  reference(extent, 4 * kSectorSize, 300);
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_EQ(value_or_die(engine_->read_data(extent, kSectorSize)), first);
  auto read = engine_->read_data(extent, 2 * kSectorSize);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().errno_value(), EIO);
  EXPECT_TRUE(contains(read.error().message(), "no checksum")) << read.error().message();
  EXPECT_TRUE(contains(read.error().message(), std::to_string(extent + kSectorSize)));
  // Not an error for fsck: an extent may be allocated before all of it is written.
  const CheckReport report = check();
  EXPECT_TRUE(report.clean()) << problems_of(report);
  EXPECT_EQ(report.data_sectors_checked, 1u);
}

TEST_F(DataChecksumsTest, BadArguments) {
  const Bytes sector(kSectorSize, 1);
  EXPECT_EQ(engine_->write_data(2 * kMiB, sector).error().errno_value(), EINVAL);  // no transaction
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = value_or_die(engine_->allocate_data(2 * kSectorSize));
  EXPECT_EQ(engine_->write_data(extent + 1, sector).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->write_data(extent, Bytes(100)).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->write_data(extent, Bytes()).error().errno_value(), EINVAL);
  // Past the extent's end, and outside any new extent.
  EXPECT_EQ(engine_->write_data(extent + kSectorSize, Bytes(2 * kSectorSize)).error().errno_value(),
            EINVAL);
  EXPECT_EQ(engine_->write_data(extent + 64 * kSectorSize, sector).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->read_data(extent, 100).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->read_data(extent + 1, kSectorSize).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->read_data(device_.size(), kSectorSize).error().errno_value(), EINVAL);
  ECFS_ASSERT_OK(engine_->write_data(extent, sector));
  reference(extent, 2 * kSectorSize, 300);
  ECFS_ASSERT_OK(engine_->commit());
  // A committed extent is not rewritten in place (copy-on-write).
  ECFS_ASSERT_OK(engine_->begin());
  EXPECT_EQ(engine_->write_data(extent, sector).error().errno_value(), EINVAL);
  engine_->abort();
  expect_clean();
}

TEST_F(DataChecksumsTest, ChecksumsAreDeletedWhenTheExtentIsFreed) {
  const Bytes a = random_data(5, 8 * kSectorSize);
  const Bytes b = random_data(6, 8 * kSectorSize);
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent_a = write_extent(300, a);
  const uint64_t extent_b = write_extent(301, b);
  // Written but never referenced: freed by this very commit.
  const uint64_t unused = value_or_die(engine_->allocate_data(4 * kSectorSize));
  ECFS_ASSERT_OK(engine_->write_data(unused, random_data(7, 4 * kSectorSize)));
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_EQ(engine_->read_data(unused, kSectorSize).error().errno_value(), EIO);
  EXPECT_EQ(value_or_die(engine_->read_data(extent_a, a.size())), a);
  expect_clean();
  size_t sectors = 0;
  for (const auto& [key, sums] : committed_csums()) sectors += sums.size() / 4;
  EXPECT_EQ(sectors, 16u);

  // Dropping a's last reference frees it and its checksums; b's stay.
  ECFS_ASSERT_OK(engine_->begin());
  unreference(extent_a, a.size(), 300);
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_TRUE(space_map(*engine_).is_free(extent_a, a.size()));
  auto read = engine_->read_data(extent_a, a.size());
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error().message(), "no checksum"));
  EXPECT_EQ(value_or_die(engine_->read_data(extent_b, b.size())), b);
  for (const auto& [key, sums] : committed_csums()) {
    EXPECT_GE(key.offset, extent_b);
    EXPECT_LE(key.offset + sums.size() / 4 * kSectorSize, extent_b + b.size());
  }
  expect_clean();

  // Dropping the tree that references b frees b too.
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->clone_tree(kFsTreeId, 256));
  ECFS_ASSERT_OK(engine_->drop_tree(kFsTreeId));
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_EQ(committed_csums().size(), 1u);  // the clone still holds b
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->drop_tree(256));
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_TRUE(committed_csums().empty());
  reopen();
  expect_clean();
}

TEST_F(DataChecksumsTest, AbortDiscardsChecksums) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = write_extent(300, random_data(8, 4 * kSectorSize));
  engine_->abort();
  EXPECT_TRUE(committed_csums().empty());
  EXPECT_EQ(engine_->read_data(extent, kSectorSize).error().errno_value(), EIO);
  expect_clean();
  // And the next transaction starts from nothing.
  ECFS_ASSERT_OK(engine_->begin());
  EXPECT_EQ(engine_->write_data(extent, Bytes(kSectorSize)).error().errno_value(), EINVAL);
  engine_->abort();
}

TEST_F(DataChecksumsTest, LargeWritesSpanManyItemsAndRewritesSplitThem) {
  const size_t max_sectors = max_csum_item_sectors(4096, ChecksumType::kCrc32c);
  ASSERT_EQ(max_sectors, max_item_data_size(4096) / 4 / 4);
  Bytes data = random_data(9, 4 * kMiB);
  const uint64_t sectors = data.size() / kSectorSize;
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = write_extent(300, data);
  // Rewrite a run in the middle, crossing an item boundary.
  const uint64_t rewrite_at = (max_sectors - 3) * kSectorSize;
  const Bytes patch = random_data(10, 7 * kSectorSize);
  ECFS_ASSERT_OK(engine_->write_data(extent + rewrite_at, patch));
  std::copy(patch.begin(), patch.end(), data.begin() + rewrite_at);
  // And sector by sector at the end: single-sector items merge.
  for (uint64_t sector = sectors - 20; sector < sectors; ++sector) {
    const Bytes one = random_data(100 + sector, kSectorSize);
    ECFS_ASSERT_OK(engine_->write_data(extent + sector * kSectorSize, one));
    std::copy(one.begin(), one.end(), data.begin() + sector * kSectorSize);
  }
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_EQ(value_or_die(engine_->read_data(extent, data.size())), data);

  const TreeContents csums = committed_csums();
  EXPECT_GE(csums.size(), (sectors + max_sectors - 1) / max_sectors);
  EXPECT_LE(csums.size(), (sectors + max_sectors - 1) / max_sectors + 4);
  uint64_t next = extent;
  for (const auto& [key, sums] : csums) {
    EXPECT_EQ(key.offset, next);  // contiguous, no overlap
    EXPECT_LE(sums.size() / 4, max_sectors);
    EXPECT_EQ(sums,
              compute_sector_checksums(
                  ChecksumType::kCrc32c,
                  ByteSpan(data).subspan(key.offset - extent, sums.size() / 4 * kSectorSize)));
    next = key.offset + sums.size() / 4 * kSectorSize;
  }
  EXPECT_EQ(next, extent + data.size());
  reopen();
  const CheckReport report = check();
  EXPECT_TRUE(report.clean()) << problems_of(report);
  EXPECT_EQ(report.data_sectors_checked, sectors);
}

TEST_F(DataChecksumsTest, DeleteTrimsAndSplitsItems) {
  ECFS_ASSERT_OK(engine_->begin());
  BTree* tree = value_or_die(engine_->open_tree(kCsumTreeId));
  const Bytes sums =
      compute_sector_checksums(ChecksumType::kCrc32c, random_data(11, 10 * kSectorSize));
  const uint64_t base = 8 * kMiB;
  ECFS_ASSERT_OK(put_data_checksums(*tree, 4096, ChecksumType::kCrc32c, base, sums));
  ECFS_ASSERT_OK(
      delete_data_checksums(*tree, ChecksumType::kCrc32c, base + 2 * kSectorSize, 3 * kSectorSize));
  auto found =
      value_or_die(find_data_checksums(*tree, ChecksumType::kCrc32c, base, 10 * kSectorSize));
  const std::vector<bool> expected{true, true, false, false, false, true, true, true, true, true};
  EXPECT_EQ(found.present, expected);
  EXPECT_EQ(Bytes(found.sums.begin(), found.sums.begin() + 8),
            Bytes(sums.begin(), sums.begin() + 8));
  EXPECT_EQ(Bytes(found.sums.begin() + 20, found.sums.end()), Bytes(sums.begin() + 20, sums.end()));
  const TreeContents items = value_or_die(read_all(*tree));
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items.begin()->first.offset, base);
  EXPECT_EQ(std::next(items.begin())->first.offset, base + 5 * kSectorSize);
  // Malformed item: EUCLEAN.
  ECFS_ASSERT_OK(
      tree->insert(Key{kExtentCsumObjectid, kExtentCsumKey, base + 20 * kSectorSize}, Bytes(3)));
  EXPECT_EQ(find_data_checksums(*tree, ChecksumType::kCrc32c, base + 20 * kSectorSize, kSectorSize)
                .error()
                .errno_value(),
            EUCLEAN);
  EXPECT_EQ(
      put_data_checksums(*tree, 4096, ChecksumType::kCrc32c, base + 1, sums).error().errno_value(),
      EINVAL);
  engine_->abort();
}

// For relocation: the copy's sectors get the source's checksums, gaps kept.
TEST_F(DataChecksumsTest, CopyGivesAnotherRangeTheSameChecksums) {
  const Bytes data = random_data(15, 6 * kSectorSize);
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t source = value_or_die(engine_->allocate_data(8 * kSectorSize));
  ECFS_ASSERT_OK(engine_->write_data(source, ByteSpan(data).first(2 * kSectorSize)));
  ECFS_ASSERT_OK(
      engine_->write_data(source + 4 * kSectorSize, ByteSpan(data).last(4 * kSectorSize)));
  ECFS_ASSERT_OK(engine_->commit());  // unreferenced: freed, checksums gone
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t from = value_or_die(engine_->allocate_data(8 * kSectorSize));
  ECFS_ASSERT_OK(engine_->write_data(from, ByteSpan(data).first(2 * kSectorSize)));
  ECFS_ASSERT_OK(engine_->write_data(from + 4 * kSectorSize, ByteSpan(data).last(4 * kSectorSize)));
  const uint64_t to = value_or_die(engine_->allocate_data(8 * kSectorSize));
  Bytes raw(8 * kSectorSize);
  ECFS_ASSERT_OK(device_.read(from, raw));
  ECFS_ASSERT_OK(device_.write(to, raw));  // a byte-for-byte copy, as relocation makes
  BTree* tree = value_or_die(engine_->open_tree(kCsumTreeId));
  EXPECT_EQ(copy_data_checksums(*tree, 4096, ChecksumType::kCrc32c, from, from + kSectorSize,
                                2 * kSectorSize)
                .error()
                .errno_value(),
            EINVAL);  // overlapping
  ECFS_ASSERT_OK(
      copy_data_checksums(*tree, 4096, ChecksumType::kCrc32c, from, to, 8 * kSectorSize));
  reference(to, 8 * kSectorSize, 300);
  ECFS_ASSERT_OK(engine_->commit());  // `from` is freed with its checksums
  EXPECT_EQ(value_or_die(engine_->read_data(to, 2 * kSectorSize)),
            Bytes(data.begin(), data.begin() + 2 * kSectorSize));
  EXPECT_EQ(value_or_die(engine_->read_data(to + 4 * kSectorSize, 4 * kSectorSize)),
            Bytes(data.begin() + 2 * kSectorSize, data.end()));
  EXPECT_EQ(engine_->read_data(to + 2 * kSectorSize, kSectorSize).error().errno_value(), EIO);
  for (const auto& [key, sums] : committed_csums()) {
    EXPECT_GE(key.offset, to);
    EXPECT_LE(key.offset + sums.size() / 4 * kSectorSize, to + 8 * kSectorSize);
  }
  expect_clean();
}

TEST_F(DataChecksumsTest, FsckReportsChecksumsOverUnallocatedSpace) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = write_extent(300, random_data(12, 2 * kSectorSize));
  // An item that runs one sector past the extent, put there behind the engine.
  BTree* tree = value_or_die(engine_->open_tree(kCsumTreeId));
  ECFS_ASSERT_OK(put_data_checksums(*tree, 4096, ChecksumType::kCrc32c, extent + 2 * kSectorSize,
                                    Bytes(4, 0)));
  ECFS_ASSERT_OK(engine_->commit());
  const CheckReport report = check();
  ASSERT_EQ(report.problems.size(), 1u) << problems_of(report);
  EXPECT_TRUE(contains(report.problems[0], "[" + std::to_string(extent + 2 * kSectorSize) + ", " +
                                               std::to_string(extent + 3 * kSectorSize) +
                                               "), which is not an allocated data extent"))
      << report.problems[0];
  EXPECT_EQ(report.data_sectors_checked, 2u);
}

// A crash before the commit leaves no checksums of the uncommitted data; a
// crash during it leaves the old or the new generation, each consistent.
TEST(DataChecksumsCrashTest, CrashImagesHaveTheCommittedChecksumsOnly) {
  block::MemoryDevice base(80 * kMiB);
  MkfsOptions options;
  options.node_size = 4096;
  ECFS_ASSERT_OK(mkfs(base, options));
  block::RecordingDevice recorder(base);
  const Bytes first = random_data(13, 16 * kSectorSize);
  const Bytes second = random_data(14, 16 * kSectorSize);
  uint64_t extent_a = 0, extent_b = 0;
  size_t before_commit = 0;
  {
    auto engine = value_or_die(Engine::open(recorder));
    for (int round = 0; round < 2; ++round) {
      ECFS_ASSERT_OK(engine->begin());
      const Bytes& data = round == 0 ? first : second;
      const uint64_t extent = value_or_die(engine->allocate_data(data.size()));
      ECFS_ASSERT_OK(engine->write_data(extent, data));
      BTree* tree = value_or_die(engine->open_tree(kFsTreeId));
      const uint64_t inode = 300 + round;
      ECFS_ASSERT_OK(tree->insert(Key{inode, kExtentDataKey, 0},
                                  encode_file_extent_ref({extent, data.size(), 0, data.size()})));
      ECFS_ASSERT_OK(
          engine->add_data_ref(extent, data.size(), DataRef{kFsTreeId, inode, 0, 0, data.size()}));
      (round == 0 ? extent_a : extent_b) = extent;
      if (round == 1) before_commit = recorder.op_count();
      ECFS_ASSERT_OK(engine->commit());
    }
  }
  std::set<size_t> points{before_commit, recorder.op_count()};
  for (size_t flush : recorder.flush_points()) {
    if (flush >= before_commit) {
      points.insert(flush);
      points.insert(flush + 1);
    }
  }
  int saw_old = 0, saw_new = 0;
  for (size_t point : points) {
    for (auto mode : {block::CrashMode::kDropAllUnflushed, block::CrashMode::kKeepAllUnflushed,
                      block::CrashMode::kRandomSubsetWithTears}) {
      auto image = value_or_die(recorder.crash_image(point, mode, point));
      auto engine = value_or_die(Engine::open(image));
      const std::string what = "crash at op " + std::to_string(point) + " mode " +
                               std::to_string(static_cast<int>(mode));
      EXPECT_EQ(value_or_die(engine->read_data(extent_a, first.size())), first) << what;
      const TreeContents csums =
          value_or_die(read_all(value_or_die(engine->committed_tree(kCsumTreeId))));
      auto second_read = engine->read_data(extent_b, second.size());
      if (engine->committed_generation() == 2) {
        ++saw_old;
        // Nothing of the second transaction's data: no checksum covers it.
        for (const auto& [key, sums] : csums) {
          EXPECT_LE(key.offset + sums.size() / 4 * kSectorSize, extent_a + first.size()) << what;
        }
        ASSERT_FALSE(second_read) << what;
        EXPECT_TRUE(contains(second_read.error().message(), "no checksum")) << what;
      } else {
        ++saw_new;
        EXPECT_EQ(engine->committed_generation(), 3u) << what;
        ASSERT_TRUE(second_read) << what << ": " << second_read.error().to_string();
        EXPECT_EQ(*second_read, second) << what;
      }
      auto report = value_or_die(engine->check());
      EXPECT_TRUE(report.clean()) << what << ":\n" << problems_of(report);
    }
  }
  EXPECT_GT(saw_old, 0);
  EXPECT_GT(saw_new, 0);
}

}  // namespace
}  // namespace ecfs::store
