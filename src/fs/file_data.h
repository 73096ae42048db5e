// FileData: the contents of regular files as extent maps in a filesystem
// tree, with copy-on-write and delayed allocation (DESIGN.md "Storage engine
// shape"; docs/FORMAT.md "File extents").
//
// A file is a sorted set of EXTENT_DATA items (ino, EXTENT_DATA, offset)
// (fs/items.h FileExtentItem); ranges without an item are holes. Writes are
// never done in place: written bytes gather in a per-inode buffer of whole
// sectors (fs/dirty_buffer.h; a partial-sector write first reads the old
// sector into it: from the buffer, the disk, or zeros for a hole, a prealloc
// extent or past the end of the file) and are written out, by flush(), into
// newly allocated data extents covering contiguous dirty runs (up to
// max_extent_size each), after which the old items covering those ranges are
// trimmed, split or removed and their data references dropped (the engine
// frees an extent when its last reference goes). Reads see the buffer over
// the on-disk items.
//
// Every method that changes a file returns the change of the file's
// allocated bytes (InodeItem::nbytes), for the caller to add to the inode.
// nbytes counts the sectors of the file that are held by an extent item
// (regular or prealloc, also past i_size) or by the buffer, each once: so
// writing over allocated data and flushing change nothing, filling a hole
// adds its sectors, freeing sectors removes them.
//
// Byte ranges are file offsets; `file_size` is the inode's current i_size,
// which the caller owns and updates (this class never writes inode items).
// Invariant kept for the caller: bytes past i_size inside the last sector
// are zero wherever they are stored, so growing a file exposes zeros.
// Offsets and ends are limited to kMaxFileSize (EFBIG beyond, as the
// kernel's s_maxbytes checks).
//
// Copy-on-write: every data extent is written once, in the transaction that
// allocated it; overwriting a prealloc extent also writes new extents (so a
// fallocate'd range is reserved against other files, but rewriting it still
// needs free space, as on btrfs with data checksums).
//
// Encryption: every new extent item is made by one private function
// (create_extent), which asks FileDataOptions::keys for a fresh extent key
// of the inode and stores its context in the item; its data goes through
// the engine's inline-crypt path with data unit numbers counted from the
// start of the extent. Items split, trimmed, retyped or reflinked from an
// existing one keep its encryption and context unchanged, since data unit
// numbers count from the start of the data extent (disk_bytenr), so a
// shared extent decrypts the same in every file. Reads of an encrypted
// extent read whole data units and decrypt them with the key of the
// extent's stored context. copy_range shares extents only when asked to:
// the caller knows whether the two files' policies allow it.
//
// Errors: EINVAL (no running transaction, bad arguments), EFBIG, ENOSPC,
// EIO (checksum mismatch, device errors), EUCLEAN (damaged items). A failed
// call leaves the file consistent when the error is EINVAL, EFBIG or ENOSPC
// (ENOSPC from flush() leaves the unwritten runs buffered). After any other
// error the caller must abort the transaction and drop this object: its
// buffers may no longer match the trees.
//
// Buffered data lives only in memory: destroying the object (or aborting the
// transaction) loses it. Flush and commit before that.
//
// Not thread-safe: the FileSystem calls it under its lock, inside a running
// engine transaction (REQUIRED by every method but read() and seek(), which
// outside a transaction read the committed tree, e.g. on a read-only mount;
// EINVAL otherwise).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "base/helper_thread.h"
#include "fs/dirty_buffer.h"
#include "fs/extent_keys.h"
#include "fs/extent_map.h"
#include "fs/items.h"
#include "fs/vfs_types.h"
#include "store/engine.h"

