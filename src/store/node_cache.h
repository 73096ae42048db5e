// NodeCache: clean tree nodes decoded from disk, bounded by a count with
// least-recently-used eviction, so that hot nodes (roots, upper levels) are
// decoded and checksummed once. Cached nodes are immutable and shared with
// readers through NodeRef. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>

#include "store/node_store.h"

namespace ecfs::store {

class NodeCache {
 public:
  explicit NodeCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // The cached node at `bytenr` (now the most recently used), or null.
  NodeRef get(uint64_t bytenr);
  // Caches `node` under node->bytenr, replacing an older node at that address.
  void put(NodeRef node);
  void erase(uint64_t bytenr);
  void clear();
  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  size_t capacity_;
  std::list<NodeRef> lru_;  // most recently used first
  std::unordered_map<uint64_t, std::list<NodeRef>::iterator> index_;
};

}  // namespace ecfs::store
