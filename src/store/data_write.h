// DataWrite: a write of new data sectors in three steps, so that its slow
// part — encryption, checksums, the device write — runs without the lock
// that guards the engine (the write side of data_read.h).
//
// Engine::prepare_data_write (under the caller's lock, like every engine
// call) checks that the range lies in a data extent allocated by the running
// transaction. write() then needs no engine: it writes through the
// inline-crypt layer and keeps the checksums of the bytes as they are on the
// device. Engine::finish_data_write (under the lock again) records those
// checksums in the csum tree. Engine::write_data is the three at once.
//
// What the caller must guarantee in between: the transaction neither
// commits nor aborts (the extent is new in it, and is freed by a commit
// that finds it unreferenced), and nothing else writes the range.
#pragma once

#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"
#include "block/block_device.h"
#include "block/inline_crypt.h"
#include "store/format.h"

namespace ecfs::store {

class DataWrite {
 public:
  uint64_t bytenr() const { return bytenr_; }
  uint64_t length() const { return length_; }
  bool written() const { return written_; }

  // Writes `data` (exactly length() bytes; plaintext, encrypted into a
  // bounce buffer with `crypt`, never modified) and computes the checksum
  // of every sector as it goes to the device. EINVAL for a wrong size or as
  // block::submit_write; device and crypter errors as they come. One call
  // per DataWrite; different DataWrites may be written on different threads.
  Status write(ByteSpan data, const block::CryptContext* crypt = nullptr);

 private:
  friend class Engine;
  DataWrite(block::BlockDevice& device, ChecksumType type, uint64_t bytenr, uint64_t length);

  block::BlockDevice* device_;
  ChecksumType type_;
  uint64_t bytenr_;
  uint64_t length_;
  Bytes sums_;  // one checksum per sector, filled by write()
  bool written_ = false;
};

}  // namespace ecfs::store
