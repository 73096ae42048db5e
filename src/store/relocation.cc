#include "store/relocation.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "store/data_checksums.h"

namespace ecfs::store {
namespace {

// Data is copied through a buffer of this size, so moving a large extent
// does not need memory of its size.
constexpr uint64_t kCopyChunk = 1 << 20;

std::string extent_name(uint64_t bytenr) { return "extent " + std::to_string(bytenr); }

Status require_transaction(const Engine& engine) {
  if (!engine.in_transaction()) return fail(EINVAL, "relocation needs a running transaction");
  return ok();
}

// The length of data extent `bytenr`: from its extent item, or from the
// queue when it was allocated in the running transaction.
Result<uint64_t> data_extent_length(Engine& engine, const BTree& extent_tree, uint64_t bytenr) {
  if (const DelayedRefHead* head = engine.pending_refs(bytenr); head && head->created) {
    if (head->is_tree_block) return fail(ENOENT, extent_name(bytenr) + " is a tree node");
    return head->length;
  }
  auto found = find_data_extent_item(extent_tree, bytenr);
  if (!found) return std::unexpected(found.error());
  if (!*found) return fail(ENOENT, "no data extent starts at byte " + std::to_string(bytenr));
  return (*found)->second;
}

// The (objectid, file offset) of every EXTENT_DATA item that may name
// extent `bytenr`: its committed back references and the references queued
// in this transaction. The back reference names the tree owning the leaf;
// clones sharing that leaf hold the same key, so callers look the keys up
// in every tree.
Result<std::set<std::pair<uint64_t, uint64_t>>> referencing_keys(Engine& engine,
                                                                 const BTree& extent_tree,
                                                                 uint64_t bytenr) {
  std::set<std::pair<uint64_t, uint64_t>> keys;
  Status status = ok();
  ECFS_TRY(extent_tree.for_each(Key{bytenr, kExtentDataRefKey, 0},
                                Key{bytenr, kExtentDataRefKey, UINT64_MAX},
                                [&](const Key&, ByteSpan data) {
                                  auto item = decode_data_ref_item(data);
                                  if (!item) {
                                    status = std::unexpected(item.error());
                                    return false;
                                  }
                                  keys.emplace(item->ref.objectid, item->ref.offset);
                                  return true;
                                }));
  ECFS_TRY(status);
  if (const DelayedRefHead* head = engine.pending_refs(bytenr)) {
    for (const auto& [ref, delta] : head->data_deltas) keys.emplace(ref.objectid, ref.offset);
  }
  return keys;
}

Status copy_bytes(block::BlockDevice& device, uint64_t from, uint64_t to, uint64_t length) {
  Bytes buffer(std::min(length, kCopyChunk));
  for (uint64_t done = 0; done < length;) {
    const uint64_t chunk = std::min<uint64_t>(buffer.size(), length - done);
    MutableByteSpan span(buffer.data(), chunk);
    ECFS_TRY(device.read(from + done, span));
    ECFS_TRY(device.write(to + done, span));
    done += chunk;
  }
  return ok();
}

// Trees that may hold EXTENT_DATA items or share nodes: all but the extent
// tree (the root tree is not listed by list_trees).
Result<std::vector<uint64_t>> candidate_trees(Engine& engine, bool include_extent_tree) {
  auto ids = engine.list_trees();
  if (!ids) return std::unexpected(ids.error());
  std::vector<uint64_t> out;
  for (uint64_t id : *ids) {
    if (id == kExtentTreeId && !include_extent_tree) continue;
    out.push_back(id);
  }
  return out;
}

// True when the path of tree `root` towards `key` passes through node
// `bytenr` at `level`.
Result<bool> path_passes(Engine& engine, RootRef root, const Key& key, uint8_t level,
                         uint64_t bytenr) {
  if (root.level < level) return false;
  auto node = engine.read_node(root.bytenr, root.generation, root.level);
  if (!node) return std::unexpected(node.error());
  while ((*node)->level > level) {
    const std::vector<KeyPtr>& children = (*node)->children;
    // The last child whose first key is <= key (btrfs bin_search + slot - 1).
    auto it = std::upper_bound(children.begin(), children.end(), key,
                               [](const Key& k, const KeyPtr& child) { return k < child.key; });
    if (it != children.begin()) --it;
    const uint8_t child_level = static_cast<uint8_t>((*node)->level - 1);
    node = engine.read_node(it->bytenr, it->generation, child_level);
    if (!node) return std::unexpected(node.error());
  }
  return (*node)->bytenr == bytenr;
}

// Copies-on-write the path of `tree` from its root to the leaf holding
// `first_key` without changing any item (an update with the same bytes).
// An empty tree (one empty leaf) is shadowed by inserting and removing an
// item.
Status shadow_path(BTree& tree, const Key& first_key, bool empty_tree) {
  if (empty_tree) {
    ECFS_TRY(tree.insert(Key::min(), ByteSpan{}));
    return tree.remove(Key::min());
  }
  auto data = tree.find(first_key);
  if (!data) return std::unexpected(data.error());
  if (!*data) return fail(EUCLEAN, "relocation: a tree lost the key it was found by");
  return tree.update(first_key, **data);
}

}  // namespace

Result<uint64_t> relocate_data_extent(Engine& engine, uint64_t bytenr) {
  ECFS_TRY(require_transaction(engine));
  auto extent_tree = engine.open_tree(kExtentTreeId);
  if (!extent_tree) return std::unexpected(extent_tree.error());
  auto length = data_extent_length(engine, **extent_tree, bytenr);
  if (!length) return std::unexpected(length.error());
  auto keys = referencing_keys(engine, **extent_tree, bytenr);
  if (!keys) return std::unexpected(keys.error());
  auto trees = candidate_trees(engine, false);
  if (!trees) return std::unexpected(trees.error());

  // The copy first: ENOSPC here leaves the transaction as it was.
  auto target = engine.allocate_data(*length);
  if (!target) return std::unexpected(target.error());
  ECFS_TRY(copy_bytes(engine.device(), bytenr, *target, *length));

  // The per-sector checksums are over the bytes on disk (ciphertext), which
  // are identical at the new place: they are copied, not recomputed, and no
  // key is needed. The commit that frees the old extent deletes its own.
  auto csum_tree = engine.open_tree(kCsumTreeId);
  if (!csum_tree) return std::unexpected(csum_tree.error());
  ECFS_TRY(copy_data_checksums(**csum_tree, engine.node_size(), engine.superblock().checksum_type,
                               bytenr, *target, *length));

  // Every EXTENT_DATA item naming the extent, in every tree that holds it:
  // a leaf shared by clones holds the item once but each tree that copies
  // it (BTree::update cows the path) gets its own, attributed to that tree.
  for (uint64_t id : *trees) {
    auto tree = engine.open_tree(id);
    if (!tree) return std::unexpected(tree.error());
    for (const auto& [objectid, offset] : *keys) {
      const Key key{objectid, kExtentDataKey, offset};
      auto data = (*tree)->find(key);
      if (!data) return std::unexpected(data.error());
      if (!*data) continue;
      auto ref = decode_file_extent_ref(**data);
      if (!ref) return std::unexpected(ref.error());
      if (ref->disk_bytenr != bytenr) continue;
      // Only the address changes: extent_offset and length keep the data
      // unit numbering relative to the extent start.
      FileExtentRef moved = *ref;
      moved.disk_bytenr = *target;
      Bytes updated = std::move(**data);
      encode_file_extent_ref(moved, updated);
      ECFS_TRY((*tree)->update(key, updated));
      // After the update the leaf is this tree's own (written by it), so
      // the reference is attributed to this tree.
      const DataRef data_ref{id, objectid, offset, ref->extent_offset, ref->length};
      ECFS_TRY(engine.drop_data_ref(bytenr, *length, data_ref));
      ECFS_TRY(engine.add_data_ref(*target, *length, data_ref));
    }
  }
  return *target;
}

Status relocate_tree_node(Engine& engine, uint64_t bytenr) {
  ECFS_TRY(require_transaction(engine));
  auto extent_tree = engine.open_tree(kExtentTreeId);
  if (!extent_tree) return std::unexpected(extent_tree.error());

  uint8_t level = 0;
  uint64_t generation = 0;
  uint64_t owner = 0;
  if (const DelayedRefHead* head = engine.pending_refs(bytenr); head && head->created) {
    if (!head->is_tree_block) return fail(ENOENT, extent_name(bytenr) + " is a data extent");
    level = head->level;
    generation = engine.generation();
    owner = head->owner;
  } else {
    auto found = (*extent_tree)->lower_bound(Key{bytenr, kMetadataItemKey, 0});
    if (!found) return std::unexpected(found.error());
    if (!*found || (*found)->key.objectid != bytenr || (*found)->key.type != kMetadataItemKey) {
      return fail(ENOENT, "no tree node starts at byte " + std::to_string(bytenr));
    }
    auto item = decode_extent_item((*found)->data);
    if (!item) return std::unexpected(item.error());
    level = static_cast<uint8_t>((*found)->key.offset);
    generation = item->generation;
    owner = item->owner;
  }
  auto node = engine.read_node(bytenr, generation, level);
  if (!node) return std::unexpected(node.error());
  const bool empty_leaf = (*node)->item_count() == 0;
  const Key first_key = empty_leaf ? Key::min() : (*node)->first_key();

  // A node written in this transaction is changed in place by the next
  // change; make it read-only so that change moves it.
  engine.force_cow(bytenr);
  // The trees that may reference the node. The root tree is unshared
  // (tree_ids.h), so a node it owns is on its path alone; cowing that path
  // moves it, and the commit writes the new root tree root into the
  // superblock.
  std::vector<BTree*> referrers;
  if (owner == kRootTreeId) {
    BTree* root_tree = engine.root_tree_for_relocation();
    if (root_tree == nullptr) return fail(EINVAL, "relocation needs a running transaction");
    referrers.push_back(root_tree);
  } else {
    auto trees = candidate_trees(engine, true);
    if (!trees) return std::unexpected(trees.error());
    for (uint64_t id : *trees) {
      auto tree = engine.open_tree(id);
      if (!tree) return std::unexpected(tree.error());
      referrers.push_back(*tree);
    }
  }
  bool found_referrer = false;
  for (BTree* tree : referrers) {
    auto passes = path_passes(engine, tree->root(), first_key, level, bytenr);
    if (!passes) return std::unexpected(passes.error());
    if (!*passes) continue;
    found_referrer = true;
    ECFS_TRY(shadow_path(*tree, first_key, empty_leaf));
  }
  if (!found_referrer) {
    // Cowed away earlier in this transaction: it is already being freed.
    const DelayedRefHead* head = engine.pending_refs(bytenr);
    if (head != nullptr && head->delta < 0) return ok();
    return fail(EUCLEAN, "tree node " + std::to_string(bytenr) + " is referenced by no tree");
  }
  return ok();
}

}  // namespace ecfs::store
