#include "store/node_cache.h"

#include <gtest/gtest.h>

namespace ecfs::store {
namespace {

NodeRef node_at(uint64_t bytenr, uint64_t generation = 1) {
  auto node = std::make_shared<Node>();
  node->bytenr = bytenr;
  node->generation = generation;
  return node;
}

TEST(NodeCacheTest, EvictsTheLeastRecentlyUsed) {
  NodeCache cache(3);
  cache.put(node_at(1));
  cache.put(node_at(2));
  cache.put(node_at(3));
  ASSERT_NE(cache.get(1), nullptr);  // 1 is now the most recent
  cache.put(node_at(4));             // evicts 2
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.get(2), nullptr);
  EXPECT_NE(cache.get(1), nullptr);
  EXPECT_NE(cache.get(3), nullptr);
  EXPECT_NE(cache.get(4), nullptr);
}

TEST(NodeCacheTest, PutReplacesAndEraseForgets) {
  NodeCache cache(2);
  cache.put(node_at(8, 1));
  cache.put(node_at(8, 2));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.get(8)->generation, 2u);
  cache.erase(8);
  EXPECT_EQ(cache.get(8), nullptr);
  cache.erase(9);  // absent: nothing happens
  cache.put(node_at(1));
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(NodeCache(0).capacity(), 1u);
}

TEST(NodeCacheTest, EvictedNodesStayValidForHolders) {
  NodeCache cache(1);
  cache.put(node_at(1));
  NodeRef held = cache.get(1);
  cache.put(node_at(2));
  EXPECT_EQ(cache.get(1), nullptr);
  EXPECT_EQ(held->bytenr, 1u);
}

}  // namespace
}  // namespace ecfs::store
