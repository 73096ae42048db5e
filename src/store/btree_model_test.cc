// Model-based test of BTree: random operations against std::map, with
// transactions begun at random points. At every transaction boundary the
// tree must pass check_invariants, hold exactly the model's contents, hold no
// node it does not reference, and every root saved at an earlier boundary
// must still read exactly what the tree held then (copy-on-write preserved
// it).
//
// Deterministic per seed; a failure names its seed, node size and operation.
// ECFS_MODEL_OPS=<n> sets the operations per run (long runs: 5000000),
// ECFS_MODEL_SEED=<n> is added to each run's seed, ECFS_MODEL_TRACE=1 prints
// progress, ECFS_MODEL_CHECK_FROM=<op> checks invariants after every
// operation from that one on (to find the operation that broke the tree).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "store/btree.h"
#include "store/btree_test_util.h"
#include "store/memory_node_store.h"

namespace ecfs::store {
namespace {

using testing::Contents;
using testing::data_of;
using testing::message_of;
using testing::node_stats;

constexpr uint64_t kOwner = 5;

// Runs this long reach three levels and shrink back in every configuration
// (checked below).
constexpr size_t kCoverageOps = 250000;
#if defined(__SANITIZE_ADDRESS__) || !defined(NDEBUG)
constexpr size_t kDefaultOps = 30000;  // sanitizer and debug builds are ~10x slower
#else
constexpr size_t kDefaultOps = kCoverageOps;
#endif

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtoull(value, nullptr, 10);
}

// How keys are drawn; the generator switches between these every few
// thousand operations.
enum class KeySpace {
  kDense,       // few distinct keys: many collisions, updates and removals hit
  kSequential,  // increasing objectids: appends at the right edge
  kWide,        // any 64-bit fields: sparse
  kClustered,   // a few objects with many typed items each, like inodes
};
constexpr int kKeySpaces = 4;

class ModelRun {
 public:
  ModelRun(uint32_t node_size, uint64_t seed) : store_(node_size), random_(seed), seed_(seed) {}