namespace ecfs::fs {

// The largest file size and the end of every byte range: 2^63 - 1 (the
// largest loff_t, the kernel's MAX_LFS_FILESIZE) rounded down to a whole
// sector, so that every sector of a file has an aligned end.
inline constexpr uint64_t kMaxFileSize = (uint64_t{1} << 63) - store::kSectorSize;

struct FileDataOptions {
  // Longest data extent written by flush() (rounded down to whole sectors,
  // at least one). Larger extents mean fewer items and key derivations;
  // smaller ones waste less when partly overwritten (an extent stays
  // allocated while any part of it is referenced). It also bounds prealloc
  // extents and (with 1 MiB) the buffer's runs.
  uint64_t max_extent_size = 8ull << 20;
  // Memory of flushed buffer runs kept for the next writes
  // (run_memory_pool.h): enough for the data the owner lets pile up before
  // it flushes, so streaming writes reuse their memory instead of faulting
  // in new pages. Handed back by release_idle_memory().
  uint64_t reused_run_memory = 256ull << 20;
  // Keys of encrypted inodes; without it every extent is plaintext and an
  // encrypted extent cannot be read (ENOKEY). Must outlive the FileData.
  ExtentKeys* keys = nullptr;
};

// A read of file data planned under the filesystem's lock
// (FileData::plan_read) and finished without it: buffered data is already
// copied and holes already zeroed; what remains are device reads, each with
// its checksums and, for an encrypted extent, its key, so that concurrent
// requests overlap their I/O and decryption. The caller keeps the extents
// allocated until finish() returns (store/data_read.h).
class PlannedRead {
 public:
  // Reads, verifies and decrypts the remaining pieces into place. Returns
  // the bytes read (as FileData::read); EIO (naming the inode and offset)
  // when a checksum does not match. Needs no lock: it touches no FileData
  // and no engine state.
  Result<size_t> finish() const;

 private:
  friend class FileData;
  struct DiskPiece {
    uint64_t file_offset = 0;  // for error messages
    MutableByteSpan out;       // where the bytes go
    uint64_t skip = 0;         // bytes of `read` before `out` starts (unaligned reads)
    store::DataRead read;      // the whole sectors covering `out`
    std::shared_ptr<const block::DataUnitCrypter> crypter;  // null for plaintext
    uint64_t first_dun = 0;                                 // of the first data unit of `read`
  };
  uint64_t ino_ = 0;
  size_t length_ = 0;
  std::vector<DiskPiece> pieces_;
};

// Buffered data on its way to the device in three steps, so that the slow
// part runs without the filesystem's lock: FileData::begin_writeout (under
// the lock) freezes the buffered runs and allocates their extents and keys,
// write() (any thread, no lock) encrypts, checksums and writes them, and
// FileData::finish_writeout (under the lock) records the checksums and the
// extent items and drops the runs. In between, reads still find the data in
// the buffer, and writes may go on beside the frozen runs (not over them).
// The caller keeps the transaction from committing or aborting and the
// inodes' data from being truncated, punched, copied or removed until the
// writeout is finished or cancelled (store/data_write.h).
class Writeout {
 public:
  Writeout() = default;
  Writeout(Writeout&&) noexcept = default;
  Writeout& operator=(Writeout&&) noexcept = default;

  bool empty() const { return groups_.empty(); }
  uint64_t bytes() const { return bytes_; }
  // Writes every extent; device and crypter errors as they come (the
  // writeout must then be cancelled). Touches no FileData and no engine
  // state: needs no lock. Pieces alternate between the calling thread and
  // the FileData's helper thread, so one is encrypted and checksummed while
  // the other is written.
  Status write();

 private:
  friend class FileData;
  // Touching frozen runs of one inode, written as one or more extents.
  struct Group {
    uint64_t ino = 0;
    uint64_t start = 0;
    uint64_t length = 0;
  };
  // A new extent and its item, inserted at finish.
  struct Extent {
    uint64_t ino = 0;
    uint64_t start = 0;  // file offset
    uint64_t length = 0;
    FileExtentItem item;
  };
  // The part of one run that lies in one extent: written straight from the
  // run's memory (no gathering copy), its data units numbered from the
  // extent's start.
  struct Write {
    ByteSpan bytes;
    std::shared_ptr<const block::DataUnitCrypter> crypter;  // null for plaintext
    uint64_t first_dun = 0;
    store::DataWrite write;
  };
  // Writes pieces first, first + 2, ... (step 1: all from `first`).
  Status write_pieces(size_t first, size_t step);

