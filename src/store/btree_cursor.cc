#include "store/btree_cursor.h"

#include <string>

namespace ecfs::store {

using btree_detail::descend;
using btree_detail::leaf_upper_bound;
using btree_detail::read_child;

Status BTreeCursor::fail_and_invalidate(Error error) {
  valid_ = false;
  return std::unexpected(std::move(error));
}

Status BTreeCursor::seek(const Key& key) {
  valid_ = false;
  if (auto found = descend(*store_, root_, key, path_); !found) {
    return fail_and_invalidate(std::move(found).error());
  }
  if (path_.at[0].slot < leaf().items.size()) {
    valid_ = true;
    return ok();
  }
  return next_leaf();
}

Status BTreeCursor::seek_at_or_before(const Key& key) {
  valid_ = false;
  if (auto found = descend(*store_, root_, key, path_); !found) {
    return fail_and_invalidate(std::move(found).error());
  }
  // descend() leaves the lower bound; the item before the upper bound is the
  // last one <= key.
  size_t after = leaf_upper_bound(leaf(), key);
  if (after > 0) {
    path_.at[0].slot = after - 1;
    valid_ = true;
    return ok();
  }
  return prev_leaf();
}

Status BTreeCursor::next() {
  if (++path_.at[0].slot < leaf().items.size()) return ok();
  return next_leaf();
}

Status BTreeCursor::prev() {
  if (path_.at[0].slot > 0) {
    --path_.at[0].slot;
    return ok();
  }
  return prev_leaf();
}

Status BTreeCursor::next_leaf() {
  valid_ = false;
  // A valid tree has no empty leaf below the root, but a corrupt one might:
  // keep climbing until an item turns up or the tree ends.
  for (;;) {
    int level = 1;
    while (level <= path_.root_level &&
           path_.at[level].slot + 1 >= path_.at[level].node->children.size()) {
      ++level;
    }
    if (level > path_.root_level) return ok();  // past the last item
    ++path_.at[level].slot;
    for (; level > 0; --level) {
      auto child = read_child(*store_, *path_.at[level].node, path_.at[level].slot);
      if (!child) return fail_and_invalidate(std::move(child).error());
      if (level > 1 && (*child)->children.empty()) {
        return fail_and_invalidate(
            Error(EUCLEAN, "internal node " + std::to_string((*child)->bytenr) + " is empty"));
      }
      path_.at[level - 1] = {std::move(*child), 0};
    }
    if (!leaf().items.empty()) {
      valid_ = true;
      return ok();
    }
  }
}

Status BTreeCursor::prev_leaf() {
  valid_ = false;
  for (;;) {
    int level = 1;
    while (level <= path_.root_level && path_.at[level].slot == 0) ++level;
    if (level > path_.root_level) return ok();  // before the first item
    --path_.at[level].slot;
    for (; level > 0; --level) {
      auto child = read_child(*store_, *path_.at[level].node, path_.at[level].slot);
      if (!child) return fail_and_invalidate(std::move(child).error());
      const Node& node = **child;
      size_t last = node.is_leaf() ? node.items.size() : node.children.size();
      path_.at[level - 1] = {std::move(*child), last == 0 ? 0 : last - 1};
      if (last == 0 && level > 1) {
        return fail_and_invalidate(
            Error(EUCLEAN, "internal node " + std::to_string(node.bytenr) + " is empty"));
      }
    }
    if (!leaf().items.empty()) {
      valid_ = true;
      return ok();
    }
  }
}

}  // namespace ecfs::store