  void run(size_t ops) {
    auto tree = BTree::create(store_, kOwner);
    ASSERT_TRUE(tree) << message_of(tree);
    tree_.emplace(std::move(*tree));
    // Items average ~250 bytes in 4 KiB nodes and ~500 in 16 KiB ones, so
    // this reaches root level 2 in both.
    max_target_ = 20000;
    target_size_ = 1000 + uniform(max_target_);
    for (size_t op = 0; op < ops; ++op) {
      op_ = op;
      change_phase();
      if (trace_ && op % 10000 == 0) {
        std::fprintf(stderr, "op %zu: %zu items (target %zu, %s), root level %d\n", op,
                     contents_.size(), target_size_, growing_ ? "growing" : "shrinking",
                     tree_->root().level);
      }
      step();
      if (::testing::Test::HasFatalFailure()) return;
      if (op >= check_every_op_from_) {
        auto valid = tree_->check_invariants();
        ASSERT_TRUE(valid) << where() << ": " << message_of(valid);
      }
      if (tree_->root().level > max_level_) max_level_ = tree_->root().level;
      if (tree_->root().level < level_) ++root_shrinks_;
      level_ = tree_->root().level;
      if (random_() % transaction_length_ == 0) {
        end_transaction();
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
    end_transaction(/*last=*/true);
  }

  // What the run went through, to check that it covered what it should.
  uint8_t max_level() const { return max_level_; }
  size_t root_shrinks() const { return root_shrinks_; }
  size_t transactions() const { return transactions_; }

 private:
  std::string where() const {
    return "seed " + std::to_string(seed_) + ", node size " + std::to_string(store_.node_size()) +
           ", operation " + std::to_string(op_) + ", generation " +
           std::to_string(store_.generation());
  }

  uint64_t uniform(uint64_t below) {
    return std::uniform_int_distribution<uint64_t>(0, below - 1)(random_);
  }
  bool chance(unsigned percent) { return uniform(100) < percent; }

  // Called before every operation.
  void change_phase() {
    if (op_ % 4000 == 0) {
      key_space_ = static_cast<KeySpace>(uniform(kKeySpaces));
      // Mostly long transactions (every boundary compares everything), some
      // very short ones while the tree is small.
      transaction_length_ = contents_.size() < 2000 && chance(15) ? 4 : 100 + uniform(1500);
    }
    // Grow to a target size, then shrink to a small one (sometimes nearly
    // empty), so that splits, merges, root growth and root shrinking all
    // keep happening.
    if (growing_ && contents_.size() >= target_size_) {
      growing_ = false;
      target_size_ = chance(30) ? uniform(20) : uniform(target_size_ / 2);
    } else if (!growing_ && contents_.size() <= target_size_) {
      growing_ = true;
      target_size_ = 1000 + uniform(max_target_);
    }
  }

  Key random_key() {
    switch (key_space_) {
      case KeySpace::kDense:
        return Key{uniform(3000), static_cast<uint8_t>(uniform(3)), uniform(4)};
      case KeySpace::kSequential:
        return Key{++sequence_, 1, 0};
      case KeySpace::kWide:
        return Key{random_(), static_cast<uint8_t>(random_()), random_()};
      case KeySpace::kClustered: {
        static constexpr uint8_t kTypes[] = {1, 12, 84, 96, 108};
        return Key{256 + uniform(40), kTypes[uniform(5)], uniform(256) * 4096};
      }
    }
    return {};
  }

  // Mostly a key the tree holds, so that updates and removals succeed.
  Key some_key() {
    if (contents_.empty() || chance(25)) return random_key();
    auto it = contents_.lower_bound(random_key());
    if (it == contents_.end()) it = contents_.begin();
    return it->first;
  }

  // Skewed small, but reaching the largest item a leaf holds.
  Bytes random_data() {
    const size_t max = max_item_data_size(store_.node_size());
    size_t size;
    const uint64_t roll = uniform(1000);
    if (roll < 600) {
      size = uniform(33);
    } else if (roll < 850) {
      size = 33 + uniform(224);
    } else if (roll < 960) {
      size = 257 + uniform(768);
    } else if (roll < 990) {
      size = 1025 + uniform(max - 1024);
    } else {
      size = max - uniform(3);
    }
    return data_of(size, random_());
  }

  void step() {
    const uint64_t roll = uniform(100);
    const unsigned insert_share = growing_ ? 35 : 5;
    const unsigned remove_share = growing_ ? 15 : 50;
    if (roll < insert_share) {
      check_insert();
    } else if (roll < insert_share + remove_share) {
      check_remove();
    } else if (roll < 60) {
      check_update();
    } else if (roll < 70) {
      check_put();
    } else if (roll < 80) {
      check_find();
    } else if (roll < 86) {
      check_lower_bound();
    } else if (roll < 92) {
      check_upper_floor();
    } else if (roll < 97) {
      check_range();
    } else {
      check_backward_walk();
    }
  }

  void check_insert() {
    const Key key = random_key();
    Bytes data = random_data();
    auto status = tree_->insert(key, data);
    if (contents_.contains(key)) {
      ASSERT_FALSE(status) << where() << ": insert of a present key succeeded";
      ASSERT_EQ(status.error().errno_value(), EEXIST) << where() << ": " << message_of(status);
    } else {
      ASSERT_TRUE(status) << where() << ": insert: " << message_of(status);
      contents_.emplace(key, std::move(data));
    }
  }

  void check_update() {
    const Key key = some_key();
    Bytes data = random_data();
    auto status = tree_->update(key, data);
    auto it = contents_.find(key);
    if (it == contents_.end()) {
      ASSERT_FALSE(status) << where() << ": update of an absent key succeeded";
      ASSERT_EQ(status.error().errno_value(), ENOENT) << where() << ": " << message_of(status);
    } else {
      ASSERT_TRUE(status) << where() << ": update: " << message_of(status);
      it->second = std::move(data);
    }
  }

  void check_put() {
    const Key key = chance(50) ? some_key() : random_key();
    Bytes data = random_data();
    auto status = tree_->put(key, data);
    ASSERT_TRUE(status) << where() << ": put: " << message_of(status);
    contents_[key] = std::move(data);
  }

  void check_remove() {
    const Key key = some_key();
    auto status = tree_->remove(key);
    if (contents_.erase(key) == 0) {
      ASSERT_FALSE(status) << where() << ": removal of an absent key succeeded";
      ASSERT_EQ(status.error().errno_value(), ENOENT) << where() << ": " << message_of(status);
    } else {
      ASSERT_TRUE(status) << where() << ": remove: " << message_of(status);
    }
  }

  void check_find() {
    const Key key = some_key();
    auto found = tree_->find(key);
    ASSERT_TRUE(found) << where() << ": find: " << message_of(found);
    auto it = contents_.find(key);
    if (it == contents_.end()) {
      ASSERT_EQ(*found, std::nullopt) << where() << ": found an absent key";
    } else {
      ASSERT_TRUE(found->has_value()) << where() << ": did not find a present key";
      ASSERT_EQ(**found, it->second) << where() << ": wrong data";
    }
  }

  void expect_item(const Result<std::optional<LeafItem>>& got, Contents::const_iterator want,
                   const char* what) {
    ASSERT_TRUE(got) << where() << ": " << what << ": " << message_of(got);
    if (want == contents_.end()) {
      ASSERT_EQ(*got, std::nullopt) << where() << ": " << what << " found an item";
      return;
    }
    ASSERT_TRUE(got->has_value()) << where() << ": " << what << " found nothing";
    ASSERT_EQ((*got)->key, want->first) << where() << ": " << what << " found the wrong key";
    ASSERT_EQ((*got)->data, want->second) << where() << ": " << what << " returned wrong data";
  }

  void check_lower_bound() {
    const Key key = chance(50) ? some_key() : random_key();
    expect_item(tree_->lower_bound(key), contents_.lower_bound(key), "lower_bound");
  }

  void check_upper_floor() {
    const Key key = chance(50) ? some_key() : random_key();
    auto after = contents_.upper_bound(key);
    auto want = after == contents_.begin() ? contents_.end() : std::prev(after);
    expect_item(tree_->upper_floor(key), want, "upper_floor");
  }

  void check_range() {
    Key first = random_key();
    Key last = chance(70) ? random_key() : Key::max();
    if (chance(10)) std::swap(first, last);  // sometimes empty
    // Bounded: a scan to the end of a large tree at every few operations
    // would cost more than everything else together.
    const size_t limit = 1 + uniform(chance(90) ? 100 : 2000);
    auto want = contents_.lower_bound(first);
    size_t visited = 0;
    bool mismatch = false;
    auto status = tree_->for_each(first, last, [&](const Key& key, ByteSpan data) {
      if (want == contents_.end() || want->first != key ||
          !std::ranges::equal(want->second, data)) {
        mismatch = true;
        return false;
      }
      ++want;
      return ++visited < limit;
    });
    ASSERT_TRUE(status) << where() << ": for_each: " << message_of(status);
    ASSERT_FALSE(mismatch) << where() << ": for_each visited the wrong item after " << visited;
    if (visited < limit && !(last < first)) {
      ASSERT_TRUE(want == contents_.end() || last < want->first)
          << where() << ": for_each stopped early after " << visited;
    }
  }

  void check_backward_walk() {
    const Key from = chance(50) ? some_key() : random_key();
    auto cursor = tree_->cursor();
    auto status = cursor.seek_at_or_before(from);
    auto after = contents_.upper_bound(from);
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(status) << where() << ": cursor: " << message_of(status);
      if (after == contents_.begin()) {
        ASSERT_FALSE(cursor.valid()) << where() << ": cursor walked past the first item";
        return;
      }
      --after;
      ASSERT_TRUE(cursor.valid()) << where() << ": cursor ended early";
      ASSERT_EQ(cursor.key(), after->first) << where() << ": cursor at the wrong key";
      ASSERT_TRUE(std::ranges::equal(cursor.data(), after->second)) << where();
      status = cursor.prev();
    }
  }

  // Compares every item without copying the tree's data.
  void expect_contents(const BTree& tree, const Contents& want, const std::string& what) {
    auto next = want.begin();
    size_t visited = 0;
    bool mismatch = false;
    auto status = tree.for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan data) {
      if (next == want.end() || next->first != key || !std::ranges::equal(next->second, data)) {
        mismatch = true;
        return false;
      }
      ++next;
      ++visited;
      return true;
    });
    ASSERT_TRUE(status) << where() << ": reading " << what << ": " << message_of(status);
    ASSERT_FALSE(mismatch) << where() << ": " << what << " differs from the model at item "
                           << visited;
    ASSERT_TRUE(next == want.end())
        << where() << ": " << what << " lacks the model's item " << visited;
  }

