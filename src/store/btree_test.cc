#include "store/btree.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "store/btree_test_util.h"
#include "store/memory_node_store.h"

namespace ecfs::store {
namespace {

using testing::Contents;
using testing::contents_of;
using testing::data_of;
using ::testing::ElementsAre;
using testing::errno_of;
using ::testing::HasSubstr;
using testing::key_of;
using testing::message_of;
using testing::node_stats;
using testing::NodeStats;

constexpr uint64_t kOwner = 5;
// In a 4 KiB node: 4008 payload bytes; 32 items of 100 bytes (125 each with
// their headers) fill 4000 of them; an item of 3983 bytes fills all.
constexpr uint32_t kSmallNode = kMinNodeSize;
constexpr size_t kPayload4k = node_payload_size(kSmallNode);
constexpr size_t kMaxItem4k = max_item_data_size(kSmallNode);
static_assert(kPayload4k == 4008 && kMaxItem4k == 3983);

class BTreeTest : public ::testing::Test {
 protected:
  explicit BTreeTest(uint32_t node_size = kSmallNode) : store_(node_size) {
    auto tree = BTree::create(store_, kOwner);
    EXPECT_TRUE(tree) << message_of(tree);
    tree_.emplace(std::move(*tree));
  }

  BTree& tree() { return *tree_; }

  void insert_ok(uint64_t n, size_t size) {
    auto status = tree().insert(key_of(n), data_of(size, n));
    ASSERT_TRUE(status) << n << ": " << message_of(status);
  }
  void remove_ok(uint64_t n) {
    auto status = tree().remove(key_of(n));
    ASSERT_TRUE(status) << n << ": " << message_of(status);
  }
  void expect_valid() {
    auto status = tree().check_invariants();
    EXPECT_TRUE(status) << message_of(status);
  }
  std::optional<Bytes> find(uint64_t n) {
    auto found = tree().find(key_of(n));
    EXPECT_TRUE(found) << message_of(found);
    return found ? *found : std::nullopt;
  }

