// FaultDevice: forwards requests to an inner device and injects the faults a
// test arms: the nth read, write or flush failing with a chosen errno; every
// such request failing after a point (a dead disk); data read from a range
// coming back with flipped bits (a medium that rots silently, for checksum
// tests); and a power cut, after which writes and flushes report success but
// reach nothing, so the inner device holds what a machine that lost power
// would have written.
//
// Counting: each armed fault counts requests of its kind from the moment it
// is armed; nth = 1 is the next one. A request that fails is not forwarded.
// Reads after a power cut still forward (a test reads the inner device or
// a crash image of it instead).
// Thread-safety: all methods may be called from any thread; arming a fault
// while requests run affects requests that start afterwards.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "block/block_device.h"
#include "block/wrapping_device.h"

namespace ecfs::block {

enum class FaultOp : uint8_t { kRead, kWrite, kFlush };

class FaultDevice final : public WrappingDevice {
 public:
  // Wraps `inner`, borrowed (it must outlive this device) or owned.
  using WrappingDevice::WrappingDevice;
  ~FaultDevice() override;

  Status read(uint64_t offset, MutableByteSpan out) override;
  Status write(uint64_t offset, ByteSpan data) override;
  Status flush() override;
  // Counted and faulted as a write (it changes what the medium holds): a
  // power cut drops it too.
  Status discard(uint64_t offset, uint64_t length) override;

  // The nth request of kind `op` from now (1 = the next) fails with
  // `errno_value` (EIO, ENOSPC, ...), once. REQUIRES: nth >= 1.
  void fail_nth(FaultOp op, uint64_t nth, int errno_value);
  // After `successes` more requests of kind `op`, every later one fails with
  // `errno_value` until heal().
  void fail_after(FaultOp op, uint64_t successes, int errno_value);
  // Every read returning bytes of [offset, offset + length) comes back with
  // one bit flipped in the part of each 4 KiB block that overlaps the range;
  // which bit depends only on `seed` and the block, so rereads agree.
  void corrupt_reads(uint64_t offset, uint64_t length, uint64_t seed = 0);
  // Cuts the power after `writes` more writes: later writes and flushes are
  // dropped and report success.
  void power_cut_after(uint64_t writes);
  void power_cut() { power_cut_after(0); }
  // Disarms every fault and restores the power.
  void heal();

  bool power_is_cut() const;
  // Requests of kind `op` seen so far (failed and dropped ones included).
  uint64_t request_count(FaultOp op) const;
  // Requests failed by an armed fault, and writes dropped by a power cut.
  uint64_t injected_failures() const;
  uint64_t dropped_writes() const;

 private:
  struct NthFault {
    FaultOp op;
    uint64_t at;  // request_count value of the failing request
    int errno_value;
  };
  struct PersistentFault {
    FaultOp op;
    uint64_t from;  // first failing request_count value
    int errno_value;
  };
  struct Corruption {
    uint64_t offset;
    uint64_t length;
    uint64_t seed;
  };
  enum class Decision { kForward, kFail, kDrop };

  // Counts a request and decides its fate. Fills *errno_value on kFail.
  Decision admit(FaultOp op, int* errno_value);
  void apply_corruption(uint64_t offset, MutableByteSpan out) const;
  std::unexpected<Error> injected(FaultOp op, uint64_t offset, size_t length, int errno_value);

  mutable std::mutex mutex_;
  // All guarded by mutex_.
  uint64_t counts_[3] = {0, 0, 0};
  std::vector<NthFault> nth_faults_;
  std::vector<PersistentFault> persistent_faults_;
  std::vector<Corruption> corruptions_;
  std::optional<uint64_t> power_cut_at_write_;  // request_count(kWrite) from which writes drop
  uint64_t injected_failures_ = 0;
  uint64_t dropped_writes_ = 0;
};

}  // namespace ecfs::block
