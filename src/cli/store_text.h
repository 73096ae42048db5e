// How the store's identifiers read on the command line: filesystem UUIDs,
// well-known tree ids and item types (names as btrfs-progs prints the same
// concepts, tree_ids.h), shared by mkfs, fsck and inspect.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"
#include "store/format.h"

namespace ecfs::cli {

using Fsid = std::array<uint8_t, store::kFsidSize>;

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case (RFC 9562 section 4).
std::string format_uuid(const Fsid& fsid);
// The form above in either case. EINVAL for anything else.
Result<Fsid> parse_uuid(std::string_view text);

// "ROOT_TREE", "EXTENT_TREE", "FS_TREE", "CSUM_TREE", "FREE_SPACE_TREE",
// "PROTECTOR_TREE", "SUBVOLUME" (ids from 256) or "TREE" for other ids.
std::string_view tree_name(uint64_t id);
// "ROOT_ITEM", "EXTENT_ITEM", ... or "UNKNOWN" for a type the engine does
// not define. The engine's names only: for an item of a known tree use the
// overload below, which also knows the filesystem's.
std::string_view item_type_name(uint8_t type);

// True for the trees that hold filesystem items (docs/FORMAT.md,
// "Filesystem items"): FS_TREE and every subvolume, snapshot or clone (ids
// from 256).
bool is_filesystem_tree(uint64_t tree_id);
// The name of item type `type` in tree `tree_id`: the filesystem's names
// ("INODE_ITEM", "DIR_ITEM", "FSCRYPT_INODE_CTX", ...; fs/tree_contents.h)
// in a filesystem tree, the engine's (above) in any other; "UNKNOWN" for a
// type that the tree's layer does not define. Named by the tree because the
// two layers' numbers may overlap.
std::string_view item_type_name(uint64_t tree_id, uint8_t type);
// The superblock's three feature masks (docs/FORMAT.md "Versions and
// feature flags").
enum class FeatureMask { kIncompat, kCompatRo, kCompat };
// The names of the bits set in `flags` of `mask`, comma separated
// ("large_xattr_values, subvolumes"), with "unknown 0x..." for bits this
// build does not know; empty when none is set.
std::string feature_names(FeatureMask mask, uint64_t flags);

// "(objectid TYPE offset)" for a key of tree `tree_id`, TYPE as above, or
// "UNKNOWN/<number>" for a type without a name.
std::string key_text(uint64_t tree_id, const store::Key& key);

}  // namespace ecfs::cli