  std::vector<Group> groups_;
  std::vector<Extent> extents_;
  std::vector<Write> writes_;
  uint64_t bytes_ = 0;
  HelperThread* helper_ = nullptr;  // the FileData's
};

// Key rotation with the contents (`rekey --contents`, fs/key_history.h):
// a data extent re-encrypted under an inode's current key, remembered so
// that every other item of the tree that shares the old extent is pointed
// at the same new one instead of copying it again. A cache only, checked at
// every use: the old extent must be the same one (its address, length and
// context, whose nonce no other extent has), the copy must be under the
// current inode's key, and its witness item (an item of this tree that
// references the copy) must still do so, which proves the copy is still
// allocated and the same one.
struct ReencryptedExtent {
  uint64_t old_disk_length = 0;
  Bytes old_context;
  fscrypt::KeyIdentifier key{};  // the copy's master key
  FileExtentItem item;           // the copy: disk_bytenr, disk_length, generation, context
  uint64_t witness_ino = 0;
  uint64_t witness_offset = 0;
};
struct ReencryptCache {
  std::unordered_map<uint64_t, ReencryptedExtent> by_old_bytenr;
};

class FileData {
 public:
  FileData(store::Engine& engine, uint64_t tree_id, FileDataOptions options = {});
  ~FileData();
  FileData(const FileData&) = delete;
  FileData& operator=(const FileData&) = delete;

  // Reads [offset, offset + out.size()) clipped to file_size; holes and
  // prealloc extents read as zeros. Returns the bytes read (0 at or past
  // the end). EIO (naming the inode and offset) when a checksum does not
  // match. One engine read per extent piece.
  Result<size_t> read(uint64_t ino, uint64_t file_size, uint64_t offset, MutableByteSpan out);
  // read() in two steps: everything that needs the trees and buffers now,
  // the device reads later (PlannedRead::finish). `out` must stay valid
  // until then.
  Result<PlannedRead> plan_read(uint64_t ino, uint64_t file_size, uint64_t offset,
                                MutableByteSpan out);

  // Buffers `data` at `offset` (may extend past file_size; the caller then
  // raises i_size to offset + data.size()). EFBIG past kMaxFileSize.
  Result<int64_t> write(uint64_t ino, uint64_t file_size, uint64_t offset, ByteSpan data);

  // Changes the size from old_size to new_size: shrinking drops every
  // extent and buffered sector past the new end (prealloc ones past the old
  // end too) and zeroes the tail of the last sector; growing leaves a hole.
  Result<int64_t> truncate(uint64_t ino, uint64_t old_size, uint64_t new_size);

  // FALLOC_FL_PUNCH_HOLE: the range reads as zeros afterwards; whole
  // sectors inside it are freed (items trimmed or split), partial sectors
  // at its edges are zeroed by a write. Never changes the size. EINVAL for
  // length 0.
  Result<int64_t> punch_hole(uint64_t ino, uint64_t file_size, uint64_t offset, uint64_t length);

  // fallocate default mode / KEEP_SIZE: every hole (no item, not buffered)
  // in the sector-aligned cover of the range gets prealloc extents (reads as
  // zeros, space reserved); existing data is untouched. ENOSPC when there is
  // no room, with nothing changed. EINVAL for length 0.
  Result<int64_t> preallocate(uint64_t ino, uint64_t offset, uint64_t length);

  // FALLOC_FL_ZERO_RANGE: the range reads as zeros and stays allocated:
  // whole sectors become prealloc (an extent item inside the range is turned
  // into a prealloc item of the same extent, so no new space is needed for
  // it; holes and buffered-only sectors get new prealloc extents), partial
  // edge sectors holding data are zeroed by a write, edge sectors that are
  // holes get prealloc. ENOSPC (nothing changed) when holes cannot be filled.
  Result<int64_t> zero_range(uint64_t ino, uint64_t file_size, uint64_t offset, uint64_t length);

