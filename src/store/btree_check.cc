// BTree::check_invariants: a full walk that checks every structural rule of
// btree.h. Used by the tests after every transaction and meant for fsck.
#include <string>

#include "store/btree.h"

namespace ecfs::store {

using btree_detail::payload_used;
using btree_detail::read_child;
using btree_detail::read_root;

namespace {

std::string describe(const Key& key) {
  return "(" + std::to_string(key.objectid) + " " + std::to_string(key.type) + " " +
         std::to_string(key.offset) + ")";
}

class InvariantChecker {
 public:
  explicit InvariantChecker(NodeStore& store) : store_(store) {}

  // Checks the subtree of `node`, which its parent (or the root reference)
  // expects at `level`, written no later than `newest_generation`; its keys
  // must lie in [low, high) and, below the root, start with exactly `low`.
  Status check(const Node& node, uint8_t level, uint64_t newest_generation, const Key* low,
               const Key* high, bool is_root) {
    if (node.level != level) {
      return violation(
          node, "has level " + std::to_string(node.level) + ", expected " + std::to_string(level));
    }
    if (node.generation > newest_generation) {
      return violation(node, "has generation " + std::to_string(node.generation) +
                                 ", newer than its parent or the transaction (" +
                                 std::to_string(newest_generation) + ")");
    }
    const size_t encoded = node.encoded_size();
    if (encoded > store_.node_size()) {
      return violation(node, "needs " + std::to_string(encoded) +
                                 " bytes, more than the node size " +
                                 std::to_string(store_.node_size()));
    }
    if (encoded != kNodeHeaderSize + payload_used(node)) {
      return violation(node, "encoded size disagrees with the tree's space accounting");
    }
    if (node.is_leaf() ? !node.children.empty() : !node.items.empty()) {
      return violation(node, "holds both items and child pointers");
    }
    const size_t count = node.item_count();
    if (count == 0) {
      if (!is_root || !node.is_leaf()) return violation(node, "is empty");
      return ok();
    }
    if (!is_root && node.first_key() != *low) {
      return violation(node, "starts with " + describe(node.first_key()) +
                                 " but its parent names it " + describe(*low));
    }
    for (size_t i = 0; i < count; ++i) {
      const Key& key = node.is_leaf() ? node.items[i].key : node.children[i].key;
      if (i > 0) {
        const Key& previous = node.is_leaf() ? node.items[i - 1].key : node.children[i - 1].key;
        if (!(previous < key)) {
          return violation(node, "key " + describe(key) + " at slot " + std::to_string(i) +
                                     " does not follow " + describe(previous));
        }
      }
      if ((low != nullptr && key < *low) || (high != nullptr && !(key < *high))) {
        return violation(node, "key " + describe(key) + " lies outside its parent's range");
      }
    }
    if (node.is_leaf()) return ok();

    for (size_t i = 0; i < count; ++i) {
      const KeyPtr& ptr = node.children[i];
      auto child = read_child(store_, node, i);
      if (!child) return std::unexpected(std::move(child).error());
      const Node& child_node = **child;
      if (child_node.bytenr != ptr.bytenr || child_node.generation != ptr.generation) {
        return violation(node, "points at " + std::to_string(ptr.bytenr) + " generation " +
                                   std::to_string(ptr.generation) + " but read node " +
                                   std::to_string(child_node.bytenr) + " generation " +
                                   std::to_string(child_node.generation));
      }
      const Key* child_high = i + 1 < count ? &node.children[i + 1].key : high;
      ECFS_TRY(check(child_node, static_cast<uint8_t>(level - 1), node.generation, &ptr.key,
                     child_high, false));
    }
    return ok();
  }

 private:
  static Status violation(const Node& node, const std::string& what) {
    return fail(EUCLEAN, "tree node " + std::to_string(node.bytenr) + " (level " +
                             std::to_string(node.level) + ") " + what);
  }

  NodeStore& store_;
};

}  // namespace

Status BTree::check_invariants() const {
  auto root = read_root(*store_, root_);
  if (!root) return std::unexpected(std::move(root).error());
  const Node& node = **root;
  if (node.bytenr != root_.bytenr || node.generation != root_.generation) {
    return fail(EUCLEAN, "root reference names " + std::to_string(root_.bytenr) + " generation " +
                             std::to_string(root_.generation) + " but read node " +
                             std::to_string(node.bytenr) + " generation " +
                             std::to_string(node.generation));
  }
  InvariantChecker checker(*store_);
  return checker.check(node, root_.level, store_->generation(), nullptr, nullptr, true);
}

}  // namespace ecfs::store