  MemoryNodeStore store_;
  std::optional<BTree> tree_;
};

TEST_F(BTreeTest, NewTreeIsOneEmptyLeaf) {
  EXPECT_EQ(tree().root().level, 0);
  EXPECT_EQ(tree().owner(), kOwner);
  EXPECT_EQ(store_.live_node_count(), 1u);
  EXPECT_EQ(find(1), std::nullopt);
  auto lower = tree().lower_bound(Key::min());
  ASSERT_TRUE(lower);
  EXPECT_EQ(*lower, std::nullopt);
  auto floor = tree().upper_floor(Key::max());
  ASSERT_TRUE(floor);
  EXPECT_EQ(*floor, std::nullopt);
  EXPECT_TRUE(contents_of(tree()).empty());
  auto cursor = tree().cursor();
  ASSERT_TRUE(cursor.seek_first());
  EXPECT_FALSE(cursor.valid());
  ASSERT_TRUE(cursor.seek_last());
  EXPECT_FALSE(cursor.valid());
  expect_valid();
  NodeStats stats = node_stats(tree());
  EXPECT_EQ(stats.nodes, 1u);
}

TEST_F(BTreeTest, SingleItemLifecycle) {
  const Key key{256, 1, 0};
  ASSERT_TRUE(tree().insert(key, as_bytes("inode")));
  EXPECT_EQ(errno_of(tree().insert(key, as_bytes("again"))), EEXIST);
  auto found = tree().find(key);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ(**found, Bytes(as_bytes("inode").begin(), as_bytes("inode").end()));
  EXPECT_EQ(errno_of(tree().update(Key{256, 1, 1}, as_bytes("x"))), ENOENT);
  ASSERT_TRUE(tree().update(key, as_bytes("changed")));
  found = tree().find(key);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ(std::string((*found)->begin(), (*found)->end()), "changed");
  ASSERT_TRUE(tree().put(key, as_bytes("put")));
  ASSERT_TRUE(tree().put(Key{256, 1, 1}, as_bytes("second")));
  EXPECT_EQ(contents_of(tree()).size(), 2u);
  ASSERT_TRUE(tree().remove(key));
  EXPECT_EQ(errno_of(tree().remove(key)), ENOENT);
  ASSERT_TRUE(tree().remove(Key{256, 1, 1}));
  EXPECT_TRUE(contents_of(tree()).empty());
  EXPECT_EQ(tree().root().level, 0);
  EXPECT_EQ(store_.live_node_count(), 1u);
  expect_valid();
}

TEST_F(BTreeTest, EmptyDataAndKeyExtremes) {
  ASSERT_TRUE(tree().insert(Key::min(), {}));
  ASSERT_TRUE(tree().insert(Key::max(), {}));
  auto found = tree().find(Key::max());
  ASSERT_TRUE(found && *found);
  EXPECT_TRUE((*found)->empty());
  auto floor = tree().upper_floor(Key::max());
  ASSERT_TRUE(floor && *floor);
  EXPECT_EQ((*floor)->key, Key::max());
  auto lower = tree().lower_bound(Key::min());
  ASSERT_TRUE(lower && *lower);
  EXPECT_EQ((*lower)->key, Key::min());
  expect_valid();
}

TEST_F(BTreeTest, ItemSizeLimit) {
  EXPECT_EQ(errno_of(tree().insert(key_of(1), Bytes(kMaxItem4k + 1))), EOVERFLOW);
  EXPECT_EQ(errno_of(tree().put(key_of(1), Bytes(kMaxItem4k + 1))), EOVERFLOW);
  insert_ok(1, 10);
  EXPECT_EQ(errno_of(tree().update(key_of(1), Bytes(kMaxItem4k + 1))), EOVERFLOW);
  // Items of the largest size fill a leaf each.
  for (uint64_t n = 2; n <= 12; ++n) insert_ok(n, kMaxItem4k);
  expect_valid();
  NodeStats stats = node_stats(tree());
  EXPECT_EQ(stats.leaves, 12u);
  for (uint64_t n = 2; n <= 12; ++n) EXPECT_EQ(find(n), data_of(kMaxItem4k, n));
}

TEST_F(BTreeTest, LeafSplitsInTheMiddleOnRandomInsert) {
  // Fill the root leaf exactly (32 items of 100 bytes = 4000 of 4008 bytes).
  for (uint64_t n = 0; n < 32; ++n) insert_ok(n * 2, 100);
  EXPECT_EQ(tree().root().level, 0);
  insert_ok(31, 100);  // in the middle: two half leaves under a new root
  EXPECT_EQ(tree().root().level, 1);
  EXPECT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(16, 17));
  expect_valid();
}

TEST_F(BTreeTest, AppendingStartsANewLeaf) {
  for (uint64_t n = 0; n < 33; ++n) insert_ok(n, 100);
  EXPECT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(32, 1));
  expect_valid();
}

TEST_F(BTreeTest, PrependingStartsANewLeaf) {
  for (uint64_t n = 33; n-- > 0;) insert_ok(n, 100);
  EXPECT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(1, 32));
  expect_valid();
}

TEST_F(BTreeTest, LargeItemGetsALeafOfItsOwn) {
  for (uint64_t n = 0; n < 32; ++n) insert_ok(n * 2, 100);
  // Fits beside neither half: the leaf splits twice.
  insert_ok(31, kMaxItem4k);
  EXPECT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(16, 1, 16));
  EXPECT_EQ(find(31), data_of(kMaxItem4k, 31));
  expect_valid();
}