  // SEEK_DATA / SEEK_HOLE from `offset` as lseek(2) (prealloc extents and
  // buffered sectors are data, at sector granularity; the end of the file
  // is a hole). ENXIO at or past file_size, and for SEEK_DATA when no data
  // follows; EINVAL for another whence.
  Result<uint64_t> seek(uint64_t ino, uint64_t file_size, uint64_t offset, int whence);

  // Makes [dst_offset, dst_offset + length) of `dst` hold what
  // [src_offset, ...) of `src` holds: sector-aligned whole sectors are
  // shared by adding references to the same extents (a reflink: `src` is
  // flushed first, nothing is copied and the extent items, encryption
  // context included, are copied with their extent_offset adjusted; the
  // last sector of `src` is shared too when the range ends at src_size and
  // reaches dst's end); parts that are not sector aligned, or everything
  // when the two offsets differ modulo the sector size, are copied through
  // the buffer (holes of `src` stay holes). `length` is already clipped to
  // the source's size. src == dst is allowed if the ranges do not overlap
  // (EINVAL otherwise). EFBIG when the destination would pass kMaxFileSize.
  // The caller raises dst's size to at least dst_offset + length.
  // With `may_share` false everything is copied (through the buffer, so the
  // destination's own keys encrypt it).
  Result<int64_t> copy_range(uint64_t src, uint64_t src_size, uint64_t src_offset, uint64_t dst,
                             uint64_t dst_size, uint64_t dst_offset, uint64_t length,
                             bool may_share = true) {
    return copy_range_from(*this, src, src_size, src_offset, dst, dst_size, dst_offset, length,
                           may_share);
  }
  // copy_range with `src` in `source`'s tree (another subvolume of the same
  // volume, or this one): shared extents gain a back reference from this
  // tree, bytes are read with `source`'s keys and written with this one's.
  // `source` is only read (it may be a read-only snapshot) apart from
  // flushing src's buffered data.
  Result<int64_t> copy_range_from(FileData& source, uint64_t src, uint64_t src_size,
                                  uint64_t src_offset, uint64_t dst, uint64_t dst_size,
                                  uint64_t dst_offset, uint64_t length, bool may_share = true);

  // Replaces the extents of encrypted inode `ino` that are under a key
  // other than its current one (a rotation's earlier keys) by copies
  // encrypted under the current key: each old data extent is read whole,
  // verified, decrypted with its own key and written as a new extent with a
  // fresh context (so no key and data unit number ever encrypt two
  // plaintexts), and the regular items that referenced it (extent_offset
  // and length kept) are pointed at the copy; items of other files found
  // in `cache` are pointed at the copy made for them before. A prealloc
  // item (zeros, never read) gets a new prealloc extent of its own length,
  // needing no key. Stops once about `max_bytes` were written (at least one
  // extent), for the caller to give the lock back; `done` when nothing old
  // is left. Buffered data is left as it is (it is written under the
  // current key anyway). `check_space` is asked before each copy for the
  // bytes it takes (ENOSPC). ENOKEY without an earlier key, EIO for an old
  // extent that does not verify, ENOSPC: returned before anything of the
  // item concerned was written, with the items before it changed
  // consistently (`*tree_changed_badly` false); any other error may leave
  // the change half made (`*tree_changed_badly` true: abort).
  Result<RekeyContentsReport> reencrypt_old_extents(
      uint64_t ino, uint64_t max_bytes, ReencryptCache& cache,
      const std::function<Status(uint64_t bytes)>& check_space, bool* tree_changed_badly);

  // Drops every extent item and buffered sector of `ino` (inode deletion).
  Status remove_all(uint64_t ino);

