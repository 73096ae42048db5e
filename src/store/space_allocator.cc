#include "store/space_allocator.h"

#include <algorithm>
#include <bit>
#include <optional>
#include <string>
#include <utility>

namespace ecfs::store {
namespace {

std::string describe(uint64_t start, uint64_t length) {
  return "[" + std::to_string(start) + ", +" + std::to_string(length) + ")";
}

}  // namespace

void add_merged(std::map<uint64_t, uint64_t>& ranges, uint64_t start, uint64_t end) {
  auto it = ranges.upper_bound(start);
  if (it != ranges.begin() && std::prev(it)->second >= start) {
    --it;
    start = it->first;
  }
  while (it != ranges.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = ranges.erase(it);
  }
  ranges[start] = end;
}

SpaceAllocator::SpaceAllocator(uint64_t device_size, const std::vector<ByteRange>& reserved)
    : device_size_(device_size) {
  // Normalise the reserved ranges (they may overlap, e.g. the boot area and
  // the first superblock copy) by merging them in a map.
  std::map<uint64_t, uint64_t> merged;
  for (const ByteRange& range : reserved) {
    const uint64_t start = std::min(range.start, device_size);
    const uint64_t end = std::min(range.end(), device_size);
    if (start < end) add_merged(merged, start, end);
  }
  uint64_t cursor = 0;
  for (const auto& [start, end] : merged) {
    reserved_.push_back({start, end - start});
    reserved_bytes_ += end - start;
    if (start > cursor) insert_range(free_, cursor, start);
    cursor = end;
  }
  if (cursor < device_size) insert_range(free_, cursor, device_size);
  free_bytes_ = device_size_ - reserved_bytes_;
}

void SpaceAllocator::insert_range(std::map<uint64_t, uint64_t>& ranges, uint64_t start,
                                  uint64_t end) {
  auto next = ranges.lower_bound(start);
  if (next != ranges.begin()) {
    auto prev = std::prev(next);
    if (prev->second == start) {
      start = prev->first;
      ranges.erase(prev);
    }
  }
  if (next != ranges.end() && next->first == end) {
    end = next->second;
    ranges.erase(next);
  }
  ranges[start] = end;
}

std::map<uint64_t, uint64_t>::const_iterator SpaceAllocator::covering(
    const std::map<uint64_t, uint64_t>& ranges, uint64_t start, uint64_t end) {
  auto it = ranges.upper_bound(start);
  if (it == ranges.begin()) return ranges.end();
  --it;
  if (it->first <= start && end <= it->second) return it;
  return ranges.end();
}

bool SpaceAllocator::overlaps(const std::map<uint64_t, uint64_t>& ranges, uint64_t start,
                              uint64_t end) {
  auto it = ranges.lower_bound(start);
  if (it != ranges.end() && it->first < end) return true;
  if (it != ranges.begin() && std::prev(it)->second > start) return true;
  return false;
}

void SpaceAllocator::remove_range(std::map<uint64_t, uint64_t>& ranges, uint64_t start,
                                  uint64_t end) {
  auto it = covering(ranges, start, end);
  const uint64_t range_start = it->first;
  const uint64_t range_end = it->second;
  ranges.erase(it);
  if (range_start < start) ranges[range_start] = start;
  if (end < range_end) ranges[end] = range_end;
}

bool SpaceAllocator::is_free(uint64_t start, uint64_t length) const {
  return length > 0 && covering(free_, start, start + length) != free_.end();
}

Result<uint64_t> SpaceAllocator::allocate(uint64_t length, uint64_t alignment) {
  if (length == 0 || alignment == 0 || !std::has_single_bit(alignment)) {
    return fail(EINVAL, "allocation of " + std::to_string(length) + " bytes aligned to " +
                            std::to_string(alignment));
  }
  // Next fit: search from where the previous allocation of this alignment
  // ended, then wrap around once.
  uint64_t& cursor = cursors_[alignment];
  auto try_range = [&](uint64_t range_start, uint64_t range_end,
                       uint64_t from) -> std::optional<uint64_t> {
    const uint64_t lowest = std::max(range_start, from);
    const uint64_t start = (lowest + alignment - 1) & ~(alignment - 1);
    if (start < lowest || start > range_end || range_end - start < length) return std::nullopt;
    return start;
  };
  std::optional<uint64_t> found;
  auto it = free_.upper_bound(cursor);
  if (it != free_.begin()) --it;
  for (; it != free_.end() && !found; ++it) found = try_range(it->first, it->second, cursor);
  for (it = free_.begin(); it != free_.end() && !found && it->first < cursor; ++it) {
    found = try_range(it->first, it->second, 0);
  }
  if (!found) {
    return fail(ENOSPC, "no free extent of " + std::to_string(length) + " bytes (" +
                            std::to_string(free_bytes_) + " bytes free, " +
                            std::to_string(pinned_bytes_) + " pinned until commit)");
  }
  remove_range(free_, *found, *found + length);
  free_bytes_ -= length;
  note_changed(*found, *found + length);
  cursor = *found + length;
  return *found;
}

Status SpaceAllocator::mark_allocated(uint64_t start, uint64_t length) {
  if (length == 0 || start + length < start || !is_free(start, length)) {
    return fail(EUCLEAN, "extent " + describe(start, length) +
                             " is not free space (overlaps another extent or a reserved area)");
  }
  remove_range(free_, start, start + length);
  free_bytes_ -= length;
  return ok();
}

Status SpaceAllocator::pin(uint64_t start, uint64_t length) {
  const uint64_t end = start + length;
  if (length == 0 || end < start || end > device_size_ || overlaps(free_, start, end) ||
      overlaps(pinned_, start, end)) {
    return fail(EUCLEAN, "freeing extent " + describe(start, length) + " that is not allocated");
  }
  for (const ByteRange& range : reserved_) {
    if (range.start < end && start < range.end()) {
      return fail(EUCLEAN, "freeing extent " + describe(start, length) + " in a reserved area");
    }
  }
  insert_range(pinned_, start, end);
  pinned_bytes_ += length;
  note_changed(start, end);
  return ok();
}

void SpaceAllocator::unpin_all() {
  for (const auto& [start, end] : pinned_) insert_range(free_, start, end);
  free_bytes_ += pinned_bytes_;
  pinned_.clear();
  pinned_bytes_ = 0;
  changed_.clear();
}

Result<SpaceAllocator> SpaceAllocator::from_free_ranges(uint64_t device_size,
                                                        const std::vector<ByteRange>& reserved,
                                                        const std::vector<ByteRange>& free) {
  SpaceAllocator all_free(device_size, reserved);
  SpaceAllocator result = all_free;
  result.free_.clear();
  result.free_bytes_ = 0;
  uint64_t previous_end = 0;
  bool first = true;
  for (const ByteRange& range : free) {
    const uint64_t end = range.start + range.length;
    if (range.length == 0 || end < range.start || (!first && range.start <= previous_end) ||
        covering(all_free.free_, range.start, end) == all_free.free_.end()) {
      return fail(EUCLEAN, "free space " + describe(range.start, range.length) +
                               " is empty, out of order, touches the previous range, or lies "
                               "outside the usable space");
    }
    result.free_[range.start] = end;
    result.free_bytes_ += range.length;
    previous_end = end;
    first = false;
  }
  return result;
}

void SpaceAllocator::note_changed(uint64_t start, uint64_t end) {
  add_merged(changed_, start, end);
}

std::map<uint64_t, uint64_t> SpaceAllocator::take_changed() { return std::exchange(changed_, {}); }

void SpaceAllocator::mark_all_changed() { note_changed(0, device_size_); }

std::vector<ByteRange> SpaceAllocator::unallocated_in(uint64_t start, uint64_t end) const {
  // Walk the free and the pinned maps together in address order, joining
  // ranges that touch.
  std::vector<ByteRange> result;
  auto add = [&](uint64_t from, uint64_t to) {
    from = std::max(from, start);
    to = std::min(to, end);
    if (from >= to) return;
    if (!result.empty() && result.back().end() == from) {
      result.back().length += to - from;
    } else {
      result.push_back({from, to - from});
    }
  };
  auto first_relevant = [&](const std::map<uint64_t, uint64_t>& ranges) {
    auto it = ranges.upper_bound(start);
    if (it != ranges.begin() && std::prev(it)->second > start) --it;
    return it;
  };
  auto f = first_relevant(free_);
  auto p = first_relevant(pinned_);
  while (true) {
    const bool f_ok = f != free_.end() && f->first < end;
    const bool p_ok = p != pinned_.end() && p->first < end;
    if (!f_ok && !p_ok) break;
    if (f_ok && (!p_ok || f->first < p->first)) {
      add(f->first, f->second);
      ++f;
    } else {
      add(p->first, p->second);
      ++p;
    }
  }
  return result;
}

std::optional<ByteRange> SpaceAllocator::unallocated_around(uint64_t offset) const {
  auto containing = [&](const std::map<uint64_t, uint64_t>& ranges)
      -> std::optional<std::pair<uint64_t, uint64_t>> {
    auto it = ranges.upper_bound(offset);
    if (it == ranges.begin()) return std::nullopt;
    --it;
    if (it->second <= offset) return std::nullopt;
    return *it;
  };
  auto here = containing(free_);
  if (!here) here = containing(pinned_);
  if (!here) return std::nullopt;
  // Extend across free and pinned neighbours that touch, both ways; each
  // map is coalesced, so neighbours alternate between the two.
  uint64_t start = here->first;
  uint64_t end = here->second;
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto* ranges : {&free_, &pinned_}) {
      if (auto it = ranges->find(end); it != ranges->end()) {
        end = it->second;
        grew = true;
      }
      auto before = ranges->lower_bound(start);
      if (before != ranges->begin() && std::prev(before)->second == start) {
        start = std::prev(before)->first;
        grew = true;
      }
    }
  }
  return ByteRange{start, end - start};
}

}  // namespace ecfs::store
