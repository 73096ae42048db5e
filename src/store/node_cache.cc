#include "store/node_cache.h"

namespace ecfs::store {

NodeRef NodeCache::get(uint64_t bytenr) {
  auto it = index_.find(bytenr);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return *it->second;
}

void NodeCache::put(NodeRef node) {
  const uint64_t bytenr = node->bytenr;
  if (auto it = index_.find(bytenr); it != index_.end()) {
    *it->second = std::move(node);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(std::move(node));
  index_[bytenr] = lru_.begin();
  while (index_.size() > capacity_) {
    index_.erase(lru_.back()->bytenr);
    lru_.pop_back();
  }
}

void NodeCache::erase(uint64_t bytenr) {
  if (auto it = index_.find(bytenr); it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
}

void NodeCache::clear() {
  lru_.clear();
  index_.clear();
}

}  // namespace ecfs::store
