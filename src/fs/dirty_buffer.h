// DirtyBuffer: the written but not yet allocated sectors of one file, for
// delayed allocation (file_data.h; DESIGN.md "Storage engine shape").
//
// The buffer holds whole sectors (store::kSectorSize) in runs: each run is
// one contiguous block of memory covering [start, start + size) of the file,
// at most `max_run` bytes long, so that FileData::flush can hand a run to the
// engine as one extent in one write without gathering. Runs never overlap;
// two runs may touch (a run that reached max_run is continued by a new one).
// A write that continues a run grows it in place (amortised doubling up to
// max_run), so sequential writes copy each byte into the buffer once; a write
// inside a run is a memcpy. Nothing here reads the disk: the old contents of
// a partially written sector that is not buffered yet are supplied by the
// caller (`fill`).
//
// Runs longer than a 32nd of max_run live in blocks of a RunMemoryPool
// (run_memory_pool.h): page aligned for O_DIRECT and reused, already
// faulted in, once flushed; shorter ones (small files, scattered writes) in
// malloc'd memory sized to fit.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "fs/run_memory_pool.h"

namespace ecfs::fs {

// A half-open byte range [start, end) of a file.
struct FileRange {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t length() const { return end - start; }
  friend bool operator==(const FileRange&, const FileRange&) = default;
};

// One run of buffered sectors: a growable block of uninitialised memory.
// Not std::vector, which zeroes every byte it grows by (we overwrite them at
// once) and copies on growth. A short run grows by realloc; once it passes
// pooled_run_from(pool) it moves, once, into a pool block of the largest
// size a run takes, where it grows in place.
class SectorRun {
 public:
  // `pool` may be null: then every run is malloc'd.
  SectorRun(uint64_t size, RunMemoryPool* pool);
  SectorRun(SectorRun&&) noexcept = default;
  SectorRun& operator=(SectorRun&&) noexcept = default;

  uint64_t size() const { return size_; }
  uint8_t* data() { return bytes_.get(); }
  const uint8_t* data() const { return bytes_.get(); }
  ByteSpan bytes() const { return {bytes_.get(), size_}; }
  // Grows to `size` bytes (the new bytes are uninitialised), reserving at
  // most `max_capacity`. REQUIRES: size() <= size <= max_capacity, and
  // max_capacity <= the pool's block size.
  void grow(uint64_t size, uint64_t max_capacity, RunMemoryPool* pool);
  // Keeps the first `size` bytes. REQUIRES: size <= size().
  void shrink(uint64_t size) { size_ = size; }
  // A frozen run is being written out by another thread without the lock
  // (FileData::begin_writeout): its bytes are read there, so nothing may
  // change, grow or free them until it is dropped or thawed.
  bool frozen() const { return frozen_; }
  void set_frozen(bool frozen) { frozen_ = frozen; }

 private:
  // Gives a pool block back to its pool (`pool` set), frees malloc'd memory.
  struct Free {
    Free() noexcept : pool(nullptr) {}
    explicit Free(RunMemoryPool* owner) noexcept : pool(owner) {}
    void operator()(uint8_t* p) const;
    RunMemoryPool* pool;
  };
  // Memory for `capacity` bytes of which the first `keep` (of bytes_) are
  // kept: a pool block when capacity passes pooled_run_from, else malloc.
  void reallocate(uint64_t capacity, uint64_t keep, RunMemoryPool* pool);
  std::unique_ptr<uint8_t, Free> bytes_;
  uint64_t size_ = 0;
  uint64_t capacity_ = 0;
  bool frozen_ = false;
};

class DirtyBuffer {
 public:
  using RunMap = std::map<uint64_t, SectorRun>;  // start -> run
  // Supplies the old contents of the not yet buffered sector at `sector`
  // (kSectorSize bytes at `out`) when a write covers it only partly.
  using SectorFill = std::function<void(uint64_t sector, uint8_t* out)>;

  // REQUIRES: max_run is a positive multiple of the sector size, and at
  // most the block size of `pool` (which may be null: no pooling).
  explicit DirtyBuffer(uint64_t max_run, RunMemoryPool* pool = nullptr)
      : max_run_(max_run), pool_(pool) {}

  // Buffered bytes (whole sectors).
  uint64_t bytes() const { return bytes_; }
  bool empty() const { return runs_.empty(); }
  const RunMap& runs() const { return runs_; }

  // The run that contains `pos` or, if none does, the first run after it.
  RunMap::const_iterator first_ending_after(uint64_t pos) const;
  // The run containing byte `pos`, or runs().end().
  RunMap::const_iterator find(uint64_t pos) const;

  // The buffered parts of [start, end), in order, merged where runs touch.
  std::vector<FileRange> ranges_in(uint64_t start, uint64_t end) const;
  // The sectors of [start, end) that are not buffered, in order.
  // REQUIRES: start and end are sector aligned.
  std::vector<FileRange> gaps_in(uint64_t start, uint64_t end) const;

  // Copies `data` to file offset `offset`. Sectors not buffered yet are
  // added; `fill` is called first for a new sector the data covers only in
  // part (at most the first and the last one). Returns the bytes added.
  // A frozen run is never grown: new sectors after it start a new run.
  // REQUIRES: no frozen run holds a sector the data touches.
  uint64_t store(uint64_t offset, ByteSpan data, const SectorFill& fill);

  // True when a frozen run holds part of [start, end).
  bool frozen_in(uint64_t start, uint64_t end) const;
  // Sets the frozen mark of the runs inside [start, end), which must start
  // and end on run boundaries.
  void set_frozen(uint64_t start, uint64_t end, bool frozen);

  // Forgets the buffered sectors of [start, end) (sector aligned; `end` may
  // be UINT64_MAX). Returns the bytes dropped. REQUIRES: a frozen run in
  // the range lies wholly inside it.
  uint64_t drop(uint64_t start, uint64_t end);

 private:
  uint64_t max_run_;
  RunMemoryPool* pool_;
  RunMap runs_;
  uint64_t bytes_ = 0;
};

}  // namespace ecfs::fs
