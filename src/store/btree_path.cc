#include "store/btree_path.h"

#include <algorithm>
#include <string>

namespace ecfs::store::btree_detail {

size_t payload_used(const Node& node) {
  if (!node.is_leaf()) return node.children.size() * kKeyPtrSize;
  size_t used = node.items.size() * kLeafItemHeaderSize;
  for (const LeafItem& item : node.items) used += item.data.size();
  return used;
}

size_t child_slot(const Node& node, const Key& key) {
  auto after = std::upper_bound(node.children.begin(), node.children.end(), key,
                                [](const Key& k, const KeyPtr& ptr) { return k < ptr.key; });
  return after == node.children.begin() ? 0
                                        : static_cast<size_t>(after - node.children.begin()) - 1;
}

size_t leaf_lower_bound(const Node& node, const Key& key) {
  auto it = std::lower_bound(node.items.begin(), node.items.end(), key,
                             [](const LeafItem& item, const Key& k) { return item.key < k; });
  return static_cast<size_t>(it - node.items.begin());
}

size_t leaf_upper_bound(const Node& node, const Key& key) {
  auto it = std::upper_bound(node.items.begin(), node.items.end(), key,
                             [](const Key& k, const LeafItem& item) { return k < item.key; });
  return static_cast<size_t>(it - node.items.begin());
}

Result<NodeRef> read_root(NodeStore& store, const RootRef& root) {
  if (root.level >= kMaxTreeLevel) {
    return fail(EUCLEAN, "tree root at " + std::to_string(root.bytenr) + " has impossible level " +
                             std::to_string(root.level));
  }
  return store.read_node(root.bytenr, root.generation, root.level);
}

Result<NodeRef> read_child(NodeStore& store, const Node& parent, size_t slot) {
  const KeyPtr& ptr = parent.children[slot];
  return store.read_node(ptr.bytenr, ptr.generation, static_cast<uint8_t>(parent.level - 1));
}

Status descend(NodeStore& store, const RootRef& root, const Key& key, TreePath& path) {
  auto node = read_root(store, root);
  if (!node) return std::unexpected(std::move(node).error());
  path.root_level = root.level;
  NodeRef current = std::move(*node);
  for (int level = root.level; level > 0; --level) {
    if (current->children.empty()) {
      return fail(EUCLEAN, "internal node " + std::to_string(current->bytenr) + " is empty");
    }
    size_t slot = child_slot(*current, key);
    auto child = read_child(store, *current, slot);
    if (!child) return std::unexpected(std::move(child).error());
    path.at[level] = {std::move(current), slot};
    current = std::move(*child);
  }
  size_t slot = leaf_lower_bound(*current, key);
  path.at[0] = {std::move(current), slot};
  return ok();
}

}  // namespace ecfs::store::btree_detail
