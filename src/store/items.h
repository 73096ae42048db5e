// Encodings of the items the engine itself reads and writes (docs/FORMAT.md,
// "Trees and items"): root items in the root tree, extent items and data
// back references in the extent tree, and the head of a file extent item
// that names a data extent. All little-endian, fixed size; decoders reject a
// wrong size with EUCLEAN (the on-disk structure is inconsistent).
#pragma once

#include <compare>
#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"
#include "store/btree.h"
#include "store/format.h"

namespace ecfs::store {

// ROOT_ITEM, key (tree id, ROOT_ITEM, 0):
//   bytenr u64 | generation u64 | level u8 | reserved[7] | refs u64 |
//   last_snapshot u64 | flags u64
struct RootItem {
  RootRef root;
  // How many names (subvolume entries) refer to the tree; 1 when created.
  uint64_t refs = 1;
  // The generation in which this tree was last cloned (or cloned from): its
  // nodes written at or before it may be shared (btrfs root_item.last_snapshot).
  uint64_t last_snapshot = 0;
  uint64_t flags = 0;
  friend bool operator==(const RootItem&, const RootItem&) = default;
};
inline constexpr size_t kRootItemSize = 48;
Bytes encode_root_item(const RootItem& item);
Result<RootItem> decode_root_item(ByteSpan data);

// Extent item flags (btrfs BTRFS_EXTENT_FLAG_DATA / _TREE_BLOCK).
inline constexpr uint64_t kExtentFlagData = 1;
inline constexpr uint64_t kExtentFlagTreeBlock = 2;

// EXTENT_ITEM (data, key (bytenr, EXTENT_ITEM, length)) and METADATA_ITEM
// (tree node, key (bytenr, METADATA_ITEM, level)):
//   refs u64 | generation u64 | flags u64 | owner u64 | level u8 | reserved[7]
// For a tree node, refs counts the parent pointers and root references that
// name it (Rodeh); owner is the tree that wrote it. For a data extent, refs
// is the sum of the counts of its EXTENT_DATA_REF items and owner is 0.
struct ExtentItem {
  uint64_t refs = 0;
  uint64_t generation = 0;  // transaction that allocated the extent
  uint64_t flags = 0;
  uint64_t owner = 0;
  uint8_t level = 0;
  friend bool operator==(const ExtentItem&, const ExtentItem&) = default;
};
inline constexpr size_t kExtentItemSize = 40;
Bytes encode_extent_item(const ExtentItem& item);
Result<ExtentItem> decode_extent_item(ByteSpan data);

// One referrer of (part of) a data extent: the file extent item with key
// (objectid, EXTENT_DATA, offset) in a leaf written by tree `root`, covering
// `length` bytes starting `extent_offset` bytes into the extent.
struct DataRef {
  uint64_t root = 0;
  uint64_t objectid = 0;
  uint64_t offset = 0;
  uint64_t extent_offset = 0;
  uint64_t length = 0;
  friend auto operator<=>(const DataRef&, const DataRef&) = default;
};
// EXTENT_DATA_REF, key (bytenr, EXTENT_DATA_REF, data_ref_hash(ref) + probe):
//   root u64 | objectid u64 | offset u64 | extent_offset u64 | length u64 |
//   count u64
// On a hash collision the next free key offset is used, so readers compare
// the stored reference rather than trust the hash.
struct DataRefItem {
  DataRef ref;
  uint64_t count = 0;
  friend bool operator==(const DataRefItem&, const DataRefItem&) = default;
};
inline constexpr size_t kDataRefItemSize = 48;
Bytes encode_data_ref_item(const DataRefItem& item);
Result<DataRefItem> decode_data_ref_item(ByteSpan data);
// FNV-1a 64 over the 40-byte little-endian encoding of `ref`.
uint64_t data_ref_hash(const DataRef& ref);

// The first 32 bytes of every EXTENT_DATA item's data, which the engine reads
// to keep data extent reference counts right when leaves are shared or
// dropped; the rest of the item belongs to the filesystem layer:
//   disk_bytenr u64 | disk_length u64 | extent_offset u64 | length u64
// disk_bytenr 0 means a hole (no extent).
struct FileExtentRef {
  uint64_t disk_bytenr = 0;
  uint64_t disk_length = 0;
  uint64_t extent_offset = 0;
  uint64_t length = 0;
  friend bool operator==(const FileExtentRef&, const FileExtentRef&) = default;
};
inline constexpr size_t kFileExtentRefSize = 32;
// Writes the 32-byte head into the front of `out`. REQUIRES: out.size() >= 32.
void encode_file_extent_ref(const FileExtentRef& ref, MutableByteSpan out);
Bytes encode_file_extent_ref(const FileExtentRef& ref);
// EUCLEAN when the item is shorter than 32 bytes or the range is impossible.
Result<FileExtentRef> decode_file_extent_ref(ByteSpan item_data);

}  // namespace ecfs::store
