// Internals shared by BTree and BTreeCursor: searching within one node, the
// space accounting of nodes, and the root-to-leaf path a search leaves
// behind (btrfs's struct btrfs_path: one node and one slot per level).
// Not part of the store's public API.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/error.h"
#include "store/format.h"
#include "store/node.h"
#include "store/node_store.h"
#include "store/root_ref.h"

namespace ecfs::store {

namespace btree_detail {

// Payload bytes one leaf item takes: its header and its data.
inline constexpr size_t leaf_item_cost(size_t data_size) { return kLeafItemHeaderSize + data_size; }

// Payload bytes in use (the node's size without its header). Leaves sum their
// items, so this is O(items); internal nodes are O(1).
size_t payload_used(const Node& node);

// The child of internal `node` whose subtree holds `key` if anything does: the
// last child whose key is <= `key`, or child 0 when `key` precedes them all.
// REQUIRES: !node.is_leaf() and node has children.
size_t child_slot(const Node& node, const Key& key);
// The first item of leaf `node` with key >= `key` (items.size() if none).
size_t leaf_lower_bound(const Node& node, const Key& key);
// The first item of leaf `node` with key > `key` (items.size() if none).
size_t leaf_upper_bound(const Node& node, const Key& key);

// Reads the root node `root` names.
Result<NodeRef> read_root(NodeStore& store, const RootRef& root);
// Reads child `slot` of internal node `parent`.
Result<NodeRef> read_child(NodeStore& store, const Node& parent, size_t slot);

// One node per level from the root (at[root_level]) down to a leaf (at[0]),
// and in each the slot the path goes through: in internal nodes the child
// taken, in the leaf an item position.
struct PathLevel {
  NodeRef node;
  size_t slot = 0;
};
struct TreePath {
  std::array<PathLevel, kMaxTreeLevel> at;
  uint8_t root_level = 0;
};

// Fills `path` with the search path for `key` without changing anything: in
// internal nodes child_slot(), in the leaf leaf_lower_bound().
// EUCLEAN when the root level is impossible; the store's errors otherwise.
Status descend(NodeStore& store, const RootRef& root, const Key& key, TreePath& path);

}  // namespace btree_detail
}  // namespace ecfs::store
