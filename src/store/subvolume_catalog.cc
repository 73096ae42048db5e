#include "store/subvolume_catalog.h"

#include <time.h>

#include <algorithm>
#include <map>
#include <set>

#include "store/tree_ids.h"

namespace ecfs::store {
namespace {

Key info_key(uint64_t id) { return {id, kSubvolInfoKey, 0}; }
Key ref_key(uint64_t parent, uint64_t child) { return {parent, kRootRefKey, child}; }
Key backref_key(uint64_t child, uint64_t parent) { return {child, kRootBackrefKey, parent}; }
Key dead_key(uint64_t id) { return {kDeadRootObjectid, kDeadRootKey, id}; }

std::string subvolume_name(uint64_t id) { return "subvolume " + std::to_string(id); }

SubvolumeInfo new_info(const Engine& engine) {
  SubvolumeInfo info;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  info.otime_sec = now.tv_sec;
  info.otime_nsec = static_cast<uint32_t>(now.tv_nsec);
  info.created_generation = engine.generation();
  return info;
}

}  // namespace

Result<bool> SubvolumeCatalog::tree_exists(uint64_t id) {
  auto trees = engine_.list_trees();
  if (!trees) return std::unexpected(trees.error());
  return std::find(trees->begin(), trees->end(), id) != trees->end();
}

Result<bool> SubvolumeCatalog::is_dead(uint64_t id) {
  auto dead = engine_.find_catalog_item(dead_key(id));
  if (!dead) return std::unexpected(dead.error());
  return dead->has_value();
}

Result<uint64_t> SubvolumeCatalog::next_id() {
  auto trees = engine_.list_trees();
  if (!trees) return std::unexpected(trees.error());
  uint64_t next = kFirstFreeTreeId;
  for (uint64_t id : *trees) next = std::max(next, id + 1);
  return next;
}

Status SubvolumeCatalog::check_parent(const SubvolumeLink& link) {
  if (link.name.empty() || link.name.size() > 255) {
    return fail(EINVAL, "a subvolume name of " + std::to_string(link.name.size()) + " bytes");
  }
  auto exists = tree_exists(link.parent);
  if (!exists) return std::unexpected(exists.error());
  if (!*exists || (link.parent != kFsTreeId && link.parent < kFirstFreeTreeId)) {
    return fail(ENOENT, "no " + subvolume_name(link.parent));
  }
  auto dead = is_dead(link.parent);
  if (!dead) return std::unexpected(dead.error());
  if (*dead) return fail(ENOENT, subvolume_name(link.parent) + " is deleted");
  return ok();
}

Status SubvolumeCatalog::add_link(uint64_t id, const SubvolumeLink& link) {
  const Bytes ref = encode_root_ref({.dirid = link.dirid, .index = link.index, .name = link.name});
  ECFS_TRY(engine_.put_catalog_item(ref_key(link.parent, id), ref));
  return engine_.put_catalog_item(backref_key(id, link.parent), ref);
}

Result<uint64_t> SubvolumeCatalog::create(const SubvolumeLink& link) {
  ECFS_TRY(check_parent(link));
  auto id = next_id();
  if (!id) return std::unexpected(id.error());
  ECFS_TRY(engine_.enable_incompat_features(kIncompatSubvolumes));
  auto tree = engine_.create_tree(*id);
  if (!tree) return std::unexpected(tree.error());
  SubvolumeInfo info = new_info(engine_);
  auto uuid = random_fsid();
  if (!uuid) return std::unexpected(uuid.error());
  info.uuid = *uuid;
  ECFS_TRY(engine_.put_catalog_item(info_key(*id), encode_subvolume_info(info)));
  ECFS_TRY(add_link(*id, link));
  return *id;
}

Result<uint64_t> SubvolumeCatalog::snapshot(uint64_t source, const SubvolumeLink& link,
                                            bool read_only) {
  auto source_entry = get(source);
  if (!source_entry) return std::unexpected(source_entry.error());
  if (source_entry->deleted) return fail(ENOENT, subvolume_name(source) + " is deleted");
  ECFS_TRY(check_parent(link));
  auto id = next_id();
  if (!id) return std::unexpected(id.error());
  ECFS_TRY(engine_.enable_incompat_features(kIncompatSubvolumes));
  ECFS_TRY(engine_.clone_tree(source, *id));
  SubvolumeInfo info = new_info(engine_);
  auto uuid = random_fsid();
  if (!uuid) return std::unexpected(uuid.error());
  info.uuid = *uuid;
  info.parent_uuid = source_entry->info.uuid;
  info.source_generation = engine_.committed_generation();
  if (read_only) info.flags |= kSubvolReadOnly;
  ECFS_TRY(engine_.put_catalog_item(info_key(*id), encode_subvolume_info(info)));
  ECFS_TRY(add_link(*id, link));
  return *id;
}

Status SubvolumeCatalog::unlink(uint64_t id) {
  if (id == kFsTreeId) return fail(EPERM, "the top-level subvolume cannot be deleted");
  auto entry = get(id);
  if (!entry) return std::unexpected(entry.error());
  if (entry->deleted || !entry->link) return fail(ENOENT, subvolume_name(id) + " is deleted");
  auto nested = children(id);
  if (!nested) return std::unexpected(nested.error());
  if (!nested->empty()) {
    return fail(ENOTEMPTY, subvolume_name(id) + " holds other subvolumes; delete them first");
  }
  ECFS_TRY(engine_.remove_catalog_item(ref_key(entry->link->parent, id)));
  ECFS_TRY(engine_.remove_catalog_item(backref_key(id, entry->link->parent)));
  return engine_.put_catalog_item(dead_key(id), {});
}

Status SubvolumeCatalog::relink(uint64_t id, const SubvolumeLink& link) {
  auto entry = get(id);
  if (!entry) return std::unexpected(entry.error());
  if (entry->deleted || !entry->link) return fail(ENOENT, subvolume_name(id) + " is deleted");
  if (entry->link->parent != link.parent) {
    return fail(EXDEV, subvolume_name(id) + " moves only inside its parent subvolume");
  }
  ECFS_TRY(check_parent(link));
  return add_link(id, link);
}

Status SubvolumeCatalog::set_read_only(uint64_t id, bool read_only) {
  if (id == kFsTreeId) return fail(EPERM, "the top-level subvolume has no read-only flag");
  auto entry = get(id);
  if (!entry) return std::unexpected(entry.error());
  if (entry->deleted) return fail(ENOENT, subvolume_name(id) + " is deleted");
  SubvolumeInfo info = entry->info;
  info.flags = read_only ? (info.flags | kSubvolReadOnly) : (info.flags & ~kSubvolReadOnly);
  return engine_.put_catalog_item(info_key(id), encode_subvolume_info(info));
}

Status SubvolumeCatalog::drop_dead(uint64_t id) {
  for (;;) {
    auto done = drop_dead_step(id, UINT64_MAX);
    if (!done) return std::unexpected(done.error());
    if (*done) return ok();
  }
}

Result<bool> SubvolumeCatalog::drop_dead_step(uint64_t id, uint64_t subtrees) {
  auto dead = is_dead(id);
  if (!dead) return std::unexpected(dead.error());
  if (!*dead) return fail(ENOENT, subvolume_name(id) + " is not a deleted subvolume");
  auto gone = engine_.drop_tree_step(id, subtrees);
  if (!gone) return std::unexpected(gone.error());
  if (!*gone) return false;
  if (auto info = engine_.find_catalog_item(info_key(id)); !info) {
    return std::unexpected(info.error());
  } else if (*info) {
    ECFS_TRY(engine_.remove_catalog_item(info_key(id)));
  }
  ECFS_TRY(engine_.remove_catalog_item(dead_key(id)));
  return true;
}

Result<std::vector<uint64_t>> SubvolumeCatalog::dead_trees() {
  std::vector<uint64_t> dead;
  ECFS_TRY(engine_.for_each_catalog_item(dead_key(0), dead_key(UINT64_MAX),
                                         [&](const Key& key, ByteSpan) {
                                           dead.push_back(key.offset);
                                           return true;
                                         }));
  return dead;
}

Result<std::vector<std::pair<uint64_t, RootRefItem>>> SubvolumeCatalog::children(uint64_t parent) {
  std::vector<std::pair<uint64_t, RootRefItem>> found;
  Status decoded = ok();
  ECFS_TRY(engine_.for_each_catalog_item(ref_key(parent, 0), ref_key(parent, UINT64_MAX),
                                         [&](const Key& key, ByteSpan data) {
                                           auto ref = decode_root_ref(data);
                                           if (!ref) {
                                             decoded = std::unexpected(ref.error());
                                             return false;
                                           }
                                           found.emplace_back(key.offset, std::move(*ref));
                                           return true;
                                         }));
  ECFS_TRY(decoded);
  return found;
}

Result<SubvolumeEntry> SubvolumeCatalog::get(uint64_t id) {
  SubvolumeEntry entry;
  entry.id = id;
  auto exists = tree_exists(id);
  if (!exists) return std::unexpected(exists.error());
  if (!*exists || (id != kFsTreeId && id < kFirstFreeTreeId)) {
    return fail(ENOENT, "no " + subvolume_name(id));
  }
  if (id == kFsTreeId) return entry;
  auto info = engine_.find_catalog_item(info_key(id));
  if (!info) return std::unexpected(info.error());
  if (!*info) return fail(EUCLEAN, subvolume_name(id) + " has no SUBVOL_INFO");
  auto decoded = decode_subvolume_info(**info);
  if (!decoded) return std::unexpected(decoded.error());
  entry.info = *decoded;
  auto dead = is_dead(id);
  if (!dead) return std::unexpected(dead.error());
  entry.deleted = *dead;
  Status link_status = ok();
  ECFS_TRY(engine_.for_each_catalog_item(
      backref_key(id, 0), backref_key(id, UINT64_MAX), [&](const Key& key, ByteSpan data) {
        auto ref = decode_root_ref(data);
        if (!ref) {
          link_status = std::unexpected(ref.error());
          return false;
        }
        entry.link = SubvolumeLink{
            .parent = key.offset, .dirid = ref->dirid, .index = ref->index, .name = ref->name};
        return false;
      }));
  ECFS_TRY(link_status);
  return entry;
}

Result<std::vector<SubvolumeEntry>> SubvolumeCatalog::list() {
  auto trees = engine_.list_trees();
  if (!trees) return std::unexpected(trees.error());
  std::vector<SubvolumeEntry> entries;
  for (uint64_t id : *trees) {
    if (id != kFsTreeId && id < kFirstFreeTreeId) continue;
    auto entry = get(id);
    if (!entry) return std::unexpected(entry.error());
    entries.push_back(std::move(*entry));
  }
  return entries;
}

Status SubvolumeCatalog::check(std::vector<std::string>& problems) {
  auto trees = engine_.list_trees();
  if (!trees) return std::unexpected(trees.error());
  const std::set<uint64_t> live_trees(trees->begin(), trees->end());
  std::map<std::pair<uint64_t, uint64_t>, Bytes> refs;      // (parent, child) -> data
  std::map<std::pair<uint64_t, uint64_t>, Bytes> backrefs;  // (parent, child) -> data
  std::set<uint64_t> infos;
  std::set<uint64_t> dead;
  bool any_item = false;
  ECFS_TRY(
      engine_.for_each_catalog_item(Key::min(), Key::max(), [&](const Key& key, ByteSpan data) {
        any_item = true;
        switch (key.type) {
          case kRootRefKey:
            if (!decode_root_ref(data)) {
              problems.push_back("catalog: malformed ROOT_REF " + std::to_string(key.objectid) +
                                 " -> " + std::to_string(key.offset));
            }
            refs[{key.objectid, key.offset}] = Bytes(data.begin(), data.end());
            break;
          case kRootBackrefKey:
            backrefs[{key.offset, key.objectid}] = Bytes(data.begin(), data.end());
            break;
          case kSubvolInfoKey:
            if (auto info = decode_subvolume_info(data); !info) {
              problems.push_back("catalog: " + subvolume_name(key.objectid) + ": " +
                                 info.error().message());
            }
            infos.insert(key.objectid);
            break;
          case kDeadRootKey:
            dead.insert(key.offset);
            break;
          default:
            break;
        }
        return true;
      }));
  for (const auto& [edge, data] : refs) {
    auto back = backrefs.find(edge);
    if (back == backrefs.end()) {
      problems.push_back("catalog: ROOT_REF " + std::to_string(edge.first) + " -> " +
                         std::to_string(edge.second) + " has no ROOT_BACKREF");
    } else if (back->second != data) {
      problems.push_back("catalog: ROOT_REF and ROOT_BACKREF of " + subvolume_name(edge.second) +
                         " differ");
    }
    if (!live_trees.contains(edge.first) || dead.contains(edge.first)) {
      problems.push_back("catalog: " + subvolume_name(edge.second) +
                         " is named in a tree that is gone: " + std::to_string(edge.first));
    }
  }
  std::map<uint64_t, int> names;
  for (const auto& [edge, data] : backrefs) {
    if (!refs.contains(edge)) {
      problems.push_back("catalog: ROOT_BACKREF of " + subvolume_name(edge.second) +
                         " has no ROOT_REF");
    }
    ++names[edge.second];
  }
  // Without the feature bit, trees 256 and up are the engine's own clones
  // (format version 1 images made before subvolumes); with it, every one
  // is a subvolume.
  const bool subvolume_image = (engine_.superblock().incompat_flags & kIncompatSubvolumes) != 0;
  for (uint64_t id : live_trees) {
    if (id < kFirstFreeTreeId) continue;
    if (!subvolume_image && !infos.contains(id) && !names.contains(id) && !dead.contains(id)) {
      continue;
    }
    if (!infos.contains(id))
      problems.push_back("catalog: " + subvolume_name(id) + " has no SUBVOL_INFO");
    const int named = names[id];
    const bool is_dead_root = dead.contains(id);
    if (named > 1) problems.push_back("catalog: " + subvolume_name(id) + " has several names");
    if (named == 0 && !is_dead_root) {
      problems.push_back("catalog: " + subvolume_name(id) + " has no name and is not deleted");
    }
    if (named > 0 && is_dead_root) {
      problems.push_back("catalog: " + subvolume_name(id) + " is deleted but still named");
    }
  }
  for (uint64_t id : infos) {
    if (!live_trees.contains(id)) {
      problems.push_back("catalog: SUBVOL_INFO of " + subvolume_name(id) + ", whose tree is gone");
    }
  }
  for (const auto& [edge, data] : backrefs) {
    if (!live_trees.contains(edge.second)) {
      problems.push_back("catalog: a name of " + subvolume_name(edge.second) +
                         ", whose tree is gone");
    }
  }
  for (uint64_t id : dead) {
    if (!live_trees.contains(id)) {
      problems.push_back("catalog: dead root " + std::to_string(id) + " has no tree");
    }
  }
  if (any_item && !subvolume_image && !engine_.in_transaction()) {
    problems.push_back("catalog: subvolume items without the incompat bit subvolumes");
  }
  return ok();
}

}  // namespace ecfs::store
