#include "fs/dirty_buffer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <new>

#include "store/format.h"

namespace ecfs::fs {
namespace {

constexpr uint64_t kSector = store::kSectorSize;

uint64_t align_down(uint64_t x) { return x & ~(kSector - 1); }
uint64_t align_up(uint64_t x) { return align_down(x + kSector - 1); }

// Runs longer than this take a pool block. Below it a run is small enough
// that a whole block would mostly sit idle (a block stays resident once
// faulted in); above it the one copy into the block costs at most a 32nd of
// the bytes the block will take.
uint64_t pooled_run_from(const RunMemoryPool* pool) {
  return pool == nullptr ? UINT64_MAX : pool->block_size() / 32;
}

}  // namespace

void SectorRun::Free::operator()(uint8_t* p) const {
  if (pool != nullptr) {
    pool->give_back(p);
  } else {
    std::free(p);
  }
}

SectorRun::SectorRun(uint64_t size, RunMemoryPool* pool) : size_(size) {
  reallocate(size, 0, pool);
}

void SectorRun::reallocate(uint64_t capacity, uint64_t keep, RunMemoryPool* pool) {
  if (capacity > pooled_run_from(pool)) {
    uint8_t* block = pool->take();
    if (keep > 0) std::memcpy(block, bytes_.get(), keep);
    bytes_ = std::unique_ptr<uint8_t, Free>(block, Free{pool});
    capacity_ = pool->block_size();
    return;
  }
  // realloc moves a large block by remapping its pages (glibc mremap), so
  // growth by appends copies little.
  auto* grown = static_cast<uint8_t*>(std::realloc(bytes_.get(), capacity));
  if (!grown) throw std::bad_alloc();
  (void)bytes_.release();
  bytes_.reset(grown);
  capacity_ = capacity;
}

void SectorRun::grow(uint64_t size, uint64_t max_capacity, RunMemoryPool* pool) {
  if (size > capacity_) {
    // Doubling keeps appends amortised O(1) per byte; the cap keeps a run
    // that will never grow past max_capacity from reserving more.
    reallocate(std::min(max_capacity, std::max(size, 2 * capacity_)), size_, pool);
  }
  size_ = size;
}

DirtyBuffer::RunMap::const_iterator DirtyBuffer::first_ending_after(uint64_t pos) const {
  auto it = runs_.upper_bound(pos);
  if (it != runs_.begin()) {
    auto before = std::prev(it);
    if (before->first + before->second.size() > pos) return before;
  }
  return it;
}

DirtyBuffer::RunMap::const_iterator DirtyBuffer::find(uint64_t pos) const {
  auto it = first_ending_after(pos);
  return it != runs_.end() && it->first <= pos ? it : runs_.end();
}

std::vector<FileRange> DirtyBuffer::ranges_in(uint64_t start, uint64_t end) const {
  std::vector<FileRange> out;
  for (auto it = first_ending_after(start); it != runs_.end() && it->first < end; ++it) {
    const FileRange piece{std::max(start, it->first), std::min(end, it->first + it->second.size())};
    if (!out.empty() && out.back().end == piece.start) {
      out.back().end = piece.end;
    } else {
      out.push_back(piece);
    }
  }
  return out;
}

std::vector<FileRange> DirtyBuffer::gaps_in(uint64_t start, uint64_t end) const {
  std::vector<FileRange> out;
  uint64_t pos = start;
  for (const FileRange& covered : ranges_in(start, end)) {
    if (covered.start > pos) out.push_back({pos, covered.start});
    pos = covered.end;
  }
  if (pos < end) out.push_back({pos, end});
  return out;
}

uint64_t DirtyBuffer::store(uint64_t offset, ByteSpan data, const SectorFill& fill) {
  if (data.empty()) return 0;
  const uint64_t end = offset + data.size();
  const uint64_t first_sector = align_down(offset);
  const uint64_t last_sector = align_up(end) - kSector;
  const bool head_partial = offset != first_sector;
  const bool tail_partial = end != last_sector + kSector;

  // Copies the part of `data` that falls in [from, to) to `out` (which holds
  // file offset `from`).
  auto copy_data = [&](uint8_t* out, uint64_t from, uint64_t to) {
    const uint64_t lo = std::max(from, offset);
    const uint64_t hi = std::min(to, end);
    if (lo < hi) std::memcpy(out + (lo - from), data.data() + (lo - offset), hi - lo);
  };

  uint64_t added = 0;
  uint64_t pos = first_sector;
  const uint64_t stop = last_sector + kSector;
  auto it = runs_.upper_bound(pos);
  if (it != runs_.begin() && std::prev(it)->first + std::prev(it)->second.size() > pos) --it;
  while (pos < stop) {
    if (it != runs_.end() && it->first <= pos) {
      // Already buffered: overwrite in place.
      const uint64_t run_end = it->first + it->second.size();
      const uint64_t piece_end = std::min(stop, run_end);
      copy_data(it->second.data() + (pos - it->first), pos, piece_end);
      pos = piece_end;
      ++it;
      continue;
    }
    // A gap up to the next run: continue the run ending here if it has room,
    // else start new runs of at most max_run_ bytes.
    const uint64_t gap_end = it == runs_.end() ? stop : std::min(stop, it->first);
    while (pos < gap_end) {
      uint8_t* out = nullptr;
      uint64_t length = 0;
      auto left = it == runs_.begin() ? runs_.end() : std::prev(it);
      if (left != runs_.end() && left->first + left->second.size() == pos &&
          left->second.size() < max_run_ && !left->second.frozen()) {
        const uint64_t old_size = left->second.size();
        length = std::min(gap_end - pos, max_run_ - old_size);
        left->second.grow(old_size + length, max_run_, pool_);
        out = left->second.data() + old_size;
      } else {
        length = std::min(gap_end - pos, max_run_);
        auto created = runs_.emplace_hint(it, pos, SectorRun(length, pool_));
        out = created->second.data();
      }
      if (head_partial && pos == first_sector) fill(first_sector, out);
      if (tail_partial && last_sector >= pos && last_sector < pos + length &&
          !(head_partial && last_sector == first_sector)) {
        fill(last_sector, out + (last_sector - pos));
      }
      copy_data(out, pos, pos + length);
      added += length;
      pos += length;
    }
  }
  bytes_ += added;
  return added;
}

bool DirtyBuffer::frozen_in(uint64_t start, uint64_t end) const {
  for (auto it = first_ending_after(start); it != runs_.end() && it->first < end; ++it) {
    if (it->second.frozen()) return true;
  }
  return false;
}

void DirtyBuffer::set_frozen(uint64_t start, uint64_t end, bool frozen) {
  for (auto it = runs_.lower_bound(start); it != runs_.end() && it->first < end; ++it) {
    it->second.set_frozen(frozen);
  }
}

uint64_t DirtyBuffer::drop(uint64_t start, uint64_t end) {
  uint64_t dropped = 0;
  auto it = runs_.upper_bound(start);
  if (it != runs_.begin() && std::prev(it)->first + std::prev(it)->second.size() > start) --it;
  while (it != runs_.end() && it->first < end) {
    const uint64_t run_start = it->first;
    const uint64_t run_end = run_start + it->second.size();
    const uint64_t cut_start = std::max(run_start, start);
    const uint64_t cut_end = std::min(run_end, end);
    dropped += cut_end - cut_start;
    if (cut_end < run_end) {
      // The range ends inside this run: its tail becomes a run of its own
      // (the only copy a drop makes), and nothing after it is affected.
      SectorRun tail(run_end - cut_end, pool_);
      std::memcpy(tail.data(), it->second.data() + (cut_end - run_start), tail.size());
      if (cut_start > run_start) {
        it->second.shrink(cut_start - run_start);
        ++it;
      } else {
        it = runs_.erase(it);
      }
      runs_.emplace_hint(it, cut_end, std::move(tail));
      break;
    }
    if (cut_start > run_start) {
      it->second.shrink(cut_start - run_start);
      ++it;
    } else {
      it = runs_.erase(it);
    }
  }
  bytes_ -= dropped;
  return dropped;
}

}  // namespace ecfs::fs
