// The free-space tree: kept by every commit, loaded at mount instead of the
// extent tree, added to images made without it, and checked by fsck.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "block/fault_device.h"
#include "block/recording_device.h"
#include "store/engine.h"
#include "store/engine_test_util.h"

namespace ecfs::store {
namespace {

using testing::crash_points;
using testing::EngineFixture;
using testing::problems_of;
using testing::space_map;
using testing::value_bytes;
using testing::value_or_die;

class FreeSpaceTreeTest : public EngineFixture {
 protected:
  // Enough items in FS_TREE that the extent tree spans many leaves, and a
  // few data extents freed in between, so free space is fragmented.
  void fill(int transactions) {
    for (int t = 0; t < transactions; ++t) {
      ECFS_ASSERT_OK(engine_->begin());
      BTree* tree = value_or_die(engine_->open_tree(kFsTreeId));
      for (int i = 0; i < 400; ++i, ++next) {
        ECFS_ASSERT_OK(tree->put(Key{next, 1, 0}, value_bytes(next, 200)));
      }
      // A data extent kept (referenced) and one left unreferenced (freed
      // by the commit).
      const uint64_t kept = value_or_die(engine_->allocate_data(8192));
      ECFS_ASSERT_OK(engine_->write_data(kept, Bytes(8192, 1)));
      ECFS_ASSERT_OK(tree->put(Key{1000000 + next, kExtentDataKey, 0}, extent_item(kept, 8192)));
      ECFS_ASSERT_OK(
          engine_->add_data_ref(kept, 8192, DataRef{kFsTreeId, 1000000 + next, 0, 0, 8192}));
      (void)value_or_die(engine_->allocate_data(4096 * (1 + random() % 4)));
      // Remove a few old items so nodes are freed as well.
      for (int i = 0; i < 40 && next > 1000; ++i) {
        const uint64_t victim = random() % (next - 400);
        if (value_or_die(tree->find(Key{victim, 1, 0}))) {
          ECFS_ASSERT_OK(tree->remove(Key{victim, 1, 0}));
        }
      }
      ECFS_ASSERT_OK(engine_->commit());
    }
  }

  // An image as builds before the tree made them, filled by such a build
  // (engine_ open on it the same way).
  void make_old_image(int transactions) {
    engine_.reset();
    MkfsOptions options = mkfs_options_;
    options.free_space_tree = false;
    ECFS_ASSERT_OK(mkfs(device_, options));
    engine_ = value_or_die(Engine::open(device_, old_build()));
    fill(transactions);
  }
  static OpenOptions old_build() {
    OpenOptions options;
    options.add_free_space_tree = false;
    return options;
  }

  std::mt19937_64 random{11};
  uint64_t next = 0;  // the next item's objectid, across fill() calls

  static Bytes extent_item(uint64_t bytenr, uint64_t length) {
    FileExtentRef ref;
    ref.disk_bytenr = bytenr;
    ref.disk_length = length;
    ref.extent_offset = 0;
    ref.length = length;
    return encode_file_extent_ref(ref);
  }

  // Device reads made by opening the image (read-only: nothing written);
  // engine_ is open again afterwards.
  uint64_t reads_to_open() {
    engine_.reset();
    uint64_t reads = 0;
    {
      block::FaultDevice counting(device_);
      OpenOptions options;
      options.read_only = true;
      auto engine = value_or_die(Engine::open(counting, options));
      reads = counting.request_count(block::FaultOp::kRead);
    }
    reopen();
    return reads;
  }

  uint64_t extent_tree_leaves() {
    uint64_t leaves = 0;
    EXPECT_TRUE(
        value_or_die(engine_->committed_tree(kExtentTreeId)).for_each_node([&](const Node& node) {
          if (node.is_leaf()) ++leaves;
          return true;
        }));
    return leaves;
  }

