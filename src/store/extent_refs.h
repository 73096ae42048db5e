// Reference counting of extents: the delayed-reference queue of a running
// transaction and its application to the extent tree at commit.
//
// Every change to an extent's reference count (a node allocated, cowed,
// shared by a clone, freed; a data reference added or dropped) is first
// queued here and merged per extent; the extent tree is changed only at
// commit (btrfs "delayed refs", fs/btrfs/delayed-ref.c). The extent tree is
// itself a copy-on-write tree whose nodes have extent items, so applying the
// queue queues new changes; the commit loops until the queue stays empty,
// which happens because a node is cowed at most once per transaction.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "base/error.h"
#include "store/btree.h"
#include "store/items.h"
#include "store/space_allocator.h"

namespace ecfs::store {

// The pending changes to one extent.
struct DelayedRefHead {
  bool is_tree_block = false;
  // Allocated in the running transaction: it has no extent item yet, and if
  // its count nets to zero its space is simply released.
  bool created = false;
  uint8_t level = 0;                       // tree blocks
  uint64_t owner = 0;                      // tree blocks: the tree that wrote the node
  uint64_t length = 0;                     // bytes: the node size or the data extent's length
  int64_t delta = 0;                       // net change of the extent's reference count
  std::map<DataRef, int64_t> data_deltas;  // data extents, per referrer
};

class DelayedRefs {
 public:
  void add_tree_ref(uint64_t bytenr, uint8_t level, uint64_t owner, uint32_t node_size,
                    int64_t delta, bool created);
  // A data extent allocated in this transaction, not yet referenced.
  void add_data_extent(uint64_t bytenr, uint64_t length);
  void add_data_ref(uint64_t bytenr, uint64_t length, const DataRef& ref, int64_t delta);

  const DelayedRefHead* find(uint64_t bytenr) const;
  bool empty() const { return heads_.empty(); }
  size_t size() const { return heads_.size(); }
  // Removes and returns the head with the lowest bytenr. REQUIRES: !empty().
  std::pair<uint64_t, DelayedRefHead> pop_first();
  void clear() { heads_.clear(); }

 private:
  std::map<uint64_t, DelayedRefHead> heads_;
};

// The extent item of tree node `bytenr`, or nullopt.
Result<std::optional<ExtentItem>> find_tree_block_item(const BTree& extent_tree, uint64_t bytenr,
                                                       uint8_t level);
// The extent item of data extent `bytenr` and the extent's length, or nullopt.
Result<std::optional<std::pair<ExtentItem, uint64_t>>> find_data_extent_item(
    const BTree& extent_tree, uint64_t bytenr);
// The key and item of `ref` among the back references of data extent
// `bytenr`, or nullopt.
Result<std::optional<std::pair<Key, DataRefItem>>> find_data_ref_item(const BTree& extent_tree,
                                                                      uint64_t bytenr,
                                                                      const DataRef& ref);

// Applies `head` to the extent tree: creates, updates or deletes the extent
// item and data back references, and pins the extent's space in `allocator`
// when its count reaches zero. `generation` is the running transaction's.
// EUCLEAN when a count would go negative or an extent item is missing.
Status apply_delayed_ref_head(BTree& extent_tree, uint64_t bytenr, const DelayedRefHead& head,
                              uint64_t generation, SpaceAllocator& allocator);

}  // namespace ecfs::store