TEST_F(BTreeTest, AppendedInternalNodeNeverHasALoneChild) {
  // 2000-byte items take a leaf each; the 122nd leaf overflows the root's
  // 121 pointers at its end. The new internal node must get two children:
  // with one, emptying that child's leaf would leave it without a sibling.
  for (uint64_t n = 0; n < 122; ++n) insert_ok(n, 2000);
  ASSERT_EQ(tree().root().level, 2);
  EXPECT_EQ(node_stats(tree()).lone_children, 0u);
  expect_valid();
  remove_ok(121);
  EXPECT_EQ(node_stats(tree()).lone_children, 0u);
  expect_valid();
  remove_ok(120);  // the right internal node is left with one child: merged
  EXPECT_EQ(tree().root().level, 1);
  expect_valid();
}

TEST_F(BTreeTest, GrowingUpdateSplits) {
  for (uint64_t n = 0; n < 32; ++n) insert_ok(n, 100);
  ASSERT_TRUE(tree().update(key_of(16), data_of(kMaxItem4k, 99)));
  EXPECT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(16, 1, 15));
  EXPECT_EQ(find(16), data_of(kMaxItem4k, 99));
  ASSERT_TRUE(tree().put(key_of(3), data_of(2000, 98)));
  EXPECT_EQ(find(3), data_of(2000, 98));
  expect_valid();
  Contents contents = contents_of(tree());
  EXPECT_EQ(contents.size(), 32u);
}

TEST_F(BTreeTest, NewFirstKeyReachesEveryAncestor) {
  // A three-level tree, then keys below everything: each lands in slot 0 of
  // the leftmost leaf and must become the key of its parent and grandparent.
  std::vector<uint64_t> order(3000);
  std::iota(order.begin(), order.end(), 1000);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(1));
  for (uint64_t n : order) insert_ok(n, 1500);
  ASSERT_EQ(tree().root().level, 2);
  for (uint64_t n = 999; n >= 990; --n) {
    insert_ok(n, 1500);
    expect_valid();
  }
  auto root = store_.read_node(tree().root().bytenr, tree().root().generation, 2);
  ASSERT_TRUE(root);
  EXPECT_EQ((*root)->children.front().key, key_of(990));
  // And removing the first key of a leaf that is not leftmost updates its
  // parent's key too.
  NodeStats stats = node_stats(tree());
  uint64_t second_leaf_first = 990 + stats.leaf_item_counts[0];
  remove_ok(second_leaf_first);
  expect_valid();
}

TEST_F(BTreeTest, RootGrowsAndShrinksThroughEveryLevel) {
  // 2000-byte items fill a 4 KiB leaf alone, so the tree deepens quickly:
  // level 3 needs more than 121 internal nodes of 60 to 121 leaves each.
  std::mt19937_64 random(7);
  std::vector<uint64_t> order(20000);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), random);
  uint8_t level = 0;
  for (uint64_t n : order) {
    insert_ok(n, 2000);
    if (tree().root().level != level) {
      EXPECT_EQ(tree().root().level, level + 1);
      level = tree().root().level;
      expect_valid();
    }
  }
  ASSERT_EQ(level, 3);
  expect_valid();
  EXPECT_EQ(node_stats(tree()).lone_children, 0u);
  EXPECT_EQ(store_.live_node_count(), node_stats(tree()).nodes);

  store_.begin_transaction();
  std::shuffle(order.begin(), order.end(), random);
  size_t removed = 0;
  for (uint64_t n : order) {
    remove_ok(n);
    ++removed;
    if (tree().root().level != level) {
      EXPECT_EQ(tree().root().level, level - 1);
      level = tree().root().level;
      expect_valid();
      EXPECT_EQ(contents_of(tree()).size(), order.size() - removed);
    }
  }
  EXPECT_EQ(level, 0);
  EXPECT_EQ(node_stats(tree()).lone_children, 0u);
  EXPECT_TRUE(contents_of(tree()).empty());
  EXPECT_EQ(store_.live_node_count(), 1u);
  expect_valid();
}

