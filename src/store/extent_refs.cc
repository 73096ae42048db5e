#include "store/extent_refs.h"

#include <string>

#include "store/tree_ids.h"

namespace ecfs::store {

void DelayedRefs::add_tree_ref(uint64_t bytenr, uint8_t level, uint64_t owner, uint32_t node_size,
                               int64_t delta, bool created) {
  auto [it, inserted] = heads_.try_emplace(bytenr);
  DelayedRefHead& head = it->second;
  if (inserted || created) {
    head.is_tree_block = true;
    head.level = level;
    head.owner = owner;
    head.length = node_size;
  }
  head.created |= created;
  head.delta += delta;
}

void DelayedRefs::add_data_extent(uint64_t bytenr, uint64_t length) {
  DelayedRefHead& head = heads_[bytenr];
  head.is_tree_block = false;
  head.created = true;
  head.length = length;
}

void DelayedRefs::add_data_ref(uint64_t bytenr, uint64_t length, const DataRef& ref,
                               int64_t delta) {
  DelayedRefHead& head = heads_[bytenr];
  head.is_tree_block = false;
  head.length = length;
  head.delta += delta;
  int64_t& count = head.data_deltas[ref];
  count += delta;
  if (count == 0) head.data_deltas.erase(ref);
}

const DelayedRefHead* DelayedRefs::find(uint64_t bytenr) const {
  auto it = heads_.find(bytenr);
  return it == heads_.end() ? nullptr : &it->second;
}

std::pair<uint64_t, DelayedRefHead> DelayedRefs::pop_first() {
  auto node = heads_.extract(heads_.begin());
  return {node.key(), std::move(node.mapped())};
}

Result<std::optional<ExtentItem>> find_tree_block_item(const BTree& extent_tree, uint64_t bytenr,
                                                       uint8_t level) {
  std::optional<Bytes> data;
  {
    auto found = extent_tree.find(Key{bytenr, kMetadataItemKey, level});
    if (!found) return std::unexpected(found.error());
    data = std::move(*found);
  }
  if (!data) return std::optional<ExtentItem>();
  auto item = decode_extent_item(*data);
  if (!item) return std::unexpected(item.error());
  return std::optional<ExtentItem>(*item);
}

Result<std::optional<std::pair<ExtentItem, uint64_t>>> find_data_extent_item(
    const BTree& extent_tree, uint64_t bytenr) {
  using Found = std::optional<std::pair<ExtentItem, uint64_t>>;
  auto next = extent_tree.lower_bound(Key{bytenr, kExtentItemKey, 0});
  if (!next) return std::unexpected(next.error());
  if (!*next || (*next)->key.objectid != bytenr || (*next)->key.type != kExtentItemKey) {
    return Found();
  }
  auto item = decode_extent_item((*next)->data);
  if (!item) return std::unexpected(item.error());
  return Found(std::pair{*item, (*next)->key.offset});
}

Result<std::optional<std::pair<Key, DataRefItem>>> find_data_ref_item(const BTree& extent_tree,
                                                                      uint64_t bytenr,
                                                                      const DataRef& ref) {
  // Collisions probe upwards from the hash, and removals leave gaps, so scan
  // every back reference from the hash on and compare the stored reference.
  std::optional<std::pair<Key, DataRefItem>> found;
  Status decode_status = ok();
  ECFS_TRY(extent_tree.for_each(Key{bytenr, kExtentDataRefKey, data_ref_hash(ref)},
                                Key{bytenr, kExtentDataRefKey, UINT64_MAX},
                                [&](const Key& key, ByteSpan data) {
                                  auto item = decode_data_ref_item(data);
                                  if (!item) {
                                    decode_status = std::unexpected(item.error());
                                    return false;
                                  }
                                  if (item->ref == ref) {
                                    found = std::pair{key, *item};
                                    return false;
                                  }
                                  return true;
                                }));
  ECFS_TRY(decode_status);
  return found;
}

namespace {

std::string extent_name(uint64_t bytenr) { return "extent " + std::to_string(bytenr); }

Status apply_data_ref_delta(BTree& extent_tree, uint64_t bytenr, const DataRef& ref,
                            int64_t delta) {
  auto found = find_data_ref_item(extent_tree, bytenr, ref);
  if (!found) return std::unexpected(found.error());
  if (!*found) {
    if (delta < 0) {
      return fail(EUCLEAN, "dropping a reference of " + extent_name(bytenr) + " (root " +
                               std::to_string(ref.root) + ", objectid " +
                               std::to_string(ref.objectid) + ", offset " +
                               std::to_string(ref.offset) + ") that does not exist");
    }
    // The first free key offset at or above the hash.
    Key key{bytenr, kExtentDataRefKey, data_ref_hash(ref)};
    while (true) {
      auto existing = extent_tree.find(key);
      if (!existing) return std::unexpected(existing.error());
      if (!*existing) break;
      ++key.offset;
    }
    return extent_tree.insert(key, encode_data_ref_item({ref, static_cast<uint64_t>(delta)}));
  }
  auto& [key, item] = **found;
  if (delta < 0 && item.count < static_cast<uint64_t>(-delta)) {
    return fail(EUCLEAN, "dropping more references of " + extent_name(bytenr) + " than exist");
  }
  item.count += delta;
  if (item.count == 0) return extent_tree.remove(key);
  return extent_tree.update(key, encode_data_ref_item(item));
}

}  // namespace

Status apply_delayed_ref_head(BTree& extent_tree, uint64_t bytenr, const DelayedRefHead& head,
                              uint64_t generation, SpaceAllocator& allocator) {
  Key key;
  std::optional<ExtentItem> existing;
  uint64_t length = head.length;
  if (head.is_tree_block) {
    key = Key{bytenr, kMetadataItemKey, head.level};
    auto found = find_tree_block_item(extent_tree, bytenr, head.level);
    if (!found) return std::unexpected(found.error());
    existing = *found;
  } else {
    auto found = find_data_extent_item(extent_tree, bytenr);
    if (!found) return std::unexpected(found.error());
    if (*found) {
      existing = (*found)->first;
      length = (*found)->second;
    }
    key = Key{bytenr, kExtentItemKey, length};
  }

  if (!existing) {
    if (!head.created || head.delta < 0) {
      return fail(EUCLEAN, "reference change of " + std::to_string(head.delta) + " for " +
                               extent_name(bytenr) + " which has no extent item");
    }
    if (head.delta == 0) return allocator.pin(bytenr, length);  // allocated and released
  }
  for (const auto& [ref, delta] : head.data_deltas) {
    ECFS_TRY(apply_data_ref_delta(extent_tree, bytenr, ref, delta));
  }
  if (!existing) {
    ExtentItem item;
    item.refs = static_cast<uint64_t>(head.delta);
    item.generation = generation;
    item.flags = head.is_tree_block ? kExtentFlagTreeBlock : kExtentFlagData;
    item.owner = head.is_tree_block ? head.owner : 0;
    item.level = head.is_tree_block ? head.level : 0;
    return extent_tree.insert(key, encode_extent_item(item));
  }
  if (head.delta == 0) return ok();
  if (head.delta < 0 && existing->refs < static_cast<uint64_t>(-head.delta)) {
    return fail(EUCLEAN, "reference count of " + extent_name(bytenr) + " would drop below zero (" +
                             std::to_string(existing->refs) + " " + std::to_string(head.delta) +
                             ")");
  }
  existing->refs += head.delta;
  if (existing->refs == 0) {
    ECFS_TRY(extent_tree.remove(key));
    return allocator.pin(bytenr, length);
  }
  return extent_tree.update(key, encode_extent_item(*existing));
}

}  // namespace ecfs::store
