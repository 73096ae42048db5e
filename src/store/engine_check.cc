// Engine::check: fsck of the committed state. Walks every tree from the
// superblock, counts the references to each node (parent pointers and root
// references, counted once per distinct parent as Rodeh's counts are) and to
// each data extent (EXTENT_DATA items, once per distinct leaf), and compares
// them with the extent tree; then checks that free space is exactly the
// device minus the reserved areas and the allocated extents; then the data
// checksums (data_checksums.cc). Progress goes to CheckOptions::progress
// phase by phase, as CheckProgress describes. Last, the subvolume catalog
// (SubvolumeCatalog::check).
#include <map>
#include <set>

#include "store/engine.h"
#include "store/subvolume_catalog.h"

namespace ecfs::store {
namespace {

struct NodeCount {
  uint64_t refs = 0;
  uint8_t level = 0;
  uint64_t owner = 0;
  bool seen_in_extent_tree = false;
};

struct DataCount {
  uint64_t refs = 0;
  std::map<DataRef, uint64_t> by_ref;
  bool seen_in_extent_tree = false;
};

std::string at(uint64_t bytenr) { return "extent " + std::to_string(bytenr) + ": "; }

}  // namespace

Result<CheckReport> Engine::check(const CheckOptions& options) {
  if (in_transaction_) return fail(EBUSY, "check needs the committed state: a transaction runs");
  ECFS_TRY(load_space_map());
  CheckReport report;
  report.data_verified = options.verify_data;
  auto progress = [&](const char* phase, uint64_t done, uint64_t total) {
    if (options.progress) options.progress(CheckProgress{phase, done, total});
  };
  std::map<uint64_t, NodeCount> nodes;
  std::map<uint64_t, DataCount> data;
  std::set<uint64_t> visited;

  std::function<Status(uint64_t, uint64_t, uint8_t)> visit =
      [&](uint64_t bytenr, uint64_t generation, uint8_t level) -> Status {
    if (!visited.insert(bytenr).second) return ok();
    auto node = read_node(bytenr, generation, level);
    if (!node) return std::unexpected(node.error());
    NodeCount& count = nodes[bytenr];
    count.level = level;
    count.owner = (*node)->owner;
    if ((*node)->is_leaf()) {
      for (const LeafItem& item : (*node)->items) {
        if (item.key.type != kExtentDataKey) continue;
        auto extent = decode_file_extent_ref(item.data);
        if (!extent) {
          report.problems.push_back("leaf " + std::to_string(bytenr) + ": " +
                                    extent.error().message());
          continue;
        }
        if (extent->disk_bytenr == 0) continue;
        DataCount& target = data[extent->disk_bytenr];
        ++target.refs;
        ++target.by_ref[DataRef{(*node)->owner, item.key.objectid, item.key.offset,
                                extent->extent_offset, extent->length}];
      }
      return ok();
    }
    for (const KeyPtr& child : (*node)->children) {
      ++nodes[child.bytenr].refs;
      ECFS_TRY(visit(child.bytenr, child.generation, level - 1));
    }
    return ok();
  };
  auto walk = [&](uint64_t id, const RootRef& root) -> Status {
    ++nodes[root.bytenr].refs;
    ECFS_TRY(visit(root.bytenr, root.generation, root.level));
    if (Status invariants = BTree(*this, id, root).check_invariants(); !invariants) {
      report.problems.push_back("tree " + std::to_string(id) + ": " + invariants.error().message());
    }
    return ok();
  };

  const RootRef root_tree_root{sb_.root_tree_bytenr, sb_.root_tree_generation, sb_.root_tree_level};
  progress("trees", 0, 0);
  ECFS_TRY(walk(kRootTreeId, root_tree_root));
  std::vector<std::pair<uint64_t, RootItem>> roots;
  Status decode_status = ok();
  ECFS_TRY(BTree(*this, kRootTreeId, root_tree_root)
               .for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan bytes) {
                 if (key.type != kRootItemKey) return true;
                 auto item = decode_root_item(bytes);
                 if (!item) {
                   decode_status = std::unexpected(item.error());
                   return false;
                 }
                 roots.emplace_back(key.objectid, *item);
                 return true;
               }));
  ECFS_TRY(decode_status);
  std::optional<RootRef> extent_root;
  std::optional<RootRef> csum_root;
  std::optional<RootRef> free_space_root;
  report.trees = roots.size() + 1;
  uint64_t trees_walked = 1;  // the root tree
  progress("trees", trees_walked, report.trees);
  for (const auto& [id, item] : roots) {
    ECFS_TRY(walk(id, item.root));
    if (id == kExtentTreeId) extent_root = item.root;
    if (id == kCsumTreeId) csum_root = item.root;
    if (id == kFreeSpaceTreeId) free_space_root = item.root;
    progress("trees", ++trees_walked, report.trees);
  }
  if (!extent_root) return fail(EUCLEAN, "the root tree has no extent tree");

  // The extent tree against the counts.
  std::vector<ByteRange> allocated;
  const uint64_t extents_expected = nodes.size() + data.size();
  progress("extents", 0, extents_expected);
  ECFS_TRY(BTree(*this, kExtentTreeId, *extent_root)
               .for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan bytes) {
                 const uint64_t bytenr = key.objectid;
                 if (key.type == kMetadataItemKey || key.type == kExtentItemKey) {
                   auto item = decode_extent_item(bytes);
                   if (!item) {
                     report.problems.push_back(at(bytenr) + item.error().message());
                     return true;
                   }
                   progress("extents", allocated.size() + 1, extents_expected);
                   if (key.type == kMetadataItemKey) {
                     allocated.push_back({bytenr, sb_.node_size});
                     auto it = nodes.find(bytenr);
                     if (it == nodes.end()) {
                       report.problems.push_back(at(bytenr) + "tree block item with " +
                                                 std::to_string(item->refs) +
                                                 " refs, but no tree references it (leaked)");
                       return true;
                     }
                     it->second.seen_in_extent_tree = true;
                     if (item->refs != it->second.refs || key.offset != it->second.level ||
                         item->flags != kExtentFlagTreeBlock) {
                       report.problems.push_back(at(bytenr) + "tree block item says refs " +
                                                 std::to_string(item->refs) + " level " +
                                                 std::to_string(key.offset) + ", trees say refs " +
                                                 std::to_string(it->second.refs) + " level " +
                                                 std::to_string(it->second.level));
                     }
                   } else {
                     allocated.push_back({bytenr, key.offset});
                     ++report.data_extents;
                     auto it = data.find(bytenr);
                     const uint64_t counted = it == data.end() ? 0 : it->second.refs;
                     if (it != data.end()) it->second.seen_in_extent_tree = true;
                     if (item->refs != counted || item->flags != kExtentFlagData) {
                       report.problems.push_back(at(bytenr) + "data extent item says refs " +
                                                 std::to_string(item->refs) + ", trees say " +
                                                 std::to_string(counted));
                     }
                   }
                 } else if (key.type == kExtentDataRefKey) {
                   auto item = decode_data_ref_item(bytes);
                   if (!item) {
                     report.problems.push_back(at(bytenr) + item.error().message());
                     return true;
                   }
                   auto it = data.find(bytenr);
                   uint64_t counted = 0;
                   if (it != data.end()) {
                     auto ref = it->second.by_ref.find(item->ref);
                     if (ref != it->second.by_ref.end()) {
                       counted = ref->second;
                       it->second.by_ref.erase(ref);
                     }
                   }
                   if (counted != item->count) {
                     report.problems.push_back(
                         at(bytenr) + "back reference (root " + std::to_string(item->ref.root) +
                         ", objectid " + std::to_string(item->ref.objectid) + ", offset " +
                         std::to_string(item->ref.offset) + ") says " +
                         std::to_string(item->count) + ", trees say " + std::to_string(counted));
                   }
                 } else {
                   report.problems.push_back(at(bytenr) + "unexpected item type " +
                                             std::to_string(key.type) + " in the extent tree");
                 }
                 return true;
               }));
  for (const auto& [bytenr, count] : nodes) {
    if (!count.seen_in_extent_tree) {
      report.problems.push_back(at(bytenr) + "tree block referenced " + std::to_string(count.refs) +
                                " times has no extent item");
    }
  }
  for (const auto& [bytenr, count] : data) {
    if (!count.seen_in_extent_tree) {
      report.problems.push_back(at(bytenr) + "data extent referenced " +
                                std::to_string(count.refs) + " times has no extent item");
    }
    for (const auto& [ref, refs] : count.by_ref) {
      report.problems.push_back(at(bytenr) + std::to_string(refs) + " references from root " +
                                std::to_string(ref.root) + " objectid " +
                                std::to_string(ref.objectid) + " offset " +
                                std::to_string(ref.offset) + " have no back reference");
    }
  }
  report.tree_nodes = nodes.size();

  // Space: allocated extents, free space and reserved areas tile the device.
  progress("space", 0, 1);
  std::map<uint64_t, uint64_t> used;  // start -> end, from every source
  auto claim = [&](uint64_t start, uint64_t end, const std::string& what) {
    auto next = used.lower_bound(start);
    if ((next != used.end() && next->first < end) ||
        (next != used.begin() && std::prev(next)->second > start)) {
      report.problems.push_back(what + " [" + std::to_string(start) + ", " + std::to_string(end) +
                                ") overlaps other space");
      return;
    }
    used[start] = end;
  };
  uint64_t allocated_bytes = 0;
  for (const ByteRange& range : allocated) {
    claim(range.start, range.end(), "extent");
    allocated_bytes += range.length;
  }
  for (const auto& [start, end] : allocator_.free_ranges()) claim(start, end, "free space");
  for (const auto& [start, end] : allocator_.pinned_ranges()) claim(start, end, "pinned space");
  for (const ByteRange& range : allocator_.reserved_ranges()) {
    claim(range.start, range.end(), "reserved area");
  }
  uint64_t covered = 0;
  for (const auto& [start, end] : used) covered += end - start;
  if (covered != sb_.total_bytes) {
    report.problems.push_back("space: " + std::to_string(covered) + " of " +
                              std::to_string(sb_.total_bytes) +
                              " bytes are accounted for (extents + free + reserved)");
  }
  if (allocated_bytes != sb_.bytes_used) {
    report.problems.push_back("space: superblock says " + std::to_string(sb_.bytes_used) +
                              " bytes used, the extent tree " + std::to_string(allocated_bytes));
  }
  report.allocated_bytes = allocated_bytes;
  // The free-space tree against what the extent tree leaves free (not
  // against the allocator, which a mount may have loaded from that tree).
  {
    std::map<uint64_t, uint64_t> taken;  // extents and reserved areas, merged
    for (const ByteRange& range : allocated) add_merged(taken, range.start, range.end());
    for (const ByteRange& range : allocator_.reserved_ranges()) {
      add_merged(taken, range.start, range.end());
    }
    std::map<uint64_t, uint64_t> free;
    uint64_t cursor = 0;
    for (const auto& [start, end] : taken) {
      if (start > cursor) free[cursor] = start;
      cursor = std::max(cursor, end);
    }
    if (cursor < sb_.total_bytes) free[cursor] = sb_.total_bytes;
    check_free_space_tree(free_space_root, free, report.problems);
  }
  progress("space", 1, 1);

  // Data checksums: well-formed items over allocated data, matching the data.
  if (csum_root) {
    ECFS_TRY(check_data_checksums(*extent_root, *csum_root, options, report));
  } else {
    report.problems.push_back("the root tree has no csum tree");
  }
  // The image origin: present and well formed exactly when the bit says so.
  if (auto origin = image_origin(); !origin) {
    if (origin.error().errno_value() != EUCLEAN) return std::unexpected(origin.error());
    report.problems.push_back(origin.error().message());
  } else if (origin->has_value() != ((sb_.compat_flags & kCompatImageOrigin) != 0)) {
    report.problems.push_back(origin->has_value()
                                  ? "an image origin without the compat bit image_origin"
                                  : "the compat bit image_origin without an image origin");
  }
  // The subvolume catalog in the root tree.
  ECFS_TRY(SubvolumeCatalog(*this).check(report.problems));
  return report;
}

}  // namespace ecfs::store