TEST_F(BTreeTest, UnderfullLeafBorrowsFromFullSibling) {
  // Leaves of 32 and 9 items (appending leaves the first one full).
  for (uint64_t n = 0; n < 41; ++n) insert_ok(n, 100);
  ASSERT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(32, 9));
  // 8 items (1000 bytes) are under a quarter of 4008; both do not fit in one
  // leaf, so the right leaf takes items from the left until about even.
  remove_ok(40);
  EXPECT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(20, 20));
  expect_valid();
  // Now the left one: removing its first item changes its key too.
  for (uint64_t n = 0; n < 13; ++n) remove_ok(n);
  // 7 items left of the 20: merged with the right one, and the root (two
  // children, now one) shrinks back to a leaf.
  EXPECT_EQ(tree().root().level, 0);
  EXPECT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(27));
  EXPECT_EQ(store_.live_node_count(), 1u);
  expect_valid();
  for (uint64_t n = 13; n < 40; ++n) EXPECT_EQ(find(n), data_of(100, n));
}

TEST_F(BTreeTest, SiblingThatCannotHelpIsNotCowed) {
  insert_ok(0, kMaxItem4k);
  for (uint64_t n = 1; n < 10; ++n) insert_ok(n, 100);
  ASSERT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(1, 9));
  store_.begin_transaction();
  const uint64_t copies = store_.counters().copies;
  // 8 items are under a quarter full, but the left sibling's one item fits
  // neither beside them nor in their place.
  remove_ok(9);
  EXPECT_EQ(store_.counters().copies, copies + 2);  // the root and the leaf
  EXPECT_THAT(node_stats(tree()).leaf_item_counts, ElementsAre(1, 8));
  expect_valid();
}

TEST_F(BTreeTest, EmptiedLeafMergesAway) {
  for (uint64_t n = 0; n < 33; ++n) insert_ok(n, 100);
  for (uint64_t n = 0; n < 66; n += 2) insert_ok(1000 + n, kMaxItem4k);
  const size_t leaves = node_stats(tree()).leaves;
  remove_ok(1010);  // its leaf held nothing else
  EXPECT_EQ(node_stats(tree()).leaves, leaves - 1);
  expect_valid();
}

TEST_F(BTreeTest, LookupsAcrossLeaves) {
  // Even numbers 0..998; odd numbers fall between items, often between leaves.
  for (uint64_t n = 0; n < 1000; n += 2) insert_ok(n, 300);
  ASSERT_GE(tree().root().level, 1);
  for (uint64_t n = 1; n < 999; n += 2) {
    auto lower = tree().lower_bound(key_of(n));
    ASSERT_TRUE(lower && *lower) << n;
    EXPECT_EQ((*lower)->key, key_of(n + 1));
    EXPECT_EQ((*lower)->data, data_of(300, n + 1));
    auto floor = tree().upper_floor(key_of(n));
    ASSERT_TRUE(floor && *floor) << n;
    EXPECT_EQ((*floor)->key, key_of(n - 1));
    EXPECT_EQ(find(n), std::nullopt);
  }
  auto exact = tree().lower_bound(key_of(500));
  ASSERT_TRUE(exact && *exact);
  EXPECT_EQ((*exact)->key, key_of(500));
  exact = tree().upper_floor(key_of(500));
  ASSERT_TRUE(exact && *exact);
  EXPECT_EQ((*exact)->key, key_of(500));
  auto past_end = tree().lower_bound(key_of(999));
  ASSERT_TRUE(past_end);
  EXPECT_EQ(*past_end, std::nullopt);
  ASSERT_TRUE(tree().remove(key_of(0)));
  auto before_start = tree().upper_floor(key_of(1));
  ASSERT_TRUE(before_start);
  EXPECT_EQ(*before_start, std::nullopt);
}