  void end_transaction(bool last = false) {
    auto valid = tree_->check_invariants();
    ASSERT_TRUE(valid) << where() << ": " << message_of(valid);
    expect_contents(*tree_, contents_, "the tree");
    if (::testing::Test::HasFatalFailure()) return;
    const testing::NodeStats stats = node_stats(*tree_);
    ASSERT_EQ(store_.live_node_count(), stats.nodes)
        << where() << ": the store holds nodes the tree does not reference";
    ASSERT_EQ(stats.lone_children, 0u) << where() << ": an internal node has a single child";
    ++transactions_;
    // Saved versions cannot change once their transaction is over, so
    // checking them now and then, and always before they are dropped, is as
    // strict as checking them at every boundary.
    const bool drop_saved = transactions_ % 16 == 0;
    const bool check_saved = last || drop_saved || chance(10);
    for (const Saved& saved : saved_) {
      if (!check_saved) break;
      BTree old(store_.history(), kOwner, saved.root);
      auto old_valid = old.check_invariants();
      ASSERT_TRUE(old_valid) << where() << ": root of generation " << saved.root.generation << ": "
                             << message_of(old_valid);
      expect_contents(old, saved.contents,
                      "the version of generation " + std::to_string(saved.root.generation));
      if (::testing::Test::HasFatalFailure()) return;
    }
    if (drop_saved) {
      // Bound the memory the dead versions take.
      saved_.clear();
      store_.forget_dead_nodes();
    }
    if (saved_.size() < 3 && chance(15)) saved_.push_back({tree_->root(), contents_});
    store_.begin_transaction();
  }

