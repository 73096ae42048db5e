#include "fs/items.h"

#include <dirent.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <string>

#include "store/items.h"

namespace ecfs::fs {
namespace {

std::unexpected<Error> malformed(const char* what, size_t size) {
  return fail(EUCLEAN, std::string("malformed ") + what + " of " + std::to_string(size) + " bytes");
}

void store_le16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

void store_timestamp(uint8_t* p, const Timestamp& t) {
  store_le64(p, static_cast<uint64_t>(t.sec));
  store_le32(p + 8, t.nsec);
}
Timestamp load_timestamp(const uint8_t* p) {
  return {static_cast<int64_t>(load_le64(p)), load_le32(p + 8)};
}

void append(Bytes& out, const uint8_t* p, size_t n) { out.insert(out.end(), p, p + n); }

}  // namespace

Bytes encode_inode_item(const InodeItem& item) {
  Bytes out(kInodeItemSize, 0);
  uint8_t* p = out.data();
  store_le64(p + 0, item.generation);
  store_le64(p + 8, item.transid);
  store_le64(p + 16, item.size);
  store_le64(p + 24, item.nbytes);
  store_le64(p + 32, item.next_dir_index);
  store_le32(p + 40, item.nlink);
  store_le32(p + 44, item.uid);
  store_le32(p + 48, item.gid);
  store_le32(p + 52, item.mode);
  store_le64(p + 56, item.rdev);
  store_le64(p + 64, item.flags);
  store_timestamp(p + 72, item.atime);
  store_timestamp(p + 84, item.mtime);
  store_timestamp(p + 96, item.ctime);
  store_timestamp(p + 108, item.otime);
  return out;
}

Result<InodeItem> decode_inode_item(ByteSpan data) {
  if (data.size() != kInodeItemSize) return malformed("inode item", data.size());
  const uint8_t* p = data.data();
  InodeItem item;
  item.generation = load_le64(p + 0);
  item.transid = load_le64(p + 8);
  item.size = load_le64(p + 16);
  item.nbytes = load_le64(p + 24);
  item.next_dir_index = load_le64(p + 32);
  item.nlink = load_le32(p + 40);
  item.uid = load_le32(p + 44);
  item.gid = load_le32(p + 48);
  item.mode = load_le32(p + 52);
  item.rdev = load_le64(p + 56);
  item.flags = load_le64(p + 64);
  item.atime = load_timestamp(p + 72);
  item.mtime = load_timestamp(p + 84);
  item.ctime = load_timestamp(p + 96);
  item.otime = load_timestamp(p + 108);
  const uint32_t type = item.mode & S_IFMT;
  if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && type != S_IFCHR && type != S_IFBLK &&
      type != S_IFIFO && type != S_IFSOCK) {
    return fail(EUCLEAN, "inode item with file type " + std::to_string(type >> 12));
  }
  if (item.atime.nsec >= 1'000'000'000 || item.mtime.nsec >= 1'000'000'000 ||
      item.ctime.nsec >= 1'000'000'000 || item.otime.nsec >= 1'000'000'000) {
    return fail(EUCLEAN, "inode item with a nanosecond field over 999999999");
  }
  return item;
}

void append_dir_entry(const DirEntry& entry, Bytes& out) {
  uint8_t header[kDirEntryHeaderSize];
  store_le64(header, entry.ino);
  store_le64(header + 8, entry.index);
  header[16] = entry.type;
  store_le16(header + 17, static_cast<uint16_t>(entry.name.size()));
  append(out, header, sizeof header);
  append(out, entry.name.data(), entry.name.size());
}

namespace {

// The entry at the front of `data`, or nullopt if it is malformed there.
std::optional<DirEntryView> dir_entry_at_front(ByteSpan data) {
  if (data.size() < kDirEntryHeaderSize) return std::nullopt;
  const uint8_t* p = data.data();
  DirEntryView entry;
  entry.ino = load_le64(p);
  entry.index = load_le64(p + 8);
  entry.type = p[16];
  const size_t name_len = load_le16(p + 17);
  if (name_len == 0 || name_len > data.size() - kDirEntryHeaderSize) return std::nullopt;
  entry.name = data.subspan(kDirEntryHeaderSize, name_len);
  return entry;
}

}  // namespace

Result<std::vector<DirEntry>> decode_dir_entries(ByteSpan data) {
  std::vector<DirEntry> entries;
  const size_t item_size = data.size();
  while (!data.empty()) {
    const std::optional<DirEntryView> view = dir_entry_at_front(data);
    if (!view) return malformed("directory entry", item_size);
    entries.push_back(
        {view->ino, view->index, view->type, Bytes(view->name.begin(), view->name.end())});
    data = data.subspan(kDirEntryHeaderSize + view->name.size());
  }
  if (entries.empty()) return malformed("directory entry", item_size);
  return entries;
}

Result<DirEntryView> decode_dir_index_entry(ByteSpan data) {
  const std::optional<DirEntryView> view = dir_entry_at_front(data);
  if (!view || kDirEntryHeaderSize + view->name.size() != data.size()) {
    return malformed("directory index entry", data.size());
  }
  return *view;
}

uint64_t name_hash(ByteSpan stored_name) {
  return XXH64(stored_name.data(), stored_name.size(), 0);
}

void append_inode_ref(const InodeRef& ref, Bytes& out) {
  uint8_t header[10];
  store_le64(header, ref.index);
  store_le16(header + 8, static_cast<uint16_t>(ref.name.size()));
  append(out, header, sizeof header);
  append(out, ref.name.data(), ref.name.size());
}

