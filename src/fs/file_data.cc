#include "fs/file_data.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "store/format.h"
#include "store/items.h"

namespace ecfs::fs {
namespace {

constexpr uint64_t kSector = store::kSectorSize;
// The end of every range that runs to the end of the file.
constexpr uint64_t kToEnd = UINT64_MAX;
constexpr std::array<uint8_t, kSector> kZeroSector{};

uint64_t align_down(uint64_t x) { return x & ~(kSector - 1); }
uint64_t align_up(uint64_t x) { return align_down(x + kSector - 1); }

// EFBIG unless [offset, offset + length) ends at or before kMaxFileSize
// (the kernel's generic_write_check_limits / vfs_fallocate s_maxbytes checks).
Status check_range_end(uint64_t offset, uint64_t length) {
  if (offset > kMaxFileSize || length > kMaxFileSize - offset) {
    return fail(EFBIG, "range of " + std::to_string(length) + " bytes at offset " +
                           std::to_string(offset) + " passes the maximum file size");
  }
  return ok();
}

// "inode N at offset X: <error>", keeping the errno.
std::unexpected<Error> in_file(uint64_t ino, uint64_t offset, const Error& error) {
  return fail(error.errno_value(), "inode " + std::to_string(ino) + " at offset " +
                                       std::to_string(offset) + ": " + error.message());
}

// The longest buffered run: a run is one block of memory, and blocks of
// this size (the largest FUSE write) fill up whatever order writes come in;
// extents span touching runs, written straight from each.
constexpr uint64_t kMaxRunBytes = 1ull << 20;

FileDataOptions normalized(FileDataOptions options) {
  options.max_extent_size = std::max<uint64_t>(kSector, align_down(options.max_extent_size));
  return options;
}

// A run is at most max_extent_size long (DirtyBuffer's max_run) and takes
// at most one pool block.
uint64_t run_block_size(const FileDataOptions& options) {
  return std::min(kMaxRunBytes, options.max_extent_size);
}

}  // namespace

FileData::FileData(store::Engine& engine, uint64_t tree_id, FileDataOptions options)
    : engine_(engine),
      tree_id_(tree_id),
      options_(normalized(options)),
      // The free list holds what the reused memory allows, at least one block.
      run_memory_(run_block_size(options_),
                  std::max<uint64_t>(1, options_.reused_run_memory / run_block_size(options_))) {}

FileData::~FileData() = default;

Status FileData::check_transaction() const {
  if (!engine_.in_transaction()) return fail(EINVAL, "file data needs a running transaction");
  return ok();
}

Result<store::BTree*> FileData::open_tree() {
  ECFS_TRY(check_transaction());
  return engine_.open_tree(tree_id_);
}

Result<const store::BTree*> FileData::tree_for_reading(std::optional<store::BTree>& committed) {
  if (engine_.in_transaction()) {
    auto tree = engine_.open_tree(tree_id_);
    if (!tree) return std::unexpected(tree.error());
    return *tree;
  }
  auto tree = engine_.committed_tree(tree_id_);
  if (!tree) return std::unexpected(tree.error());
  committed.emplace(std::move(*tree));
  return &*committed;
}

DirtyBuffer* FileData::find_buffer(uint64_t ino) {
  auto it = buffers_.find(ino);
  return it == buffers_.end() ? nullptr : &it->second;
}

const DirtyBuffer* FileData::find_buffer(uint64_t ino) const {
  auto it = buffers_.find(ino);
  return it == buffers_.end() ? nullptr : &it->second;
}

DirtyBuffer& FileData::buffer_for(uint64_t ino) {
  return buffers_.try_emplace(ino, run_memory_.block_size(), &run_memory_).first->second;
}

uint64_t FileData::drop_buffered(uint64_t ino, uint64_t start, uint64_t end) {
  auto it = buffers_.find(ino);
  if (it == buffers_.end()) return 0;
  const uint64_t dropped = it->second.drop(start, end);
  dirty_bytes_ -= dropped;
  if (it->second.empty()) buffers_.erase(it);
  return dropped;
}

bool FileData::has_dirty(uint64_t ino) const { return find_buffer(ino) != nullptr; }

// ---- Extent items and their references ----

// The one place new extents are made: an extent of an encrypted inode gets
// a fresh extent key and context here (the btrfs series'
// fscrypt_prepare_new_extent), so no (key, data unit number) pair is ever
// used for two different plaintexts: an overwrite is always a new extent.
Result<FileData::PreparedExtent> FileData::prepare_extent(OperationKeys& keys, FileExtentType type,
                                                          uint64_t length) {
  std::optional<NewExtentKey> key;
  auto inode_keys = keys.get();
  if (!inode_keys) return std::unexpected(inode_keys.error());
  if (*inode_keys) {
    auto new_key = (*inode_keys)->new_extent_key();
    if (!new_key) return std::unexpected(new_key.error());
    key = std::move(*new_key);
  }
  auto bytenr = engine_.allocate_data(length);
  if (!bytenr) return std::unexpected(bytenr.error());
  PreparedExtent out;
  FileExtentItem& item = out.item;
  item.disk_bytenr = *bytenr;
  item.disk_length = length;
  item.extent_offset = 0;
  item.length = length;
  item.generation = engine_.generation();
  item.type = type;
  if (key) {
    item.encryption = ExtentEncryption::kFscrypt;
    item.context = std::move(key->context);
    out.crypter = std::move(key->crypter);
  }
  // An unreferenced new extent is freed at commit, so a failure after this
  // leaks nothing.
  return out;
}

Result<FileExtentItem> FileData::create_extent(OperationKeys& keys, FileExtentType type,
                                               uint64_t length, ByteSpan data) {
  auto prepared = prepare_extent(keys, type, length);
  if (!prepared) return std::unexpected(prepared.error());
  if (type == FileExtentType::kRegular) {
    // Data units are numbered from the start of the extent.
    const block::CryptContext crypt{prepared->crypter.get(), 0};
    ECFS_TRY(
        engine_.write_data(prepared->item.disk_bytenr, data, prepared->crypter ? &crypt : nullptr));
  }
  return std::move(prepared->item);
}

namespace {

store::DataRef data_ref(uint64_t root, uint64_t ino, uint64_t offset, const FileExtentItem& item) {
  return {root, ino, offset, item.extent_offset, item.length};
}

store::Key extent_key(uint64_t ino, uint64_t offset) { return {ino, kExtentDataKey, offset}; }

}  // namespace

Status FileData::insert_extent(store::BTree& tree, uint64_t ino, uint64_t offset,
                               const FileExtentItem& item) {
  ECFS_TRY(tree.insert(extent_key(ino, offset), encode_file_extent_item(item)));
  return engine_.add_data_ref(item.disk_bytenr, item.disk_length,
                              data_ref(tree_id_, ino, offset, item));
}

Status FileData::update_extent(store::BTree& tree, uint64_t ino, uint64_t offset,
                               const FileExtentItem& old_item, const FileExtentItem& new_item) {
  ECFS_TRY(tree.update(extent_key(ino, offset), encode_file_extent_item(new_item)));
  ECFS_TRY(engine_.add_data_ref(new_item.disk_bytenr, new_item.disk_length,
                                data_ref(tree_id_, ino, offset, new_item)));
  return engine_.drop_data_ref(old_item.disk_bytenr, old_item.disk_length,
                               data_ref(tree_id_, ino, offset, old_item));
}

Status FileData::remove_extent(store::BTree& tree, uint64_t ino, uint64_t offset,
                               const FileExtentItem& item) {
  ECFS_TRY(tree.remove(extent_key(ino, offset)));
  return engine_.drop_data_ref(item.disk_bytenr, item.disk_length,
                               data_ref(tree_id_, ino, offset, item));
}

Status FileData::replace_extents(store::BTree& tree, uint64_t ino,
                                 const std::vector<PlacedExtent>& extents, uint64_t start,
                                 uint64_t end, Replace how) {
  for (const PlacedExtent& extent : extents) {
    const uint64_t cut_start = std::max(start, extent.offset);
    const uint64_t cut_end = std::min(end, extent.end());
    if (cut_start >= cut_end) continue;
    const FileExtentItem& old_item = extent.item;
    if (how == Replace::kMakePrealloc && old_item.type == FileExtentType::kPrealloc) continue;
    // Each piece keeps the extent, its encryption and context; only the
    // window into the extent moves (data unit numbers count from the
    // extent's start, so they stay right).
    std::optional<FileExtentItem> left, middle, right;
    if (extent.offset < cut_start) {
      left = old_item;
      left->length = cut_start - extent.offset;
    }
    if (how == Replace::kMakePrealloc) {
      middle = old_item;
      middle->extent_offset += cut_start - extent.offset;
      middle->length = cut_end - cut_start;
      middle->type = FileExtentType::kPrealloc;
    }
    if (cut_end < extent.end()) {
      right = old_item;
      right->extent_offset += cut_end - extent.offset;
      right->length = extent.end() - cut_end;
    }
    if (left) {
      ECFS_TRY(update_extent(tree, ino, extent.offset, old_item, *left));
      if (middle) ECFS_TRY(insert_extent(tree, ino, cut_start, *middle));
    } else if (middle) {
      ECFS_TRY(update_extent(tree, ino, extent.offset, old_item, *middle));
    } else {
      ECFS_TRY(remove_extent(tree, ino, extent.offset, old_item));
    }
    if (right) ECFS_TRY(insert_extent(tree, ino, cut_end, *right));
  }
  return ok();
}

Result<std::vector<FileRange>> FileData::allocated_ranges(const store::BTree& tree, uint64_t ino,
                                                          uint64_t start, uint64_t end) {
  auto extents = extents_in(tree, ino, start, end);
  if (!extents) return std::unexpected(extents.error());
  const DirtyBuffer* buffer = find_buffer(ino);
  return merge_ranges(ranges_of(*extents, start, end),
                      buffer ? buffer->ranges_in(start, end) : std::vector<FileRange>{});
}

Result<int64_t> FileData::free_range(store::BTree& tree, uint64_t ino, uint64_t start,
                                     uint64_t end) {
  auto extents = extents_in(tree, ino, start, end);
  if (!extents) return std::unexpected(extents.error());
  const DirtyBuffer* buffer = find_buffer(ino);
  const uint64_t freed =
      total_length(merge_ranges(ranges_of(*extents, start, end),
                                buffer ? buffer->ranges_in(start, end) : std::vector<FileRange>{}));
  drop_buffered(ino, start, end);
  ECFS_TRY(replace_extents(tree, ino, *extents, start, end, Replace::kDrop));
  return -static_cast<int64_t>(freed);
}

Result<std::vector<PlacedExtent>> FileData::allocate_prealloc(uint64_t ino,
                                                              const std::vector<FileRange>& holes) {
  const uint64_t needed = total_length(holes);
  if (needed > engine_.space_usage().free_bytes) {
    return fail(ENOSPC, "no room to preallocate " + std::to_string(needed) + " bytes");
  }
  std::vector<PlacedExtent> out;
  OperationKeys keys(options_.keys, ino);
  for (const FileRange& hole : holes) {
    for (uint64_t pos = hole.start; pos < hole.end;) {
      uint64_t want = std::min(options_.max_extent_size, hole.end - pos);
      auto item = create_extent(keys, FileExtentType::kPrealloc, want, {});
      // Free space may be fragmented: smaller extents, down to one sector.
      while (!item && item.error().errno_value() == ENOSPC && want > kSector) {
        want = std::max(kSector, align_down(want / 2));
        item = create_extent(keys, FileExtentType::kPrealloc, want, {});
      }
      if (!item) return std::unexpected(item.error());
      out.push_back({pos, std::move(*item)});
      pos += want;
    }
  }
  return out;
}

// ---- Reading ----

Result<size_t> PlannedRead::finish() const {
  Bytes scratch;  // for unaligned pieces
  for (const DiskPiece& piece : pieces_) {
    std::optional<block::CryptContext> crypt;
    if (piece.crypter) crypt = block::CryptContext{piece.crypter.get(), piece.first_dun};
    const block::CryptContext* context = crypt ? &*crypt : nullptr;
    Status read;
    if (piece.skip == 0 && piece.out.size() == piece.read.length()) {
      read = piece.read.read_into(piece.out, context);
    } else {
      if (scratch.size() < piece.read.length()) scratch.resize(piece.read.length());
      read = piece.read.read_into(MutableByteSpan(scratch.data(), piece.read.length()), context);
      if (read) std::memcpy(piece.out.data(), scratch.data() + piece.skip, piece.out.size());
    }
    if (!read) return in_file(ino_, piece.file_offset, read.error());
  }
  return length_;
}

Status FileData::plan_disk(OperationKeys& keys, uint64_t file_offset, const FileExtentItem& item,
                           uint64_t pos, MutableByteSpan out, PlannedRead& plan) {
  const uint64_t first = align_down(pos);
  const uint64_t stop = align_up(pos + out.size());
  std::shared_ptr<const block::DataUnitCrypter> crypter;
  uint64_t first_dun = 0;
  if (item.encryption == ExtentEncryption::kFscrypt) {
    auto inode_keys = keys.get();
    if (!inode_keys) return std::unexpected(inode_keys.error());
    if (!*inode_keys) {
      return fail(ENOKEY, "the extent is encrypted and no key is available for its inode");
    }
    auto found = (*inode_keys)->extent_crypter(item.context);
    if (!found) return std::unexpected(found.error());
    crypter = std::move(*found);
    // Data unit numbers count from the start of the original extent; the
    // read starts on a sector boundary, a whole number of data units in.
    first_dun = (first - item.disk_bytenr) / crypter->data_unit_size();
  }
  auto read = engine_.prepare_data_read(first, stop - first);
  if (!read) return std::unexpected(read.error());
  plan.pieces_.push_back(PlannedRead::DiskPiece{file_offset, out, pos - first, std::move(*read),
                                                std::move(crypter), first_dun});
  return ok();
}

Status FileData::read_disk(OperationKeys& keys, uint64_t ino, uint64_t file_offset,
                           const FileExtentItem& item, uint64_t pos, MutableByteSpan out) {
  PlannedRead plan;
  plan.ino_ = ino;
  if (Status planned = plan_disk(keys, file_offset, item, pos, out, plan); !planned) {
    return in_file(ino, file_offset, planned.error());
  }
  auto read = plan.finish();
  if (!read) return std::unexpected(read.error());
  return ok();
}

Status FileData::plan_extents(OperationKeys& keys, const store::BTree& tree, uint64_t ino,
                              uint64_t start, MutableByteSpan out, PlannedRead& plan) {
  const uint64_t end = start + out.size();
  auto extents = extents_in(tree, ino, start, end);
  if (!extents) return std::unexpected(extents.error());
  uint64_t pos = start;
  for (const PlacedExtent& extent : *extents) {
    const uint64_t piece_start = std::max(pos, extent.offset);
    const uint64_t piece_end = std::min(end, extent.end());
    std::memset(out.data() + (pos - start), 0, piece_start - pos);  // a hole
    MutableByteSpan piece = out.subspan(piece_start - start, piece_end - piece_start);
    if (extent.item.type == FileExtentType::kPrealloc) {
      std::memset(piece.data(), 0, piece.size());
    } else {
      const uint64_t disk =
          extent.item.disk_bytenr + extent.item.extent_offset + (piece_start - extent.offset);
      if (Status planned = plan_disk(keys, piece_start, extent.item, disk, piece, plan); !planned) {
        return in_file(ino, piece_start, planned.error());
      }
    }
    pos = piece_end;
  }
  std::memset(out.data() + (pos - start), 0, end - pos);
  return ok();
}

Status FileData::plan_range(OperationKeys& keys, const store::BTree& tree, uint64_t ino,
                            uint64_t offset, MutableByteSpan out, PlannedRead& plan) {
  const uint64_t end = offset + out.size();
  uint64_t pos = offset;
  if (const DirtyBuffer* buffer = find_buffer(ino)) {
    for (auto it = buffer->first_ending_after(pos); it != buffer->runs().end() && it->first < end;
         ++it) {
      if (it->first > pos) {
        ECFS_TRY(
            plan_extents(keys, tree, ino, pos, out.subspan(pos - offset, it->first - pos), plan));
        pos = it->first;
      }
      const uint64_t piece_end = std::min(end, it->first + it->second.size());
      std::memcpy(out.data() + (pos - offset), it->second.data() + (pos - it->first),
                  piece_end - pos);
      pos = piece_end;
    }
  }
  if (pos < end)
    ECFS_TRY(plan_extents(keys, tree, ino, pos, out.subspan(pos - offset, end - pos), plan));
  return ok();
}

Status FileData::read_range(const store::BTree& tree, uint64_t ino, uint64_t offset,
                            MutableByteSpan out) {
  PlannedRead plan;
  plan.ino_ = ino;
  OperationKeys keys(options_.keys, ino);
  ECFS_TRY(plan_range(keys, tree, ino, offset, out, plan));
  auto read = plan.finish();
  if (!read) return std::unexpected(read.error());
  return ok();
}

Result<PlannedRead> FileData::plan_read(uint64_t ino, uint64_t file_size, uint64_t offset,
                                        MutableByteSpan out) {
  std::optional<store::BTree> committed;
  auto tree = tree_for_reading(committed);
  if (!tree) return std::unexpected(tree.error());
  PlannedRead plan;
  plan.ino_ = ino;
  if (offset >= file_size || out.empty()) return plan;
  const uint64_t length = std::min<uint64_t>(out.size(), file_size - offset);
  OperationKeys keys(options_.keys, ino);
  ECFS_TRY(plan_range(keys, **tree, ino, offset, out.first(length), plan));
  plan.length_ = length;
  return plan;
}

Result<size_t> FileData::read(uint64_t ino, uint64_t file_size, uint64_t offset,
                              MutableByteSpan out) {
  auto plan = plan_read(ino, file_size, offset, out);
  if (!plan) return std::unexpected(plan.error());
  return plan->finish();
}

// ---- Writing into the buffer ----

Result<int64_t> FileData::write_buffered(store::BTree& tree, uint64_t ino, uint64_t file_size,
                                         uint64_t offset, ByteSpan data) {
  if (data.empty()) return 0;
  const uint64_t end = offset + data.size();
  const uint64_t first = align_down(offset);
  const uint64_t stop = align_up(end);
  const uint64_t last = stop - kSector;
  const DirtyBuffer* existing = find_buffer(ino);
  const std::vector<FileRange> gaps =
      existing ? existing->gaps_in(first, stop) : std::vector<FileRange>{{first, stop}};

  // Sectors new to the buffer: count those that were holes, and read the
  // old contents of a partly written one (at most the first and the last),
  // all before the buffer changes, so an error leaves it as it was.
  int64_t delta = 0;
  std::array<uint8_t, kSector> head_old, tail_old;
  bool have_head = false;
  if (!gaps.empty()) {
    auto extents = extents_in(tree, ino, gaps.front().start, gaps.back().end);
    if (!extents) return std::unexpected(extents.error());
    for (const FileRange& gap : gaps) {
      delta += static_cast<int64_t>(gap.length() -
                                    total_length(ranges_of(*extents, gap.start, gap.end)));
    }
    OperationKeys keys(options_.keys, ino);
    auto read_old = [&](uint64_t sector, uint8_t* out) -> Status {
      std::memset(out, 0, kSector);
      if (sector >= file_size) return ok();
      for (const PlacedExtent& extent : *extents) {
        if (extent.offset <= sector && sector < extent.end()) {
          if (extent.item.type == FileExtentType::kRegular) {
            const uint64_t disk =
                extent.item.disk_bytenr + extent.item.extent_offset + (sector - extent.offset);
            ECFS_TRY(
                read_disk(keys, ino, sector, extent.item, disk, MutableByteSpan(out, kSector)));
          }
          break;
        }
      }
      // Keep the invariant: nothing but zeros past the end of the file.
      if (file_size < sector + kSector) {
        std::memset(out + (file_size - sector), 0, sector + kSector - file_size);
      }
      return ok();
    };
    if (offset != first && gaps.front().start == first) {
      ECFS_TRY(read_old(first, head_old.data()));
      have_head = true;
    }
    if (end != stop && gaps.back().end == stop && !(have_head && last == first)) {
      ECFS_TRY(read_old(last, tail_old.data()));
    }
  }
  const uint64_t added = buffer_for(ino).store(offset, data, [&](uint64_t sector, uint8_t* out) {
    std::memcpy(out, (have_head && sector == first ? head_old : tail_old).data(), kSector);
  });
  dirty_bytes_ += added;
  return delta;
}

Result<int64_t> FileData::write(uint64_t ino, uint64_t file_size, uint64_t offset, ByteSpan data) {
  auto tree = open_tree();
  if (!tree) return std::unexpected(tree.error());
  if (data.empty()) return 0;  // generic_write_checks: nothing to check
  ECFS_TRY(check_range_end(offset, data.size()));
  if (writing_out(ino, offset, offset + data.size())) {
    return fail(EBUSY, "inode " + std::to_string(ino) + ": the range is being written out");
  }
  return write_buffered(**tree, ino, file_size, offset, data);
}

Result<int64_t> FileData::zero_sector_part(store::BTree& tree, uint64_t ino, uint64_t file_size,
                                           uint64_t start, uint64_t end) {
  const uint64_t sector = align_down(start);
  bool holds_data = false;
  if (const DirtyBuffer* buffer = find_buffer(ino);
      buffer && buffer->find(sector) != buffer->runs().end()) {
    holds_data = true;
  } else {
    auto extents = extents_in(tree, ino, sector, sector + kSector, 1);
    if (!extents) return std::unexpected(extents.error());
    holds_data = !extents->empty() && extents->front().item.type == FileExtentType::kRegular;
  }
  if (!holds_data) return 0;
  return write_buffered(tree, ino, file_size, start, ByteSpan(kZeroSector.data(), end - start));
}

// ---- Size changes and fallocate ----

Result<int64_t> FileData::truncate(uint64_t ino, uint64_t old_size, uint64_t new_size) {
  auto tree = open_tree();
  if (!tree) return std::unexpected(tree.error());
  ECFS_TRY(check_not_writing_out(ino));
  if (new_size > kMaxFileSize) {
    return fail(EFBIG, "size " + std::to_string(new_size) + " passes the maximum file size");
  }
  if (new_size >= old_size) return 0;  // growing: the new part is a hole
  auto freed = free_range(**tree, ino, align_up(new_size), kToEnd);
  if (!freed) return std::unexpected(freed.error());
  int64_t delta = *freed;
  if (new_size % kSector != 0) {
    // The kept part of the last sector stays; the rest must read as zeros
    // when the file grows again.
    auto zeroed =
        zero_sector_part(**tree, ino, old_size, new_size, std::min(align_up(new_size), old_size));
    if (!zeroed) return std::unexpected(zeroed.error());
    delta += *zeroed;
  }
  return delta;
}

Result<int64_t> FileData::punch_range(store::BTree& tree, uint64_t ino, uint64_t file_size,
                                      uint64_t offset, uint64_t end) {
  const uint64_t inner_start = align_up(offset);
  const uint64_t inner_end = align_down(end);
  int64_t delta = 0;
  if (inner_start < inner_end) {
    auto freed = free_range(tree, ino, inner_start, inner_end);
    if (!freed) return std::unexpected(freed.error());
    delta += *freed;
  }
  if (offset != inner_start) {  // the partly covered first sector
    auto zeroed = zero_sector_part(tree, ino, file_size, offset, std::min(end, inner_start));
    if (!zeroed) return std::unexpected(zeroed.error());
    delta += *zeroed;
  }
  if (end != inner_end && inner_end >= inner_start) {  // a partly covered last sector of its own
    auto zeroed = zero_sector_part(tree, ino, file_size, std::max(offset, inner_end), end);
    if (!zeroed) return std::unexpected(zeroed.error());
    delta += *zeroed;
  }
  return delta;
}

Result<int64_t> FileData::punch_hole(uint64_t ino, uint64_t file_size, uint64_t offset,
                                     uint64_t length) {
  auto tree = open_tree();
  if (!tree) return std::unexpected(tree.error());
  ECFS_TRY(check_not_writing_out(ino));
  if (length == 0) return fail(EINVAL, "punch of an empty range");
  ECFS_TRY(check_range_end(offset, length));
  return punch_range(**tree, ino, file_size, offset, offset + length);
}

Result<int64_t> FileData::preallocate(uint64_t ino, uint64_t offset, uint64_t length) {
  auto tree = open_tree();
  if (!tree) return std::unexpected(tree.error());
  ECFS_TRY(check_not_writing_out(ino));
  if (length == 0) return fail(EINVAL, "preallocation of an empty range");
  ECFS_TRY(check_range_end(offset, length));
  const uint64_t start = align_down(offset);
  const uint64_t end = align_up(offset + length);
  auto allocated = allocated_ranges(**tree, ino, start, end);
  if (!allocated) return std::unexpected(allocated.error());
  const std::vector<FileRange> holes = complement(*allocated, start, end);
  auto extents = allocate_prealloc(ino, holes);
  if (!extents) return std::unexpected(extents.error());
  for (const PlacedExtent& extent : *extents) {
    ECFS_TRY(insert_extent(**tree, ino, extent.offset, extent.item));
  }
  return static_cast<int64_t>(total_length(holes));
}

Result<int64_t> FileData::zero_range(uint64_t ino, uint64_t file_size, uint64_t offset,
                                     uint64_t length) {
  auto tree_result = open_tree();
  if (!tree_result) return std::unexpected(tree_result.error());
  ECFS_TRY(check_not_writing_out(ino));
  store::BTree& tree = **tree_result;
  if (length == 0) return fail(EINVAL, "zeroing of an empty range");
  ECFS_TRY(check_range_end(offset, length));
  const uint64_t end = offset + length;
  const uint64_t first = align_down(offset);
  const uint64_t stop = align_up(end);
  const uint64_t inner_start = align_up(offset);
  const uint64_t inner_end = align_down(end);
  const bool has_inner = inner_start < inner_end;

  // Afterwards every sector of [first, stop) is allocated: inner sectors as
  // prealloc (items retyped in place, everything else new), edge sectors as
  // they were or, if holes, new prealloc. Plan and allocate the new extents
  // first so that ENOSPC changes nothing.
  auto extents = extents_in(tree, ino, first, stop);
  if (!extents) return std::unexpected(extents.error());
  const std::vector<FileRange> item_ranges = ranges_of(*extents, first, stop);
  std::vector<FileRange> buffered, edge_buffered;
  if (const DirtyBuffer* buffer = find_buffer(ino)) {
    buffered = buffer->ranges_in(first, stop);
    edge_buffered = has_inner ? merge_ranges(buffer->ranges_in(first, inner_start),
                                             buffer->ranges_in(inner_end, stop))
                              : buffered;
  }
  const uint64_t allocated_before = total_length(merge_ranges(item_ranges, buffered));
  const std::vector<FileRange> to_fill =
      complement(merge_ranges(item_ranges, edge_buffered), first, stop);
  auto fill = allocate_prealloc(ino, to_fill);
  if (!fill) return std::unexpected(fill.error());

  // Edge sectors holding data: zero the covered part.
  if (offset != inner_start) {
    auto zeroed = zero_sector_part(tree, ino, file_size, offset, std::min(end, inner_start));
    if (!zeroed) return std::unexpected(zeroed.error());
  }
  if (end != inner_end && inner_end >= inner_start) {
    auto zeroed = zero_sector_part(tree, ino, file_size, std::max(offset, inner_end), end);
    if (!zeroed) return std::unexpected(zeroed.error());
  }
  if (has_inner) {
    drop_buffered(ino, inner_start, inner_end);
    ECFS_TRY(replace_extents(tree, ino, *extents, inner_start, inner_end, Replace::kMakePrealloc));
  }
  for (const PlacedExtent& extent : *fill) {
    ECFS_TRY(insert_extent(tree, ino, extent.offset, extent.item));
  }
  return static_cast<int64_t>(stop - first) - static_cast<int64_t>(allocated_before);
}

// ---- SEEK_DATA / SEEK_HOLE ----

Result<uint64_t> FileData::seek(uint64_t ino, uint64_t file_size, uint64_t offset, int whence) {
  std::optional<store::BTree> committed;
  auto tree = tree_for_reading(committed);
  if (!tree) return std::unexpected(tree.error());
  if (whence != SEEK_DATA && whence != SEEK_HOLE) {
    return fail(EINVAL, "seek whence " + std::to_string(whence));
  }
  if (offset >= file_size) return fail(ENXIO, "seek at or past the end of the file");
  const DirtyBuffer* buffer = find_buffer(ino);
  if (whence == SEEK_DATA) {
    uint64_t found = kToEnd;
    auto extents = extents_in(**tree, ino, offset, kToEnd, 1);
    if (!extents) return std::unexpected(extents.error());
    if (!extents->empty()) found = std::max(offset, extents->front().offset);
    if (buffer) {
      auto run = buffer->first_ending_after(offset);
      if (run != buffer->runs().end()) found = std::min(found, std::max(offset, run->first));
    }
    if (found >= file_size) return fail(ENXIO, "no data after the offset");
    return found;
  }
  // SEEK_HOLE: step over touching allocated pieces until none covers `pos`.
  uint64_t pos = offset;
  while (pos < file_size) {
    uint64_t next = pos;
    if (buffer) {
      if (auto run = buffer->find(pos); run != buffer->runs().end()) {
        next = run->first + run->second.size();
      }
    }
    auto extents = extents_in(**tree, ino, pos, pos + 1, 1);
    if (!extents) return std::unexpected(extents.error());
    if (!extents->empty()) next = std::max(next, extents->front().end());
    if (next == pos) break;
    pos = next;
  }
  return std::min(pos, file_size);
}

// ---- Flushing ----

Status Writeout::write() {
  if (helper_ == nullptr || writes_.size() < 2) return write_pieces(0, 1);
  return helper_->run_beside([this] { return write_pieces(0, 2); },
                             [this] { return write_pieces(1, 2); });
}

Status Writeout::write_pieces(size_t first, size_t step) {
  for (size_t i = first; i < writes_.size(); i += step) {
    Write& write = writes_[i];
    const block::CryptContext crypt{write.crypter.get(), write.first_dun};
    ECFS_TRY(write.write.write(write.bytes, write.crypter ? &crypt : nullptr));
  }
  return ok();
}

Status FileData::check_not_writing_out(uint64_t ino) const {
  if (writing_out(ino, 0, kToEnd)) {
    return fail(EBUSY, "inode " + std::to_string(ino) + ": its data is being written out");
  }
  return ok();
}

bool FileData::writing_out(uint64_t ino, uint64_t start, uint64_t end) const {
  if (writing_out_bytes_ == 0) return false;
  const DirtyBuffer* buffer = find_buffer(ino);
  return buffer && buffer->frozen_in(align_down(start), end == kToEnd ? kToEnd : align_up(end));
}

Status FileData::freeze_into(Writeout& out, std::optional<uint64_t> only_ino, uint64_t max_bytes) {
  auto freeze_buffer = [&](uint64_t ino, DirtyBuffer& buffer) -> Status {
    OperationKeys keys(options_.keys, ino);  // asked once, for the inode's first extent
    const auto& runs = buffer.runs();
    for (auto first = runs.begin(); first != runs.end() && out.bytes_ < max_bytes;) {
      if (first->second.frozen()) {  // in another writeout
        ++first;
        continue;
      }
      // Touching runs up to max_extent_size become one extent.
      const uint64_t start = first->first;
      uint64_t length = first->second.size();
      auto next = std::next(first);
      while (next != runs.end() && next->first == start + length && !next->second.frozen() &&
             length + next->second.size() <= options_.max_extent_size) {
        length += next->second.size();
        ++next;
      }
      // The group's extents: one, or smaller ones where free space is
      // fragmented (down to one sector each).
      for (uint64_t done = 0; done < length;) {
        uint64_t want = length - done;
        auto extent = prepare_extent(keys, FileExtentType::kRegular, want);
        while (!extent && extent.error().errno_value() == ENOSPC && want > kSector) {
          want = std::max(kSector, align_down(want / 2));
          extent = prepare_extent(keys, FileExtentType::kRegular, want);
        }
        if (!extent) return std::unexpected(extent.error());
        const uint64_t extent_start = start + done;
        const uint64_t extent_end = extent_start + want;
        const uint32_t unit = extent->crypter ? extent->crypter->data_unit_size() : 1;
        for (auto it = buffer.first_ending_after(extent_start);
             it != runs.end() && it->first < extent_end; ++it) {
          const uint64_t from = std::max(extent_start, it->first);
          const uint64_t to = std::min(extent_end, it->first + it->second.size());
          auto write = engine_.prepare_data_write(extent->item.disk_bytenr + (from - extent_start),
                                                  to - from);
          if (!write) return std::unexpected(write.error());
          out.writes_.push_back({it->second.bytes().subspan(from - it->first, to - from),
                                 extent->crypter, (from - extent_start) / unit, std::move(*write)});
        }
        out.extents_.push_back({ino, extent_start, want, std::move(extent->item)});
        done += want;
      }
      buffer.set_frozen(start, start + length, true);
      out.groups_.push_back({ino, start, length});
      out.bytes_ += length;
      dirty_bytes_ -= length;
      writing_out_bytes_ += length;
      first = next;
    }
    return ok();
  };
  if (only_ino) {
    if (DirtyBuffer* buffer = find_buffer(*only_ino)) return freeze_buffer(*only_ino, *buffer);
    return ok();
  }
  for (auto& [ino, buffer] : buffers_) {
    if (out.bytes_ >= max_bytes) break;
    ECFS_TRY(freeze_buffer(ino, buffer));
  }
  return ok();
}

Result<Writeout> FileData::begin_writeout(uint64_t max_bytes) {
  ECFS_TRY(check_transaction());
  if (writing_out_bytes_ > 0) return fail(EBUSY, "a writeout is already running");
  return freeze(std::nullopt, max_bytes);
}

Result<Writeout> FileData::freeze(std::optional<uint64_t> only_ino, uint64_t max_bytes) {
  Writeout out;
  out.helper_ = &writeout_helper_;
  if (Status frozen = freeze_into(out, only_ino, max_bytes); !frozen) {
    cancel_writeout(std::move(out));
    return std::unexpected(frozen.error());
  }
  return out;
}

Status FileData::write_out_now(Result<Writeout> out) {
  if (!out) return std::unexpected(out.error());
  if (Status written = out->write(); !written) {
    cancel_writeout(std::move(*out));
    return written;
  }
  return finish_writeout(std::move(*out));
}

Status FileData::finish_writeout(Writeout writeout) {
  auto tree = open_tree();
  if (!tree) return std::unexpected(tree.error());
  for (const Writeout::Write& write : writeout.writes_) {
    ECFS_TRY(engine_.finish_data_write(write.write));
  }
  for (const Writeout::Extent& extent : writeout.extents_) {
    const uint64_t end = extent.start + extent.length;
    auto replaced = extents_in(**tree, extent.ino, extent.start, end);
    if (!replaced) return std::unexpected(replaced.error());
    ECFS_TRY(replace_extents(**tree, extent.ino, *replaced, extent.start, end, Replace::kDrop));
    ECFS_TRY(insert_extent(**tree, extent.ino, extent.start, extent.item));
  }
  // The data is in extents now: its runs go (frozen, so still exactly the
  // groups' ranges).
  for (const Writeout::Group& group : writeout.groups_) {
    auto it = buffers_.find(group.ino);
    writing_out_bytes_ -= it->second.drop(group.start, group.start + group.length);
    if (it->second.empty()) buffers_.erase(it);
  }
  return ok();
}

void FileData::cancel_writeout(Writeout writeout) {
  for (const Writeout::Group& group : writeout.groups_) {
    find_buffer(group.ino)->set_frozen(group.start, group.start + group.length, false);
    writing_out_bytes_ -= group.length;
    dirty_bytes_ += group.length;
  }
}

Status FileData::flush(uint64_t ino) {
  ECFS_TRY(check_transaction());
  ECFS_TRY(check_not_writing_out(ino));
  return write_out_now(freeze(ino));
}

Status FileData::flush_all() { return write_out_now(begin_writeout()); }

Status FileData::remove_all(uint64_t ino) {
  auto tree = open_tree();
  if (!tree) return std::unexpected(tree.error());
  ECFS_TRY(check_not_writing_out(ino));
  auto freed = free_range(**tree, ino, 0, kToEnd);
  if (!freed) return std::unexpected(freed.error());
  return ok();
}

// ---- copy_file_range ----

Result<int64_t> FileData::copy_bytes(FileData& source, uint64_t src, uint64_t src_offset,
                                     uint64_t dst, uint64_t dst_size, uint64_t dst_offset,
                                     uint64_t length) {
  auto tree_result = open_tree();
  if (!tree_result) return std::unexpected(tree_result.error());
  store::BTree& tree = **tree_result;
  auto source_tree_result = source.open_tree();
  if (!source_tree_result) return std::unexpected(source_tree_result.error());
  store::BTree& source_tree = **source_tree_result;
  const uint64_t src_end = src_offset + length;
  auto allocated = source.allocated_ranges(source_tree, src, src_offset, src_end);
  if (!allocated) return std::unexpected(allocated.error());
  // Data is copied in steps through memory; holes of the source are punched
  // into the destination instead of being written as zeros.
  constexpr uint64_t kStep = 1ull << 20;
  constexpr uint64_t kCopyWriteOutBytes = 64ull << 20;
  Bytes chunk(std::min(length, kStep));
  int64_t delta = 0;
  uint64_t dst_file_size = dst_size;  // grows as the copy writes past it
  auto copy_data = [&](uint64_t from, uint64_t to) -> Status {
    for (uint64_t pos = from; pos < to;) {
      const uint64_t step = std::min(kStep, to - pos);
      MutableByteSpan piece(chunk.data(), step);
      ECFS_TRY(source.read_range(source_tree, src, pos, piece));
      const uint64_t at = dst_offset + (pos - src_offset);
      auto written = write_buffered(tree, dst, dst_file_size, at, piece);
      if (!written) return std::unexpected(written.error());
      delta += *written;
      dst_file_size = std::max(dst_file_size, at + step);
      pos += step;
      // A long copy is written out as it goes, not held in memory whole.
      if (dirty_bytes_ >= kCopyWriteOutBytes) ECFS_TRY(flush(dst));
    }
    return ok();
  };
  auto punch = [&](uint64_t from, uint64_t to) -> Status {
    const uint64_t at = dst_offset + (from - src_offset);
    auto punched = punch_range(tree, dst, dst_file_size, at, at + (to - from));
    if (!punched) return std::unexpected(punched.error());
    delta += *punched;
    return ok();
  };
  uint64_t pos = src_offset;
  for (const FileRange& data : *allocated) {
    if (data.start > pos) ECFS_TRY(punch(pos, data.start));
    ECFS_TRY(copy_data(data.start, data.end));
    pos = data.end;
  }
  if (pos < src_end) ECFS_TRY(punch(pos, src_end));
  return delta;
}

Result<int64_t> FileData::reflink(FileData& source, uint64_t src, uint64_t src_offset, uint64_t dst,
                                  uint64_t dst_offset, uint64_t length) {
  // Buffered source data has no extent to share yet.
  ECFS_TRY(source.flush(src));
  auto tree_result = open_tree();
  if (!tree_result) return std::unexpected(tree_result.error());
  store::BTree& tree = **tree_result;
  auto source_tree = source.open_tree();
  if (!source_tree) return std::unexpected(source_tree.error());
  // Collected before the destination changes: with src == dst, one item may
  // span both ranges, and these copies of it stay valid.
  auto sources = extents_in(**source_tree, src, src_offset, src_offset + length);
  if (!sources) return std::unexpected(sources.error());
  auto freed = free_range(tree, dst, dst_offset, dst_offset + length);
  if (!freed) return std::unexpected(freed.error());
  int64_t delta = *freed;
  for (const PlacedExtent& piece : *sources) {
    const uint64_t piece_start = std::max(src_offset, piece.offset);
    const uint64_t piece_end = std::min(src_offset + length, piece.end());
    FileExtentItem shared = piece.item;  // encryption and context included
    shared.extent_offset += piece_start - piece.offset;
    shared.length = piece_end - piece_start;
    ECFS_TRY(insert_extent(tree, dst, dst_offset + (piece_start - src_offset), shared));
    delta += static_cast<int64_t>(shared.length);
  }
  return delta;
}

Result<int64_t> FileData::copy_range_from(FileData& source, uint64_t src, uint64_t src_size,
                                          uint64_t src_offset, uint64_t dst, uint64_t dst_size,
                                          uint64_t dst_offset, uint64_t length, bool may_share) {
  ECFS_TRY(check_transaction());
  ECFS_TRY(source.check_not_writing_out(src));
  ECFS_TRY(check_not_writing_out(dst));
  if (&source.engine_ != &engine_) return fail(EXDEV, "copy between two volumes");
  const bool same_file = &source == this && src == dst;
  if (length == 0) return 0;
  ECFS_TRY(check_range_end(dst_offset, length));
  if (src_offset > kMaxFileSize || length > kMaxFileSize - src_offset) {
    return fail(EINVAL, "copy source range passes the maximum file size");
  }
  if (same_file && src_offset < dst_offset + length && dst_offset < src_offset + length) {
    return fail(EINVAL, "copy within one file between overlapping ranges");
  }
  if (!may_share || src_offset % kSector != dst_offset % kSector) {
    return copy_bytes(source, src, src_offset, dst, dst_size, dst_offset, length);
  }
  // Aligned alike: the unaligned head and tail through the buffer, the
  // whole sectors between them shared.
  const uint64_t head = std::min(length, (kSector - src_offset % kSector) % kSector);
  const uint64_t rest = length - head;
  uint64_t middle = align_down(rest);
  // The source's last sector can be shared whole when the copy ends at the
  // source's end and at or past the destination's: its bytes past src_size
  // are zeros, which is what the destination must read past its new end.
  // Not within one file: the head copied above may have landed in that
  // very sector, past src_size.
  if (middle != rest && !same_file && src_offset + length == src_size &&
      dst_offset + length >= dst_size) {
    middle = align_up(rest);
  }
  int64_t delta = 0;
  uint64_t dst_file_size = dst_size;
  if (head != 0) {
    auto copied = copy_bytes(source, src, src_offset, dst, dst_file_size, dst_offset, head);
    if (!copied) return std::unexpected(copied.error());
    delta += *copied;
    dst_file_size = std::max(dst_file_size, dst_offset + head);
  }
  if (middle != 0) {
    auto shared = reflink(source, src, src_offset + head, dst, dst_offset + head, middle);
    if (!shared) return std::unexpected(shared.error());
    delta += *shared;
    dst_file_size =
        std::max(dst_file_size, std::min(dst_offset + length, dst_offset + head + middle));
  }
  if (rest > middle) {
    const uint64_t done = head + middle;
    auto copied = copy_bytes(source, src, src_offset + done, dst, dst_file_size, dst_offset + done,
                             rest - middle);
    if (!copied) return std::unexpected(copied.error());
    delta += *copied;
  }
  return delta;
}

}  // namespace ecfs::fs
