// Well-known tree ids and item types of the ecfs trees (docs/FORMAT.md,
// "Trees and items"). Numbers follow btrfs (include/uapi/linux/btrfs_tree.h)
// where the concept is the same, so that tools and readers familiar with
// btrfs recognise them. Every value is stored in images and can never change.
#pragma once

#include <cstdint>

namespace ecfs::store {

// Tree ids (the `owner` of a tree's nodes and the objectid of its ROOT_ITEM).
inline constexpr uint64_t kRootTreeId = 1;        // points at every other tree
inline constexpr uint64_t kExtentTreeId = 2;      // reference counts of extents
inline constexpr uint64_t kFsTreeId = 5;          // the top-level subvolume
inline constexpr uint64_t kCsumTreeId = 7;        // data checksums
inline constexpr uint64_t kFreeSpaceTreeId = 10;  // unallocated space (compat_ro)
// Protectors and wrapped master keys (compat kCompatProtectors): public
// records, outside every subvolume, so snapshots and backups never lose them
// (fscrypt/protector.h).
inline constexpr uint64_t kProtectorTreeId = 11;
// Subvolumes and snapshots get ids from here on (btrfs
// BTRFS_FIRST_FREE_OBJECTID).
inline constexpr uint64_t kFirstFreeTreeId = 256;

// True for trees that are never cloned: their nodes always have exactly one
// reference, so copy-on-write never needs to look their counts up.
inline constexpr bool is_unshared_tree(uint64_t tree_id) {
  return tree_id == kRootTreeId || tree_id == kExtentTreeId || tree_id == kFreeSpaceTreeId ||
         tree_id == kProtectorTreeId;
}

// Trees that describe the whole device rather than one subvolume: the root,
// extent, free-space, protector and checksum trees. They are never cloned or dropped (a clone of
// the checksum tree would claim the same sectors twice).
inline constexpr bool is_device_tree(uint64_t tree_id) {
  return is_unshared_tree(tree_id) || tree_id == kCsumTreeId;
}

// Item types (the `type` byte of a Key).
// A file extent: key (inode, EXTENT_DATA, file offset); its data begins with
// a FileExtentRef naming the data extent (items.h).
inline constexpr uint8_t kExtentDataKey = 108;
// Checksums of data sectors: key (EXTENT_CSUM objectid, EXTENT_CSUM, bytenr).
inline constexpr uint8_t kExtentCsumKey = 128;
// In the root tree: key (tree id, ROOT_ITEM, 0) -> RootItem.
inline constexpr uint8_t kRootItemKey = 132;
// In the extent tree: key (bytenr, EXTENT_ITEM, length) for a data extent.
inline constexpr uint8_t kExtentItemKey = 168;
// In the extent tree: key (bytenr, METADATA_ITEM, level) for a tree node
// (btrfs "skinny metadata": the length is the node size).
inline constexpr uint8_t kMetadataItemKey = 169;
// Reserved for back references of tree blocks (btrfs TREE_BLOCK_REF); not
// written by format version 1, which records only the owner in the
// METADATA_ITEM.
inline constexpr uint8_t kTreeBlockRefKey = 176;
// In the extent tree: key (bytenr, EXTENT_DATA_REF, hash of the reference)
// -> DataRefItem, one per distinct referrer of a data extent.
inline constexpr uint8_t kExtentDataRefKey = 178;

// In the free-space tree: key (start, FREE_SPACE_EXTENT, length), no data,
// one per maximal unallocated range (btrfs BTRFS_FREE_SPACE_EXTENT_KEY).
inline constexpr uint8_t kFreeSpaceExtentKey = 199;

// In the protector tree: key (protector id, PROTECTOR, 0) -> ProtectorRecord,
// and (protector id, WRAPPED_KEY, first 8 bytes of the key identifier) ->
// WrappedKeyRecord; ids and identifier bytes read as little-endian u64.
inline constexpr uint8_t kProtectorItemKey = 212;
inline constexpr uint8_t kWrappedKeyItemKey = 213;

// The objectid of checksum items (btrfs BTRFS_EXTENT_CSUM_OBJECTID, -10).
inline constexpr uint64_t kExtentCsumObjectid = static_cast<uint64_t>(-10);

}  // namespace ecfs::store