TEST_F(BTreeTest, ForEachVisitsAnInclusiveRangeAndStops) {
  for (uint64_t n = 0; n < 600; ++n) insert_ok(n, 200);
  std::vector<Key> seen;
  auto collect = [&](const Key& key, ByteSpan) {
    seen.push_back(key);
    return true;
  };
  ASSERT_TRUE(tree().for_each(key_of(100), key_of(399), collect));
  ASSERT_EQ(seen.size(), 300u);
  EXPECT_EQ(seen.front(), key_of(100));
  EXPECT_EQ(seen.back(), key_of(399));
  seen.clear();
  ASSERT_TRUE(tree().for_each(key_of(399), key_of(100), collect));  // empty range
  EXPECT_TRUE(seen.empty());
  size_t visits = 0;
  ASSERT_TRUE(tree().for_each(Key::min(), Key::max(), [&](const Key&, ByteSpan data) {
    EXPECT_EQ(data.size(), 200u);
    return ++visits < 50;
  }));
  EXPECT_EQ(visits, 50u);
}

TEST_F(BTreeTest, CursorWalksBothWays) {
  for (uint64_t n = 0; n < 800; ++n) insert_ok(n * 2, 150);
  auto cursor = tree().cursor();
  ASSERT_TRUE(cursor.seek_first());
  for (uint64_t n = 0; n < 800; ++n) {
    ASSERT_TRUE(cursor.valid()) << n;
    EXPECT_EQ(cursor.key(), key_of(n * 2));
    ASSERT_TRUE(cursor.next());
  }
  EXPECT_FALSE(cursor.valid());
  ASSERT_TRUE(cursor.seek_last());
  for (uint64_t n = 800; n-- > 0;) {
    ASSERT_TRUE(cursor.valid()) << n;
    EXPECT_EQ(cursor.key(), key_of(n * 2));
    EXPECT_TRUE(std::ranges::equal(cursor.data(), data_of(150, n * 2)));
    ASSERT_TRUE(cursor.prev());
  }
  EXPECT_FALSE(cursor.valid());
  ASSERT_TRUE(cursor.seek(key_of(301)));
  ASSERT_TRUE(cursor.valid());
  EXPECT_EQ(cursor.key(), key_of(302));
  ASSERT_TRUE(cursor.prev());
  EXPECT_EQ(cursor.key(), key_of(300));
  ASSERT_TRUE(cursor.seek_at_or_before(key_of(301)));
  EXPECT_EQ(cursor.key(), key_of(300));
}

TEST_F(BTreeTest, CopyOnWritePreservesTheCommittedVersion) {
  for (uint64_t n = 0; n < 2000; ++n) insert_ok(n, 120);
  const Contents before = contents_of(tree());
  const RootRef old_root = tree().root();
  const size_t old_nodes = store_.live_node_count();

  store_.begin_transaction();
  ASSERT_TRUE(tree().update(key_of(1000), data_of(5, 1)));
  // The path was shadowed: a new root, one copy per level.
  EXPECT_NE(tree().root(), old_root);
  EXPECT_EQ(tree().root().generation, store_.generation());
  EXPECT_EQ(store_.counters().copies, uint64_t{old_root.level} + 1);
  EXPECT_EQ(store_.live_node_count(), old_nodes);
  for (uint64_t n = 0; n < 2000; n += 3) remove_ok(n);
  for (uint64_t n = 5000; n < 5500; ++n) insert_ok(n, 700);
  expect_valid();

  BTree old_tree(store_.history(), kOwner, old_root);
  EXPECT_EQ(contents_of(old_tree), before);
  auto old_valid = old_tree.check_invariants();
  EXPECT_TRUE(old_valid) << message_of(old_valid);
  // The old root is no longer readable through the live store.
  EXPECT_EQ(errno_of(store_.read_node(old_root.bytenr, old_root.generation, old_root.level)), EIO);
}

TEST_F(BTreeTest, WritableNodesChangeInPlace) {
  for (uint64_t n = 0; n < 500; ++n) insert_ok(n, 100);
  store_.begin_transaction();
  insert_ok(10000, 10);
  const RootRef root = tree().root();
  const uint64_t copies = store_.counters().copies;  // counted since the store began
  // Same leaf, same transaction: no more copies, same root.
  insert_ok(10001, 10);
  ASSERT_TRUE(tree().update(key_of(10000), data_of(20, 3)));
  remove_ok(10001);
  EXPECT_EQ(store_.counters().copies, copies);
  EXPECT_EQ(tree().root(), root);
}

