#include "store/data_checksums.h"

#include <algorithm>
#include <map>
#include <string>

#include "store/checksum.h"
#include "store/engine.h"
#include "store/node.h"
#include "store/tree_ids.h"

namespace ecfs::store {
namespace {

Key csum_key(uint64_t bytenr) { return Key{kExtentCsumObjectid, kExtentCsumKey, bytenr}; }

bool is_csum_key(const Key& key) {
  return key.objectid == kExtentCsumObjectid && key.type == kExtentCsumKey;
}

std::string sector_name(uint64_t bytenr) {
  return "the data sector at byte offset " + std::to_string(bytenr);
}

// One EXTENT_CSUM item as read from the tree.
struct CsumItem {
  uint64_t start = 0;
  Bytes sums;
  uint64_t sectors(size_t size) const { return sums.size() / size; }
  uint64_t end(size_t size) const { return start + sectors(size) * kSectorSize; }
};

Status check_item(const Key& key, ByteSpan data, size_t size) {
  if (data.empty() || data.size() % size != 0 || key.offset % kSectorSize != 0) {
    return fail(EUCLEAN, "checksum item at " + std::to_string(key.offset) + " has " +
                             std::to_string(data.size()) + " bytes, not whole " +
                             std::to_string(size) + "-byte checksums of aligned sectors");
  }
  return ok();
}

// Calls visit(first sector's bytenr, sums) for every well-formed checksum
// item that covers part of [start, end), in key order: one floor lookup for
// an item that starts before `start`, then one range walk. The sums are a
// view into the leaf, valid during the call; the tree must not change.
template <typename Visit>
Status visit_items_overlapping(const BTree& tree, size_t size, uint64_t start, uint64_t end,
                               Visit&& visit) {
  Key first = csum_key(start);
  auto floor = tree.upper_floor(first);
  if (!floor) return std::unexpected(floor.error());
  if (*floor && is_csum_key((*floor)->key)) first = (*floor)->key;
  Status status = ok();
  ECFS_TRY(tree.for_each(first, csum_key(end - 1), [&](const Key& key, ByteSpan data) {
    if (!is_csum_key(key)) return true;
    status = check_item(key, data, size);
    if (!status) return false;
    if (key.offset + data.size() / size * kSectorSize > start) visit(key.offset, data);
    return true;
  }));
  return status;
}

// Every checksum item that covers part of [start, end), in key order, copied
// out (for callers that change the tree afterwards).
Result<std::vector<CsumItem>> items_overlapping(const BTree& tree, size_t size, uint64_t start,
                                                uint64_t end) {
  std::vector<CsumItem> items;
  ECFS_TRY(visit_items_overlapping(tree, size, start, end, [&](uint64_t item_start, ByteSpan sums) {
    items.push_back(CsumItem{item_start, Bytes(sums.begin(), sums.end())});
  }));
  return items;
}

// Checks the sectors of `data`, read from device offset `at`, against their
// entries in `checksums`. REQUIRES: [at, at + data.size()) is whole sectors
// inside the range `checksums` describes.
Status verify_sector_run(ChecksumType type, const SectorChecksums& checksums, uint64_t at,
                         ByteSpan data) {
  const size_t size = checksum_size(type);
  const size_t first = (at - checksums.bytenr) / kSectorSize;
  for (size_t sector = 0; sector * kSectorSize < data.size(); ++sector) {
    const size_t index = first + sector;
    const uint64_t sector_at = at + sector * kSectorSize;
    if (!checksums.present[index]) {
      return fail(EIO, sector_name(sector_at) +
                           " has no checksum (never written, or its checksum is lost)");
    }
    if (!checksum_matches(type, data.subspan(sector * kSectorSize, kSectorSize),
                          ByteSpan(checksums.sums).subspan(index * size, size))) {
      return fail(EIO, "data checksum mismatch in " + sector_name(sector_at));
    }
  }
  return ok();
}

// Inserts `sums` from `start` on as items of at most `max_sectors`.
Status insert_chunked(BTree& tree, size_t size, size_t max_sectors, uint64_t start, ByteSpan sums) {
  const size_t chunk = max_sectors * size;
  for (size_t offset = 0; offset < sums.size(); offset += chunk) {
    const size_t length = std::min(chunk, sums.size() - offset);
    ECFS_TRY(
        tree.insert(csum_key(start + offset / size * kSectorSize), sums.subspan(offset, length)));
  }
  return ok();
}

}  // namespace

// Writes the checksum of each sector of `data` into `sums` (checksum_size
// bytes per sector). REQUIRES: whole sectors; sums.size() matches.
void compute_sector_checksums_into(ChecksumType type, ByteSpan data, MutableByteSpan sums) {
  const size_t size = checksum_size(type);
  for (size_t sector = 0; sector * kSectorSize < data.size(); ++sector) {
    const Checksum sum = compute_checksum(type, data.subspan(sector * kSectorSize, kSectorSize));
    std::copy_n(sum.begin(), size, sums.begin() + static_cast<ptrdiff_t>(sector * size));
  }
}

size_t max_csum_item_sectors(uint32_t node_size, ChecksumType type) {
  return std::max<size_t>(1, max_item_data_size(node_size) / 4 / checksum_size(type));
}

Bytes compute_sector_checksums(ChecksumType type, ByteSpan data) {
  Bytes sums(data.size() / kSectorSize * checksum_size(type));
  compute_sector_checksums_into(type, data, sums);
  return sums;
}

Status delete_data_checksums(BTree& csum_tree, ChecksumType type, uint64_t bytenr,
                             uint64_t length) {
  if (length == 0) return ok();
  const size_t size = checksum_size(type);
  const uint64_t end = bytenr + length;
  auto items = items_overlapping(csum_tree, size, bytenr, end);
  if (!items) return std::unexpected(items.error());
  for (const CsumItem& item : *items) {
    ECFS_TRY(csum_tree.remove(csum_key(item.start)));
    // Keep the parts of the item outside the range (btrfs
    // btrfs_del_csums truncates or splits the same way).
    if (item.start < bytenr) {
      const size_t keep = (bytenr - item.start) / kSectorSize * size;
      ECFS_TRY(csum_tree.insert(csum_key(item.start), ByteSpan(item.sums).first(keep)));
    }
    if (item.end(size) > end) {
      const size_t skip = (end - item.start) / kSectorSize * size;
      ECFS_TRY(csum_tree.insert(csum_key(end), ByteSpan(item.sums).subspan(skip)));
    }
  }
  return ok();
}

Status put_data_checksums(BTree& csum_tree, uint32_t node_size, ChecksumType type, uint64_t bytenr,
                          ByteSpan sums) {
  const size_t size = checksum_size(type);
  if (bytenr % kSectorSize != 0 || sums.empty() || sums.size() % size != 0) {
    return fail(EINVAL, "checksums of " + std::to_string(sums.size()) + " bytes at " +
                            std::to_string(bytenr));
  }
  const uint64_t end = bytenr + sums.size() / size * kSectorSize;
  ECFS_TRY(delete_data_checksums(csum_tree, type, bytenr, end - bytenr));
  const size_t max_sectors = max_csum_item_sectors(node_size, type);

  // Merge with an item that ends exactly at `bytenr` and is not full, so
  // sequential writes build few, full items.
  uint64_t start = bytenr;
  Bytes merged;
  if (bytenr >= kSectorSize) {
    auto before = csum_tree.upper_floor(csum_key(bytenr - kSectorSize));
    if (!before) return std::unexpected(before.error());
    if (*before && is_csum_key((*before)->key)) {
      ECFS_TRY(check_item((*before)->key, (*before)->data, size));
      const uint64_t before_end =
          (*before)->key.offset + (*before)->data.size() / size * kSectorSize;
      if (before_end == bytenr && (*before)->data.size() / size < max_sectors) {
        start = (*before)->key.offset;
        merged = std::move((*before)->data);
        ECFS_TRY(csum_tree.remove(csum_key(start)));
      }
    }
  }
  merged.insert(merged.end(), sums.begin(), sums.end());
  // And with an item that starts exactly at `end`.
  auto after = csum_tree.find(csum_key(end));
  if (!after) return std::unexpected(after.error());
  if (*after && merged.size() / size < max_sectors) {
    ECFS_TRY(check_item(csum_key(end), **after, size));
    ECFS_TRY(csum_tree.remove(csum_key(end)));
    merged.insert(merged.end(), (*after)->begin(), (*after)->end());
  }
  return insert_chunked(csum_tree, size, max_sectors, start, merged);
}

Result<SectorChecksums> find_data_checksums(const BTree& csum_tree, ChecksumType type,
                                            uint64_t bytenr, uint64_t length) {
  const size_t size = checksum_size(type);
  SectorChecksums out;
  out.bytenr = bytenr;
  const uint64_t sectors = length / kSectorSize;
  out.sums.assign(sectors * size, 0);
  out.present.assign(sectors, false);
  if (sectors == 0) return out;
  const uint64_t end = bytenr + sectors * kSectorSize;
  // Straight from the leaves into `out`: the read path copies each checksum
  // once.
  ECFS_TRY(visit_items_overlapping(
      csum_tree, size, bytenr, end, [&](uint64_t item_start, ByteSpan sums) {
        const uint64_t from = std::max(item_start, bytenr);
        const uint64_t to = std::min(item_start + sums.size() / size * kSectorSize, end);
        const uint64_t in_item = (from - item_start) / kSectorSize;
        const uint64_t in_out = (from - bytenr) / kSectorSize;
        const uint64_t count = (to - from) / kSectorSize;
        std::copy_n(sums.begin() + static_cast<ptrdiff_t>(in_item * size), count * size,
                    out.sums.begin() + static_cast<ptrdiff_t>(in_out * size));
        std::fill_n(out.present.begin() + static_cast<ptrdiff_t>(in_out), count, true);
      }));
  return out;
}

Status copy_data_checksums(BTree& csum_tree, uint32_t node_size, ChecksumType type, uint64_t from,
                           uint64_t to, uint64_t length) {
  if (from % kSectorSize != 0 || to % kSectorSize != 0 || length % kSectorSize != 0 ||
      (from < to + length && to < from + length)) {
    return fail(EINVAL, "copying checksums of [" + std::to_string(from) + ", +" +
                            std::to_string(length) + ") to " + std::to_string(to));
  }
  const size_t size = checksum_size(type);
  auto source = find_data_checksums(csum_tree, type, from, length);
  if (!source) return std::unexpected(source.error());
  ECFS_TRY(delete_data_checksums(csum_tree, type, to, length));
  // One put per run of sectors that have checksums.
  const size_t sectors = source->present.size();
  for (size_t first = 0; first < sectors;) {
    if (!source->present[first]) {
      ++first;
      continue;
    }
    size_t last = first;
    while (last < sectors && source->present[last]) ++last;
    ECFS_TRY(
        put_data_checksums(csum_tree, node_size, type, to + first * kSectorSize,
                           ByteSpan(source->sums).subspan(first * size, (last - first) * size)));
    first = last;
  }
  return ok();
}

Status verify_data_sectors(ChecksumType type, ByteSpan data, const SectorChecksums& checksums) {
  return verify_sector_run(type, checksums, checksums.bytenr,
                           data.first(checksums.present.size() * kSectorSize));
}

// ---------------------------------------------------------------- Engine

namespace {

Status check_data_range(uint64_t bytenr, uint64_t length, uint64_t total_bytes) {
  if (length == 0 || bytenr % kSectorSize != 0 || length % kSectorSize != 0 ||
      bytenr > total_bytes || length > total_bytes - bytenr) {
    return fail(EINVAL, "data range [" + std::to_string(bytenr) + ", +" + std::to_string(length) +
                            ") is not whole sectors inside the device");
  }
  return ok();
}

// The checksums of [bytenr, bytenr + length) as a read sees them: the
// running transaction's csum tree, or the committed one outside a
// transaction.
Result<SectorChecksums> checksums_for_read(Engine& engine, uint64_t bytenr, uint64_t length) {
  const ChecksumType type = engine.superblock().checksum_type;
  if (engine.in_transaction()) {
    auto tree = engine.open_tree(kCsumTreeId);
    if (!tree) return std::unexpected(tree.error());
    return find_data_checksums(**tree, type, bytenr, length);
  }
  auto tree = engine.committed_tree(kCsumTreeId);
  if (!tree) return std::unexpected(tree.error());
  return find_data_checksums(*tree, type, bytenr, length);
}

}  // namespace

Status Engine::write_data(uint64_t bytenr, ByteSpan data, const block::CryptContext* crypt) {
  auto prepared = prepare_data_write(bytenr, data.size());
  if (!prepared) return std::unexpected(prepared.error());
  ECFS_TRY(prepared->write(data, crypt));
  return finish_data_write(*prepared);
}

Result<DataWrite> Engine::prepare_data_write(uint64_t bytenr, uint64_t length) {
  ECFS_TRY(check_in_transaction());
  ECFS_TRY(check_data_range(bytenr, length, sb_.total_bytes));
  // Only extents allocated in this transaction: they were free in the
  // committed generation, so writing them in place cannot damage it.
  auto extent = new_data_extents_.upper_bound(bytenr);
  if (extent == new_data_extents_.begin() ||
      bytenr + length > std::prev(extent)->first + std::prev(extent)->second) {
    return fail(EINVAL, "data range [" + std::to_string(bytenr) + ", +" + std::to_string(length) +
                            ") is not inside a data extent allocated in this transaction");
  }
  return DataWrite(*device_, sb_.checksum_type, bytenr, length);
}

Status Engine::finish_data_write(const DataWrite& write) {
  ECFS_TRY(check_in_transaction());
  if (!write.written()) return fail(EINVAL, "data write finished before it was written");
  auto csum_tree = open_tree(kCsumTreeId);
  if (!csum_tree) return std::unexpected(csum_tree.error());
  // The data is on the device already; commit() flushes it before the
  // superblock, so data and checksums become durable together.
  return put_data_checksums(**csum_tree, sb_.node_size, sb_.checksum_type, write.bytenr(),
                            write.sums_);
}

Result<DataRead> Engine::prepare_data_read(uint64_t bytenr, uint64_t length) {
  ECFS_TRY(check_data_range(bytenr, length, sb_.total_bytes));
  auto sums = checksums_for_read(*this, bytenr, length);
  if (!sums) return std::unexpected(std::move(sums).error());
  return DataRead(*device_, sb_.checksum_type, std::move(*sums), length);
}

Status Engine::read_data_into(uint64_t bytenr, MutableByteSpan out,
                              const block::CryptContext* crypt) {
  auto prepared = prepare_data_read(bytenr, out.size());
  if (!prepared) {
    // Whatever fails, the caller's buffer ends up zeroed, as submit_read does.
    std::fill(out.begin(), out.end(), uint8_t{0});
    return std::unexpected(std::move(prepared).error());
  }
  return prepared->read_into(out, crypt);
}

Result<Bytes> Engine::read_data(uint64_t bytenr, uint64_t length,
                                const block::CryptContext* crypt) {
  ECFS_TRY(check_data_range(bytenr, length, sb_.total_bytes));
  Bytes data(length);
  ECFS_TRY(read_data_into(bytenr, data, crypt));
  return data;
}

Status Engine::delete_checksums_if_freed(uint64_t bytenr, const DelayedRefHead& head) {
  if (head.is_tree_block || head.delta > 0 || (head.delta == 0 && !head.created)) return ok();
  auto found = find_data_extent_item(extent_tree(), bytenr);
  if (!found) return std::unexpected(found.error());
  if (*found) return ok();  // still referenced
  auto csum_tree = open_tree(kCsumTreeId);
  if (!csum_tree) return std::unexpected(csum_tree.error());
  return delete_data_checksums(**csum_tree, sb_.checksum_type, bytenr, head.length);
}

Status Engine::check_data_checksums(const RootRef& extent_root, const RootRef& csum_root,
                                    const CheckOptions& options, CheckReport& report) {
  const ChecksumType type = sb_.checksum_type;
  const size_t size = checksum_size(type);
  std::map<uint64_t, uint64_t> extents;  // data extent start -> end
  uint64_t data_bytes = 0;               // progress: total
  ECFS_TRY(BTree(*this, kExtentTreeId, extent_root)
               .for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan) {
                 if (key.type == kExtentItemKey) {
                   extents[key.objectid] = key.objectid + key.offset;
                   data_bytes += key.offset;
                 }
                 return true;
               }));
  uint64_t passed_bytes = 0;  // progress: covered by the checksum items passed
  auto report_progress = [&] {
    if (options.progress)
      options.progress({"data", std::min(passed_bytes, data_bytes), data_bytes});
  };

  // Verifies [start, end), which lies inside one data extent, in large reads.
  constexpr uint64_t kChunk = 4ull << 20;
  Bytes buffer;
  auto verify = [&](const Key& key, ByteSpan sums, uint64_t start, uint64_t end) -> Status {
    if (!options.verify_data) return ok();  // fsck --metadata-only
    for (uint64_t at = start; at < end; at += kChunk) {
      const uint64_t length = std::min(kChunk, end - at);
      buffer.resize(length);
      ECFS_TRY(device_->read(at, buffer));
      for (uint64_t sector = at; sector < at + length; sector += kSectorSize) {
        const uint64_t index = (sector - key.offset) / kSectorSize;
        ++report.data_sectors_checked;
        if (!checksum_matches(type, ByteSpan(buffer).subspan(sector - at, kSectorSize),
                              sums.subspan(index * size, size))) {
          report.problems.push_back("data checksum mismatch in " + sector_name(sector));
        }
      }
    }
    return ok();
  };

  uint64_t previous_end = 0;
  Status status = ok();
  ECFS_TRY(BTree(*this, kCsumTreeId, csum_root)
               .for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan sums) {
                 const std::string where = "checksum item at " + std::to_string(key.offset) + ": ";
                 if (!is_csum_key(key)) {
                   report.problems.push_back(where + "unexpected item type " +
                                             std::to_string(key.type) + " in the csum tree");
                   return true;
                 }
                 if (Status valid = check_item(key, sums, size); !valid) {
                   report.problems.push_back(valid.error().message());
                   return true;
                 }
                 const uint64_t end = key.offset + sums.size() / size * kSectorSize;
                 if (key.offset < previous_end) {
                   report.problems.push_back(where + "overlaps the previous checksum item");
                 }
                 previous_end = std::max(previous_end, end);
                 for (uint64_t at = key.offset; at < end;) {
                   auto next = extents.upper_bound(at);
                   if (next == extents.begin() || std::prev(next)->second <= at) {
                     const uint64_t gap_end =
                         next == extents.end() ? end : std::min(end, next->first);
                     report.problems.push_back(where + "covers [" + std::to_string(at) + ", " +
                                               std::to_string(gap_end) +
                                               "), which is not an allocated data extent");
                     at = gap_end;
                     continue;
                   }
                   const uint64_t covered_end = std::min(end, std::prev(next)->second);
                   status = verify(key, sums, at, covered_end);
                   if (!status) return false;
                   at = covered_end;
                 }
                 passed_bytes += end - key.offset;
                 report_progress();
                 return true;
               }));
  ECFS_TRY(status);
  passed_bytes = data_bytes;
  report_progress();
  return ok();
}

}  // namespace ecfs::store
