// BlockDevice: where an ecfs image lives — an image file, a block device, or
// (for tests) memory, a recorder of writes, or a fault injector.
//
// Contract: reads and writes are at byte offsets and lengths that are
// multiples of block_size() (4096) and within size(). A write is durable only
// after a later flush() returns; until then a crash may lose it, keep it, or
// (in tests) tear it. flush() is the only ordering barrier.
// Thread-safety: read() and write() may be called concurrently on disjoint
// ranges; flush() may run concurrently with them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::block {

inline constexpr uint32_t kBlockSize = 4096;

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  virtual uint64_t size() const = 0;
  uint32_t block_size() const { return kBlockSize; }

  // EINVAL for misaligned or out-of-range requests; EIO (with the offset in
  // the message) when the medium fails; ENOSPC when a sparse image cannot be
  // backed by the host filesystem.
  virtual Status read(uint64_t offset, MutableByteSpan out) = 0;
  virtual Status write(uint64_t offset, ByteSpan data) = 0;
  virtual Status flush() = 0;
  // Tells the device that [offset, offset + length) holds nothing worth
  // keeping (space a committed transaction freed): an image file gives the
  // space back to its host filesystem (a punched hole), a block device lets
  // the storage reclaim it (BLKDISCARD). Reads of the range may then return
  // anything (zeros for an image file and in memory). Not a barrier.
  // EOPNOTSUPP when the device cannot (the default); EINVAL as read/write.
  virtual Status discard(uint64_t offset, uint64_t length);

  // Describes the device for messages, e.g. the image path.
  virtual std::string describe() const = 0;
};

using BlockDevicePtr = std::unique_ptr<BlockDevice>;

// Checks alignment and range for a request of `length` bytes at `offset`.
Status check_request(const BlockDevice& device, uint64_t offset, uint64_t length);

}  // namespace ecfs::block
