// Lookups, and the write path of BTree (search, cow the path, change the
// leaf in place). Splits are in btree_split.cc, removal and rebalancing in
// btree_remove.cc, the invariant checker in btree_check.cc.
#include "store/btree.h"

#include <string>
#include <utility>

namespace ecfs::store {

using btree_detail::child_slot;
using btree_detail::leaf_item_cost;
using btree_detail::leaf_lower_bound;
using btree_detail::payload_used;
using btree_detail::read_child;
using btree_detail::read_root;
using btree_detail::TreePath;

Result<BTree> BTree::create(NodeStore& store, uint64_t owner) {
  auto leaf = store.allocate_node(0, owner);
  if (!leaf) return std::unexpected(std::move(leaf).error());
  const Node& node = **leaf;
  return BTree(store, owner, RootRef{node.bytenr, node.generation, 0});
}

BTree::BTree(NodeStore& store, uint64_t owner, RootRef root)
    : store_(&store), owner_(owner), root_(root) {}

Result<std::optional<Bytes>> BTree::find(const Key& key) const {
  // A plain descent holding one node at a time: no path, no copies but the
  // found data.
  auto node = read_root(*store_, root_);
  if (!node) return std::unexpected(std::move(node).error());
  NodeRef current = std::move(*node);
  while (!current->is_leaf()) {
    if (current->children.empty()) {
      return fail(EUCLEAN, "internal node " + std::to_string(current->bytenr) + " is empty");
    }
    auto child = read_child(*store_, *current, child_slot(*current, key));
    if (!child) return std::unexpected(std::move(child).error());
    current = std::move(*child);
  }
  size_t slot = leaf_lower_bound(*current, key);
  if (slot == current->items.size() || current->items[slot].key != key) {
    return std::optional<Bytes>();
  }
  return std::optional<Bytes>(current->items[slot].data);
}

Result<std::optional<LeafItem>> BTree::lower_bound(const Key& key) const {
  BTreeCursor cursor(*store_, root_);
  ECFS_TRY(cursor.seek(key));
  if (!cursor.valid()) return std::optional<LeafItem>();
  return std::optional<LeafItem>(cursor.item());
}

Result<std::optional<LeafItem>> BTree::upper_floor(const Key& key) const {
  BTreeCursor cursor(*store_, root_);
  ECFS_TRY(cursor.seek_at_or_before(key));
  if (!cursor.valid()) return std::optional<LeafItem>();
  return std::optional<LeafItem>(cursor.item());
}

Status BTree::for_each(const Key& first, const Key& last,
                       const std::function<bool(const Key&, ByteSpan)>& visit) const {
  if (last < first) return ok();
  BTreeCursor cursor(*store_, root_);
  ECFS_TRY(cursor.seek(first));
  while (cursor.valid() && cursor.key() <= last) {
    if (!visit(cursor.key(), cursor.data())) break;
    ECFS_TRY(cursor.next());
  }
  return ok();
}

namespace {

// Pre-order walk below `node` (already visited). Returns false when the
// visitor asked to stop.
Result<bool> visit_children(NodeStore& store, const Node& node,
                            const std::function<bool(const Node&)>& visit) {
  for (size_t slot = 0; slot < node.children.size(); ++slot) {
    auto child = read_child(store, node, slot);
    if (!child) return std::unexpected(std::move(child).error());
    if (!visit(**child)) return false;
    auto more = visit_children(store, **child, visit);
    if (!more || !*more) return more;
  }
  return true;
}

}  // namespace

Status BTree::for_each_node(const std::function<bool(const Node&)>& visit) const {
  auto root = read_root(*store_, root_);
  if (!root) return std::unexpected(std::move(root).error());
  if (!visit(**root)) return ok();
  auto finished = visit_children(*store_, **root, visit);
  if (!finished) return std::unexpected(std::move(finished).error());
  return ok();
}

Status BTree::insert(const Key& key, ByteSpan data) {
  return write_item(key, data, WriteMode::kInsert);
}

Status BTree::update(const Key& key, ByteSpan data) {
  return write_item(key, data, WriteMode::kUpdate);
}

Status BTree::put(const Key& key, ByteSpan data) { return write_item(key, data, WriteMode::kPut); }

Status BTree::write_item(const Key& key, ByteSpan data, WriteMode mode) {
  const uint32_t node_size = store_->node_size();
  if (data.size() > max_item_data_size(node_size)) {
    return fail(EOVERFLOW, "item data of " + std::to_string(data.size()) +
                               " bytes exceeds the largest a " + std::to_string(node_size) +
                               "-byte node holds");
  }
  // Search first, without cowing: a refused insert or update must not
  // shadow anything.
  TreePath path;
  ECFS_TRY(btree_detail::descend(*store_, root_, key, path));
  {
    const Node& leaf = *path.at[0].node;
    const size_t slot = path.at[0].slot;
    const bool present = slot < leaf.items.size() && leaf.items[slot].key == key;
    if (present && mode == WriteMode::kInsert) return fail(EEXIST, "key already present");
    if (!present && mode == WriteMode::kUpdate) return fail(ENOENT, "key not present");
  }
  ECFS_TRY(cow_path(path));

  Node& leaf = *path.at[0].node;
  const size_t slot = path.at[0].slot;
  const bool replace = slot < leaf.items.size() && leaf.items[slot].key == key;
  size_t used = payload_used(leaf) + leaf_item_cost(data.size());
  if (replace) used -= leaf_item_cost(leaf.items[slot].data.size());
  if (used > node_payload_size(node_size)) return split_and_write(path, key, data, replace);

  if (replace) {
    leaf.items[slot].data.assign(data.begin(), data.end());
    return ok();
  }
  leaf.items.insert(leaf.items.begin() + static_cast<ptrdiff_t>(slot),
                    LeafItem{key, Bytes(data.begin(), data.end())});
  // Only the leftmost leaf can gain a new first key: a search takes the
  // child whose key is <= the key wherever there is one.
  if (slot == 0) propagate_first_key(path, 0);
  return ok();
}

Status BTree::cow_path(TreePath& path) {
  for (int level = path.root_level; level >= 0; --level) {
    btree_detail::PathLevel& at = path.at[level];
    if (store_->is_writable(*at.node)) continue;
    auto copy = store_->cow_node(at.node, owner_);
    if (!copy) return std::unexpected(std::move(copy).error());
    at.node = std::move(*copy);
    const Node& node = *at.node;
    if (level == path.root_level) {
      root_ = RootRef{node.bytenr, node.generation, node.level};
    } else {
      // The parent was made writable in the previous round.
      KeyPtr& ptr = path.at[level + 1].node->children[path.at[level + 1].slot];
      ptr.bytenr = node.bytenr;
      ptr.generation = node.generation;
    }
  }
  return ok();
}

void BTree::propagate_first_key(TreePath& path, int level) {
  // btrfs's fixup_low_keys: the key changes in the parent, and again in the
  // grandparent as long as the node is its parent's first child.
  for (; level < path.root_level; ++level) {
    const Node& node = *path.at[level].node;
    if (node.item_count() == 0) return;
    const btree_detail::PathLevel& parent = path.at[level + 1];
    parent.node->children[parent.slot].key = node.first_key();
    if (parent.slot != 0) return;
  }
}

}  // namespace ecfs::store
