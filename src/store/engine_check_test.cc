// Engine::check options: the progress callback (phases in order, counts
// that only grow and end at their totals) and verify_data = false (fsck
// --metadata-only), which skips reading data sectors but still checks every
// tree.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "block/memory_device.h"
#include "store/engine.h"
#include "store/engine_test_util.h"

namespace ecfs::store {
namespace {

using testing::problems_of;
using testing::value_bytes;
using testing::value_or_die;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kSector = kSectorSize;

class EngineCheckTest : public ::testing::Test {
 protected:
  EngineCheckTest() : device_(32 * kMiB) {}

  // An image with filler items over several leaves, two data extents (5 and
  // 3 sectors) referenced from FS_TREE and a clone.
  void SetUp() override {
    MkfsOptions options;
    options.node_size = 4096;
    ECFS_ASSERT_OK(mkfs(device_, options));
    engine_ = value_or_die(Engine::open(device_));
    ECFS_ASSERT_OK(engine_->begin());
    BTree* tree = value_or_die(engine_->open_tree(kFsTreeId));
    for (uint64_t i = 0; i < 400; ++i) {
      ECFS_ASSERT_OK(tree->put(Key{i, 1, 0}, value_bytes(i, 60)));
    }
    for (uint64_t sectors : {5, 3}) {
      const uint64_t bytenr = value_or_die(engine_->allocate_data(sectors * kSector));
      ECFS_ASSERT_OK(engine_->write_data(bytenr, value_bytes(bytenr, sectors * kSector)));
      Bytes item = value_bytes(sectors, kFileExtentRefSize);
      encode_file_extent_ref(FileExtentRef{bytenr, sectors * kSector, 0, sectors * kSector}, item);
      ECFS_ASSERT_OK(tree->insert(Key{1000 + sectors, kExtentDataKey, 0}, item));
      ECFS_ASSERT_OK(engine_->add_data_ref(
          bytenr, sectors * kSector, DataRef{kFsTreeId, 1000 + sectors, 0, 0, sectors * kSector}));
      extents_.push_back(bytenr);
    }
    ECFS_ASSERT_OK(engine_->clone_tree(kFsTreeId, 300));
    ECFS_ASSERT_OK(engine_->commit());
  }

  void flip_byte(uint64_t offset) {
    uint8_t byte = 0;
    ASSERT_TRUE(device_.read_at(offset, {&byte, 1}));
    byte ^= 0x04;
    ASSERT_TRUE(device_.write_at(offset, {&byte, 1}));
  }

  block::MemoryDevice device_;
  std::unique_ptr<Engine> engine_;
  std::vector<uint64_t> extents_;
};

TEST_F(EngineCheckTest, ProgressGoesThroughThePhasesInOrderAndEndsAtTheTotals) {
  std::vector<CheckProgress> events;
  CheckOptions options;
  options.progress = [&](const CheckProgress& at) { events.push_back(at); };
  auto report = engine_->check(options);
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_TRUE(report->clean()) << problems_of(*report);

  const std::vector<std::string> phases = {"trees", "extents", "space", "data"};
  size_t phase = 0;
  CheckProgress last;
  std::vector<CheckProgress> final_of_phase(phases.size());
  for (const CheckProgress& at : events) {
    if (at.phase != phases[phase]) {
      ASSERT_LT(phase + 1, phases.size()) << "unexpected phase " << at.phase;
      ++phase;
      ASSERT_EQ(at.phase, phases[phase]) << "phases out of order";
    } else if (&at != &events.front()) {
      EXPECT_GE(at.done, last.done) << at.phase;
    }
    EXPECT_TRUE(at.total == 0 || at.done <= at.total) << at.phase;
    last = at;
    final_of_phase[phase] = at;
  }
  ASSERT_EQ(phase + 1, phases.size()) << "not every phase was reported";
  // trees: the root tree, extent, FS, csum, free-space trees and the clone.
  EXPECT_EQ(final_of_phase[0].done, 6u);
  EXPECT_EQ(final_of_phase[0].total, report->trees);
  // extents: one item per node and per data extent, as the walk found them.
  EXPECT_EQ(final_of_phase[1].done, report->tree_nodes + report->data_extents);
  EXPECT_EQ(final_of_phase[1].total, final_of_phase[1].done);
  EXPECT_EQ(final_of_phase[2].done, 1u);
  EXPECT_EQ(final_of_phase[2].total, 1u);
  // data: bytes of data extents.
  EXPECT_EQ(final_of_phase[3].total, 8 * kSector);
  EXPECT_EQ(final_of_phase[3].done, 8 * kSector);

  // The callback changes nothing in the report.
  auto plain = value_or_die(engine_->check());
  EXPECT_EQ(plain.tree_nodes, report->tree_nodes);
  EXPECT_EQ(plain.data_sectors_checked, report->data_sectors_checked);
  EXPECT_EQ(plain.allocated_bytes, report->allocated_bytes);
}

TEST_F(EngineCheckTest, MetadataOnlyReadsNoDataSector) {
  auto full = value_or_die(engine_->check());
  EXPECT_TRUE(full.clean()) << problems_of(full);
  EXPECT_TRUE(full.data_verified);
  EXPECT_EQ(full.data_sectors_checked, 8u);

  CheckOptions metadata_only;
  metadata_only.verify_data = false;
  std::vector<CheckProgress> events;
  metadata_only.progress = [&](const CheckProgress& at) { events.push_back(at); };
  auto quick = value_or_die(engine_->check(metadata_only));
  EXPECT_TRUE(quick.clean()) << problems_of(quick);
  EXPECT_FALSE(quick.data_verified);
  EXPECT_EQ(quick.data_sectors_checked, 0u);
  EXPECT_EQ(quick.tree_nodes, full.tree_nodes);
  EXPECT_EQ(quick.data_extents, 2u);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(std::string(events.back().phase), "data");  // still walks the checksum items

  // A damaged data sector: only the full check reads it.
  flip_byte(extents_[0] + 2 * kSector + 17);
  auto damaged = value_or_die(engine_->check());
  ASSERT_EQ(damaged.problems.size(), 1u) << problems_of(damaged);
  EXPECT_NE(damaged.problems[0].find("data checksum mismatch"), std::string::npos);
  EXPECT_NE(damaged.problems[0].find(std::to_string(extents_[0] + 2 * kSector)), std::string::npos)
      << damaged.problems[0];
  EXPECT_TRUE(value_or_die(engine_->check(metadata_only)).clean());
}

TEST_F(EngineCheckTest, MetadataOnlyStillChecksEveryTree) {
  CheckOptions metadata_only;
  metadata_only.verify_data = false;
  // A damaged leaf of the clone's (shared) tree stops both checks.
  std::vector<uint64_t> leaves;
  ASSERT_TRUE(value_or_die(engine_->committed_tree(300)).for_each_node([&](const Node& node) {
    if (node.is_leaf()) leaves.push_back(node.bytenr);
    return true;
  }));
  ASSERT_GE(leaves.size(), 3u);
  engine_.reset();
  flip_byte(leaves[1] + 300);
  engine_ = value_or_die(Engine::open(device_));
  for (const CheckOptions& options : {CheckOptions{}, metadata_only}) {
    auto report = engine_->check(options);
    ASSERT_FALSE(report);
    EXPECT_EQ(report.error().errno_value(), EIO);
    EXPECT_NE(report.error().message().find(std::to_string(leaves[1])), std::string::npos)
        << report.error().message();
  }
}

}  // namespace
}  // namespace ecfs::store
