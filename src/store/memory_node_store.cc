#include "store/memory_node_store.h"

#include <string>
#include <utility>

namespace ecfs::store {

class MemoryNodeStore::HistoryView final : public NodeStore {
 public:
  explicit HistoryView(MemoryNodeStore& store) : store_(store) {}

  uint32_t node_size() const override { return store_.node_size(); }
  uint64_t generation() const override { return store_.generation(); }
  Result<NodeRef> read_node(uint64_t bytenr, uint64_t generation, uint8_t level) override {
    return store_.read(bytenr, generation, level, /*allow_dead=*/true);
  }
  bool is_writable(const Node&) const override { return false; }
  Result<NodeRef> cow_node(const NodeRef&, uint64_t) override { return read_only(); }
  Result<NodeRef> allocate_node(uint8_t, uint64_t) override { return read_only(); }
  Status free_node(const NodeRef&) override { return read_only(); }

 private:
  static std::unexpected<Error> read_only() {
    return fail(EROFS, "the history view of a memory node store is read-only");
  }

  MemoryNodeStore& store_;
};

MemoryNodeStore::MemoryNodeStore(uint32_t node_size, uint64_t generation)
    : node_size_(node_size), generation_(generation) {}

MemoryNodeStore::~MemoryNodeStore() = default;

MemoryNodeStore::Entry* MemoryNodeStore::entry_at(uint64_t bytenr) {
  return const_cast<Entry*>(std::as_const(*this).entry_at(bytenr));
}

const MemoryNodeStore::Entry* MemoryNodeStore::entry_at(uint64_t bytenr) const {
  if (bytenr < kFirstBytenr || (bytenr - kFirstBytenr) % node_size_ != 0) return nullptr;
  const uint64_t index = (bytenr - kFirstBytenr) / node_size_;
  if (index >= entries_.size() || !entries_[index].node) return nullptr;
  return &entries_[index];
}

Result<NodeRef> MemoryNodeStore::read(uint64_t bytenr, uint64_t generation, uint8_t level,
                                      bool allow_dead) {
  ++counters_.reads;
  const Entry* entry = entry_at(bytenr);
  if (entry == nullptr) return fail(EIO, "no node at " + std::to_string(bytenr));
  if (entry->state != State::kLive && !allow_dead) {
    return fail(EIO, "node " + std::to_string(bytenr) +
                         (entry->state == State::kFreed ? " was freed" : " was cowed away"));
  }
  const Node& node = *entry->node;
  if (node.generation != generation || node.level != level) {
    return fail(EIO, "node " + std::to_string(bytenr) + " has generation " +
                         std::to_string(node.generation) + " level " + std::to_string(node.level) +
                         ", expected generation " + std::to_string(generation) + " level " +
                         std::to_string(level));
  }
  return entry->node;
}

Result<NodeRef> MemoryNodeStore::read_node(uint64_t bytenr, uint64_t generation, uint8_t level) {
  return read(bytenr, generation, level, /*allow_dead=*/false);
}

bool MemoryNodeStore::is_writable(const Node& node) const {
  if (node.generation != generation_) return false;
  const Entry* entry = entry_at(node.bytenr);
  return entry != nullptr && entry->node.get() == &node && entry->state == State::kLive;
}

NodeRef MemoryNodeStore::add(Node node) {
  node.bytenr = kFirstBytenr + entries_.size() * uint64_t{node_size_};
  node.generation = generation_;
  entries_.push_back(Entry{std::make_shared<Node>(std::move(node)), State::kLive});
  ++live_count_;
  ++stored_count_;
  return entries_.back().node;
}

Result<NodeRef> MemoryNodeStore::cow_node(const NodeRef& node, uint64_t owner) {
  if (is_writable(*node)) return node;
  Entry* entry = entry_at(node->bytenr);
  if (entry == nullptr || entry->node != node || entry->state != State::kLive) {
    return fail(EINVAL, "cow of node " + std::to_string(node->bytenr) +
                            ", which is not a live node of this store");
  }
  ++counters_.copies;
  entry->state = State::kCowedAway;
  --live_count_;
  Node copy = *node;
  copy.owner = owner;
  // `entry` is invalid once add() grows the vector.
  return add(std::move(copy));
}

Result<NodeRef> MemoryNodeStore::allocate_node(uint8_t level, uint64_t owner) {
  if (level >= kMaxTreeLevel) return fail(EINVAL, "node level " + std::to_string(level));
  ++counters_.allocations;
  Node node;
  node.owner = owner;
  node.level = level;
  return add(std::move(node));
}

Status MemoryNodeStore::free_node(const NodeRef& node) {
  if (!is_writable(*node)) {
    return fail(EINVAL, "free of node " + std::to_string(node->bytenr) +
                            ", which is not writable in this transaction");
  }
  ++counters_.frees;
  entry_at(node->bytenr)->state = State::kFreed;
  --live_count_;
  return ok();
}

void MemoryNodeStore::forget_dead_nodes() {
  for (Entry& entry : entries_) {
    if (entry.node && entry.state != State::kLive) {
      entry.node.reset();
      --stored_count_;
    }
  }
}

NodeStore& MemoryNodeStore::history() {
  if (!history_) history_ = std::make_unique<HistoryView>(*this);
  return *history_;
}

}  // namespace ecfs::store
