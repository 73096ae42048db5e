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

// "ROOT_TREE", "EXTENT_TREE", "FS_TREE", "CSUM_TREE", "SUBVOLUME" (ids from
// 256) or "TREE" for other ids.
std::string_view tree_name(uint64_t id);
// "ROOT_ITEM", "EXTENT_ITEM", ... or "UNKNOWN" for a type the engine does
// not define.
std::string_view item_type_name(uint8_t type);

}  // namespace ecfs::cli
