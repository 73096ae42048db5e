#include "block/recording_device.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include "block/crash_rng.h"

namespace ecfs::block {
namespace {

constexpr uint32_t kSectorsPerBlock = kBlockSize / kAtomicSectorSize;

bool all_zero(ByteSpan data) {
  return std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == 0; });
}

// Applies one write to `image` as `choice` says. The write was checked when
// it was recorded, so it fits the image.
void apply_write(MemoryDevice& image, const RecordedOp& op, const WriteChoice& choice) {
  const ByteSpan data(*op.data);
  const size_t blocks = data.size() / kBlockSize;
  switch (choice.fate) {
    case WriteFate::kDropped:
      return;
    case WriteFate::kKept:
      (void)image.write_at(op.offset, data);
      return;
    case WriteFate::kTorn:
      if (blocks == 1) {
        (void)image.write_at(op.offset,
                             data.first(size_t{choice.sectors_written} * kAtomicSectorSize));
        return;
      }
      for (size_t i = 0; i < blocks; ++i) {
        if (choice.blocks_written[i]) {
          (void)image.write_at(op.offset + i * kBlockSize,
                               data.subspan(i * kBlockSize, kBlockSize));
        }
      }
      return;
  }
}

}  // namespace

RecordingDevice::RecordingDevice(BlockDevice& inner) : WrappingDevice(inner) {
  capture_initial_image();
}

RecordingDevice::RecordingDevice(BlockDevicePtr inner) : WrappingDevice(std::move(inner)) {
  capture_initial_image();
}

RecordingDevice::~RecordingDevice() = default;

void RecordingDevice::capture_initial_image() {
  if (auto* memory = dynamic_cast<MemoryDevice*>(&inner())) {
    initial_.emplace(*memory);  // shares blocks: cheap
    return;
  }
  // Any other device: read it all, keeping only the blocks that hold data.
  MemoryDevice image(inner().size(), "crash image of " + inner().describe());
  constexpr size_t kChunk = 1u << 20;
  Bytes buffer(kChunk);
  for (uint64_t offset = 0; offset < inner().size(); offset += kChunk) {
    const size_t length = static_cast<size_t>(std::min<uint64_t>(kChunk, inner().size() - offset));
    auto status = inner().read(offset, MutableByteSpan(buffer.data(), length));
    if (!status) {
      initial_error_ = std::move(status).error();
      return;
    }
    for (size_t i = 0; i < length; i += kBlockSize) {
      const ByteSpan block(buffer.data() + i, kBlockSize);
      if (!all_zero(block)) (void)image.write_at(offset + i, block);
    }
  }
  initial_.emplace(std::move(image));
}

Status RecordingDevice::write(uint64_t offset, ByteSpan data) {
  ECFS_TRY(check_request(*this, offset, data.size()));
  ECFS_TRY(inner().write(offset, data));
  auto copy = std::make_shared<const Bytes>(data.begin(), data.end());
  std::lock_guard lock(mutex_);
  ops_.push_back({RecordedOp::Kind::kWrite, offset, std::move(copy)});
  return ok();
}

Status RecordingDevice::discard(uint64_t offset, uint64_t length) {
  ECFS_TRY(check_request(*this, offset, length));
  return write(offset, Bytes(length, 0));
}

Status RecordingDevice::flush() {
  size_t index;
  {
    std::lock_guard lock(mutex_);
    index = ops_.size();
    ops_.push_back({RecordedOp::Kind::kFlushInFlight, 0, nullptr});
  }
  auto status = inner().flush();
  std::lock_guard lock(mutex_);
  ops_[index].kind = status ? RecordedOp::Kind::kFlush : RecordedOp::Kind::kFlushFailed;
  return status;
}

std::string RecordingDevice::describe() const { return "recording of " + inner().describe(); }

size_t RecordingDevice::op_count() const {
  std::lock_guard lock(mutex_);
  return ops_.size();
}

RecordedOp RecordingDevice::op(size_t index) const {
  std::lock_guard lock(mutex_);
  return index < ops_.size() ? ops_[index] : RecordedOp{};
}

std::vector<size_t> RecordingDevice::flush_points() const {
  std::lock_guard lock(mutex_);
  std::vector<size_t> points;
  for (size_t i = 0; i < ops_.size(); ++i) {
    if (ops_[i].kind == RecordedOp::Kind::kFlush) points.push_back(i);
  }
  return points;
}

size_t RecordingDevice::barrier_before(size_t point) const {
  // Ops before the returned index are durable at a crash at `point`.
  for (size_t i = std::min(point, ops_.size()); i > 0; --i) {
    if (ops_[i - 1].kind == RecordedOp::Kind::kFlush) return i;
  }
  return 0;
}