  struct Saved {
    RootRef root;
    Contents contents;
  };

  MemoryNodeStore store_;
  std::optional<BTree> tree_;
  Contents contents_;
  std::vector<Saved> saved_;
  std::mt19937_64 random_;
  uint64_t seed_;
  size_t op_ = 0;
  size_t transactions_ = 0;
  KeySpace key_space_ = KeySpace::kDense;
  bool growing_ = true;
  size_t target_size_ = 0;
  size_t max_target_ = 0;
  uint64_t transaction_length_ = 100;
  uint64_t sequence_ = 1ull << 40;
  bool trace_ = std::getenv("ECFS_MODEL_TRACE") != nullptr;
  uint64_t check_every_op_from_ = env_or("ECFS_MODEL_CHECK_FROM", UINT64_MAX);
  uint8_t level_ = 0;
  uint8_t max_level_ = 0;
  size_t root_shrinks_ = 0;
};

struct ModelParams {
  uint32_t node_size;
  uint64_t seed;
};

class BTreeModelTest : public ::testing::TestWithParam<ModelParams> {};

TEST_P(BTreeModelTest, MatchesStdMap) {
  const ModelParams params = GetParam();
  const uint64_t seed = env_or("ECFS_MODEL_SEED", 0) + params.seed;
  const size_t ops = env_or("ECFS_MODEL_OPS", kDefaultOps);
  SCOPED_TRACE("seed " + std::to_string(seed) + ", node size " + std::to_string(params.node_size));
  ModelRun run(params.node_size, seed);
  run.run(ops);
  if (HasFatalFailure()) return;
  RecordProperty("transactions", std::to_string(run.transactions()));
  RecordProperty("max_level", std::to_string(run.max_level()));
  RecordProperty("root_shrinks", std::to_string(run.root_shrinks()));
  if (ops >= kCoverageOps) {
    EXPECT_GE(run.max_level(), 2) << "the run never grew the tree to three levels";
    EXPECT_GE(run.root_shrinks(), 1u) << "the run never shrank the tree";
  }
}

INSTANTIATE_TEST_SUITE_P(NodeSizes, BTreeModelTest,
                         ::testing::Values(ModelParams{kMinNodeSize, 1},
                                           ModelParams{kMinNodeSize, 2},
                                           ModelParams{kDefaultNodeSize, 3}),
                         [](const ::testing::TestParamInfo<ModelParams>& param_info) {
                           return std::to_string(param_info.param.node_size) + "_seed" +
                                  std::to_string(param_info.param.seed);
                         });

}  // namespace
}  // namespace ecfs::store
