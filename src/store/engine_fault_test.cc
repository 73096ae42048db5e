// The engine under device faults (block/fault_device.h): a commit whose
// write or flush fails reports the device's errno, leaves the engine
// refusing new transactions until it is reopened, and the device then opens
// as the last committed generation or the new one, never anything else.
#include <gtest/gtest.h>

#include "block/fault_device.h"
#include "block/memory_device.h"
#include "store/engine_model_test_util.h"

namespace ecfs::store {
namespace {

using testing::EngineModel;
using testing::Model;
using testing::problems_of;
using testing::read_all;
using testing::value_bytes;
using testing::value_or_die;

Model committed_contents(Engine& engine) {
  Model model;
  for (uint64_t id : value_or_die(engine.list_trees())) {
    if (is_unshared_tree(id)) continue;  // the extent and free-space trees
    model[id] = value_or_die(read_all(value_or_die(engine.committed_tree(id))));
  }
  return model;
}

TEST(EngineFaultTest, FailedCommitLeavesOneOfTwoGenerations) {
  int outcomes_old = 0, outcomes_new = 0;
  for (block::FaultOp op : {block::FaultOp::kWrite, block::FaultOp::kFlush}) {
    for (uint64_t nth = 1; nth <= 12; ++nth) {
      block::MemoryDevice base(80ull << 20);
      block::FaultDevice device(base);
      EngineModel model(nth, device, 4096);
      model.run(3);
      ASSERT_FALSE(::testing::Test::HasFailure());
      const Model before = model.committed_;

      // One more transaction, whose commit meets the fault.
      ASSERT_TRUE(model.engine_->begin());
      Model after = before;
      BTree* tree = value_or_die(model.engine_->open_tree(kFsTreeId));
      for (uint64_t i = 0; i < 200; ++i) {
        const Key key{100000 + i, 1, 0};
        ASSERT_TRUE(tree->put(key, value_bytes(i, 100)));
        after[kFsTreeId][key] = value_bytes(i, 100);
      }
      device.fail_nth(op, nth, EIO);
      auto status = model.engine_->commit();
      if (status) continue;  // the commit needed fewer requests than nth
      EXPECT_EQ(status.error().errno_value(), EIO);
      EXPECT_FALSE(model.engine_->in_transaction());
      EXPECT_EQ(model.engine_->begin().error().errno_value(), EIO);

      model.engine_.reset();
      device.heal();
      auto reopened = value_or_die(Engine::open(device));
      const Model found = committed_contents(*reopened);
      if (found == before) {
        ++outcomes_old;
      } else {
        EXPECT_EQ(found, after) << "fault at " << nth;
        ++outcomes_new;
      }
      auto report = value_or_die(reopened->check());
      EXPECT_TRUE(report.clean()) << problems_of(report);
      // And the reopened engine works.
      ASSERT_TRUE(reopened->begin());
      ASSERT_TRUE(
          value_or_die(reopened->open_tree(kFsTreeId))->put(Key{1, 2, 3}, value_bytes(1, 1)));
      ASSERT_TRUE(reopened->commit());
    }
  }
  EXPECT_GT(outcomes_old, 0);
  // A failed mirror write or final flush comes after the commit point.
  EXPECT_GT(outcomes_new, 0);
}

TEST(EngineFaultTest, ReadErrorsReachTheCaller) {
  block::MemoryDevice base(64ull << 20);
  block::FaultDevice device(base);
  EngineModel model(3, device, 4096);
  model.run(3);
  model.engine_.reset();
  // Whichever read fails -- at open, reading a tree, loading the free-space
  // map -- the caller gets EIO.
  for (uint64_t successes : {0, 1, 2, 3}) {
    SCOPED_TRACE("reads before the failures: " + std::to_string(successes));
    device.heal();
    device.fail_after(block::FaultOp::kRead, successes, EIO);
    auto engine = Engine::open(device);
    if (!engine) {
      EXPECT_EQ(engine.error().errno_value(), EIO);
      continue;
    }
    std::vector<int> errors;
    if (auto tree = (*engine)->committed_tree(kFsTreeId); !tree) {
      errors.push_back(tree.error().errno_value());
    } else if (auto contents = read_all(*tree); !contents) {
      errors.push_back(contents.error().errno_value());
    }
    if (auto map = (*engine)->space_map(); !map) errors.push_back(map.error().errno_value());
    ASSERT_FALSE(errors.empty());
    for (int error : errors) EXPECT_EQ(error, EIO);
  }
}

}  // namespace
}  // namespace ecfs::store
