// The free-space tree (tree 10, compat_ro kCompatRoFreeSpaceTree): one
// FREE_SPACE_EXTENT item per maximal unallocated range of the device, kept
// by every commit, so that a mount reads this tree (whose size follows the
// fragmentation of free space) instead of the whole extent tree (whose size
// follows the number of nodes and extents). docs/FORMAT.md "Free-space tree".
//
// What the tree records is the space free once the transaction commits: the
// free and the pinned ranges of the allocator together. A commit rewrites
// the items over each range the allocator saw change; rewriting cows the
// tree's own nodes, which changes more ranges, so the commit repeats this
// with the reference updates until nothing changes (engine.cc
// commit_transaction).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "store/engine.h"
#include "store/tree_ids.h"

namespace ecfs::store {
namespace {

Key free_space_key(uint64_t start, uint64_t length) {
  return Key{start, kFreeSpaceExtentKey, length};
}

std::string describe(const Key& key) {
  return "free-space item (" + std::to_string(key.objectid) + ", " +
         std::to_string(static_cast<unsigned>(key.type)) + ", " + std::to_string(key.offset) + ")";
}

// The items of a free-space tree as ranges, in key order. EUCLEAN for an
// item of another type, with data, or with an empty or wrapping range.
Result<std::vector<ByteRange>> read_ranges(const BTree& tree) {
  std::vector<ByteRange> ranges;
  Status status = ok();
  ECFS_TRY(tree.for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan data) {
    if (key.type != kFreeSpaceExtentKey || !data.empty() || key.offset == 0 ||
        key.objectid + key.offset < key.objectid) {
      status = fail(EUCLEAN, "the free-space tree holds a malformed " + describe(key));
      return false;
    }
    ranges.push_back({key.objectid, key.offset});
    return true;
  }));
  ECFS_TRY(status);
  return ranges;
}

}  // namespace

Status Engine::create_free_space_tree() {
  auto tree = add_empty_tree(kFreeSpaceTreeId);
  if (!tree) return std::unexpected(tree.error());
  // Every range is written by the commit that creates the tree.
  allocator_.mark_all_changed();
  pending_compat_ro_flags_ |= kCompatRoFreeSpaceTree;
  return ok();
}

Status Engine::update_free_space_tree(bool& changed) {
  const std::map<uint64_t, uint64_t> ranges = allocator_.take_changed();
  auto open = trees_.find(kFreeSpaceTreeId);
  if (open == trees_.end() || ranges.empty()) return ok();
  changed = true;
  BTree& tree = *open->second.tree;
  uint64_t done = 0;  // the tree matches the allocator below this address
  for (auto [start, end] : ranges) {
    uint64_t from = std::max(start, done);
    uint64_t to = end;
    if (from >= to) continue;
    // Widen [from, to) until no unallocated range and no item crosses its
    // edges: the items replaced are then exactly those starting inside it,
    // and what is written stays maximal next to what is kept.
    for (bool grew = true; grew;) {
      grew = false;
      if (from > 0) {
        if (auto run = allocator_.unallocated_around(from - 1); run && run->start < from) {
          from = run->start;
          grew = true;
        }
        auto before = tree.upper_floor(Key{from - 1, 255, UINT64_MAX});
        if (!before) return std::unexpected(before.error());
        if (*before && (*before)->key.objectid + (*before)->key.offset >= from &&
            (*before)->key.objectid < from) {
          from = (*before)->key.objectid;
          grew = true;
        }
      }
      if (auto run = allocator_.unallocated_around(to); run && run->end() > to) {
        to = run->end();
        grew = true;
      }
      ECFS_TRY(
          tree.for_each(Key{from, 0, 0}, Key{to, 255, UINT64_MAX}, [&](const Key& key, ByteSpan) {
            if (key.objectid + key.offset > to) {
              to = key.objectid + key.offset;
              grew = true;
            }
            return true;
          }));
    }
    std::vector<Key> stale;
    ECFS_TRY(
        tree.for_each(Key{from, 0, 0}, Key{to, 255, UINT64_MAX}, [&](const Key& key, ByteSpan) {
          stale.push_back(key);
          return true;
        }));
    for (const Key& key : stale) ECFS_TRY(tree.remove(key));
    for (const ByteRange& range : allocator_.unallocated_in(from, to)) {
      ECFS_TRY(tree.insert(free_space_key(range.start, range.length), {}));
    }
    done = to;
  }
  return ok();
}

Status Engine::load_free_space_tree() {
  auto ranges = read_ranges(BTree(*this, kFreeSpaceTreeId, committed_free_space_item_->root));
  if (!ranges) return std::unexpected(ranges.error());
  auto loaded = SpaceAllocator::from_free_ranges(sb_.total_bytes,
                                                 reserved_ranges_for(sb_.total_bytes), *ranges);
  if (!loaded) {
    return fail(EUCLEAN, device_->describe() + ": " + loaded.error().message());
  }
  allocator_ = std::move(*loaded);
  return ok();
}

void Engine::check_free_space_tree(const std::optional<RootRef>& root,
                                   const std::map<uint64_t, uint64_t>& free,
                                   std::vector<std::string>& problems) {
  const bool announced = (sb_.compat_ro_flags & kCompatRoFreeSpaceTree) != 0;
  if (!root) {
    if (announced) problems.push_back("the superblock announces a free-space tree; there is none");
    return;
  }
  if (!announced) {
    problems.push_back("a free-space tree exists but the superblock does not announce it");
    return;
  }
  auto ranges = read_ranges(BTree(*this, kFreeSpaceTreeId, *root));
  if (!ranges) {
    problems.push_back(ranges.error().message());
    return;
  }
  // `free` is the free space the extent tree leaves (pinned space is empty
  // outside a transaction): the tree must list exactly its ranges.
  auto expected = free.begin();
  for (const ByteRange& range : *ranges) {
    if (expected == free.end() || expected->first != range.start ||
        expected->second != range.end()) {
      problems.push_back("free-space tree: [" + std::to_string(range.start) + ", " +
                         std::to_string(range.end()) +
                         ") does not match the free space the extent tree leaves");
      return;
    }
    ++expected;
  }
  if (expected != free.end()) {
    problems.push_back("free-space tree: the free range [" + std::to_string(expected->first) +
                       ", " + std::to_string(expected->second) + ") is missing");
  }
}

}  // namespace ecfs::store
