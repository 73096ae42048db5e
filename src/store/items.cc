#include "store/items.h"

#include <string>

namespace ecfs::store {
namespace {

Status check_size(ByteSpan data, size_t expected, const char* what) {
  if (data.size() != expected) {
    return fail(EUCLEAN, std::string(what) + " of " + std::to_string(data.size()) +
                             " bytes, expected " + std::to_string(expected));
  }
  return ok();
}

}  // namespace

Bytes encode_root_item(const RootItem& item) {
  Bytes out(kRootItemSize, 0);
  store_le64(&out[0], item.root.bytenr);
  store_le64(&out[8], item.root.generation);
  out[16] = item.root.level;
  store_le64(&out[24], item.refs);
  store_le64(&out[32], item.last_snapshot);
  store_le64(&out[40], item.flags);
  return out;
}

Result<RootItem> decode_root_item(ByteSpan data) {
  ECFS_TRY(check_size(data, kRootItemSize, "root item"));
  RootItem item;
  item.root.bytenr = load_le64(&data[0]);
  item.root.generation = load_le64(&data[8]);
  item.root.level = data[16];
  item.refs = load_le64(&data[24]);
  item.last_snapshot = load_le64(&data[32]);
  item.flags = load_le64(&data[40]);
  if (item.root.level > kMaxTreeLevel || item.root.bytenr == 0) {
    return fail(EUCLEAN, "root item with level " + std::to_string(item.root.level) + " at bytenr " +
                             std::to_string(item.root.bytenr));
  }
  return item;
}

Bytes encode_extent_item(const ExtentItem& item) {
  Bytes out(kExtentItemSize, 0);
  store_le64(&out[0], item.refs);
  store_le64(&out[8], item.generation);
  store_le64(&out[16], item.flags);
  store_le64(&out[24], item.owner);
  out[32] = item.level;
  return out;
}

Result<ExtentItem> decode_extent_item(ByteSpan data) {
  ECFS_TRY(check_size(data, kExtentItemSize, "extent item"));
  ExtentItem item;
  item.refs = load_le64(&data[0]);
  item.generation = load_le64(&data[8]);
  item.flags = load_le64(&data[16]);
  item.owner = load_le64(&data[24]);
  item.level = data[32];
  if (item.refs == 0 || (item.flags != kExtentFlagData && item.flags != kExtentFlagTreeBlock)) {
    return fail(EUCLEAN, "extent item with " + std::to_string(item.refs) + " refs and flags " +
                             std::to_string(item.flags));
  }
  return item;
}

namespace {
void encode_data_ref(const DataRef& ref, uint8_t* out) {
  store_le64(out + 0, ref.root);
  store_le64(out + 8, ref.objectid);
  store_le64(out + 16, ref.offset);
  store_le64(out + 24, ref.extent_offset);
  store_le64(out + 32, ref.length);
}
}  // namespace

Bytes encode_data_ref_item(const DataRefItem& item) {
  Bytes out(kDataRefItemSize, 0);
  encode_data_ref(item.ref, out.data());
  store_le64(&out[40], item.count);
  return out;
}

Result<DataRefItem> decode_data_ref_item(ByteSpan data) {
  ECFS_TRY(check_size(data, kDataRefItemSize, "data reference item"));
  DataRefItem item;
  item.ref.root = load_le64(&data[0]);
  item.ref.objectid = load_le64(&data[8]);
  item.ref.offset = load_le64(&data[16]);
  item.ref.extent_offset = load_le64(&data[24]);
  item.ref.length = load_le64(&data[32]);
  item.count = load_le64(&data[40]);
  if (item.count == 0) return fail(EUCLEAN, "data reference item with count 0");
  return item;
}

uint64_t data_ref_hash(const DataRef& ref) {
  // FNV-1a 64 (offset basis and prime from the FNV specification,
  // draft-eastlake-fnv).
  uint8_t bytes[40];
  encode_data_ref(ref, bytes);
  uint64_t hash = 0xcbf29ce484222325ull;
  for (uint8_t byte : bytes) {
    hash ^= byte;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

void encode_file_extent_ref(const FileExtentRef& ref, MutableByteSpan out) {
  store_le64(&out[0], ref.disk_bytenr);
  store_le64(&out[8], ref.disk_length);
  store_le64(&out[16], ref.extent_offset);
  store_le64(&out[24], ref.length);
}

Bytes encode_file_extent_ref(const FileExtentRef& ref) {
  Bytes out(kFileExtentRefSize, 0);
  encode_file_extent_ref(ref, out);
  return out;
}

Result<FileExtentRef> decode_file_extent_ref(ByteSpan item_data) {
  if (item_data.size() < kFileExtentRefSize) {
    return fail(EUCLEAN, "file extent item of " + std::to_string(item_data.size()) + " bytes");
  }
  FileExtentRef ref;
  ref.disk_bytenr = load_le64(&item_data[0]);
  ref.disk_length = load_le64(&item_data[8]);
  ref.extent_offset = load_le64(&item_data[16]);
  ref.length = load_le64(&item_data[24]);
  if (ref.disk_bytenr != 0 && (ref.length == 0 || ref.extent_offset > ref.disk_length ||
                               ref.length > ref.disk_length - ref.extent_offset)) {
    return fail(EUCLEAN, "file extent reference [" + std::to_string(ref.extent_offset) + ", +" +
                             std::to_string(ref.length) + ") outside its extent of " +
                             std::to_string(ref.disk_length) + " bytes");
  }
  return ref;
}

}  // namespace ecfs::store