Result<std::vector<InodeRef>> decode_inode_refs(ByteSpan data) {
  std::vector<InodeRef> refs;
  size_t pos = 0;
  while (pos < data.size()) {
    if (data.size() - pos < 10) return malformed("inode ref", data.size());
    InodeRef ref;
    ref.index = load_le64(data.data() + pos);
    const size_t name_len = load_le16(data.data() + pos + 8);
    pos += 10;
    if (name_len == 0 || name_len > data.size() - pos) return malformed("inode ref", data.size());
    ref.name.assign(data.begin() + pos, data.begin() + pos + name_len);
    pos += name_len;
    refs.push_back(std::move(ref));
  }
  if (refs.empty()) return malformed("inode ref", data.size());
  return refs;
}

void append_xattr_entry(const XattrEntry& entry, Bytes& out) {
  uint8_t header[6];
  store_le16(header, static_cast<uint16_t>(entry.name.size()));
  store_le32(header + 2, entry.out_of_line ? kXattrValueOutOfLine | entry.out_of_line->length
                                           : static_cast<uint32_t>(entry.value.size()));
  append(out, header, sizeof header);
  append(out, reinterpret_cast<const uint8_t*>(entry.name.data()), entry.name.size());
  if (entry.out_of_line) {
    uint8_t id[8];
    store_le64(id, entry.out_of_line->value_id);
    append(out, id, sizeof id);
  } else {
    append(out, entry.value.data(), entry.value.size());
  }
}

Result<std::vector<XattrEntry>> decode_xattr_entries(ByteSpan data) {
  std::vector<XattrEntry> entries;
  size_t pos = 0;
  while (pos < data.size()) {
    if (data.size() - pos < 6) return malformed("xattr item", data.size());
    const size_t name_len = load_le16(data.data() + pos);
    const uint32_t length_field = load_le32(data.data() + pos + 2);
    const bool out_of_line = (length_field & kXattrValueOutOfLine) != 0;
    const size_t value_len = out_of_line ? 8 : length_field;
    pos += 6;
    if (name_len == 0 || name_len > data.size() - pos || value_len > data.size() - pos - name_len) {
      return malformed("xattr item", data.size());
    }
    XattrEntry entry;
    entry.name.assign(reinterpret_cast<const char*>(data.data() + pos), name_len);
    pos += name_len;
    if (out_of_line) {
      XattrOutOfLine where{load_le64(data.data() + pos), length_field & ~kXattrValueOutOfLine};
      if (where.length == 0 || where.length > 65536 || where.value_id % kXattrValueIdStride != 0) {
        return malformed("xattr item", data.size());
      }
      entry.out_of_line = where;
    } else {
      entry.value.assign(data.begin() + pos, data.begin() + pos + value_len);
    }
    pos += value_len;
    entries.push_back(std::move(entry));
  }
  if (entries.empty()) return malformed("xattr item", data.size());
  return entries;
}

Bytes encode_file_extent_item(const FileExtentItem& item) {
  Bytes out(kFileExtentItemHeaderSize + item.context.size(), 0);
  store::encode_file_extent_ref(
      {item.disk_bytenr, item.disk_length, item.extent_offset, item.length}, out);
  store_le64(&out[32], item.generation);
  out[40] = static_cast<uint8_t>(item.type);
  out[41] = 0;  // compression: none (reserved for a later feature flag)
  out[42] = static_cast<uint8_t>(item.encryption);
  out[43] = static_cast<uint8_t>(item.context.size());
  std::copy(item.context.begin(), item.context.end(), out.begin() + kFileExtentItemHeaderSize);
  return out;
}

Result<FileExtentItem> decode_file_extent_item(ByteSpan data) {
  if (data.size() < kFileExtentItemHeaderSize) return malformed("file extent item", data.size());
  auto ref = store::decode_file_extent_ref(data);
  if (!ref) return std::unexpected(ref.error());
  FileExtentItem item;
  item.disk_bytenr = ref->disk_bytenr;
  item.disk_length = ref->disk_length;
  item.extent_offset = ref->extent_offset;
  item.length = ref->length;
  item.generation = load_le64(&data[32]);
  const uint8_t type = data[40];
  const uint8_t compression = data[41];
  const uint8_t encryption = data[42];
  const size_t context_len = data[43];
  if (type != static_cast<uint8_t>(FileExtentType::kRegular) &&
      type != static_cast<uint8_t>(FileExtentType::kPrealloc)) {
    return fail(EUCLEAN, "file extent item of unknown type " + std::to_string(type));
  }
  if (compression != 0) {
    return fail(EUCLEAN, "file extent item with compression " + std::to_string(compression));
  }
  if (encryption > static_cast<uint8_t>(ExtentEncryption::kFscrypt) ||
      context_len > kMaxExtentContextSize ||
      data.size() != kFileExtentItemHeaderSize + context_len ||
      (encryption == 0) != (context_len == 0)) {
    return malformed("file extent item", data.size());
  }
  if (item.disk_bytenr == 0 || item.length == 0 || item.length % store::kSectorSize != 0 ||
      item.extent_offset % store::kSectorSize != 0) {
    return fail(EUCLEAN, "file extent item with a hole or an unaligned range");
  }
  item.type = static_cast<FileExtentType>(type);
  item.encryption = static_cast<ExtentEncryption>(encryption);
  item.context.assign(data.begin() + kFileExtentItemHeaderSize, data.end());
  return item;
}

uint8_t dirent_type_of_mode(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return DT_REG;
    case S_IFDIR:
      return DT_DIR;
    case S_IFLNK:
      return DT_LNK;
    case S_IFCHR:
      return DT_CHR;
    case S_IFBLK:
      return DT_BLK;
    case S_IFIFO:
      return DT_FIFO;
    case S_IFSOCK:
      return DT_SOCK;
    default:
      return DT_UNKNOWN;
  }
}

}  // namespace ecfs::fs