  // The free ranges the extent tree leaves, from an engine that rebuilt its
  // map from it (an image opened read-only without the tree's help is not
  // possible, so compare with a full check instead: see expect_clean).
  std::map<uint64_t, uint64_t> free_ranges() { return space_map(*engine_).free_ranges(); }
};

TEST_F(FreeSpaceTreeTest, MkfsMakesItAndEveryCommitKeepsIt) {
  EXPECT_EQ(engine_->superblock().compat_ro_flags, kCompatRoFreeSpaceTree);
  expect_clean();
  fill(30);
  // check() compares the tree with the free space the extent tree leaves.
  expect_clean();
  const auto before = free_ranges();
  EXPECT_GT(before.size(), 1u);  // fragmented: the test means something
  reopen();
  EXPECT_EQ(free_ranges(), before);
  expect_clean();
  // And the reopened engine keeps it through more commits.
  fill(5);
  expect_clean();
}

TEST_F(FreeSpaceTreeTest, OpeningReadsNeitherTheExtentTreeNorTheFreeSpaceTree) {
  fill(40);
  const uint64_t leaves = extent_tree_leaves();
  ASSERT_GT(leaves, 20u);
  // Superblock copies and the root tree: the same few reads however large
  // the image grows.
  const uint64_t small = reads_to_open();
  EXPECT_LT(small, 12u) << small << " reads, " << leaves << " extent leaves";
  fill(40);
  EXPECT_EQ(reads_to_open(), small);
}

TEST_F(FreeSpaceTreeTest, LoadingTheMapReadsTheFreeSpaceTreeNotTheExtentTree) {
  fill(40);
  const uint64_t leaves = extent_tree_leaves();
  engine_.reset();
  block::FaultDevice counting(device_);
  auto engine = value_or_die(Engine::open(counting));
  const uint64_t at_open = counting.request_count(block::FaultOp::kRead);
  const SpaceAllocator& map = space_map(*engine);
  const uint64_t to_load = counting.request_count(block::FaultOp::kRead) - at_open;
  EXPECT_LT(to_load, leaves / 2) << to_load << " reads, " << leaves << " extent leaves";
  // What it loaded is the extent tree's view (check compares the two).
  EXPECT_GT(map.free_ranges().size(), 1u);
  auto report = value_or_die(engine->check());
  EXPECT_TRUE(report.clean()) << problems_of(report);
  // Before anything allocates, statfs-like counts come from the superblock.
  const uint64_t free_bytes = map.free_bytes();
  engine.reset();
  engine = value_or_die(Engine::open(device_));
  EXPECT_EQ(engine->space_usage().free_bytes, free_bytes);
  EXPECT_EQ(engine->space_usage().allocated_bytes(), engine->superblock().bytes_used);
}

TEST_F(FreeSpaceTreeTest, AnImageMadeWithoutItGetsItAtTheFirstCommit) {
  ASSERT_NO_FATAL_FAILURE(make_old_image(40));
  EXPECT_EQ(engine_->superblock().compat_ro_flags, 0u);
  EXPECT_FALSE(value_or_die(engine_->committed_tree(kFsTreeId)).root().bytenr == 0);
  expect_clean();
  const uint64_t leaves = extent_tree_leaves();
  engine_.reset();
  {
    block::FaultDevice counting(device_);
    auto engine = value_or_die(Engine::open(counting, old_build()));
    (void)space_map(*engine);
    EXPECT_GE(counting.request_count(block::FaultOp::kRead), leaves);  // the whole extent tree
  }
  engine_ = value_or_die(Engine::open(device_, old_build()));

  // Today's build: the first commit adds the tree, and opening gets cheap.
  reopen();
  EXPECT_EQ(engine_->superblock().compat_ro_flags, 0u);
  fill(1);
  EXPECT_EQ(engine_->superblock().compat_ro_flags, kCompatRoFreeSpaceTree);
  expect_clean();
  const auto before = free_ranges();
  reopen();
  EXPECT_EQ(free_ranges(), before);
  expect_clean();
}

TEST_F(FreeSpaceTreeTest, AnAbortedCommitLeavesNoTraceOfTheTree) {
  engine_.reset();
  MkfsOptions options = mkfs_options_;
  options.free_space_tree = false;
  ECFS_ASSERT_OK(mkfs(device_, options));
  reopen();
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(value_or_die(engine_->open_tree(kFsTreeId))->put(Key{1, 1, 1}, value_bytes(1, 9)));
  engine_->abort();
  EXPECT_EQ(engine_->superblock().compat_ro_flags, 0u);
  EXPECT_EQ(value_or_die(engine_->list_trees()),
            (std::vector<uint64_t>{kExtentTreeId, kFsTreeId, kCsumTreeId}));
  expect_clean();
}

TEST_F(FreeSpaceTreeTest, AMalformedTreeIsReportedAndAllowsReadingOnly) {
  fill(5);
  ECFS_ASSERT_OK(engine_->begin());
  // An item of the wrong type, as damage that kept its checksum would.
  ECFS_ASSERT_OK(value_or_die(engine_->open_tree(kFreeSpaceTreeId))->put(Key{5, 1, 5}, {}));
  ECFS_ASSERT_OK(engine_->commit());
  // The first change after opening needs the map, and fails clearly.
  reopen();
  ECFS_ASSERT_OK(engine_->begin());
  const Status changed =
      value_or_die(engine_->open_tree(kFsTreeId))->put(Key{1, 1, 1}, value_bytes(1, 10));
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().errno_value(), EUCLEAN);
  EXPECT_NE(changed.error().message().find("read-only"), std::string::npos)
      << changed.error().message();
  engine_->abort();
  // Read-only, the extent tree serves instead, and fsck names the damage.
  reopen(/*read_only=*/true);
  auto report = value_or_die(engine_->check());
  EXPECT_FALSE(report.clean());
  EXPECT_NE(problems_of(report).find("free-space"), std::string::npos) << problems_of(report);
}

TEST_F(FreeSpaceTreeTest, ARangeThatDisagreesWithTheExtentTreeIsReported) {
  fill(5);
  // Claim as free a sector of a data extent the extent tree says is in use
  // (one this transaction leaves alone, so the commit does not rewrite it).
  const uint64_t used =
      value_or_die(
          decode_file_extent_ref(*value_or_die(value_or_die(engine_->committed_tree(kFsTreeId))
                                                   .find(Key{1000400, kExtentDataKey, 0}))))
          .disk_bytenr;
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(value_or_die(engine_->open_tree(kFreeSpaceTreeId))
                     ->put(Key{used, kFreeSpaceExtentKey, 4096}, {}));
  ECFS_ASSERT_OK(engine_->commit());
  auto report = value_or_die(engine_->check());
  EXPECT_NE(problems_of(report).find("free-space tree"), std::string::npos) << problems_of(report);
}

// A crash anywhere in the commit that adds the tree to an old image leaves
// the old image (no bit, no tree) or the converted one (bit and tree),
// both clean, and the old one converts at its next commit.
TEST_F(FreeSpaceTreeTest, ACrashDuringTheConversionLeavesOneOfTheTwoImages) {
  ASSERT_NO_FATAL_FAILURE(make_old_image(20));
  engine_.reset();

  block::RecordingDevice recorder(device_);
  {
    auto engine = value_or_die(Engine::open(recorder));
    ECFS_ASSERT_OK(engine->begin());
    ECFS_ASSERT_OK(
        value_or_die(engine->open_tree(kFsTreeId))->put(Key{1, 1, 1}, value_bytes(1, 10)));
    ECFS_ASSERT_OK(engine->commit());
  }
  const size_t ops = recorder.op_count();
  const std::set<size_t> points = crash_points(recorder, 3);
  std::map<bool, int> outcomes;
  for (size_t point : points) {
    for (auto mode : {block::CrashMode::kDropAllUnflushed, block::CrashMode::kKeepAllUnflushed,
                      block::CrashMode::kRandomSubsetWithTears}) {
      SCOPED_TRACE("crash at op " + std::to_string(point) + " of " + std::to_string(ops));
      auto image = value_or_die(recorder.crash_image(point, mode, point));
      auto engine = value_or_die(Engine::open(image));
      const bool converted = (engine->superblock().compat_ro_flags & kCompatRoFreeSpaceTree) != 0;
      ++outcomes[converted];
      auto report = value_or_die(engine->check());
      ASSERT_TRUE(report.clean()) << problems_of(report);
      if (!converted) {
        ECFS_ASSERT_OK(engine->begin());
        ECFS_ASSERT_OK(engine->commit());
        EXPECT_NE(engine->superblock().compat_ro_flags & kCompatRoFreeSpaceTree, 0u);
        auto again = value_or_die(engine->check());
        ASSERT_TRUE(again.clean()) << problems_of(again);
      }
    }
  }
  EXPECT_GT(outcomes[false], 0);
  EXPECT_GT(outcomes[true], 0);
}

}  // namespace
}  // namespace ecfs::store