TEST_F(BTreeTest, RefusedChangesShadowNothing) {
  for (uint64_t n = 0; n < 500; ++n) insert_ok(n, 100);
  store_.begin_transaction();
  const RootRef root = tree().root();
  const MemoryNodeStore::Counters before = store_.counters();
  EXPECT_EQ(errno_of(tree().insert(key_of(7), {})), EEXIST);
  EXPECT_EQ(errno_of(tree().update(key_of(700), {})), ENOENT);
  EXPECT_EQ(errno_of(tree().remove(key_of(700))), ENOENT);
  EXPECT_EQ(errno_of(tree().insert(key_of(700), Bytes(kMaxItem4k + 1))), EOVERFLOW);
  EXPECT_EQ(tree().root(), root);
  EXPECT_EQ(store_.counters().copies, before.copies);
  EXPECT_EQ(store_.counters().allocations, before.allocations);
}

TEST_F(BTreeTest, ReadErrorsPropagate) {
  for (uint64_t n = 0; n < 500; ++n) insert_ok(n, 100);
  testing::FaultInjectingNodeStore faulty(store_, 1);
  faulty.read_failure_rate = 1;
  BTree view(faulty, kOwner, tree().root());
  EXPECT_EQ(errno_of(view.find(key_of(3))), EIO);
  EXPECT_EQ(errno_of(view.lower_bound(key_of(3))), EIO);
  EXPECT_EQ(errno_of(view.upper_floor(key_of(3))), EIO);
  EXPECT_EQ(errno_of(view.insert(key_of(1000), {})), EIO);
  EXPECT_EQ(errno_of(view.remove(key_of(3))), EIO);
  EXPECT_EQ(
      errno_of(view.for_each(Key::min(), Key::max(), [](const Key&, ByteSpan) { return true; })),
      EIO);
  EXPECT_EQ(errno_of(view.check_invariants()), EIO);
  EXPECT_EQ(view.root(), tree().root());
}

TEST_F(BTreeTest, CreateReportsAllocationFailure) {
  testing::FaultInjectingNodeStore faulty(store_, 1);
  faulty.allocate_failure_rate = 1;
  EXPECT_EQ(errno_of(BTree::create(faulty, kOwner)), ENOSPC);
}

// check_invariants must catch what it promises to catch.
class BTreeCheckTest : public BTreeTest {
 protected:
  void SetUp() override {
    for (uint64_t n = 0; n < 200; ++n) insert_ok(n * 10, 100);
    ASSERT_EQ(tree().root().level, 1);
    auto root = store_.read_node(tree().root().bytenr, tree().root().generation, 1);
    ASSERT_TRUE(root);
    root_ = *root;
    auto leaf = store_.read_node(root_->children[1].bytenr, root_->children[1].generation, 0);
    ASSERT_TRUE(leaf);
    leaf_ = *leaf;
  }
  void expect_violation(const std::string& what) {
    auto status = tree().check_invariants();
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().errno_value(), EUCLEAN);
    EXPECT_THAT(status.error().message(), HasSubstr(what));
  }
  NodeRef root_;
  NodeRef leaf_;
};

TEST_F(BTreeCheckTest, ParentKeyNotFirstKey) {
  root_->children[1].key.offset += 1;
  expect_violation("parent names it");
}

TEST_F(BTreeCheckTest, KeysOutOfOrder) {
  std::swap(leaf_->items[2].key, leaf_->items[3].key);
  expect_violation("does not follow");
}

TEST_F(BTreeCheckTest, KeyOutsideParentRange) {
  leaf_->items.back().key = key_of(1999 * 10);
  expect_violation("outside its parent's range");
}

