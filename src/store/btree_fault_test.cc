// Store failures: the tree runs over a FaultInjectingNodeStore that fails
// cows and allocations with ENOSPC and reads with EIO at random. Every failed
// operation must report the store's error, and leave the tree valid, with
// exactly its previous contents and without a node the store holds for it
// that it does not reference (btree.h, "Errors"). Deterministic per seed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "store/btree.h"
#include "store/btree_test_util.h"
#include "store/memory_node_store.h"

namespace ecfs::store {
namespace {

using testing::Contents;
using testing::contents_of;
using testing::data_of;
using testing::errno_of;
using testing::FaultInjectingNodeStore;
using ::testing::HasSubstr;
using testing::key_of;
using testing::message_of;
using testing::node_stats;

constexpr uint64_t kOwner = 5;
#if defined(__SANITIZE_ADDRESS__) || !defined(NDEBUG)
constexpr int kOperations = 8000;  // sanitizer and debug builds are ~10x slower
#else
constexpr int kOperations = 30000;
#endif

struct FaultParams {
  uint32_t node_size;
  uint64_t seed;
};

class BTreeFaultTest : public ::testing::TestWithParam<FaultParams> {};

TEST_P(BTreeFaultTest, FailedChangesKeepTheOldContents) {
  const FaultParams params = GetParam();
  SCOPED_TRACE("seed " + std::to_string(params.seed) + ", node size " +
               std::to_string(params.node_size));
  MemoryNodeStore store(params.node_size);
  FaultInjectingNodeStore faulty(store, params.seed);
  auto created = BTree::create(faulty, kOwner);
  ASSERT_TRUE(created) << message_of(created);
  BTree tree = std::move(*created);
  Contents model;
  std::mt19937_64 random(params.seed);
  auto uniform = [&](uint64_t below) {
    return std::uniform_int_distribution<uint64_t>(0, below - 1)(random);
  };
  const size_t max_item = max_item_data_size(params.node_size);

  // Checks the promise of btree.h after a failure, with injection paused.
  auto expect_unharmed = [&](const std::string& what) {
    const double rates[] = {faulty.read_failure_rate, faulty.cow_failure_rate,
                            faulty.allocate_failure_rate};
    faulty.read_failure_rate = faulty.cow_failure_rate = faulty.allocate_failure_rate = 0;
    auto valid = tree.check_invariants();
    ASSERT_TRUE(valid) << what << ": " << message_of(valid);
    ASSERT_EQ(contents_of(tree), model) << what << ": contents changed";
    const testing::NodeStats stats = node_stats(tree);
    ASSERT_EQ(store.live_node_count(), stats.nodes) << what << ": a node leaked";
    ASSERT_EQ(stats.lone_children, 0u) << what << ": an internal node has a single child";
    faulty.read_failure_rate = rates[0];
    faulty.cow_failure_rate = rates[1];
    faulty.allocate_failure_rate = rates[2];
  };

  size_t failed_changes = 0;
  size_t failed_lookups = 0;
  size_t failed_removals = 0;
  for (int op = 0; op < kOperations; ++op) {
    if (op % 150 == 0) {
      store.begin_transaction();  // so that changes need cows again
      faulty.read_failure_rate = uniform(2) ? 0.005 : 0;
      faulty.cow_failure_rate = 0.01 * static_cast<double>(uniform(5));
      faulty.allocate_failure_rate = 0.05 * static_cast<double>(uniform(4));
    }
    // Keep the tree between a few hundred and a few thousand items, so it
    // splits and merges at every level it has.
    const bool grow = (op / (kOperations / 10)) % 2 == 0;
    const uint64_t n = uniform(4000);
    const Key key = key_of(n);
    const size_t size = uniform(10) == 0 ? uniform(max_item + 1) : uniform(200);
    const Bytes data = data_of(size, op);
    const uint64_t kind = uniform(10);
    const std::string what = "operation " + std::to_string(op);
    Status status;
    const bool present = model.contains(key);
    // The errno a change must return when the store does not fail.
    int expected = 0;
    if (kind < (grow ? 5u : 2u)) {
      status = tree.insert(key, data);
      if (status) model.emplace(key, data);
      if (present) expected = EEXIST;
    } else if (kind < 6) {
      status = tree.put(key, data);
      if (status) model[key] = data;
    } else if (kind < 9) {
      status = tree.remove(key);
      if (status) model.erase(key);
      if (!present) expected = ENOENT;
    } else {
      auto found = tree.find(key);
      if (!found) {
        EXPECT_EQ(errno_of(found), EIO) << what;
        ++failed_lookups;
        continue;
      }
      ASSERT_EQ(found->has_value(), present) << what;
      if (present) {
        ASSERT_EQ(**found, model[key]) << what;
      }
      continue;
    }
    if (status || status.error().message().find("injected") == std::string::npos) {
      ASSERT_EQ(errno_of(status), expected) << what << ": " << message_of(status);
      continue;
    }
    ++failed_changes;
    if (kind >= 6) ++failed_removals;
    EXPECT_TRUE(errno_of(status) == ENOSPC || errno_of(status) == EIO) << what;
    expect_unharmed(what);
    if (::testing::Test::HasFatalFailure()) return;
  }
  faulty.read_failure_rate = faulty.cow_failure_rate = faulty.allocate_failure_rate = 0;
  expect_unharmed("at the end");
  // Enough failures to have hit every kind of step.
  EXPECT_GT(failed_changes, kOperations / 150u);
  EXPECT_GE(failed_lookups, 2u);
  EXPECT_GT(failed_removals, 10u);
  RecordProperty("failed_changes", std::to_string(failed_changes));
  RecordProperty("failed_removals", std::to_string(failed_removals));
  RecordProperty("failed_lookups", std::to_string(failed_lookups));
  EXPECT_GE(tree.root().level, 1);
}

INSTANTIATE_TEST_SUITE_P(NodeSizes, BTreeFaultTest,
                         ::testing::Values(FaultParams{kMinNodeSize, 11},
                                           FaultParams{kDefaultNodeSize, 12}),
                         [](const ::testing::TestParamInfo<FaultParams>& param_info) {
                           return std::to_string(param_info.param.node_size) + "_seed" +
                                  std::to_string(param_info.param.seed);
                         });

// A failure to free a merged-away node comes after the item is gone: the
// removal reports it, and the tree is valid without the item.
TEST(BTreeStoreFailureTest, FailedFreeAfterRemovalStillRemoves) {
  MemoryNodeStore store(kMinNodeSize);
  FaultInjectingNodeStore faulty(store, 1);
  auto created = BTree::create(faulty, kOwner);
  ASSERT_TRUE(created);
  BTree tree = std::move(*created);
  for (uint64_t n = 0; n < 33; ++n) ASSERT_TRUE(tree.insert(key_of(n), data_of(100, n)));
  ASSERT_EQ(tree.root().level, 1);  // leaves of 32 and 1 items
  faulty.free_failure_rate = 1;
  auto status = tree.remove(key_of(32));  // empties the second leaf: merge
  EXPECT_EQ(errno_of(status), EIO);
  faulty.free_failure_rate = 0;
  auto valid = tree.check_invariants();
  EXPECT_TRUE(valid) << message_of(valid);
  EXPECT_EQ(tree.root().level, 0);
  auto found = tree.find(key_of(32));
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, std::nullopt);
  EXPECT_EQ(contents_of(tree).size(), 32u);
}

// Nothing is allocated for a split unless all of it is: an allocation that
// fails halfway gives back the nodes already obtained.
TEST(BTreeStoreFailureTest, FailedSplitAllocatesNothing) {
  MemoryNodeStore store(kMinNodeSize);
  FaultInjectingNodeStore faulty(store, 5);
  auto created = BTree::create(faulty, kOwner);
  ASSERT_TRUE(created);
  BTree tree = std::move(*created);
  for (uint64_t n = 0; n < 32; ++n) ASSERT_TRUE(tree.insert(key_of(n * 2), data_of(100, n)));
  const RootRef root = tree.root();
  // A big item in the middle needs three new nodes: two leaves and a root.
  faulty.allocate_failure_rate = 0.5;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto status = tree.insert(key_of(31), data_of(max_item_data_size(kMinNodeSize), 31));
    if (status) break;
    EXPECT_EQ(errno_of(status), ENOSPC);
    EXPECT_EQ(tree.root(), root);
    EXPECT_EQ(store.live_node_count(), 1u);
  }
  faulty.allocate_failure_rate = 0;
  EXPECT_EQ(tree.root().level, 1);
  EXPECT_EQ(store.live_node_count(), 4u);
  EXPECT_TRUE(tree.check_invariants());
  EXPECT_GT(faulty.injected, 0u);
}

}  // namespace
}  // namespace ecfs::store
