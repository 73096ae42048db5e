#include "block/fault_device.h"

#include <algorithm>
#include <utility>

#include "block/crash_rng.h"

namespace ecfs::block {
namespace {

const char* op_name(FaultOp op) {
  switch (op) {
    case FaultOp::kRead:
      return "read";
    case FaultOp::kWrite:
      return "write";
    case FaultOp::kFlush:
      return "flush";
  }
  return "request";
}

size_t index_of(FaultOp op) { return static_cast<size_t>(op); }

}  // namespace

FaultDevice::~FaultDevice() = default;

void FaultDevice::fail_nth(FaultOp op, uint64_t nth, int errno_value) {
  std::lock_guard lock(mutex_);
  nth_faults_.push_back({op, counts_[index_of(op)] + std::max<uint64_t>(nth, 1), errno_value});
}

void FaultDevice::fail_after(FaultOp op, uint64_t successes, int errno_value) {
  std::lock_guard lock(mutex_);
  persistent_faults_.push_back({op, counts_[index_of(op)] + successes + 1, errno_value});
}

void FaultDevice::corrupt_reads(uint64_t offset, uint64_t length, uint64_t seed) {
  std::lock_guard lock(mutex_);
  corruptions_.push_back({offset, length, seed});
}

void FaultDevice::power_cut_after(uint64_t writes) {
  std::lock_guard lock(mutex_);
  power_cut_at_write_ = counts_[index_of(FaultOp::kWrite)] + writes + 1;
}

void FaultDevice::heal() {
  std::lock_guard lock(mutex_);
  nth_faults_.clear();
  persistent_faults_.clear();
  corruptions_.clear();
  power_cut_at_write_.reset();
}

bool FaultDevice::power_is_cut() const {
  std::lock_guard lock(mutex_);
  return power_cut_at_write_ && counts_[index_of(FaultOp::kWrite)] + 1 >= *power_cut_at_write_;
}

uint64_t FaultDevice::request_count(FaultOp op) const {
  std::lock_guard lock(mutex_);
  return counts_[index_of(op)];
}

uint64_t FaultDevice::injected_failures() const {
  std::lock_guard lock(mutex_);
  return injected_failures_;
}

uint64_t FaultDevice::dropped_writes() const {
  std::lock_guard lock(mutex_);
  return dropped_writes_;
}

FaultDevice::Decision FaultDevice::admit(FaultOp op, int* errno_value) {
  std::lock_guard lock(mutex_);
  const uint64_t number = ++counts_[index_of(op)];
  // A dead machine neither fails nor writes: the power cut comes first.
  if (op != FaultOp::kRead && power_cut_at_write_ &&
      counts_[index_of(FaultOp::kWrite)] + (op == FaultOp::kWrite ? 0 : 1) >=
          *power_cut_at_write_) {
    if (op == FaultOp::kWrite) ++dropped_writes_;
    return Decision::kDrop;
  }
  for (auto it = nth_faults_.begin(); it != nth_faults_.end(); ++it) {
    if (it->op == op && it->at == number) {
      *errno_value = it->errno_value;
      nth_faults_.erase(it);
      ++injected_failures_;
      return Decision::kFail;
    }
  }
  for (const auto& fault : persistent_faults_) {
    if (fault.op == op && number >= fault.from) {
      *errno_value = fault.errno_value;
      ++injected_failures_;
      return Decision::kFail;
    }
  }
  return Decision::kForward;
}

std::unexpected<Error> FaultDevice::injected(FaultOp op, uint64_t offset, size_t length,
                                             int errno_value) {
  if (op == FaultOp::kFlush) return fail(errno_value, describe() + ": flush failed (injected)");
  return fail(errno_value, describe() + ": " + op_name(op) + " of " + std::to_string(length) +
                               " bytes at offset " + std::to_string(offset) + " failed (injected)");
}

void FaultDevice::apply_corruption(uint64_t offset, MutableByteSpan out) const {
  std::vector<Corruption> corruptions;
  {
    std::lock_guard lock(mutex_);
    corruptions = corruptions_;
  }
  const uint64_t end = offset + out.size();
  for (const auto& corruption : corruptions) {
    const uint64_t range_end = corruption.offset + corruption.length;
    const uint64_t first = std::max(offset, corruption.offset);
    const uint64_t last = std::min(end, range_end);
    if (first >= last) continue;
    for (uint64_t block = first / kBlockSize; block * kBlockSize < last; ++block) {
      // The part of this block inside the corrupted range, independent of
      // the read, so that every read of the block flips the same bit.
      const uint64_t part_begin = std::max(block * kBlockSize, corruption.offset);
      const uint64_t part_end = std::min((block + 1) * kBlockSize, range_end);
      CrashRng rng(corruption.seed ^ (block * 0xD6E8FEB86659FD93ull));
      const uint64_t bit = rng.below((part_end - part_begin) * 8);
      const uint64_t byte = part_begin + bit / 8;
      if (byte >= offset && byte < end) {
        out[byte - offset] ^= static_cast<uint8_t>(1u << (bit % 8));
      }
    }
  }
}

Status FaultDevice::read(uint64_t offset, MutableByteSpan out) {
  ECFS_TRY(check_request(*this, offset, out.size()));
  int errno_value = 0;
  if (admit(FaultOp::kRead, &errno_value) == Decision::kFail) {
    return injected(FaultOp::kRead, offset, out.size(), errno_value);
  }
  ECFS_TRY(inner().read(offset, out));
  apply_corruption(offset, out);
  return ok();
}

Status FaultDevice::write(uint64_t offset, ByteSpan data) {
  ECFS_TRY(check_request(*this, offset, data.size()));
  int errno_value = 0;
  switch (admit(FaultOp::kWrite, &errno_value)) {
    case Decision::kFail:
      return injected(FaultOp::kWrite, offset, data.size(), errno_value);
    case Decision::kDrop:
      return ok();
    case Decision::kForward:
      break;
  }
  return inner().write(offset, data);
}

Status FaultDevice::discard(uint64_t offset, uint64_t length) {
  ECFS_TRY(check_request(*this, offset, length));
  int errno_value = 0;
  switch (admit(FaultOp::kWrite, &errno_value)) {
    case Decision::kFail:
      return injected(FaultOp::kWrite, offset, length, errno_value);
    case Decision::kDrop:
      return ok();
    case Decision::kForward:
      break;
  }
  return inner().discard(offset, length);
}

Status FaultDevice::flush() {
  int errno_value = 0;
  switch (admit(FaultOp::kFlush, &errno_value)) {
    case Decision::kFail:
      return injected(FaultOp::kFlush, 0, 0, errno_value);
    case Decision::kDrop:
      return ok();
    case Decision::kForward:
      break;
  }
  return inner().flush();
}

}  // namespace ecfs::block
