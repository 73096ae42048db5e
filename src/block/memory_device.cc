#include "block/memory_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

namespace ecfs::block {

MemoryDevice::MemoryDevice(uint64_t size, std::string name)
    : size_(size - size % kBlockSize), name_(std::move(name)) {}

MemoryDevice::MemoryDevice(const MemoryDevice& other) : size_(other.size_), name_(other.name_) {
  std::lock_guard lock(other.mutex_);
  blocks_ = other.blocks_;
  flush_count_ = other.flush_count_;
}

MemoryDevice& MemoryDevice::operator=(const MemoryDevice& other) {
  if (this == &other) return *this;
  std::scoped_lock lock(mutex_, other.mutex_);
  size_ = other.size_;
  name_ = other.name_;
  blocks_ = other.blocks_;
  flush_count_ = other.flush_count_;
  return *this;
}

MemoryDevice::MemoryDevice(MemoryDevice&& other) noexcept
    : size_(other.size_), name_(std::move(other.name_)) {
  std::lock_guard lock(other.mutex_);
  blocks_ = std::move(other.blocks_);
  flush_count_ = other.flush_count_;
}

MemoryDevice& MemoryDevice::operator=(MemoryDevice&& other) noexcept {
  if (this == &other) return *this;
  std::scoped_lock lock(mutex_, other.mutex_);
  size_ = other.size_;
  name_ = std::move(other.name_);
  blocks_ = std::move(other.blocks_);
  flush_count_ = other.flush_count_;
  return *this;
}

std::string MemoryDevice::describe() const { return name_; }

Status MemoryDevice::check_byte_range(uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return fail(EINVAL, name_ + ": " + std::to_string(length) + " bytes at offset " +
                            std::to_string(offset) + " are beyond the end of the device (" +
                            std::to_string(size_) + " bytes)");
  }
  return ok();
}

MemoryDevice::Block& MemoryDevice::writable_block(uint64_t index) {
  auto& slot = blocks_[index];
  if (!slot) {
    slot = std::make_shared<Block>();  // value-initialized: zeros
  } else if (slot.use_count() > 1) {
    // Shared with a copy of this device: take a private copy first. A count
    // read as 1 cannot be stale, since copies are only made under mutex_.
    slot = std::make_shared<Block>(*slot);
  }
  return *slot;
}

void MemoryDevice::copy_out(uint64_t offset, MutableByteSpan out) const {
  size_t done = 0;
  while (done < out.size()) {
    const uint64_t position = offset + done;
    const uint64_t index = position / kBlockSize;
    const size_t within = position % kBlockSize;
    const size_t chunk = std::min<size_t>(kBlockSize - within, out.size() - done);
    auto it = blocks_.find(index);
    if (it == blocks_.end()) {
      std::memset(out.data() + done, 0, chunk);
    } else {
      std::memcpy(out.data() + done, it->second->data() + within, chunk);
    }
    done += chunk;
  }
}

void MemoryDevice::copy_in(uint64_t offset, ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t position = offset + done;
    const size_t within = position % kBlockSize;
    const size_t chunk = std::min<size_t>(kBlockSize - within, data.size() - done);
    std::memcpy(writable_block(position / kBlockSize).data() + within, data.data() + done, chunk);
    done += chunk;
  }
}

Status MemoryDevice::read(uint64_t offset, MutableByteSpan out) {
  ECFS_TRY(check_request(*this, offset, out.size()));
  std::lock_guard lock(mutex_);
  copy_out(offset, out);
  return ok();
}

Status MemoryDevice::write(uint64_t offset, ByteSpan data) {
  ECFS_TRY(check_request(*this, offset, data.size()));
  std::lock_guard lock(mutex_);
  copy_in(offset, data);
  return ok();
}

Status MemoryDevice::discard(uint64_t offset, uint64_t length) {
  ECFS_TRY(check_request(*this, offset, length));
  std::lock_guard lock(mutex_);
  for (uint64_t index = offset / kBlockSize; index < (offset + length) / kBlockSize; ++index) {
    blocks_.erase(index);
  }
  ++discard_count_;
  return ok();
}

Status MemoryDevice::flush() {
  std::lock_guard lock(mutex_);
  ++flush_count_;
  return ok();
}

Status MemoryDevice::read_at(uint64_t offset, MutableByteSpan out) const {
  ECFS_TRY(check_byte_range(offset, out.size()));
  std::lock_guard lock(mutex_);
  copy_out(offset, out);
  return ok();
}

Status MemoryDevice::write_at(uint64_t offset, ByteSpan data) {
  ECFS_TRY(check_byte_range(offset, data.size()));
  std::lock_guard lock(mutex_);
  copy_in(offset, data);
  return ok();
}

MemoryDevice::BlockMap MemoryDevice::snapshot_blocks() const {
  std::lock_guard lock(mutex_);
  return blocks_;
}

std::optional<uint64_t> MemoryDevice::first_different_block(const MemoryDevice& other) const {
  // Compare snapshots so that neither lock is held while comparing and a
  // device can be compared with itself.
  const BlockMap mine = snapshot_blocks();
  const BlockMap theirs = other.snapshot_blocks();
  const uint64_t limit = std::min(size_, other.size_) / kBlockSize;
  static const Block kZeroBlock{};
  auto block_of = [](const BlockMap& map, uint64_t index) -> const Block& {
    auto it = map.find(index);
    return it == map.end() ? kZeroBlock : *it->second;
  };
  // Only blocks present in either map can differ.
  std::optional<uint64_t> first;
  auto consider = [&](uint64_t index) {
    if (index >= limit || (first && *first <= index)) return;
    if (block_of(mine, index) != block_of(theirs, index)) first = index;
  };
  for (const auto& [index, block] : mine) consider(index);
  for (const auto& [index, block] : theirs) consider(index);
  return first;
}

bool MemoryDevice::same_contents(const MemoryDevice& other) const {
  return size_ == other.size_ && !first_different_block(other).has_value();
}

uint64_t MemoryDevice::flush_count() const {
  std::lock_guard lock(mutex_);
  return flush_count_;
}

uint64_t MemoryDevice::discard_count() const {
  std::lock_guard lock(mutex_);
  return discard_count_;
}

size_t MemoryDevice::allocated_blocks() const {
  std::lock_guard lock(mutex_);
  return blocks_.size();
}

}  // namespace ecfs::block
