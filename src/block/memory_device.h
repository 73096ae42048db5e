// MemoryDevice: a BlockDevice held in memory, for tests, model checks and the
// crash images of RecordingDevice.
//
// Sparse: a block never written reads as zeros and takes no memory, so a
// device large enough to hold every superblock copy costs only what is
// written. Copying is cheap: a copy shares block buffers with the original and
// each side copies a block the first time it writes it (copy-on-write).
// flush() does nothing but count: memory is as durable as it gets.
// Thread-safety: every method may be called from any thread (one mutex).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "block/block_device.h"

namespace ecfs::block {

class MemoryDevice final : public BlockDevice {
 public:
  // `size` is rounded down to a whole number of blocks. `name` is what
  // describe() returns (tests name their devices to tell them apart).
  explicit MemoryDevice(uint64_t size, std::string name = "memory device");
  MemoryDevice(const MemoryDevice& other);
  MemoryDevice& operator=(const MemoryDevice& other);
  MemoryDevice(MemoryDevice&& other) noexcept;
  MemoryDevice& operator=(MemoryDevice&& other) noexcept;
  ~MemoryDevice() override = default;

  uint64_t size() const override { return size_; }
  Status read(uint64_t offset, MutableByteSpan out) override;
  Status write(uint64_t offset, ByteSpan data) override;
  Status flush() override;
  // Drops the range's blocks: it reads as zeros, as a punched hole.
  Status discard(uint64_t offset, uint64_t length) override;
  std::string describe() const override;

  // Byte-granular access within size() and without the alignment rule, for
  // tests that corrupt one byte or read a field, and for torn writes.
  // EINVAL when the range is outside the device.
  Status read_at(uint64_t offset, MutableByteSpan out) const;
  Status write_at(uint64_t offset, ByteSpan data);

  // True when both devices have the same size and the same bytes.
  bool same_contents(const MemoryDevice& other) const;
  // Index of the first block whose contents differ, or nullopt; devices of
  // different sizes compare up to the smaller size.
  std::optional<uint64_t> first_different_block(const MemoryDevice& other) const;

  uint64_t flush_count() const;
  uint64_t discard_count() const;
  // Blocks holding memory (ever written, whether or not now zero).
  size_t allocated_blocks() const;

 private:
  using Block = std::array<uint8_t, kBlockSize>;
  using BlockMap = std::map<uint64_t, std::shared_ptr<Block>>;

  Status check_byte_range(uint64_t offset, uint64_t length) const;
  // The block at `index`, private to this device (allocated or unshared).
  // REQUIRES: mutex_ held.
  Block& writable_block(uint64_t index);
  void copy_out(uint64_t offset, MutableByteSpan out) const;  // REQUIRES: mutex_ held
  void copy_in(uint64_t offset, ByteSpan data);               // REQUIRES: mutex_ held
  BlockMap snapshot_blocks() const;

  mutable std::mutex mutex_;
  uint64_t size_;
  std::string name_;
  BlockMap blocks_;             // guarded by mutex_
  uint64_t flush_count_ = 0;    // guarded by mutex_
  uint64_t discard_count_ = 0;  // guarded by mutex_
};

}  // namespace ecfs::block