std::vector<size_t> RecordingDevice::unflushed_writes(size_t point) const {
  std::lock_guard lock(mutex_);
  std::vector<size_t> writes;
  const size_t end = std::min(point, ops_.size());
  for (size_t i = barrier_before(point); i < end; ++i) {
    if (ops_[i].kind == RecordedOp::Kind::kWrite) writes.push_back(i);
  }
  return writes;
}

std::vector<WriteChoice> RecordingDevice::choose(size_t point, CrashMode mode,
                                                 uint64_t seed) const {
  const std::vector<size_t> writes = unflushed_writes(point);
  std::vector<WriteChoice> choices(writes.size());
  CrashRng rng(seed);
  for (size_t i = 0; i < writes.size(); ++i) {
    WriteChoice& choice = choices[i];
    switch (mode) {
      case CrashMode::kDropAllUnflushed:
        choice.fate = WriteFate::kDropped;
        break;
      case CrashMode::kKeepAllUnflushed:
        choice.fate = WriteFate::kKept;
        break;
      case CrashMode::kRandomSubset:
        choice.fate = rng.below(2) == 0 ? WriteFate::kDropped : WriteFate::kKept;
        break;
      case CrashMode::kRandomSubsetWithTears: {
        choice.fate = static_cast<WriteFate>(rng.below(3));
        if (choice.fate != WriteFate::kTorn) break;
        const size_t blocks = op(writes[i]).data->size() / kBlockSize;
        if (blocks == 1) {
          // A strict, non-empty prefix: 0 or 8 sectors would be a drop or a keep.
          choice.sectors_written = static_cast<uint32_t>(1 + rng.below(kSectorsPerBlock - 1));
        } else {
          choice.blocks_written.resize(blocks);
          for (size_t b = 0; b < blocks; ++b) choice.blocks_written[b] = rng.below(2) == 1;
        }
        break;
      }
    }
  }
  return choices;
}

MemoryDevice RecordingDevice::prefix_image(size_t count) const {
  MemoryDevice image = *initial_;
  size_t start = 0;
  if (prefix_cache_ && prefix_cache_->first <= count) {
    image = prefix_cache_->second;
    start = prefix_cache_->first;
  }
  const WriteChoice keep;
  for (size_t i = start; i < count; ++i) {
    if (ops_[i].kind == RecordedOp::Kind::kWrite) apply_write(image, ops_[i], keep);
  }
  prefix_cache_.emplace(count, image);
  return image;
}

Result<MemoryDevice> RecordingDevice::crash_image(size_t point, CrashMode mode,
                                                  uint64_t seed) const {
  if (point > op_count()) {
    return fail(EINVAL, describe() + ": crash point " + std::to_string(point) +
                            " is past the end of the log (" + std::to_string(op_count()) + " ops)");
  }
  const std::vector<WriteChoice> choices = choose(point, mode, seed);
  return crash_image(point, choices);
}

Result<MemoryDevice> RecordingDevice::crash_image(size_t point,
                                                  std::span<const WriteChoice> choices) const {
  std::lock_guard lock(mutex_);
  if (!initial_) return std::unexpected(*initial_error_);
  if (point > ops_.size()) {
    return fail(EINVAL, describe() + ": crash point " + std::to_string(point) +
                            " is past the end of the log (" + std::to_string(ops_.size()) +
                            " ops)");
  }
  const size_t barrier = barrier_before(point);
  std::vector<size_t> writes;
  for (size_t i = barrier; i < point; ++i) {
    if (ops_[i].kind == RecordedOp::Kind::kWrite) writes.push_back(i);
  }
  if (choices.size() != writes.size()) {
    return fail(EINVAL, describe() + ": " + std::to_string(choices.size()) + " choices for " +
                            std::to_string(writes.size()) + " unflushed writes");
  }
  for (size_t i = 0; i < writes.size(); ++i) {
    const WriteChoice& choice = choices[i];
    if (choice.fate != WriteFate::kTorn) continue;
    const size_t blocks = ops_[writes[i]].data->size() / kBlockSize;
    const bool fits = blocks == 1 ? choice.sectors_written <= kSectorsPerBlock
                                  : choice.blocks_written.size() == blocks;
    if (!fits) {
      return fail(EINVAL, describe() + ": tear of op " + std::to_string(writes[i]) +
                              " does not match its " + std::to_string(blocks) + " blocks");
    }
  }
  MemoryDevice image = prefix_image(barrier);
  for (size_t i = 0; i < writes.size(); ++i) apply_write(image, ops_[writes[i]], choices[i]);
  return image;
}

size_t RecordingDevice::discard_flushed_ops() {
  std::lock_guard lock(mutex_);
  if (!initial_) return 0;
  const size_t barrier = barrier_before(ops_.size());
  if (barrier == 0) return 0;
  initial_ = prefix_image(barrier);
  ops_.erase(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(barrier));
  prefix_cache_.reset();
  return barrier;
}

}  // namespace ecfs::block
