#include "store/subvolume_items.h"

#include <algorithm>
#include <string>

namespace ecfs::store {
namespace {

constexpr size_t kRootRefHeadSize = 18;  // dirid, index, name_len
constexpr size_t kMaxStoredNameSize = 255;

}  // namespace

Bytes encode_root_ref(const RootRefItem& item) {
  Bytes out(kRootRefHeadSize + item.name.size(), 0);
  store_le64(&out[0], item.dirid);
  store_le64(&out[8], item.index);
  out[16] = static_cast<uint8_t>(item.name.size());
  out[17] = static_cast<uint8_t>(item.name.size() >> 8);
  std::copy(item.name.begin(), item.name.end(), out.begin() + kRootRefHeadSize);
  return out;
}

Result<RootRefItem> decode_root_ref(ByteSpan data) {
  if (data.size() < kRootRefHeadSize) {
    return fail(EUCLEAN, "root ref of " + std::to_string(data.size()) + " bytes");
  }
  RootRefItem item;
  item.dirid = load_le64(&data[0]);
  item.index = load_le64(&data[8]);
  const size_t name_len = data[16] | (static_cast<size_t>(data[17]) << 8);
  if (name_len == 0 || name_len > kMaxStoredNameSize ||
      data.size() != kRootRefHeadSize + name_len) {
    return fail(EUCLEAN, "root ref with a name of " + std::to_string(name_len) + " bytes in " +
                             std::to_string(data.size()) + " bytes");
  }
  item.name.assign(data.begin() + kRootRefHeadSize, data.end());
  return item;
}

Bytes encode_subvolume_info(const SubvolumeInfo& info) {
  Bytes out(kSubvolumeInfoSize, 0);
  store_le64(&out[0], info.flags);
  std::copy(info.uuid.begin(), info.uuid.end(), out.begin() + 8);
  std::copy(info.parent_uuid.begin(), info.parent_uuid.end(), out.begin() + 24);
  store_le64(&out[40], info.created_generation);
  store_le64(&out[48], info.source_generation);
  store_le64(&out[56], static_cast<uint64_t>(info.otime_sec));
  store_le32(&out[64], info.otime_nsec);
  return out;
}

Result<SubvolumeInfo> decode_subvolume_info(ByteSpan data) {
  if (data.size() != kSubvolumeInfoSize) {
    return fail(EUCLEAN, "subvolume info of " + std::to_string(data.size()) + " bytes, expected " +
                             std::to_string(kSubvolumeInfoSize));
  }
  SubvolumeInfo info;
  info.flags = load_le64(&data[0]);
  std::copy(data.begin() + 8, data.begin() + 24, info.uuid.begin());
  std::copy(data.begin() + 24, data.begin() + 40, info.parent_uuid.begin());
  info.created_generation = load_le64(&data[40]);
  info.source_generation = load_le64(&data[48]);
  info.otime_sec = static_cast<int64_t>(load_le64(&data[56]));
  info.otime_nsec = load_le32(&data[64]);
  if ((info.flags & ~kSubvolReadOnly) != 0) {
    return fail(EUCLEAN, "subvolume info with unknown flags " + std::to_string(info.flags));
  }
  if (info.otime_nsec >= 1'000'000'000) return fail(EUCLEAN, "subvolume info with a bad time");
  return info;
}

}  // namespace ecfs::store
