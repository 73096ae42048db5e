// NodeStore: where a BTree's nodes come from and go to. The transaction
// layer implements it over the device (allocation, caching, reference counts
// for clones, writing at commit); tests implement it in memory.
//
// Copy-on-write contract: a node obtained from read_node() is immutable. To
// change it, the tree calls cow_node(), which returns a node that is
// writable (the same node if it is already writable; otherwise a copy at a
// new block address). The tree then points the parent at the returned node's
// bytenr. Reference counts of shared nodes (clones, Rodeh 2008) are the
// store's business: when it copies a node that other trees also reference,
// it gives each of the node's children one more reference.
//
// Writability lasts until the transaction ends or the store shares the node
// with another tree (a clone taken in the same transaction, or the node's
// parent copied while shared): then is_writable() turns false and the next
// change must go through cow_node() again. So a tree asks is_writable() at
// the start of every change and never caches the answer across changes.
// Not thread-safe: one transaction writer at a time.
#pragma once

#include <cstdint>
#include <memory>

#include "base/error.h"
#include "store/node.h"

namespace ecfs::store {

using NodeRef = std::shared_ptr<Node>;

class NodeStore {
 public:
  virtual ~NodeStore() = default;

  virtual uint32_t node_size() const = 0;
  // The generation of the running transaction.
  virtual uint64_t generation() const = 0;

  // Reads the node a parent pointer (or a root reference) names; the node's
  // generation and level must match (EIO otherwise).
  virtual Result<NodeRef> read_node(uint64_t bytenr, uint64_t generation, uint8_t level) = 0;
  // True when `node` may be changed in place: it was allocated or cowed in
  // the running transaction and has not been shared since (see above).
  virtual bool is_writable(const Node& node) const = 0;
  // A writable version of `node` for tree `owner` (see the contract above).
  // ENOSPC when no block is free.
  virtual Result<NodeRef> cow_node(const NodeRef& node, uint64_t owner) = 0;
  // A new empty writable node. ENOSPC when no block is free.
  virtual Result<NodeRef> allocate_node(uint8_t level, uint64_t owner) = 0;
  // The tree no longer references `node` (merged away, or an old root).
  // REQUIRES: is_writable(*node); its children, if any, were moved elsewhere.
  virtual Status free_node(const NodeRef& node) = 0;
};

}  // namespace ecfs::store
