#include "store/extent_refs.h"

#include <gtest/gtest.h>

#include <utility>

#include "store/memory_node_store.h"
#include "store/tree_ids.h"

namespace ecfs::store {
namespace {

TEST(DelayedRefsTest, MergesChangesPerExtent) {
  DelayedRefs refs;
  refs.add_tree_ref(16384, 1, 5, 4096, 1, /*created=*/true);
  refs.add_tree_ref(16384, 1, 0, 4096, -1, false);
  refs.add_tree_ref(16384, 1, 0, 4096, 1, false);
  const DelayedRefHead* head = refs.find(16384);
  ASSERT_NE(head, nullptr);
  EXPECT_TRUE(head->is_tree_block);
  EXPECT_TRUE(head->created);
  EXPECT_EQ(head->owner, 5u);  // from the creating change, not overwritten
  EXPECT_EQ(head->delta, 1);

  const DataRef a{5, 257, 0, 0, 4096}, b{5, 258, 0, 0, 4096};
  refs.add_data_extent(1 << 20, 8192);
  refs.add_data_ref(1 << 20, 8192, a, 1);
  refs.add_data_ref(1 << 20, 8192, b, 1);
  refs.add_data_ref(1 << 20, 8192, a, -1);
  head = refs.find(1 << 20);
  ASSERT_NE(head, nullptr);
  EXPECT_FALSE(head->is_tree_block);
  EXPECT_EQ(head->delta, 1);
  ASSERT_EQ(head->data_deltas.size(), 1u);  // a cancelled out
  EXPECT_EQ(head->data_deltas.begin()->first, b);

  auto [first, popped] = refs.pop_first();
  EXPECT_EQ(first, 16384u);
  EXPECT_EQ(refs.size(), 1u);
  refs.clear();
  EXPECT_TRUE(refs.empty());
}

class ApplyTest : public ::testing::Test {
 protected:
  ApplyTest() : store_(4096), allocator_(1 << 24, {{0, 1 << 20}}) {}
  void SetUp() override {
    auto tree = BTree::create(store_, kExtentTreeId);
    ASSERT_TRUE(tree);
    tree_.emplace(std::move(*tree));
  }
  MemoryNodeStore store_;
  SpaceAllocator allocator_;
  std::optional<BTree> tree_;
};

TEST_F(ApplyTest, TreeBlockLifecycle) {
  const uint64_t block = *allocator_.allocate(4096, 4096);
  DelayedRefHead created{true, true, 2, 5, 4096, 2, {}};
  ASSERT_TRUE(apply_delayed_ref_head(*tree_, block, created, 7, allocator_));
  auto item = *find_tree_block_item(*tree_, block, 2);
  ASSERT_TRUE(item);
  EXPECT_EQ(*item, (ExtentItem{2, 7, kExtentFlagTreeBlock, 5, 2}));

  DelayedRefHead drop{true, false, 2, 0, 4096, -1, {}};
  ASSERT_TRUE(apply_delayed_ref_head(*tree_, block, drop, 8, allocator_));
  EXPECT_EQ((*find_tree_block_item(*tree_, block, 2))->refs, 1u);
  EXPECT_EQ(allocator_.pinned_bytes(), 0u);
  ASSERT_TRUE(apply_delayed_ref_head(*tree_, block, drop, 8, allocator_));
  EXPECT_FALSE(*find_tree_block_item(*tree_, block, 2));
  EXPECT_EQ(allocator_.pinned_bytes(), 4096u);  // reusable after the commit
  // Below zero / without an item.
  EXPECT_EQ(apply_delayed_ref_head(*tree_, block, drop, 9, allocator_).error().errno_value(),
            EUCLEAN);
}

TEST_F(ApplyTest, CreatedAndReleasedInOneTransactionIsJustFreed) {
  const uint64_t block = *allocator_.allocate(4096, 4096);
  DelayedRefHead head{true, true, 0, 5, 4096, 0, {}};
  ASSERT_TRUE(apply_delayed_ref_head(*tree_, block, head, 7, allocator_));
  EXPECT_FALSE(*find_tree_block_item(*tree_, block, 0));
  EXPECT_EQ(allocator_.pinned_bytes(), 4096u);
}

TEST_F(ApplyTest, DataExtentBackReferences) {
  const uint64_t extent = *allocator_.allocate(16384, 4096);
  const DataRef a{5, 257, 0, 0, 8192}, b{6, 300, 4096, 8192, 8192};
  DelayedRefHead add{false, true, 0, 0, 16384, 3, {{a, 2}, {b, 1}}};
  ASSERT_TRUE(apply_delayed_ref_head(*tree_, extent, add, 7, allocator_));
  auto found = *find_data_extent_item(*tree_, extent);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->first.refs, 3u);
  EXPECT_EQ(found->second, 16384u);
  EXPECT_EQ((*find_data_ref_item(*tree_, extent, a))->second.count, 2u);
  EXPECT_EQ((*find_data_ref_item(*tree_, extent, b))->second.count, 1u);
  EXPECT_FALSE(*find_data_ref_item(*tree_, extent, DataRef{5, 257, 0, 0, 4096}));

