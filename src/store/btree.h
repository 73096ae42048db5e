// BTree: a copy-on-write B+tree of (Key -> bytes) items in fixed-size nodes
// (format.h), after btrfs and Rodeh's "B-trees, Shadowing, and Clones".
// Every change shadows the path from the root to the leaf through
// NodeStore::cow_node, so the previous version of the tree stays intact on
// disk until the transaction that replaced it is committed.
//
// Shape (btrfs ctree.c): items live in leaves only; an internal node's key for
// a child is that child's first key. A leaf or internal node that would
// outgrow node_size by encoded size splits (a leaf in two or, when a large
// item fits beside neither half, in three: the item gets a leaf of its own);
// a root that splits grows the tree by one level. A node left less than a
// quarter full by a removal borrows from or merges with a sibling under the
// same parent; a root left with one child is replaced by that child. An empty
// tree is one empty leaf.
//
// Errors. Lookups change nothing. A change first searches without changing
// anything (so EEXIST, ENOENT and EOVERFLOW leave the tree untouched), then
// cows the path, then obtains every other node it will need (new nodes for
// splits, cowed siblings for rebalancing) and only then rearranges items,
// which cannot fail. So when the store fails (EIO, ENOSPC):
//  - insert / update / put: the tree holds exactly its old contents;
//  - remove: the same, except when NodeStore::free_node fails at the very
//    end, in which case the item is removed and the error still returned;
// and in every case the tree is a valid tree (check_invariants passes) whose
// root() may have moved (part of the path may already be cowed). The store
// may hold blocks the tree no longer needs (a failed free), so after EIO the
// caller must abort the transaction; after ENOSPC it may carry on (e.g.
// after freeing space) or abort.
//
// After any change, whether it succeeded or not, the caller must store the
// new root() where the tree's root is kept (root tree / superblock) before
// the transaction commits: the root moves whenever the root node is cowed,
// split or shrunk.
//
// A BTree object is a handle (store, owner, root); copies share nothing, so
// after one copy changes the tree the others hold a stale root.
// Not thread-safe; a tree is changed by one transaction writer at a time, and
// nothing may read it (cursor, for_each) while it changes.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "base/bytes.h"
#include "base/error.h"
#include "store/btree_cursor.h"
#include "store/btree_path.h"
#include "store/node_store.h"
#include "store/root_ref.h"

namespace ecfs::store {

class BTree {
 public:
  // A new empty tree (one empty leaf) owned by `owner`.
  static Result<BTree> create(NodeStore& store, uint64_t owner);
  // An existing tree.
  BTree(NodeStore& store, uint64_t owner, RootRef root);

  uint64_t owner() const { return owner_; }
  RootRef root() const { return root_; }
  NodeStore& store() const { return *store_; }

  // The data of `key`, or nullopt.
  Result<std::optional<Bytes>> find(const Key& key) const;
  // The first item with key >= `key`, or nullopt.
  Result<std::optional<LeafItem>> lower_bound(const Key& key) const;
  // The last item with key <= `key`, or nullopt.
  Result<std::optional<LeafItem>> upper_floor(const Key& key) const;

  // EEXIST if present. EOVERFLOW if data exceeds max_item_data_size.
  Status insert(const Key& key, ByteSpan data);
  // ENOENT if absent. EOVERFLOW if data exceeds max_item_data_size.
  Status update(const Key& key, ByteSpan data);
  // Insert or replace. EOVERFLOW if data exceeds max_item_data_size.
  Status put(const Key& key, ByteSpan data);
  // ENOENT if absent.
  Status remove(const Key& key);

  // Visits items with first <= key <= last in key order until `visit`
  // returns false. The tree must not be changed during the visit.
  Status for_each(const Key& first, const Key& last,
                  const std::function<bool(const Key&, ByteSpan)>& visit) const;

  // A cursor over the tree as it is now (see BTreeCursor for its lifetime).
  BTreeCursor cursor() const { return BTreeCursor(*store_, root_); }

  // Visits every node, each parent before its children and children in key
  // order, until `visit` returns false: for fsck, space accounting and
  // `ecfs inspect`.
  Status for_each_node(const std::function<bool(const Node&)>& visit) const;

  // Every structural invariant: keys sorted and unique within and across
  // nodes, each parent key equal to its child's first key, all leaves at the
  // same depth, levels decreasing by one, nodes fit their size, no empty
  // node except an empty root leaf, pointer generations match (and no child
  // is newer than its parent or the running transaction). EUCLEAN with a
  // description of the first violation; the store's error if a read fails.
  Status check_invariants() const;

 private:
  enum class WriteMode { kInsert, kUpdate, kPut };
  Status write_item(const Key& key, ByteSpan data, WriteMode mode);

  // Makes every node of `path` writable, top down, pointing each parent (or
  // root_) at its child's new copy. Stops at the first failure with the tree
  // valid and unchanged in content.
  Status cow_path(btree_detail::TreePath& path);
  // Replaces the item at (or inserts it before) path.at[0].slot when it
  // does not fit in the leaf: splits the leaf and as many ancestors as
  // needed, growing the root if it splits. REQUIRES: the path is cowed.
  Status split_and_write(btree_detail::TreePath& path, const Key& key, ByteSpan data, bool replace);
  // After the first key of path.at[level].node changed, updates the keys
  // that name it in its ancestors.
  static void propagate_first_key(btree_detail::TreePath& path, int level);

  NodeStore* store_;
  uint64_t owner_;
  RootRef root_;
};

}  // namespace ecfs::store
