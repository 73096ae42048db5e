// Splitting: what BTree::write_item does when an item does not fit in its
// leaf (btrfs ctree.c split_leaf / split_node / insert_new_root).
//
// Unlike btrfs, which splits full internal nodes on the way down, this plans
// the whole split first (how many pieces the leaf becomes, which ancestors
// overflow), allocates every new node it needs, and only then moves items.
// A failed allocation therefore leaves the tree exactly as it was.
#include <algorithm>
#include <array>
#include <iterator>
#include <string>
#include <vector>

#include "store/btree.h"

namespace ecfs::store {

using btree_detail::leaf_item_cost;
using btree_detail::TreePath;

namespace {

// Where an overflowing leaf is cut: 1 cut (two leaves) or 2 (three).
struct LeafCuts {
  size_t count = 0;
  std::array<size_t, 2> at{};
};

// `prefix[i]` is the payload of the first i items of the leaf as it will be
// (the new or replacing item at `slot`). Every item fits a leaf alone, and
// the items before and after `slot` fit together (they were one leaf).
LeafCuts plan_leaf_cuts(const std::vector<size_t>& prefix, size_t slot, bool replace,
                        size_t capacity) {
  const size_t n = prefix.size() - 1;
  const size_t total = prefix[n];
  // Appending after the last item, or before the first, is how sequential
  // keys arrive: leave the old leaf full and start a new one (btrfs does
  // the same in split_leaf), instead of leaving two half-empty leaves.
  if (!replace && slot == n - 1) return {1, {slot, 0}};
  if (!replace && slot == 0) return {1, {1, 0}};
  // Otherwise the most even two-way cut, if one fits: minimising the larger
  // side finds a fitting cut whenever one exists.
  size_t best = 1;
  size_t best_larger = SIZE_MAX;
  for (size_t cut = 1; cut < n; ++cut) {
    size_t larger = std::max(prefix[cut], total - prefix[cut]);
    if (larger < best_larger) {
      best = cut;
      best_larger = larger;
    }
  }
  if (best_larger <= capacity) return {1, {best, 0}};
  // No two-way cut fits: the item is too big to join either neighbour
  // (btrfs split_leaf's "split twice"). It gets a leaf of its own; a fitting
  // two-way cut would exist if it were first or last, so both sides are
  // non-empty.
  return {2, {slot, slot + 1}};
}

KeyPtr pointer_to(const Node& node) {
  return KeyPtr{node.first_key(), node.bytenr, node.generation};
}

}  // namespace

Status BTree::split_and_write(TreePath& path, const Key& key, ByteSpan data, bool replace) {
  const uint32_t node_size = store_->node_size();
  const size_t capacity = node_payload_size(node_size);
  const size_t max_pointers = max_children(node_size);
  const int root_level = path.root_level;
  Node& leaf = *path.at[0].node;
  const size_t slot = path.at[0].slot;

  // Plan: the leaf's cuts, from the item sizes as they will be.
  const size_t count = leaf.items.size() + (replace ? 0 : 1);
  std::vector<size_t> prefix(count + 1, 0);
  for (size_t i = 0, old = 0; i < count; ++i) {
    size_t cost;
    if (i == slot) {
      cost = leaf_item_cost(data.size());
      if (replace) ++old;
    } else {
      cost = leaf_item_cost(leaf.items[old++].data.size());
    }
    prefix[i + 1] = prefix[i] + cost;
  }
  const LeafCuts cuts = plan_leaf_cuts(prefix, slot, replace, capacity);

  // Plan: which ancestors overflow, and whether the root splits.
  std::array<uint8_t, kMaxTreeLevel + 3> new_node_levels{};
  size_t new_nodes = 0;
  for (size_t i = 0; i < cuts.count; ++i) new_node_levels[new_nodes++] = 0;
  size_t incoming = cuts.count;
  for (int level = 1; level <= root_level && incoming > 0; ++level) {
    if (path.at[level].node->children.size() + incoming <= max_pointers) {
      incoming = 0;
    } else {
      new_node_levels[new_nodes++] = static_cast<uint8_t>(level);
      incoming = 1;
    }
  }
  if (incoming > 0) {
    if (root_level + 1 >= kMaxTreeLevel) {
      return fail(EFBIG, "tree would grow beyond " + std::to_string(kMaxTreeLevel) + " levels");
    }
    new_node_levels[new_nodes++] = static_cast<uint8_t>(root_level + 1);
  }

  // Obtain every new node before touching anything.
  std::array<NodeRef, kMaxTreeLevel + 3> fresh;
  for (size_t i = 0; i < new_nodes; ++i) {
    auto node = store_->allocate_node(new_node_levels[i], owner_);
    if (!node) {
      // Give back what was allocated; the tree does not reference it. The
      // allocation error is the one to report.
      for (size_t j = 0; j < i; ++j) (void)store_->free_node(fresh[j]);
      return std::unexpected(std::move(node).error());
    }
    fresh[i] = std::move(*node);
  }
  size_t next_fresh = 0;

  // Apply: put the item in place, then cut the leaf.
  if (replace) {
    leaf.items[slot].data.assign(data.begin(), data.end());
  } else {
    leaf.items.insert(leaf.items.begin() + static_cast<ptrdiff_t>(slot),
                      LeafItem{key, Bytes(data.begin(), data.end())});
  }
  std::array<KeyPtr, 2> pending;
  size_t pending_count = 0;
  {
    const std::array<size_t, 3> bounds{cuts.at[0], cuts.count > 1 ? cuts.at[1] : count, count};
    for (size_t part = 0; part < cuts.count; ++part) {
      Node& piece = *fresh[next_fresh++];
      auto begin = leaf.items.begin() + static_cast<ptrdiff_t>(bounds[part]);
      auto end = leaf.items.begin() + static_cast<ptrdiff_t>(bounds[part + 1]);
      piece.items.assign(std::make_move_iterator(begin), std::make_move_iterator(end));
      pending[pending_count++] = pointer_to(piece);
    }
    leaf.items.erase(leaf.items.begin() + static_cast<ptrdiff_t>(cuts.at[0]), leaf.items.end());
  }
  // The leaf keeps the first piece, so its first key changes only if the new
  // item went in front.
  bool first_key_changed = !replace && slot == 0;

  // Apply: hand the new pieces to the parent, splitting it if it overflows,
  // and so on up; fix parent keys on the way.
  for (int level = 1; level <= root_level && (pending_count > 0 || first_key_changed); ++level) {
    Node& node = *path.at[level].node;
    const size_t child = path.at[level].slot;
    bool changed_here = false;
    if (first_key_changed) {
      node.children[child].key = path.at[level - 1].node->first_key();
      changed_here = child == 0;
    }
    if (pending_count > 0) {
      const size_t old_count = node.children.size();
      node.children.insert(node.children.begin() + static_cast<ptrdiff_t>(child + 1),
                           pending.begin(),
                           pending.begin() + static_cast<ptrdiff_t>(pending_count));
      pending_count = 0;
      if (node.children.size() > max_pointers) {
        // As for leaves, pointers appended after all old ones start a new
        // node, which takes one old pointer too if it would otherwise have a
        // single child: a lone child has no sibling to merge with, so an
        // emptied leaf there could not go away.
        const size_t cut =
            child + 1 == old_count ? node.children.size() - 2 : node.children.size() / 2;
        Node& right = *fresh[next_fresh++];
        auto begin = node.children.begin() + static_cast<ptrdiff_t>(cut);
        right.children.assign(begin, node.children.end());
        node.children.erase(begin, node.children.end());
        pending[pending_count++] = pointer_to(right);
      }
    }
    first_key_changed = changed_here;
  }

  // Apply: a root that split gets a new parent (btrfs insert_new_root).
  if (pending_count > 0) {
    const Node& old_root = *path.at[root_level].node;
    Node& new_root = *fresh[next_fresh++];
    new_root.children.reserve(1 + pending_count);
    new_root.children.push_back(pointer_to(old_root));
    new_root.children.insert(new_root.children.end(), pending.begin(),
                             pending.begin() + static_cast<ptrdiff_t>(pending_count));
    root_ = RootRef{new_root.bytenr, new_root.generation, new_root.level};
  }
  return ok();
}

}  // namespace ecfs::store