  // Writes the buffered data of one inode / of all inodes into new extents
  // (not a commit: the caller commits the transaction afterwards). Adjacent
  // runs are written as one extent of up to max_extent_size with one engine
  // write; if the allocator has no such free range, smaller extents are used.
  Status flush(uint64_t ino);
  Status flush_all();
  // flush_all in three steps (Writeout), of about `max_bytes` at most: whole
  // groups of touching runs are taken, inode by inode and in file order,
  // until they add up to `max_bytes` (so one group may pass it). One writeout
  // at a time: EBUSY while another is neither finished nor cancelled. An
  // empty Writeout when nothing is buffered.
  Result<Writeout> begin_writeout(uint64_t max_bytes = UINT64_MAX);
  // Records what `writeout` wrote (its write() succeeded) and drops its runs.
  // On failure the transaction holds part of it: the caller aborts.
  Status finish_writeout(Writeout writeout);
  // Thaws the runs of a writeout that will not finish: they stay buffered
  // and are written by a later one. Its extents, unreferenced, are freed at
  // commit.
  void cancel_writeout(Writeout writeout);
  // True when a writeout holds buffered data of `ino` in [start, end): a
  // write there must wait for it to finish.
  bool writing_out(uint64_t ino, uint64_t start, uint64_t end) const;
  // Bytes buffered and not in a writeout (not allocated yet), across all
  // inodes; and bytes buffered in a writeout.
  uint64_t dirty_bytes() const { return dirty_bytes_; }
  uint64_t writing_out_bytes() const { return writing_out_bytes_; }
  // Unmaps the memory kept for reuse if no run took any since the previous
  // call (to be called every few seconds). Returns the bytes unmapped.
  size_t release_idle_memory() { return run_memory_.release_idle(); }
  bool has_dirty(uint64_t ino) const;

 private:
  // What replace_extents does to the parts of items inside the range.
  enum class Replace { kDrop, kMakePrealloc };

  Status check_transaction() const;
  Result<store::BTree*> open_tree();
  // The running transaction's tree or, outside one, the committed tree
  // (kept in `committed`).
  Result<const store::BTree*> tree_for_reading(std::optional<store::BTree>& committed);
  DirtyBuffer* find_buffer(uint64_t ino);
  const DirtyBuffer* find_buffer(uint64_t ino) const;
  DirtyBuffer& buffer_for(uint64_t ino);
  // Forgets the buffered sectors of [start, end); the buffer's entry goes
  // when it empties. Returns the bytes dropped.
  uint64_t drop_buffered(uint64_t ino, uint64_t start, uint64_t end);

  // The one place where new data extents and their items are made: allocates
  // `length` bytes and, for a regular extent, writes `data` (length bytes)
  // into it. The item is not inserted (insert_extent does that).
  Result<FileExtentItem> create_extent(OperationKeys& keys, FileExtentType type, uint64_t length,
                                       ByteSpan data);
  // Tree items and their data references, kept in step (one reference per
  // EXTENT_DATA item, matching it exactly).
  Status insert_extent(store::BTree& tree, uint64_t ino, uint64_t offset,
                       const FileExtentItem& item);
  Status update_extent(store::BTree& tree, uint64_t ino, uint64_t offset,
                       const FileExtentItem& old_item, const FileExtentItem& new_item);
  Status remove_extent(store::BTree& tree, uint64_t ino, uint64_t offset,
                       const FileExtentItem& item);
  // Applies `how` to the parts of `extents` (extents_in of the range) that
  // lie in the sector-aligned range [start, end), trimming and splitting
  // items at its edges.
  Status replace_extents(store::BTree& tree, uint64_t ino, const std::vector<PlacedExtent>& extents,
                         uint64_t start, uint64_t end, Replace how);
  // Frees the sector-aligned range [start, end) (`end` may be UINT64_MAX):
  // items and buffered sectors. Returns the nbytes change.
  Result<int64_t> free_range(store::BTree& tree, uint64_t ino, uint64_t start, uint64_t end);
  // Prealloc extents for `holes` (sector aligned), all allocated before any
  // is inserted, so ENOSPC changes nothing.
  Result<std::vector<PlacedExtent>> allocate_prealloc(uint64_t ino,
                                                      const std::vector<FileRange>& holes);

