#include "cli/store_text.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "base/bytes.h"
#include "fs/tree_contents.h"
#include "store/image_origin.h"
#include "store/subvolume_items.h"
#include "store/superblock.h"
#include "store/tree_ids.h"

namespace ecfs::cli {

std::string format_uuid(const Fsid& fsid) {
  const std::string hex = to_hex(fsid);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

Result<Fsid> parse_uuid(std::string_view text) {
  const auto bad = [&] {
    return fail(EINVAL, "invalid UUID '" + std::string(text) +
                            "' (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
  };
  if (text.size() != 36) return bad();
  std::string hex;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_position != (text[i] == '-')) return bad();
    if (!dash_position) hex.push_back(text[i]);
  }
  auto bytes = from_hex(hex);
  if (!bytes || bytes->size() != store::kFsidSize) return bad();
  Fsid fsid;
  std::copy(bytes->begin(), bytes->end(), fsid.begin());
  return fsid;
}

std::string_view tree_name(uint64_t id) {
  switch (id) {
    case store::kRootTreeId:
      return "ROOT_TREE";
    case store::kExtentTreeId:
      return "EXTENT_TREE";
    case store::kFsTreeId:
      return "FS_TREE";
    case store::kCsumTreeId:
      return "CSUM_TREE";
    case store::kFreeSpaceTreeId:
      return "FREE_SPACE_TREE";
    case store::kProtectorTreeId:
      return "PROTECTOR_TREE";
    default:
      return id >= store::kFirstFreeTreeId ? "SUBVOLUME" : "TREE";
  }
}

std::string_view item_type_name(uint8_t type) {
  switch (type) {
    case store::kExtentDataKey:
      return "EXTENT_DATA";
    case store::kExtentCsumKey:
      return "EXTENT_CSUM";
    case store::kRootItemKey:
      return "ROOT_ITEM";
    case store::kExtentItemKey:
      return "EXTENT_ITEM";
    case store::kMetadataItemKey:
      return "METADATA_ITEM";
    case store::kTreeBlockRefKey:
      return "TREE_BLOCK_REF";
    case store::kExtentDataRefKey:
      return "EXTENT_DATA_REF";
    case store::kRootRefKey:
      return "ROOT_REF";
    case store::kRootBackrefKey:
      return "ROOT_BACKREF";
    case store::kSubvolInfoKey:
      return "SUBVOL_INFO";
    case store::kDeadRootKey:
      return "DEAD_ROOT";
    case store::kFreeSpaceExtentKey:
      return "FREE_SPACE_EXTENT";
    case store::kPersistentItemKey:
      return "PERSISTENT_ITEM";
    case store::kProtectorItemKey:
      return "PROTECTOR";
    case store::kWrappedKeyItemKey:
      return "WRAPPED_KEY";
    default:
      return "UNKNOWN";
  }
}

bool is_filesystem_tree(uint64_t tree_id) {
  return tree_id == store::kFsTreeId || tree_id >= store::kFirstFreeTreeId;
}

std::string_view item_type_name(uint64_t tree_id, uint8_t type) {
  return is_filesystem_tree(tree_id) ? fs::fs_item_type_name(type) : item_type_name(type);
}

std::string feature_names(FeatureMask mask, uint64_t flags) {
  struct Feature {
    FeatureMask mask;
    uint64_t bit;
    const char* name;
  };
  static constexpr Feature kFeatures[] = {
      {FeatureMask::kIncompat, store::kIncompatLargeXattrValues, "large_xattr_values"},
      {FeatureMask::kIncompat, store::kIncompatSubvolumes, "subvolumes"},
      {FeatureMask::kIncompat, store::kIncompatKeyRotation, "key_rotation"},
      {FeatureMask::kCompatRo, store::kCompatRoFreeSpaceTree, "free_space_tree"},
      {FeatureMask::kCompat, store::kCompatImageOrigin, "image_origin"},
      {FeatureMask::kCompat, store::kCompatProtectors, "protectors"},
  };
  std::string names;
  const auto add = [&](const std::string& name) { names += (names.empty() ? "" : ", ") + name; };
  uint64_t unknown = flags;
  for (const Feature& feature : kFeatures) {
    if (feature.mask != mask || (flags & feature.bit) == 0) continue;
    add(feature.name);
    unknown &= ~feature.bit;
  }
  if (unknown != 0) {
    char text[24];
    std::snprintf(text, sizeof text, "0x%" PRIx64, unknown);
    add(std::string("unknown ") + text);
  }
  return names;
}

std::string key_text(uint64_t tree_id, const store::Key& key) {
  const std::string_view name = item_type_name(tree_id, key.type);
  std::string type(name);
  if (name == "UNKNOWN") type += "/" + std::to_string(key.type);
  return "(" + std::to_string(key.objectid) + " " + type + " " + std::to_string(key.offset) + ")";
}

}  // namespace ecfs::cli
