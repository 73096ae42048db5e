// The subvolume catalog: items of the root tree that name subvolumes and
// snapshots, say where each appears in the namespace of another, and keep
// deleted ones until their trees are dropped (docs/FORMAT.md, "Subvolumes").
// Shapes follow btrfs (ROOT_REF, ROOT_BACKREF, dead roots as ORPHAN items
// of the root tree); every item is behind the incompat feature bit
// `subvolumes` (superblock.h kIncompatSubvolumes). The catalog holds stored
// names only: the name as the parent directory stores it, which in an
// encrypted directory is ciphertext.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::store {

// Item types of the root tree beside ROOT_ITEM (tree_ids.h).
// (child tree, ROOT_BACKREF, parent tree) -> RootRefItem: where the child
// appears.
inline constexpr uint8_t kRootBackrefKey = 144;
// (parent tree, ROOT_REF, child tree) -> RootRefItem: the same, seen from the
// parent, so that a listing of a tree's subvolumes is one range.
inline constexpr uint8_t kRootRefKey = 156;
// (tree, SUBVOL_INFO, 0) -> SubvolumeInfo. 136 lies between btrfs's ROOT_ITEM
// (132) and ROOT_BACKREF (144), where btrfs defines no type.
inline constexpr uint8_t kSubvolInfoKey = 136;
// (kDeadRootObjectid, ORPHAN_ITEM, tree) -> empty: tree was deleted and is
// being dropped (btrfs keeps dead roots the same way).
inline constexpr uint8_t kDeadRootKey = 48;
inline constexpr uint64_t kDeadRootObjectid = static_cast<uint64_t>(-5);

// RootRefItem: dirid u64 | index u64 | name_len u16 | name. The directory of
// the parent tree that holds the entry, the entry's DIR_INDEX number, and
// its name as stored (1..255 bytes).
struct RootRefItem {
  uint64_t dirid = 0;
  uint64_t index = 0;
  Bytes name;
  friend bool operator==(const RootRefItem&, const RootRefItem&) = default;
};
Bytes encode_root_ref(const RootRefItem& item);
// EUCLEAN for a malformed item (short, a length that does not add up, an
// empty or over-long name).
Result<RootRefItem> decode_root_ref(ByteSpan data);

inline constexpr size_t kUuidSize = 16;
using Uuid = std::array<uint8_t, kUuidSize>;

// SubvolumeInfo flags.
inline constexpr uint64_t kSubvolReadOnly = 1;  // btrfs BTRFS_ROOT_SUBVOL_RDONLY

// SubvolumeInfo (96 bytes): flags u64 | uuid[16] | parent_uuid[16] |
// created_generation u64 | source_generation u64 | otime_sec i64 |
// otime_nsec u32 | reserved[20].
//   uuid: the subvolume's own, random. parent_uuid: the uuid of the tree a
//   snapshot was taken of (zero for a new subvolume): the lineage that
//   incremental send checks. created_generation: the transaction that made
//   it. source_generation: the source's last committed generation when the
//   snapshot was taken (0 for a new subvolume).
struct SubvolumeInfo {
  uint64_t flags = 0;
  Uuid uuid{};
  Uuid parent_uuid{};
  uint64_t created_generation = 0;
  uint64_t source_generation = 0;
  int64_t otime_sec = 0;
  uint32_t otime_nsec = 0;
  bool read_only() const { return flags & kSubvolReadOnly; }
  friend bool operator==(const SubvolumeInfo&, const SubvolumeInfo&) = default;
};
inline constexpr size_t kSubvolumeInfoSize = 96;
Bytes encode_subvolume_info(const SubvolumeInfo& info);
// EUCLEAN for a wrong size, unknown flags or nsec >= 10^9.
Result<SubvolumeInfo> decode_subvolume_info(ByteSpan data);

}  // namespace ecfs::store
