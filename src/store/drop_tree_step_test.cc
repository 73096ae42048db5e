// Engine::drop_tree_step: a tree deleted in bounded parts, one transaction
// each, consistent (fsck clean) after every commit, its clones untouched,
// and the space of what only it held given back.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "block/recording_device.h"
#include "store/engine.h"
#include "store/engine_test_util.h"

namespace ecfs::store {
namespace {

using testing::crash_points;
using testing::EngineFixture;
using testing::problems_of;
using testing::read_all;
using testing::TreeContents;
using testing::value_bytes;
using testing::value_or_die;

constexpr uint64_t kSource = 300;
constexpr uint64_t kClone = 301;

class DropTreeStepTest : public EngineFixture {
 protected:
  // A tree of three or more levels (4 KiB nodes), with data extents, and a
  // clone of it that then diverges in part, so the source holds shared and
  // exclusive subtrees alike.
  void build() {
    ECFS_ASSERT_OK(engine_->begin());
    BTree* tree = value_or_die(engine_->create_tree(kSource));
    for (uint64_t i = 0; i < 6000; ++i) {
      ECFS_ASSERT_OK(tree->insert(Key{i, 1, 0}, value_bytes(i, 120)));
    }
    for (uint64_t i = 0; i < 40; ++i) {
      const uint64_t extent = value_or_die(engine_->allocate_data(4096));
      ECFS_ASSERT_OK(engine_->write_data(extent, Bytes(4096, static_cast<uint8_t>(i))));
      FileExtentRef ref{extent, 4096, 0, 4096};
      ECFS_ASSERT_OK(tree->insert(Key{100000 + i, kExtentDataKey, 0}, encode_file_extent_ref(ref)));
      ECFS_ASSERT_OK(engine_->add_data_ref(extent, 4096, DataRef{kSource, 100000 + i, 0, 0, 4096}));
    }
    ECFS_ASSERT_OK(engine_->commit());
    ASSERT_GE(value_or_die(engine_->committed_tree(kSource)).root().level, 2);
    ECFS_ASSERT_OK(engine_->begin());
    ECFS_ASSERT_OK(engine_->clone_tree(kSource, kClone));
    ECFS_ASSERT_OK(engine_->commit());
    // Both sides change a part: the source's copies of those parts become
    // its own, the rest stays shared.
    ECFS_ASSERT_OK(engine_->begin());
    BTree* source = value_or_die(engine_->open_tree(kSource));
    BTree* clone = value_or_die(engine_->open_tree(kClone));
    for (uint64_t i = 0; i < 6000; i += 7) {
      ECFS_ASSERT_OK(source->update(Key{i, 1, 0}, value_bytes(i + 1, 120)));
    }
    for (uint64_t i = 3000; i < 4000; ++i) ECFS_ASSERT_OK(clone->remove(Key{i, 1, 0}));
    ECFS_ASSERT_OK(engine_->commit());
    expect_clean();
  }
};

TEST_F(DropTreeStepTest, ATreeGoesInBoundedPartsAndItsCloneStays) {
  build();
  const TreeContents clone_before = committed(kClone);
  int steps = 0;
  for (bool gone = false; !gone; ++steps) {
    ASSERT_LT(steps, 10000);
    ECFS_ASSERT_OK(engine_->begin());
    gone = value_or_die(engine_->drop_tree_step(kSource, 4));
    ECFS_ASSERT_OK(engine_->commit());
    // Every intermediate state is a consistent image.
    if (steps % 5 == 0 || gone) expect_clean();
    if (::testing::Test::HasFailure()) return;
  }
  EXPECT_GT(steps, 20) << "the drop was spread over many transactions";
  EXPECT_FALSE(engine_->committed_tree(kSource));
  EXPECT_EQ(committed(kClone), clone_before);
  // The space the source alone held came back: dropping the clone too
  // leaves what mkfs left (and the free-space tree says so: expect_clean).
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->drop_tree(kClone));
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
  EXPECT_EQ(value_or_die(engine_->list_trees()),
            (std::vector<uint64_t>{kExtentTreeId, kFsTreeId, kCsumTreeId, kFreeSpaceTreeId}));
}

TEST_F(DropTreeStepTest, APartlyDroppedTreeSurvivesAReopenAndFinishes) {
  build();
  for (int i = 0; i < 10; ++i) {
    ECFS_ASSERT_OK(engine_->begin());
    ASSERT_FALSE(value_or_die(engine_->drop_tree_step(kSource, 2)));
    ECFS_ASSERT_OK(engine_->commit());
  }
  reopen();
  expect_clean();
  // What is left is a valid tree: its invariants hold, and it still reads.
  auto left = value_or_die(engine_->committed_tree(kSource));
  ECFS_ASSERT_OK(left.check_invariants());
  EXPECT_TRUE(read_all(left));
  ECFS_ASSERT_OK(engine_->begin());
  EXPECT_TRUE(value_or_die(engine_->drop_tree_step(kSource, UINT64_MAX)));
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
}

TEST_F(DropTreeStepTest, RejectsWhatCannotBeDropped) {
  ECFS_ASSERT_OK(engine_->begin());
  EXPECT_EQ(engine_->drop_tree_step(kExtentTreeId, 1).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->drop_tree_step(kFreeSpaceTreeId, 1).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->drop_tree_step(kFsTreeId, 0).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->drop_tree_step(999, 1).error().errno_value(), ENOENT);
  engine_->abort();
}

// A crash at any write of a spread-out drop leaves a clean image whose
// drop can go on.
TEST_F(DropTreeStepTest, EveryCrashStateOfASpreadDropIsCleanAndResumes) {
  build();
  engine_.reset();
  block::RecordingDevice recorder(device_);
  {
    auto engine = value_or_die(Engine::open(recorder));
    for (int i = 0; i < 6; ++i) {
      ECFS_ASSERT_OK(engine->begin());
      ASSERT_FALSE(value_or_die(engine->drop_tree_step(kSource, 3)));
      ECFS_ASSERT_OK(engine->commit());
    }
  }
  const size_t ops = recorder.op_count();
  const std::set<size_t> points = crash_points(recorder, 5);
  for (size_t point : points) {
    for (auto mode : {block::CrashMode::kDropAllUnflushed, block::CrashMode::kKeepAllUnflushed,
                      block::CrashMode::kRandomSubsetWithTears}) {
      SCOPED_TRACE("crash at op " + std::to_string(point) + " of " + std::to_string(ops));
      auto image = value_or_die(recorder.crash_image(point, mode, point));
      auto engine = value_or_die(Engine::open(image));
      auto report = value_or_die(engine->check());
      ASSERT_TRUE(report.clean()) << problems_of(report);
      ECFS_ASSERT_OK(engine->begin());
      EXPECT_TRUE(value_or_die(engine->drop_tree_step(kSource, UINT64_MAX)));
      ECFS_ASSERT_OK(engine->commit());
      auto after = value_or_die(engine->check());
      ASSERT_TRUE(after.clean()) << problems_of(after);
    }
  }
}

}  // namespace
}  // namespace ecfs::store