  DelayedRefHead drop_missing{false, false, 0, 0, 16384, -1, {{DataRef{9, 9, 9, 0, 4096}, -1}}};
  EXPECT_EQ(
      apply_delayed_ref_head(*tree_, extent, drop_missing, 8, allocator_).error().errno_value(),
      EUCLEAN);

  DelayedRefHead drop_all{false, false, 0, 0, 16384, -3, {{a, -2}, {b, -1}}};
  ASSERT_TRUE(apply_delayed_ref_head(*tree_, extent, drop_all, 8, allocator_));
  EXPECT_FALSE(*find_data_extent_item(*tree_, extent));
  EXPECT_FALSE(*find_data_ref_item(*tree_, extent, a));
  EXPECT_EQ(allocator_.pinned_bytes(), 16384u);
}

TEST_F(ApplyTest, HashCollisionsProbeToTheNextKey) {
  const uint64_t extent = *allocator_.allocate(4096, 4096);
  DataRef low{5, 1, 0, 0, 4096}, high{5, 2, 0, 0, 4096};
  if (data_ref_hash(low) > data_ref_hash(high)) std::swap(low, high);
  // A collision as probing leaves it: `low`'s item sits above its own hash,
  // in the slot `high` hashes to.
  DelayedRefHead create{false, true, 0, 0, 4096, 1, {{low, 1}}};
  ASSERT_TRUE(apply_delayed_ref_head(*tree_, extent, create, 7, allocator_));
  const Key low_key = (*find_data_ref_item(*tree_, extent, low))->first;
  EXPECT_EQ(low_key.offset, data_ref_hash(low));
  ASSERT_TRUE(tree_->remove(low_key));
  ASSERT_TRUE(tree_->insert(Key{extent, kExtentDataRefKey, data_ref_hash(high)},
                            encode_data_ref_item({low, 1})));
  DelayedRefHead add_high{false, false, 0, 0, 4096, 1, {{high, 1}}};
  ASSERT_TRUE(apply_delayed_ref_head(*tree_, extent, add_high, 7, allocator_));
  auto found_high = *find_data_ref_item(*tree_, extent, high);
  ASSERT_TRUE(found_high);
  EXPECT_EQ(found_high->first.offset, data_ref_hash(high) + 1);
  auto found_low = *find_data_ref_item(*tree_, extent, low);
  ASSERT_TRUE(found_low);
  EXPECT_EQ(found_low->first.offset, data_ref_hash(high));
  // Dropping `low` leaves a gap that `high`'s lookup scans past.
  DelayedRefHead drop_low{false, false, 0, 0, 4096, -1, {{low, -1}}};
  ASSERT_TRUE(apply_delayed_ref_head(*tree_, extent, drop_low, 8, allocator_));
  EXPECT_EQ((*find_data_ref_item(*tree_, extent, high))->second.count, 1u);
}

}  // namespace
}  // namespace ecfs::store
