// Crash consistency of commits: a random workload runs on a RecordingDevice
// (block/recording_device.h); then, for crash points across the run, crash
// images are built with the unflushed writes dropped, kept, chosen at random
// and torn, and each image must open as exactly the model of the last
// committed generation, or of the next one when the crash came after that
// commit's superblock reached the medium, and must pass fsck.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "block/memory_device.h"
#include "block/recording_device.h"
#include "store/engine_model_test_util.h"

namespace ecfs::store {
namespace {

using testing::EngineModel;
using testing::Model;
using testing::problems_of;
using testing::read_all;
using testing::value_or_die;

struct CrashRun {
  std::map<uint64_t, Model> models;        // generation -> committed trees
  std::map<uint64_t, size_t> commit_ends;  // generation -> op count after its commit
};

// Opens `image`, checks it against the run, and commits one more change on
// it to show the recovered image is writable. Returns the generation found.
uint64_t check_crash_image(block::MemoryDevice& image, const CrashRun& run, size_t point,
                           const std::string& what) {
  // The newest generation whose commit had finished before the crash.
  uint64_t durable = 1;
  for (const auto& [generation, end] : run.commit_ends) {
    if (end <= point) durable = std::max(durable, generation);
  }
  auto engine = Engine::open(image);
  EXPECT_TRUE(engine) << what << ": " << engine.error().to_string();
  if (!engine) return 0;
  const uint64_t generation = (*engine)->committed_generation();
  EXPECT_TRUE(generation == durable || generation == durable + 1)
      << what << ": generation " << generation << ", durable " << durable;
  auto model = run.models.find(generation);
  EXPECT_NE(model, run.models.end()) << what << ": generation " << generation;
  if (model == run.models.end()) return 0;
  for (const auto& [id, contents] : model->second) {
    auto tree = (*engine)->committed_tree(id);
    EXPECT_TRUE(tree) << what << ": tree " << id;
    if (!tree) continue;
    auto actual = read_all(*tree);
    EXPECT_TRUE(actual) << what << ": " << actual.error().to_string();
    if (actual) {
      EXPECT_EQ(*actual, contents) << what << ": tree " << id;
    }
  }
  auto report = (*engine)->check();
  EXPECT_TRUE(report) << what;
  if (report) {
    EXPECT_TRUE(report->clean()) << what << ":\n" << problems_of(*report);
  }
  return generation;
}

void check_every_crash_state(uint32_t node_size, uint64_t workload_seed, int transactions) {
  // 80 MiB: room for the primary superblock and the mirror at 64 MiB.
  block::MemoryDevice base(80ull << 20);
  MkfsOptions options;
  options.node_size = node_size;
  ASSERT_TRUE(mkfs(base, options));
  block::RecordingDevice recorder(base);

  CrashRun run;
  EngineModel model(workload_seed, recorder, options.node_size, /*format=*/false);
  run.models[1] = model.committed_;
  run.commit_ends[1] = 0;
  model.after_commit_ = [&] {
    const uint64_t generation = model.engine_->committed_generation();
    run.models[generation] = model.committed_;
    run.commit_ends[generation] = recorder.op_count();
  };
  model.run(transactions);
  ASSERT_FALSE(::testing::Test::HasFailure());
  model.engine_.reset();
  ASSERT_GE(run.models.size(), 8u);

  const size_t ops = recorder.op_count();
  std::set<size_t> points{ops};
  for (size_t flush : recorder.flush_points()) {
    points.insert(flush);      // the flush did not complete
    points.insert(flush + 1);  // it did, nothing after it was issued
  }
  // And a spread of points between flushes.
  for (size_t point = 0; point < ops; point += 7) points.insert(point);

  size_t states = 0;
  std::map<uint64_t, size_t> generations_seen;
  for (size_t point : points) {
    struct Variant {
      block::CrashMode mode;
      uint64_t seed;
    };
    std::vector<Variant> variants{{block::CrashMode::kDropAllUnflushed, 0},
                                  {block::CrashMode::kKeepAllUnflushed, 0}};
    if (!recorder.unflushed_writes(point).empty()) {
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        variants.push_back({block::CrashMode::kRandomSubset, seed});
        variants.push_back({block::CrashMode::kRandomSubsetWithTears, seed});
      }
    }
    for (const Variant& variant : variants) {
      auto image = recorder.crash_image(point, variant.mode, variant.seed);
      ASSERT_TRUE(image) << image.error().to_string();
      const std::string what =
          "crash at op " + std::to_string(point) + " of " + std::to_string(ops) + ", mode " +
          std::to_string(static_cast<int>(variant.mode)) + ", seed " + std::to_string(variant.seed);
      ++generations_seen[check_crash_image(*image, run, point, what)];
      ++states;
      if (::testing::Test::HasFailure()) return;
    }
  }
  std::printf("node size %u: checked %zu crash states at %zu crash points, %zu ops, %zu commits\n",
              node_size, states, points.size(), ops, run.models.size() - 1);
  // The run must have exercised both outcomes of an interrupted commit.
  EXPECT_GE(generations_seen.size(), run.models.size() - 1);
}

TEST(EngineCrashTest, EveryCrashStateIsACommittedGeneration) {
  check_every_crash_state(4096, 2024, 24);
}

// Nodes of four blocks: a crash can tear a node write block by block.
TEST(EngineCrashTest, EveryCrashStateIsACommittedGenerationLargeNodes) {
  check_every_crash_state(kDefaultNodeSize, 7, 16);
}

// A recovered crash image accepts new transactions and stays consistent.
TEST(EngineCrashTest, RecoveredImageKeepsWorking) {
  block::MemoryDevice base(80ull << 20);
  MkfsOptions options;
  options.node_size = 4096;
  ASSERT_TRUE(mkfs(base, options));
  block::RecordingDevice recorder(base);
  EngineModel model(77, recorder, options.node_size, /*format=*/false);
  model.run(6);
  model.engine_.reset();
  const std::vector<size_t> flushes = recorder.flush_points();
  ASSERT_FALSE(flushes.empty());
  for (size_t i = 0; i < flushes.size(); i += 3) {
    auto image =
        value_or_die(recorder.crash_image(flushes[i], block::CrashMode::kRandomSubsetWithTears, i));
    EngineModel after(i, image, options.node_size, /*format=*/false);
    // Whatever generation survived is the new baseline.
    after.committed_.clear();
    after.next_tree_id_ = 1000;
    for (uint64_t id : value_or_die(after.engine_->list_trees())) {
      if (is_unshared_tree(id)) continue;  // the extent and free-space trees
      after.committed_[id] =
          value_or_die(read_all(value_or_die(after.engine_->committed_tree(id))));
    }
    after.run(4);
    ASSERT_FALSE(::testing::Test::HasFailure()) << "after crash at flush " << i;
  }
}

}  // namespace
}  // namespace ecfs::store
