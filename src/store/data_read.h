// DataRead: a read of data sectors in two steps, so that its slow part runs
// without the lock that guards the engine.
//
// Engine::prepare_data_read (under the caller's lock, like every engine
// call) checks the range and looks up its checksums in the csum tree.
// read_into then needs no engine at all: it reads the device, verifies every
// sector against those checksums and only then decrypts (block::submit_read),
// on any thread, while the caller goes on changing the trees.
//
// What the caller must guarantee in between: the range stays allocated, so
// no new data is written over it. Space freed by the running transaction is
// pinned until that transaction commits (space_allocator.h), so keeping
// commits and aborts from running while reads are in flight is enough.
#pragma once

#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"
#include "block/block_device.h"
#include "block/inline_crypt.h"
#include "store/data_checksums.h"
#include "store/format.h"

namespace ecfs::store {

class DataRead {
 public:
  uint64_t bytenr() const { return checksums_.bytenr; }
  uint64_t length() const { return length_; }

  // Reads the prepared range into `out` (exactly length() bytes), verified
  // as stored, then decrypted with `crypt` if given. EIO naming the sector
  // for a checksum mismatch or a missing checksum, device errors as they
  // come, EINVAL for a wrong `out` size; on any failure `out` is zeroed.
  // Thread-safe: one DataRead may be read from several threads.
  Status read_into(MutableByteSpan out, const block::CryptContext* crypt = nullptr) const;

 private:
  friend class Engine;
  DataRead(block::BlockDevice& device, ChecksumType type, SectorChecksums checksums,
           uint64_t length)
      : device_(&device), type_(type), checksums_(std::move(checksums)), length_(length) {}

  block::BlockDevice* device_;
  ChecksumType type_;
  SectorChecksums checksums_;
  uint64_t length_;
};

}  // namespace ecfs::store
