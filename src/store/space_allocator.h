// SpaceAllocator: the free-space map of one device, in memory.
//
// The device is divided into reserved areas (superblock copies and the boot
// area before the first one), allocated extents, free space and pinned space.
// Pinned space was freed by the running transaction: the last committed trees
// may still point into it, so it becomes allocatable only after the
// transaction commits (unpin_all). This is what lets a crash at any point
// fall back to the last committed generation (DESIGN.md "Storage engine
// shape"; btrfs pins freed extents until the transaction's commit finishes).
//
// Allocation is next fit with one cursor per alignment class, so successive
// tree nodes and successive data extents land next to each other. At mount
// the map is loaded from the free-space tree (from_free_ranges) or, on an
// image without one, rebuilt from the extent tree with mark_allocated().
//
// The allocator also remembers which ranges changed between allocated and
// unallocated (free or pinned) since take_changed() was last called: the
// commit rewrites the free-space tree over exactly those ranges.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "base/error.h"

namespace ecfs::store {

struct ByteRange {
  uint64_t start = 0;
  uint64_t length = 0;
  uint64_t end() const { return start + length; }
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

// Adds [start, end) to `ranges` (start -> end, disjoint), merging every
// range it overlaps or touches.
void add_merged(std::map<uint64_t, uint64_t>& ranges, uint64_t start, uint64_t end);

class SpaceAllocator {
 public:
  // Everything in [0, device_size) is free except the `reserved` ranges.
  SpaceAllocator(uint64_t device_size, const std::vector<ByteRange>& reserved);
  // The map of a device where exactly `free` is free (loading a free-space
  // tree). EUCLEAN if a range is empty, out of order, overlaps or touches
  // the previous one (the tree stores maximal ranges), lies past the device
  // or in a reserved area.
  static Result<SpaceAllocator> from_free_ranges(uint64_t device_size,
                                                 const std::vector<ByteRange>& reserved,
                                                 const std::vector<ByteRange>& free);

  // An extent of `length` bytes whose start is a multiple of `alignment`
  // (a power of two). EINVAL for a zero length or bad alignment; ENOSPC when
  // no free range can hold it.
  Result<uint64_t> allocate(uint64_t length, uint64_t alignment);

  // Marks a free range as allocated (rebuilding the map at mount). EUCLEAN if
  // any part of it is not free: the extent tree describes overlapping extents
  // or an extent inside a reserved area.
  Status mark_allocated(uint64_t start, uint64_t length);

  // Frees an allocated range, reusable only after unpin_all(). EUCLEAN if any
  // part of it is free or pinned already (a double free).
  Status pin(uint64_t start, uint64_t length);
  // Returns every pinned range to the free space (after a commit), and
  // forgets the changed ranges (what was not taken by then has no
  // free-space tree to go to).
  void unpin_all();

  // The ranges (start -> end, coalesced) whose state changed between
  // allocated and unallocated since the last call, which clears them.
  std::map<uint64_t, uint64_t> take_changed();
  // Counts the whole device as changed (a free-space tree being created).
  void mark_all_changed();
  // The unallocated (free or pinned) space inside [start, end), as maximal
  // ranges: free and pinned neighbours merged, as a free-space tree records
  // them (pinned space is free once the transaction commits).
  std::vector<ByteRange> unallocated_in(uint64_t start, uint64_t end) const;
  // The maximal unallocated range that contains byte `offset`, if any.
  std::optional<ByteRange> unallocated_around(uint64_t offset) const;

  uint64_t device_size() const { return device_size_; }
  uint64_t free_bytes() const { return free_bytes_; }
  uint64_t pinned_bytes() const { return pinned_bytes_; }
  uint64_t reserved_bytes() const { return reserved_bytes_; }
  // Bytes in allocated extents (neither free, pinned nor reserved).
  uint64_t allocated_bytes() const {
    return device_size_ - reserved_bytes_ - free_bytes_ - pinned_bytes_;
  }
  // start -> end of each free range, disjoint and coalesced.
  const std::map<uint64_t, uint64_t>& free_ranges() const { return free_; }
  const std::map<uint64_t, uint64_t>& pinned_ranges() const { return pinned_; }
  const std::vector<ByteRange>& reserved_ranges() const { return reserved_; }

  // True when [start, start + length) is entirely free.
  bool is_free(uint64_t start, uint64_t length) const;

 private:
  // Inserts [start, end) into `ranges`, merging neighbours. REQUIRES: no overlap.
  static void insert_range(std::map<uint64_t, uint64_t>& ranges, uint64_t start, uint64_t end);
  // Removes [start, end) from `ranges`. REQUIRES: covered by one range.
  static void remove_range(std::map<uint64_t, uint64_t>& ranges, uint64_t start, uint64_t end);
  // The range of `ranges` that contains [start, end), or ranges.end().
  static std::map<uint64_t, uint64_t>::const_iterator covering(
      const std::map<uint64_t, uint64_t>& ranges, uint64_t start, uint64_t end);
  static bool overlaps(const std::map<uint64_t, uint64_t>& ranges, uint64_t start, uint64_t end);
  // Adds [start, end) to changed_, merging whatever it overlaps or touches.
  void note_changed(uint64_t start, uint64_t end);

  uint64_t device_size_;
  std::vector<ByteRange> reserved_;
  uint64_t reserved_bytes_ = 0;
  std::map<uint64_t, uint64_t> free_;
  std::map<uint64_t, uint64_t> pinned_;
  uint64_t free_bytes_ = 0;
  uint64_t pinned_bytes_ = 0;
  std::map<uint64_t, uint64_t> cursors_;  // alignment -> where the next search starts
  std::map<uint64_t, uint64_t> changed_;  // see take_changed()
};

}  // namespace ecfs::store
