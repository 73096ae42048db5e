#include "fs/extent_map.h"

#include <algorithm>
#include <string>

#include "store/btree_cursor.h"
#include "store/format.h"

namespace ecfs::fs {
namespace {

bool is_extent_of(const store::Key& key, uint64_t ino) {
  return key.objectid == ino && key.type == kExtentDataKey;
}

}  // namespace

Result<std::vector<PlacedExtent>> extents_in(const store::BTree& tree, uint64_t ino, uint64_t start,
                                             uint64_t end, size_t max_count) {
  std::vector<PlacedExtent> out;
  if (start >= end || max_count == 0) return out;
  store::BTreeCursor cursor = tree.cursor();
  // The item that starts at or before `start` may reach into the range.
  const store::Key first{ino, kExtentDataKey, start};
  ECFS_TRY(cursor.seek_at_or_before(first));
  if (!cursor.valid() || !is_extent_of(cursor.key(), ino)) ECFS_TRY(cursor.seek(first));
  uint64_t previous_end = 0;
  while (cursor.valid() && is_extent_of(cursor.key(), ino) && cursor.key().offset < end) {
    const uint64_t offset = cursor.key().offset;
    auto item = decode_file_extent_item(cursor.data());
    if (!item) return std::unexpected(item.error());
    if (offset % store::kSectorSize != 0 || item->length > UINT64_MAX - offset ||
        (!out.empty() && offset < previous_end)) {
      return fail(EUCLEAN, "inode " + std::to_string(ino) + ": extent item at offset " +
                               std::to_string(offset) + " is unaligned or overlaps another");
    }
    previous_end = offset + item->length;
    if (previous_end > start) {
      out.push_back({offset, std::move(*item)});
      if (out.size() == max_count) break;
    }
    ECFS_TRY(cursor.next());
  }
  return out;
}

std::vector<FileRange> ranges_of(const std::vector<PlacedExtent>& extents, uint64_t start,
                                 uint64_t end) {
  std::vector<FileRange> out;
  for (const PlacedExtent& extent : extents) {
    const FileRange piece{std::max(start, extent.offset), std::min(end, extent.end())};
    if (piece.start >= piece.end) continue;
    if (!out.empty() && out.back().end == piece.start) {
      out.back().end = piece.end;
    } else {
      out.push_back(piece);
    }
  }
  return out;
}

std::vector<FileRange> merge_ranges(const std::vector<FileRange>& a,
                                    const std::vector<FileRange>& b) {
  std::vector<FileRange> all;
  all.reserve(a.size() + b.size());
  std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(all),
             [](const FileRange& x, const FileRange& y) { return x.start < y.start; });
  std::vector<FileRange> out;
  for (const FileRange& range : all) {
    if (!out.empty() && range.start <= out.back().end) {
      out.back().end = std::max(out.back().end, range.end);
    } else {
      out.push_back(range);
    }
  }
  return out;
}

std::vector<FileRange> complement(const std::vector<FileRange>& covered, uint64_t start,
                                  uint64_t end) {
  std::vector<FileRange> out;
  uint64_t pos = start;
  for (const FileRange& range : covered) {
    if (range.end <= pos) continue;
    if (range.start >= end) break;
    if (range.start > pos) out.push_back({pos, range.start});
    pos = std::max(pos, range.end);
  }
  if (pos < end) out.push_back({pos, end});
  return out;
}

uint64_t total_length(const std::vector<FileRange>& ranges) {
  uint64_t total = 0;
  for (const FileRange& range : ranges) total += range.length();
  return total;
}

}  // namespace ecfs::fs