  // write() without the checks.
  Result<int64_t> write_buffered(store::BTree& tree, uint64_t ino, uint64_t file_size,
                                 uint64_t offset, ByteSpan data);
  // Zeroes [start, end), which lies inside one sector, if that sector holds
  // data (buffered or a regular item); holes and prealloc read zeros already.
  Result<int64_t> zero_sector_part(store::BTree& tree, uint64_t ino, uint64_t file_size,
                                   uint64_t start, uint64_t end);
  // Plans the read of file range [offset, offset + out.size()): the buffer
  // over the items.
  // `keys` are the inode's for this operation (extent_keys.h).
  Status plan_range(OperationKeys& keys, const store::BTree& tree, uint64_t ino, uint64_t offset,
                    MutableByteSpan out, PlannedRead& plan);
  // Plans the read of file range [start, start + out.size()) from the items
  // alone.
  Status plan_extents(OperationKeys& keys, const store::BTree& tree, uint64_t ino, uint64_t start,
                      MutableByteSpan out, PlannedRead& plan);
  // Plans the read of `out.size()` bytes of `item`'s data extent (file
  // offset `file_offset` of inode `ino`), from device byte `pos` (any
  // alignment), as one engine read (decrypted with the extent's key when
  // the item is encrypted).
  Status plan_disk(OperationKeys& keys, uint64_t file_offset, const FileExtentItem& item,
                   uint64_t pos, MutableByteSpan out, PlannedRead& plan);
  // The same, planned and finished at once.
  Status read_range(const store::BTree& tree, uint64_t ino, uint64_t offset, MutableByteSpan out);
  Status read_disk(OperationKeys& keys, uint64_t ino, uint64_t file_offset,
                   const FileExtentItem& item, uint64_t pos, MutableByteSpan out);
  // Freezes the runs of `ino` (or of every inode) into `out`, allocating
  // their extents (cancelled on failure).
  Status freeze_into(Writeout& out, std::optional<uint64_t> only_ino, uint64_t max_bytes);
  // freeze_into a new Writeout, cancelled on failure.
  Result<Writeout> freeze(std::optional<uint64_t> only_ino, uint64_t max_bytes = UINT64_MAX);
  // Writes and finishes `out` at once (cancelled when the write fails).
  Status write_out_now(Result<Writeout> out);
  // The extent (and, for an encrypted inode, key) of new data: allocated,
  // nothing written.
  struct PreparedExtent {
    FileExtentItem item;
    std::shared_ptr<const block::DataUnitCrypter> crypter;  // null for plaintext
  };
  Result<PreparedExtent> prepare_extent(OperationKeys& keys, FileExtentType type, uint64_t length);
  // EBUSY when a writeout holds data of `ino`: the callers of truncate,
  // punch, copy and removal wait for it first (FileSystem).
  Status check_not_writing_out(uint64_t ino) const;

  // punch_hole() without the checks. REQUIRES: offset < end.
  Result<int64_t> punch_range(store::BTree& tree, uint64_t ino, uint64_t file_size, uint64_t offset,
                              uint64_t end);

  // copy_range pieces.
  Result<int64_t> copy_bytes(FileData& source, uint64_t src, uint64_t src_offset, uint64_t dst,
                             uint64_t dst_size, uint64_t dst_offset, uint64_t length);
  Result<int64_t> reflink(FileData& source, uint64_t src, uint64_t src_offset, uint64_t dst,
                          uint64_t dst_offset, uint64_t length);
  // The allocated (item or buffered) parts of [start, end), merged.
  Result<std::vector<FileRange>> allocated_ranges(const store::BTree& tree, uint64_t ino,
                                                  uint64_t start, uint64_t end);

  store::Engine& engine_;
  uint64_t tree_id_;
  FileDataOptions options_;
  RunMemoryPool run_memory_;                 // before buffers_, whose runs give blocks back
  HelperThread writeout_helper_;             // Writeout::write's second thread
  std::map<uint64_t, DirtyBuffer> buffers_;  // inode -> its dirty sectors (never empty)
  uint64_t dirty_bytes_ = 0;                 // buffered, not in a writeout
  uint64_t writing_out_bytes_ = 0;           // buffered and frozen in a writeout
};

}  // namespace ecfs::fs
