// Model test of the engine (engine_model_test_util.h) on memory devices.
#include <gtest/gtest.h>

#include "block/memory_device.h"
#include "store/engine_model_test_util.h"

namespace ecfs::store {
namespace {

using testing::EngineModel;

TEST(EngineModelTest, RandomWorkloadSmallNodes) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    block::MemoryDevice device(256ull << 20);
    EngineModel model(seed, device, 4096);
    model.run(100);
    if (HasFatalFailure()) FAIL() << "seed " << seed;
    RecordProperty("commits", model.commits_);
    EXPECT_GT(model.commits_, 30);
    EXPECT_GT(model.aborts_, 2);
  }
}

TEST(EngineModelTest, RandomWorkloadDefaultNodes) {
  block::MemoryDevice device(256ull << 20);
  EngineModel model(99, device, kDefaultNodeSize);
  model.run(40);
}

// A node cache far smaller than the trees: nodes are evicted and decoded
// again from the device all the time, which must not change any answer.
TEST(EngineModelTest, TinyNodeCache) {
  block::MemoryDevice device(256ull << 20);
  OpenOptions options;
  options.node_cache_capacity = 8;
  EngineModel model(5, device, 4096, /*format=*/true, options);
  model.run(40);
}

}  // namespace
}  // namespace ecfs::store
