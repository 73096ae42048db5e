// The items of a filesystem tree (FS_TREE 5 and, later, every subvolume):
// inodes, directory entries, back references, xattrs, file extents and
// orphans (docs/FORMAT.md "Filesystem items"). Item types and the layout of
// keys follow btrfs (include/uapi/linux/btrfs_tree.h) so the trees read the
// same way; the item bodies are ecfs's own, little-endian and packed.
// Decoders reject malformed items with EUCLEAN and never read out of bounds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "store/format.h"

namespace ecfs::fs {

// Item types of a filesystem tree (btrfs numbers).
inline constexpr uint8_t kInodeItemKey = 1;
inline constexpr uint8_t kInodeRefKey = 12;
inline constexpr uint8_t kXattrItemKey = 24;
// (ino, XATTR_VALUE, value_id + i): part i of an out-of-line xattr value
// (XattrEntry). ecfs's own type: btrfs limits values to what fits a leaf.
inline constexpr uint8_t kXattrValueKey = 25;
// (ino, FSCRYPT_INODE_CTX, 0): the inode's 40-byte fscrypt v2 context, as
// the btrfs extent-encryption series stores it.
inline constexpr uint8_t kFscryptInodeContextKey = 41;
// (ino, KEY_HISTORY, 0): the master keys an encrypted inode was under
// before a key rotation (fs/key_history.h). ecfs's own type.
inline constexpr uint8_t kKeyHistoryKey = 42;
inline constexpr uint8_t kOrphanItemKey = 48;
inline constexpr uint8_t kDirItemKey = 84;
inline constexpr uint8_t kDirIndexKey = 96;
inline constexpr uint8_t kExtentDataKey = 108;  // == store::kExtentDataKey
// (ino, SYMLINK_TARGET, 0): a symlink's target as stored (plaintext, or the
// fscrypt symlink record in an encrypted directory). ecfs's own type: btrfs
// keeps targets in inline extents, which ecfs does not have.
inline constexpr uint8_t kSymlinkTargetKey = 110;

// Inode numbers: the root directory of every filesystem tree is 256; new
// inodes count up from there (btrfs BTRFS_FIRST_FREE_OBJECTID).
inline constexpr uint64_t kRootDirIno = 256;
inline constexpr uint64_t kLastIno = static_cast<uint64_t>(-256);
// Orphans: key (ORPHAN objectid, ORPHAN_ITEM, ino), empty body.
inline constexpr uint64_t kOrphanObjectid = static_cast<uint64_t>(-5);

// The longest name a directory entry or xattr may have (NAME_MAX / XATTR_NAME_MAX).
inline constexpr size_t kMaxNameLength = 255;

struct Timestamp {
  int64_t sec = 0;
  uint32_t nsec = 0;
  friend auto operator<=>(const Timestamp&, const Timestamp&) = default;
};

// Inode flags stored in InodeItem::flags.
// The inode has a fscrypt context (FS_ENCRYPT_FL, as the kernel's ext4 / btrfs).
inline constexpr uint64_t kInodeFlagEncrypted = 0x800;

// INODE_ITEM, key (ino, INODE_ITEM, 0), 120 bytes:
//   generation u64 | transid u64 | size u64 | nbytes u64 | next_dir_index u64 |
//   nlink u32 | uid u32 | gid u32 | mode u32 | rdev u64 | flags u64 |
//   atime | mtime | ctime | otime (each sec i64, nsec u32) | reserved[8]
struct InodeItem {
  uint64_t generation = 0;      // transaction that created the inode (NFS-style generation)
  uint64_t transid = 0;         // transaction that last changed it
  uint64_t size = 0;            // st_size
  uint64_t nbytes = 0;          // bytes of the file held by extents (st_blocks * 512)
  uint64_t next_dir_index = 2;  // directories: the next DIR_INDEX sequence number
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t mode = 0;  // type and permission bits (st_mode)
  uint64_t rdev = 0;
  uint64_t flags = 0;
  Timestamp atime, mtime, ctime, otime;
  friend bool operator==(const InodeItem&, const InodeItem&) = default;
};
inline constexpr size_t kInodeItemSize = 120;
Bytes encode_inode_item(const InodeItem& item);
Result<InodeItem> decode_inode_item(ByteSpan data);

// A directory entry as stored in DIR_ITEM (key (dir, DIR_ITEM, name_hash);
// entries whose names collide share the item, one after another) and in
// DIR_INDEX (key (dir, DIR_INDEX, index); exactly one entry):
//   ino u64 | index u64 | type u8 | name_len u16 | name
// `name` is the name as stored: the plaintext name in an unencrypted
// directory, the ciphertext name in an encrypted one.
struct DirEntry {
  uint64_t ino = 0;
  uint64_t index = 0;  // the entry's DIR_INDEX sequence number (readdir order)
  uint8_t type = 0;    // DT_* of the target
  Bytes name;
  friend bool operator==(const DirEntry&, const DirEntry&) = default;
};
inline constexpr size_t kDirEntryHeaderSize = 19;
void append_dir_entry(const DirEntry& entry, Bytes& out);
// Every entry of a DIR_ITEM (one or more); EUCLEAN if malformed.
Result<std::vector<DirEntry>> decode_dir_entries(ByteSpan data);
// One entry read in place, its name a view into the item's bytes: a
// DIR_INDEX item holds exactly one, and listings read them without copying.
struct DirEntryView {
  uint64_t ino = 0;
  uint64_t index = 0;
  uint8_t type = 0;
  ByteSpan name;
};
// The entry of a DIR_INDEX item; EUCLEAN unless `data` is exactly one.
Result<DirEntryView> decode_dir_index_entry(ByteSpan data);

// An entry whose type has this bit (beside DT_DIR) names the root directory
// of another subvolume: its `ino` is that subvolume's tree id, and it has no
// INODE_REF (the catalog's ROOT_REF / ROOT_BACKREF are its back reference;
// incompat bit `subvolumes`, docs/FORMAT.md "Subvolumes").
inline constexpr uint8_t kDirEntrySubvolume = 0x80;
inline constexpr bool names_subvolume(uint8_t entry_type) {
  return (entry_type & kDirEntrySubvolume) != 0;
}
// The DT_* a listing shows for an entry.
inline constexpr uint8_t listed_type(uint8_t entry_type) {
  return static_cast<uint8_t>(entry_type & ~kDirEntrySubvolume);
}

// The key offset of a DIR_ITEM and XATTR_ITEM: a 64-bit hash of the stored
// name (xxHash64, seed 0). In encrypted directories it is the hash of the
// ciphertext name, so a lookup by no-key name (which embeds it) finds the
// entry without the key (DESIGN.md "Storage engine shape").
uint64_t name_hash(ByteSpan stored_name);

// INODE_REF, key (ino, INODE_REF, parent dir): every name `ino` has in
// `parent`, one after another: index u64 | name_len u16 | name.
struct InodeRef {
  uint64_t index = 0;
  Bytes name;
  friend bool operator==(const InodeRef&, const InodeRef&) = default;
};
void append_inode_ref(const InodeRef& ref, Bytes& out);
Result<std::vector<InodeRef>> decode_inode_refs(ByteSpan data);

// XATTR_ITEM, key (ino, XATTR_ITEM, name_hash(name)); colliding names share
// the item: name_len u16 | value_len u32 | name | value. A value too large
// for a tree leaf is stored out of line (store::kIncompatLargeXattrValues):
// value_len has bit 31 set beside the value's length, and the entry holds
// value_id u64 in place of the value; the value's bytes are in the
// XATTR_VALUE items (ino, XATTR_VALUE, value_id + i), i = 0, 1, ...,
// concatenated.
inline constexpr uint32_t kXattrValueOutOfLine = 0x80000000u;
// Out-of-line values start at multiples of this; a value has at most this
// many XATTR_VALUE items.
inline constexpr uint64_t kXattrValueIdStride = 64;
struct XattrOutOfLine {
  uint64_t value_id = 0;  // a multiple of kXattrValueIdStride
  uint32_t length = 0;    // of the whole value, 1 to 65536
  friend bool operator==(const XattrOutOfLine&, const XattrOutOfLine&) = default;
};
struct XattrEntry {
  std::string name;  // full name with its namespace prefix, e.g. "user.comment"
  Bytes value;       // empty when out of line
  std::optional<XattrOutOfLine> out_of_line = std::nullopt;
  friend bool operator==(const XattrEntry&, const XattrEntry&) = default;
};
void append_xattr_entry(const XattrEntry& entry, Bytes& out);
Result<std::vector<XattrEntry>> decode_xattr_entries(ByteSpan data);

// What a file extent item describes.
enum class FileExtentType : uint8_t {
  kRegular = 1,   // data in a data extent
  kPrealloc = 2,  // allocated by fallocate, never written: reads as zeros
};
// Encryption of a file extent's data.
enum class ExtentEncryption : uint8_t {
  kNone = 0,
  kFscrypt = 1,  // `context` is a 34-byte fscrypt extent context (fscrypt/extent.h)
};

// EXTENT_DATA, key (ino, EXTENT_DATA, file offset):
//   FileExtentRef (store/items.h, 32 bytes: disk_bytenr | disk_length |
//   extent_offset | length) | generation u64 | type u8 | compression u8 |
//   encryption u8 | context_len u8 | context[context_len]
// The file range [offset, offset + length) maps to bytes [extent_offset,
// extent_offset + length) of the data extent at disk_bytenr. Holes have no
// item. Offsets and lengths are multiples of the sector size. The encryption
// context travels with the item: a reflink copies it, so a shared extent
// decrypts the same in every file (data unit numbers count from the start
// of the data extent, not of the file).
struct FileExtentItem {
  uint64_t disk_bytenr = 0;
  uint64_t disk_length = 0;
  uint64_t extent_offset = 0;
  uint64_t length = 0;
  uint64_t generation = 0;  // transaction that wrote the data
  FileExtentType type = FileExtentType::kRegular;
  ExtentEncryption encryption = ExtentEncryption::kNone;
  Bytes context;
  friend bool operator==(const FileExtentItem&, const FileExtentItem&) = default;
};
inline constexpr size_t kFileExtentItemHeaderSize = 44;
inline constexpr size_t kMaxExtentContextSize = 64;
Bytes encode_file_extent_item(const FileExtentItem& item);
Result<FileExtentItem> decode_file_extent_item(ByteSpan data);

// DT_* of a st_mode (the d_type of a dirent).
uint8_t dirent_type_of_mode(uint32_t mode);

}  // namespace ecfs::fs
