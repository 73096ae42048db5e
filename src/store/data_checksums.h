// Per-sector data checksums in the CSUM_TREE (docs/FORMAT.md "Data
// checksums"), after btrfs's csum tree (fs/btrfs/file-item.c).
//
// Layout: EXTENT_CSUM items keyed (kExtentCsumObjectid, EXTENT_CSUM, disk
// bytenr of the first sector covered); the item data is the checksums of
// consecutive 4 KiB sectors, checksum_size(type) bytes each (not the padded
// 32-byte field used in node headers). Items never overlap; adjacent runs
// are merged into one item up to max_csum_item_sectors, so a lookup for a
// sector takes the item with the greatest key <= bytenr and checks that it
// reaches the sector.
//
// Checksums are over the bytes on disk: for encrypted files that is the
// ciphertext, which the layer above passes in; nothing here ever sees
// plaintext (DESIGN.md "Security model").
//
// These functions work on a BTree handle and change it only through its
// insert / remove (copy-on-write); the Engine wraps them (Engine::write_data,
// read_data, check). Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "store/btree.h"
#include "store/format.h"

namespace ecfs::store {

// The most sectors one EXTENT_CSUM item covers: a quarter of a leaf's item
// space, so an item is cheap to rewrite and several share a leaf (btrfs also
// bounds csum items by the leaf size, MAX_CSUM_ITEMS). At least one.
size_t max_csum_item_sectors(uint32_t node_size, ChecksumType type);

// The checksums of the sectors of `data`, concatenated (checksum_size(type)
// bytes each). REQUIRES: data.size() is a multiple of kSectorSize.
Bytes compute_sector_checksums(ChecksumType type, ByteSpan data);
// The same into `sums`. REQUIRES: sums.size() matches.
void compute_sector_checksums_into(ChecksumType type, ByteSpan data, MutableByteSpan sums);

// Records `sums` (concatenated, as compute_sector_checksums returns) for the
// sectors from `bytenr` on, replacing any checksums those sectors had, and
// merging with an adjacent item that has room. EINVAL for an unaligned
// bytenr or a `sums` size that is not a whole number of checksums.
Status put_data_checksums(BTree& csum_tree, uint32_t node_size, ChecksumType type, uint64_t bytenr,
                          ByteSpan sums);

// Deletes the checksums of every sector in [bytenr, bytenr + length),
// trimming or splitting items that reach outside the range. Changes nothing
// (no copy-on-write) when the range has no checksums.
Status delete_data_checksums(BTree& csum_tree, ChecksumType type, uint64_t bytenr, uint64_t length);

// Gives the sectors of [to, to + length) the checksums that the sectors of
// [from, from + length) have (sectors without one stay without), for moving
// identical bytes (relocation). The source's checksums stay; the commit that
// frees the source extent deletes them. Ranges must not overlap (EINVAL).
Status copy_data_checksums(BTree& csum_tree, uint32_t node_size, ChecksumType type, uint64_t from,
                           uint64_t to, uint64_t length);

// The checksums recorded for the sectors of [bytenr, bytenr + length).
struct SectorChecksums {
  uint64_t bytenr = 0;
  Bytes sums;                 // checksum_size bytes per sector; zero where absent
  std::vector<bool> present;  // one per sector
};
// EUCLEAN for a malformed item (empty, or not a whole number of checksums).
Result<SectorChecksums> find_data_checksums(const BTree& csum_tree, ChecksumType type,
                                            uint64_t bytenr, uint64_t length);

// Checks every sector of `data` (read from `checksums.bytenr`) against
// `checksums`. EIO naming the first bad sector's byte offset: "data checksum
// mismatch" or "no checksum" (the filesystem reads only sectors it wrote, so
// a missing checksum means the image is damaged, never "unchecked").
Status verify_data_sectors(ChecksumType type, ByteSpan data, const SectorChecksums& checksums);

}  // namespace ecfs::store
