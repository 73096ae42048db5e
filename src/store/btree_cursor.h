// BTreeCursor: a position in a BTree for walking items in key order in
// either direction without copying them (btrfs's btrfs_next_item and
// btrfs_prev_item over a btrfs_path).
//
// A cursor reads the tree as it was when the cursor was made (it remembers
// the root) and holds references to the nodes on its path. Any change to the
// tree invalidates it: it then still reads memory safely, but may see the
// tree half old and half new. Not thread-safe.
#pragma once

#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"
#include "store/btree_path.h"
#include "store/node_store.h"
#include "store/root_ref.h"

namespace ecfs::store {

class BTreeCursor {
 public:
  // An unpositioned cursor (valid() is false) over the tree at `root`.
  BTreeCursor(NodeStore& store, RootRef root) : store_(&store), root_(root) {}

  // Positions at the first item with key >= `key`; not valid() if none.
  Status seek(const Key& key);
  // Positions at the last item with key <= `key`; not valid() if none.
  Status seek_at_or_before(const Key& key);
  Status seek_first() { return seek(Key::min()); }
  Status seek_last() { return seek_at_or_before(Key::max()); }

  // Steps to the following / preceding item; not valid() past either end.
  // REQUIRES: valid().
  Status next();
  Status prev();

  // True when positioned on an item. After an error the cursor is not valid.
  bool valid() const { return valid_; }
  // The current item. REQUIRES: valid(). The data view lives as long as the
  // cursor stays on this leaf and the tree is not changed.
  const Key& key() const { return leaf().items[path_.at[0].slot].key; }
  ByteSpan data() const { return leaf().items[path_.at[0].slot].data; }
  LeafItem item() const { return leaf().items[path_.at[0].slot]; }

 private:
  const Node& leaf() const { return *path_.at[0].node; }
  // Moves to the first item of the next leaf / the last item of the previous
  // leaf, climbing as far as needed; valid_ = false at the end of the tree.
  Status next_leaf();
  Status prev_leaf();
  Status fail_and_invalidate(Error error);

  NodeStore* store_;
  RootRef root_;
  btree_detail::TreePath path_;
  bool valid_ = false;
};

}  // namespace ecfs::store
