// Reading a file's extent map: the EXTENT_DATA items of one inode in a
// filesystem tree (fs/items.h FileExtentItem), and the range arithmetic
// FileData uses to combine them with its buffer (which sectors are
// allocated, which are holes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "base/error.h"
#include "fs/dirty_buffer.h"
#include "fs/items.h"
#include "store/btree.h"

namespace ecfs::fs {

// An EXTENT_DATA item and the file offset (its key offset) it starts at.
struct PlacedExtent {
  uint64_t offset = 0;
  FileExtentItem item;
  uint64_t end() const { return offset + item.length; }
};

// The extent items of `ino` that overlap [start, end), in file order (the
// first may begin before `start`), at most `max_count` of them. EUCLEAN for
// a malformed item, or for items that overlap or are unaligned.
Result<std::vector<PlacedExtent>> extents_in(const store::BTree& tree, uint64_t ino, uint64_t start,
                                             uint64_t end,
                                             size_t max_count = std::numeric_limits<size_t>::max());

// The parts of [start, end) that `extents` cover, in order, merged where
// they touch.
std::vector<FileRange> ranges_of(const std::vector<PlacedExtent>& extents, uint64_t start,
                                 uint64_t end);

// The union of two sorted lists of disjoint ranges, sorted and merged.
std::vector<FileRange> merge_ranges(const std::vector<FileRange>& a,
                                    const std::vector<FileRange>& b);
// What `covered` (sorted, disjoint) leaves of [start, end).
std::vector<FileRange> complement(const std::vector<FileRange>& covered, uint64_t start,
                                  uint64_t end);
// The total length of `ranges`.
uint64_t total_length(const std::vector<FileRange>& ranges);

}  // namespace ecfs::fs
