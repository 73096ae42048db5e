// MemoryNodeStore: a NodeStore held in memory, for tests and model checks of
// the B-tree and of anything built on it.
//
// Nodes get increasing block addresses and are never encoded. Transactions:
// begin_transaction() starts the next generation, after which every existing
// node is read-only and cow_node() copies it to a new address. The store
// keeps every version that the current trees no longer reference (a node
// cowed away or freed) until forget_dead_nodes(), and history() reads them,
// so a test can check that a root saved earlier still reads exactly its old
// contents, i.e. that copy-on-write really preserved the previous version.
//
// It is strict where a tree bug would otherwise go unnoticed: reading a dead
// node through the store itself is EIO (a tree still pointing at a version it
// replaced), as are wrong generations or levels; cowing a dead node or
// freeing a read-only one is EINVAL.
//
// It does not count references: every node belongs to exactly one tree.
// Clones (Rodeh 2008) are the real store's business.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "store/format.h"
#include "store/node_store.h"

namespace ecfs::store {

class MemoryNodeStore final : public NodeStore {
 public:
  // The first node's address (nothing lives at 0, as on a real image).
  static constexpr uint64_t kFirstBytenr = 1 << 20;

  // REQUIRES: node_size a power of two in [kMinNodeSize, kMaxNodeSize].
  explicit MemoryNodeStore(uint32_t node_size = kDefaultNodeSize, uint64_t generation = 1);
  MemoryNodeStore(const MemoryNodeStore&) = delete;
  MemoryNodeStore& operator=(const MemoryNodeStore&) = delete;
  ~MemoryNodeStore() override;

  uint32_t node_size() const override { return node_size_; }
  uint64_t generation() const override { return generation_; }
  Result<NodeRef> read_node(uint64_t bytenr, uint64_t generation, uint8_t level) override;
  bool is_writable(const Node& node) const override;
  Result<NodeRef> cow_node(const NodeRef& node, uint64_t owner) override;
  Result<NodeRef> allocate_node(uint8_t level, uint64_t owner) override;
  Status free_node(const NodeRef& node) override;

  // Starts the next transaction: every node existing now becomes read-only.
  void begin_transaction() { ++generation_; }
  // Drops every dead version (cowed away or freed); roots saved before
  // become unreadable.
  void forget_dead_nodes();
  // A read-only view of this store that also reads dead versions not yet
  // forgotten, for reading a tree at an old root. Its cow, allocate and free
  // fail with EROFS.
  NodeStore& history();

  // Nodes some tree references (allocated or cowed, and not since freed or
  // cowed away).
  size_t live_node_count() const { return live_count_; }
  // Live and dead nodes held.
  size_t stored_node_count() const { return stored_count_; }

  struct Counters {
    uint64_t reads = 0;
    uint64_t copies = 0;  // cow_node calls that copied
    uint64_t allocations = 0;
    uint64_t frees = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  enum class State : uint8_t { kLive, kCowedAway, kFreed };
  struct Entry {
    NodeRef node;  // null once forgotten (or never used)
    State state = State::kLive;
  };
  class HistoryView;

  Entry* entry_at(uint64_t bytenr);
  const Entry* entry_at(uint64_t bytenr) const;
  Result<NodeRef> read(uint64_t bytenr, uint64_t generation, uint8_t level, bool allow_dead);
  NodeRef add(Node node);

  uint32_t node_size_;
  uint64_t generation_;
  std::vector<Entry> entries_;  // entries_[i] lives at kFirstBytenr + i * node_size_
  size_t live_count_ = 0;
  size_t stored_count_ = 0;
  Counters counters_;
  std::unique_ptr<HistoryView> history_;
};

}  // namespace ecfs::store
