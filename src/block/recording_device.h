// RecordingDevice: forwards every request to an inner device and records the
// writes (offset and a copy of the data) and flushes, so a test can ask what
// the medium could hold after a power failure at any point of the run.
//
// Crash model (BlockDevice's contract): a crash at `point` means the ops with
// index < point were issued and nothing later. Every write before the last
// completed flush before `point` is durable. Each write after that flush
// (and before `point`) independently reached the medium, did not, or was
// torn: a multi-block write kept only some of its 4 KiB blocks, a one-block
// write kept a prefix of its 512-byte sectors (the atomic unit of common
// disks). Independent choices also cover reordering: a later write kept and
// an earlier one dropped. Where kept writes overlap, the later one wins.
// Image contents start from the inner device's contents at construction.
//
// Concurrency: a flush is recorded when it starts and becomes a barrier
// when it returns successfully; a write is recorded when it returns. So a
// write that races with a flush never counts as covered by it. Failed
// writes are not recorded; failed flushes are no barrier.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "block/block_device.h"
#include "block/memory_device.h"
#include "block/wrapping_device.h"

namespace ecfs::block {

enum class CrashMode {
  kDropAllUnflushed,       // only what the last flush covered
  kKeepAllUnflushed,       // everything issued before the crash point
  kRandomSubset,           // each unflushed write kept or dropped (1/2 each)
  kRandomSubsetWithTears,  // each unflushed write dropped, kept or torn (1/3 each)
};

enum class WriteFate : uint8_t { kDropped, kKept, kTorn };

// What a crash did to one write no completed flush covered.
struct WriteChoice {
  WriteFate fate = WriteFate::kKept;
  // kTorn on a write of several blocks: one entry per block, true when that
  // block reached the medium.
  std::vector<bool> blocks_written;
  // kTorn on a one-block write: how many leading 512-byte sectors reached
  // the medium (0 to 8).
  uint32_t sectors_written = 0;
};

// The unit a disk writes atomically, and so the granularity of a torn block.
inline constexpr uint32_t kAtomicSectorSize = 512;

struct RecordedOp {
  enum class Kind : uint8_t {
    kWrite,
    kFlush,        // completed: a barrier
    kFlushFailed,  // returned an error: no barrier
    kFlushInFlight,
  };
  Kind kind = Kind::kWrite;
  uint64_t offset = 0;                // writes only
  std::shared_ptr<const Bytes> data;  // writes only
};

class RecordingDevice final : public WrappingDevice {
 public:
  // Records requests to `inner`, which must outlive this device.
  explicit RecordingDevice(BlockDevice& inner);
  // Records requests to `inner`, which this device owns.
  explicit RecordingDevice(BlockDevicePtr inner);
  ~RecordingDevice() override;

  // Reads are forwarded unchanged (WrappingDevice::read).
  Status write(uint64_t offset, ByteSpan data) override;
  Status flush() override;
  // Recorded as a write of zeros (what a discarded range of an image file
  // reads as), so that crash images hold discards that happened, or not.
  Status discard(uint64_t offset, uint64_t length) override;
  std::string describe() const override;

  // The op log: writes and flushes in the order they were recorded.
  size_t op_count() const;
  RecordedOp op(size_t index) const;
  // Indices of the completed flushes.
  std::vector<size_t> flush_points() const;
  // Indices of the writes a crash at `point` may lose (those after the last
  // completed flush before `point`). REQUIRES: point <= op_count().
  std::vector<size_t> unflushed_writes(size_t point) const;

  // The choices `mode` and `seed` make for the writes unflushed_writes(point)
  // names, in that order; deterministic for a given seed on every platform.
  std::vector<WriteChoice> choose(size_t point, CrashMode mode, uint64_t seed) const;

  // The device contents after a crash at `point` (0..op_count()), as `mode`
  // and `seed` choose, or with one explicit choice per unflushed write.
  // EINVAL for a point past the log or choices that do not fit the writes;
  // the inner device's error when its initial contents could not be read.
  Result<MemoryDevice> crash_image(size_t point, CrashMode mode, uint64_t seed = 0) const;
  Result<MemoryDevice> crash_image(size_t point, std::span<const WriteChoice> choices) const;

  // Folds every op up to the last completed flush into the initial image and
  // drops it from the log (indices restart at 0), to bound memory in long
  // runs. Returns the number of ops removed. Indices taken before the call
  // (flush points, unflushed writes, choices) are meaningless after it.
  size_t discard_flushed_ops();

 private:
  void capture_initial_image();
  size_t barrier_before(size_t point) const;  // REQUIRES: mutex_ held
  // The image after applying ops [0, count) completely. REQUIRES: mutex_ held.
  MemoryDevice prefix_image(size_t count) const;

  mutable std::mutex mutex_;
  std::vector<RecordedOp> ops_;          // guarded by mutex_
  std::optional<MemoryDevice> initial_;  // guarded by mutex_; nullopt if unreadable
  std::optional<Error> initial_error_;
  // The last prefix image built, reused when a later point needs a longer
  // prefix: crash tests walk the points in order.
  mutable std::optional<std::pair<size_t, MemoryDevice>> prefix_cache_;  // guarded by mutex_
};

}  // namespace ecfs::block