TEST_F(BTreeCheckTest, EmptyLeafBelowRoot) {
  leaf_->items.clear();
  expect_violation("is empty");
}

TEST_F(BTreeCheckTest, OversizedNode) {
  leaf_->items[0].data.resize(kMaxItem4k);
  expect_violation("more than the node size");
}

TEST_F(BTreeCheckTest, ChildNewerThanParent) {
  leaf_->generation += 1;
  root_->children[1].generation += 1;
  expect_violation("newer than its parent");
}

TEST_F(BTreeCheckTest, PointerGenerationMismatchIsAnIoError) {
  // The store refuses to hand out a node whose generation its parent does
  // not expect (a lost or misdirected write on disk).
  root_->children[1].generation += 1;
  EXPECT_EQ(errno_of(tree().check_invariants()), EIO);
  EXPECT_EQ(errno_of(tree().find(leaf_->items[0].key)), EIO);
}

TEST(MemoryNodeStoreTest, EnforcesTheCopyOnWriteContract) {
  MemoryNodeStore store(kSmallNode, 3);
  auto node = store.allocate_node(0, kOwner);
  ASSERT_TRUE(node);
  EXPECT_EQ((*node)->generation, 3u);
  EXPECT_EQ((*node)->bytenr, MemoryNodeStore::kFirstBytenr);
  EXPECT_TRUE(store.is_writable(**node));
  auto same = store.cow_node(*node, kOwner);
  ASSERT_TRUE(same);
  EXPECT_EQ(*same, *node);
  EXPECT_EQ(errno_of(store.read_node((*node)->bytenr, 2, 0)), EIO);
  EXPECT_EQ(errno_of(store.read_node((*node)->bytenr, 3, 1)), EIO);
  EXPECT_EQ(errno_of(store.read_node(12345, 3, 0)), EIO);

  store.begin_transaction();
  EXPECT_FALSE(store.is_writable(**node));
  EXPECT_EQ(errno_of(store.free_node(*node)), EINVAL);
  auto copy = store.cow_node(*node, 9);
  ASSERT_TRUE(copy);
  EXPECT_NE((*copy)->bytenr, (*node)->bytenr);
  EXPECT_EQ((*copy)->generation, 4u);
  EXPECT_EQ((*copy)->owner, 9u);
  EXPECT_EQ(store.live_node_count(), 1u);
  EXPECT_EQ(store.stored_node_count(), 2u);
  EXPECT_EQ(errno_of(store.cow_node(*node, 9)), EINVAL);  // cowed away already
  EXPECT_EQ(errno_of(store.read_node((*node)->bytenr, 3, 0)), EIO);
  EXPECT_TRUE(store.history().read_node((*node)->bytenr, 3, 0));
  EXPECT_EQ(errno_of(store.history().allocate_node(0, 1)), EROFS);
  ASSERT_TRUE(store.free_node(*copy));
  EXPECT_EQ(store.live_node_count(), 0u);
  store.forget_dead_nodes();
  EXPECT_EQ(store.stored_node_count(), 0u);
  EXPECT_EQ(errno_of(store.history().read_node((*node)->bytenr, 3, 0)), EIO);
}

class BTree16kTest : public BTreeTest {
 protected:
  BTree16kTest() : BTreeTest(kDefaultNodeSize) {}
};

TEST_F(BTree16kTest, ManySmallItems) {
  std::vector<uint64_t> order(30000);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
  for (uint64_t n : order) insert_ok(n, n % 40);
  expect_valid();
  EXPECT_GE(tree().root().level, 1);
  for (uint64_t n = 0; n < 30000; n += 97) EXPECT_EQ(find(n), data_of(n % 40, n));
  for (size_t i = 0; i < order.size(); i += 2) remove_ok(order[i]);
  expect_valid();
  EXPECT_EQ(contents_of(tree()).size(), 15000u);
  EXPECT_EQ(store_.live_node_count(), node_stats(tree()).nodes);
}

}  // namespace
}  // namespace ecfs::store
