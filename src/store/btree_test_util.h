// Helpers for the B-tree tests (only *_test.cc include this): item keys and
// data, whole-tree dumps, node statistics, and a NodeStore decorator that
// injects failures.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "store/btree.h"
#include "store/memory_node_store.h"

namespace ecfs::store::testing {

// A key that sorts by `n`, spread over all three fields.
inline Key key_of(uint64_t n) { return Key{n / 3, static_cast<uint8_t>(n % 3), n * 7}; }

// `size` bytes that depend on `seed`, so that a stale copy is noticed.
inline Bytes data_of(size_t size, uint64_t seed) {
  Bytes data(size);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + size;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    data[i] = static_cast<uint8_t>(x);
  }
  return data;
}

template <typename T>
std::string message_of(const Result<T>& result) {
  return result ? std::string("ok") : result.error().to_string();
}
template <typename T>
int errno_of(const Result<T>& result) {
  return result ? 0 : result.error().errno_value();
}

using Contents = std::map<Key, Bytes>;

// Every item of the tree in key order, through for_each.
inline Contents contents_of(const BTree& tree) {
  Contents contents;
  Key previous;
  bool first = true;
  auto status = tree.for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan data) {
    EXPECT_TRUE(first || previous < key) << "for_each out of order";
    first = false;
    previous = key;
    contents.emplace(key, Bytes(data.begin(), data.end()));
    return true;
  });
  EXPECT_TRUE(status) << message_of(status);
  return contents;
}

struct NodeStats {
  size_t nodes = 0;
  size_t leaves = 0;
  // Internal nodes below the root with one child: never left by BTree (such
  // a child has no sibling to merge with when it empties).
  size_t lone_children = 0;
  std::vector<size_t> leaf_item_counts;  // in key order
};

inline NodeStats node_stats(const BTree& tree) {
  NodeStats stats;
  auto status = tree.for_each_node([&](const Node& node) {
    const bool root = stats.nodes++ == 0;  // visited first
    if (node.is_leaf()) {
      ++stats.leaves;
      stats.leaf_item_counts.push_back(node.items.size());
    } else if (!root && node.children.size() < 2) {
      ++stats.lone_children;
    }
    return true;
  });
  EXPECT_TRUE(status) << message_of(status);
  return stats;
}

// Passes everything to `inner` but fails, at random with the given
// probabilities: read_node with EIO, and cow_node (when it would copy) and
// allocate_node with ENOSPC, and free_node with EIO. Deterministic for a seed.
class FaultInjectingNodeStore final : public NodeStore {
 public:
  FaultInjectingNodeStore(NodeStore& inner, uint64_t seed) : inner_(inner), random_(seed) {}

  double read_failure_rate = 0;
  double cow_failure_rate = 0;
  double allocate_failure_rate = 0;
  double free_failure_rate = 0;
  uint64_t injected = 0;  // failures injected so far

  uint32_t node_size() const override { return inner_.node_size(); }
  uint64_t generation() const override { return inner_.generation(); }
  Result<NodeRef> read_node(uint64_t bytenr, uint64_t generation, uint8_t level) override {
    if (roll(read_failure_rate)) return fail(EIO, "injected read failure");
    return inner_.read_node(bytenr, generation, level);
  }
  bool is_writable(const Node& node) const override { return inner_.is_writable(node); }
  Result<NodeRef> cow_node(const NodeRef& node, uint64_t owner) override {
    if (!inner_.is_writable(*node) && roll(cow_failure_rate)) {
      return fail(ENOSPC, "injected cow failure");
    }
    return inner_.cow_node(node, owner);
  }
  Result<NodeRef> allocate_node(uint8_t level, uint64_t owner) override {
    if (roll(allocate_failure_rate)) return fail(ENOSPC, "injected allocation failure");
    return inner_.allocate_node(level, owner);
  }
  Status free_node(const NodeRef& node) override {
    if (roll(free_failure_rate)) return fail(EIO, "injected free failure");
    return inner_.free_node(node);
  }

 private:
  bool roll(double rate) {
    if (rate <= 0 || std::uniform_real_distribution<double>(0, 1)(random_) >= rate) return false;
    ++injected;
    return true;
  }

  NodeStore& inner_;
  std::mt19937_64 random_;
};

}  // namespace ecfs::store::testing
