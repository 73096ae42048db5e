// Removal with rebalancing (btrfs ctree.c btrfs_del_items, balance_level,
// push_leaf_left/right, push_node_left). A node left less than a quarter
// full merges with a sibling under the same parent if both fit in one node,
// and otherwise borrows entries from it until the two are about even. A
// merge removes a pointer from the parent, which may leave the parent under
// a quarter full in turn; a root left with one child is replaced by it.
//
// As for splits, the fallible part (reading and cowing siblings) is done for
// every level before anything moves, so a failed read or cow leaves the
// contents as they were. Freeing merged-away nodes comes last.
#include <algorithm>
#include <array>
#include <iterator>
#include <vector>

#include "store/btree.h"

namespace ecfs::store {

using btree_detail::leaf_item_cost;
using btree_detail::payload_used;
using btree_detail::read_child;
using btree_detail::TreePath;

namespace {

enum class Rebalance {
  kNone,
  kMergeIntoLeft,    // the node moves its entries into its left sibling and goes
  kAbsorbRight,      // the node takes all of its right sibling, which goes
  kBorrowFromLeft,   // the node takes the left sibling's last entries
  kBorrowFromRight,  // the node takes the right sibling's first entries
};

struct LevelPlan {
  Rebalance action = Rebalance::kNone;
  size_t borrow_count = 0;  // entries a borrow moves
  NodeRef sibling;          // writable
};

size_t entry_cost(const LeafItem& item) { return leaf_item_cost(item.data.size()); }
size_t entry_cost(const KeyPtr&) { return kKeyPtrSize; }

// How many entries to move from one end of a donor (entries from `first`
// on) so that the recipient does not end up larger than the donor: each move
// must keep recipient <= donor. Never empties the donor.
template <typename Iterator>
size_t entries_to_borrow(size_t recipient_used, size_t donor_used, Iterator first,
                         size_t donor_count) {
  size_t moved = 0;
  for (Iterator it = first; moved + 1 < donor_count; ++it) {
    const size_t cost = entry_cost(*it);
    if (recipient_used + cost > donor_used - cost) break;
    recipient_used += cost;
    donor_used -= cost;
    ++moved;
  }
  return moved;
}

size_t entries_to_borrow(const Node& donor, bool from_left, size_t recipient_used) {
  const size_t donor_used = payload_used(donor);
  if (donor.is_leaf()) {
    return from_left ? entries_to_borrow(recipient_used, donor_used, donor.items.rbegin(),
                                         donor.items.size())
                     : entries_to_borrow(recipient_used, donor_used, donor.items.begin(),
                                         donor.items.size());
  }
  return from_left ? entries_to_borrow(recipient_used, donor_used, donor.children.rbegin(),
                                       donor.children.size())
                   : entries_to_borrow(recipient_used, donor_used, donor.children.begin(),
                                       donor.children.size());
}

// Moves all of `from` to the end of `to`.
template <typename Entry>
void append_all(std::vector<Entry>& to, std::vector<Entry>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  from.clear();
}

// Moves the last `count` entries of `left` to the front of `node`.
template <typename Entry>
void borrow_from_left(std::vector<Entry>& node, std::vector<Entry>& left, size_t count) {
  auto begin = left.end() - static_cast<ptrdiff_t>(count);
  node.insert(node.begin(), std::make_move_iterator(begin), std::make_move_iterator(left.end()));
  left.erase(begin, left.end());
}

// Moves the first `count` entries of `right` to the end of `node`.
template <typename Entry>
void borrow_from_right(std::vector<Entry>& node, std::vector<Entry>& right, size_t count) {
  auto end = right.begin() + static_cast<ptrdiff_t>(count);
  node.insert(node.end(), std::make_move_iterator(right.begin()), std::make_move_iterator(end));
  right.erase(right.begin(), end);
}

// Sets the key of child `slot`; true if it changed.
bool set_child_key(Node& parent, size_t slot, const Node& child) {
  if (child.item_count() == 0) return false;
  Key& key = parent.children[slot].key;
  if (key == child.first_key()) return false;
  key = child.first_key();
  return true;
}

// Moves entries between `node` and its sibling as `step` says.
void rebalance(Node& node, const LevelPlan& step) {
  if (step.action == Rebalance::kNone) return;
  Node& sibling = *step.sibling;
  switch (step.action) {
    case Rebalance::kNone:
      return;
    case Rebalance::kMergeIntoLeft:
    case Rebalance::kAbsorbRight: {
      Node& to = step.action == Rebalance::kMergeIntoLeft ? sibling : node;
      Node& from = step.action == Rebalance::kMergeIntoLeft ? node : sibling;
      if (node.is_leaf()) {
        append_all(to.items, from.items);
      } else {
        append_all(to.children, from.children);
      }
      return;
    }
    case Rebalance::kBorrowFromLeft:
      if (node.is_leaf()) {
        borrow_from_left(node.items, sibling.items, step.borrow_count);
      } else {
        borrow_from_left(node.children, sibling.children, step.borrow_count);
      }
      return;
    case Rebalance::kBorrowFromRight:
      if (node.is_leaf()) {
        borrow_from_right(node.items, sibling.items, step.borrow_count);
      } else {
        borrow_from_right(node.children, sibling.children, step.borrow_count);
      }
      return;
  }
}

}  // namespace

Status BTree::remove(const Key& key) {
  TreePath path;
  ECFS_TRY(btree_detail::descend(*store_, root_, key, path));
  {
    const Node& leaf = *path.at[0].node;
    const size_t slot = path.at[0].slot;
    if (slot == leaf.items.size() || leaf.items[slot].key != key) {
      return fail(ENOENT, "key not present");
    }
  }
  ECFS_TRY(cow_path(path));

  const int root_level = path.root_level;
  const size_t capacity = node_payload_size(store_->node_size());
  const size_t underfull = capacity / 4;
  const size_t slot = path.at[0].slot;

  // Plan, bottom up: which levels end up under a quarter full, and with
  // which (cowed) sibling each rebalances. A borrow leaves the parent's
  // pointer count as it is, so planning stops there; a merge takes one away.
  std::array<LevelPlan, kMaxTreeLevel> plan;
  size_t used =
      payload_used(*path.at[0].node) - leaf_item_cost(path.at[0].node->items[slot].data.size());
  for (int level = 0; level < root_level && used < underfull; ++level) {
    Node& parent = *path.at[level + 1].node;
    const size_t child = path.at[level + 1].slot;
    if (parent.children.size() < 2) break;  // no sibling (only in a damaged tree)
    const size_t sibling_slot = child > 0 ? child - 1 : child + 1;
    auto sibling = read_child(*store_, parent, sibling_slot);
    if (!sibling) return std::unexpected(std::move(sibling).error());
    const bool merge = used + payload_used(**sibling) <= capacity;
    const size_t borrow_count = merge ? 0 : entries_to_borrow(**sibling, child > 0, used);
    // A sibling that can give nothing (one large item) is left alone rather
    // than cowed for nothing; the node stays under a quarter full.
    if (!merge && borrow_count == 0) break;
    if (!store_->is_writable(**sibling)) {
      auto copy = store_->cow_node(*sibling, owner_);
      if (!copy) return std::unexpected(std::move(copy).error());
      sibling = std::move(copy);
      KeyPtr& ptr = parent.children[sibling_slot];
      ptr.bytenr = (*sibling)->bytenr;
      ptr.generation = (*sibling)->generation;
    }
    if (merge) {
      plan[level].action = child > 0 ? Rebalance::kMergeIntoLeft : Rebalance::kAbsorbRight;
    } else {
      plan[level].action = child > 0 ? Rebalance::kBorrowFromLeft : Rebalance::kBorrowFromRight;
    }
    plan[level].borrow_count = borrow_count;
    plan[level].sibling = std::move(*sibling);
    if (!merge) break;
    used = (parent.children.size() - 1) * kKeyPtrSize;
  }

  // Apply, bottom up. Nothing below can fail until the frees.
  std::array<NodeRef, kMaxTreeLevel + 1> to_free;
  size_t free_count = 0;
  path.at[0].node->items.erase(path.at[0].node->items.begin() + static_cast<ptrdiff_t>(slot));
  // Whether the first key of the node at `level` may differ from its key in
  // the parent.
  bool first_key_changed = slot == 0;
  for (int level = 0; level < root_level; ++level) {
    Node& node = *path.at[level].node;
    Node& parent = *path.at[level + 1].node;
    const size_t child = path.at[level + 1].slot;
    const LevelPlan& step = plan[level];
    bool parent_first_key_changed = false;
    rebalance(node, step);
    switch (step.action) {
      case Rebalance::kNone:
        if (first_key_changed)
          parent_first_key_changed = set_child_key(parent, child, node) && child == 0;
        break;
      case Rebalance::kMergeIntoLeft:  // child > 0: the parent's first key stays
        parent.children.erase(parent.children.begin() + static_cast<ptrdiff_t>(child));
        to_free[free_count++] = path.at[level].node;
        break;
      case Rebalance::kAbsorbRight:  // child == 0
        parent.children.erase(parent.children.begin() + 1);
        to_free[free_count++] = step.sibling;
        parent_first_key_changed = set_child_key(parent, 0, node);
        break;
      case Rebalance::kBorrowFromLeft:  // child > 0
        set_child_key(parent, child, node);
        break;
      case Rebalance::kBorrowFromRight:  // child == 0
        set_child_key(parent, 1, *step.sibling);
        parent_first_key_changed = set_child_key(parent, 0, node);
        break;
    }
    first_key_changed = parent_first_key_changed;
  }

  // A root left with one child hands the tree to it.
  if (root_level > 0 && path.at[root_level].node->children.size() == 1) {
    const LevelPlan& below = plan[root_level - 1];
    const NodeRef& heir =
        below.action == Rebalance::kMergeIntoLeft ? below.sibling : path.at[root_level - 1].node;
    root_ = RootRef{heir->bytenr, heir->generation, heir->level};
    path.at[root_level].node->children.clear();
    to_free[free_count++] = path.at[root_level].node;
  }

  for (size_t i = 0; i < free_count; ++i) ECFS_TRY(store_->free_node(to_free[i]));
  return ok();
}

}  // namespace ecfs::store
