// TreeContents: the items of a filesystem tree (fs/items.h) decoded and
// grouped by inode, for the readers that look at a whole tree at once:
// the filesystem check (fs/fs_check.h) and `ecfs inspect`.
//
// Items are added one at a time in key order, as a tree walk yields them.
// An item that does not decode, or whose key the format does not define
// (docs/FORMAT.md "Filesystem items"), is recorded in `problems`, naming its
// key, and otherwise skipped; nothing is checked across items here.
//
// Memory: everything but xattr values is kept (names, targets, extents), so
// the whole namespace of the tree is held at once. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "fs/items.h"
#include "store/btree.h"
#include "store/format.h"

namespace ecfs::fs {

// Every item of one objectid in the inode range [kRootDirIno, kLastIno].
struct InodeContents {
  std::optional<InodeItem> item;  // INODE_ITEM (ino, 1, 0)
  // INODE_REF: parent directory -> the names the inode has in it.
  std::map<uint64_t, std::vector<InodeRef>> refs;
  // DIR_INDEX: index (key offset) -> its one entry.
  std::map<uint64_t, DirEntry> index_entries;
  // DIR_ITEM: name hash (key offset) -> the entries stored under it.
  std::map<uint64_t, std::vector<DirEntry>> hashed_entries;
  // XATTR_ITEM: name hash (key offset) -> the names stored under it
  // (values are not kept).
  std::map<uint64_t, std::vector<std::string>> xattr_names;
  // Out-of-line values: value_id -> the entry's name and the value's length.
  std::map<uint64_t, std::pair<std::string, uint32_t>> xattr_out_of_line;
  // XATTR_VALUE: key offset -> the part's size.
  std::map<uint64_t, size_t> xattr_value_parts;
  // EXTENT_DATA: file offset (key offset) -> item.
  std::map<uint64_t, FileExtentItem> extents;
  // SYMLINK_TARGET: key offset (0 when well formed) -> target as stored.
  std::map<uint64_t, Bytes> symlink_targets;
  // FSCRYPT_INODE_CTX (ino, 41, 0): the context as stored.
  std::optional<Bytes> fscrypt_context;
  // KEY_HISTORY (ino, 42, 0): the item as stored (fs/key_history.h).
  std::optional<Bytes> key_history;
};

class TreeContents {
 public:
  // Decodes one item. REQUIRES: keys come in increasing order.
  void add(const store::Key& key, ByteSpan data);

  // objectid -> items, for every objectid in the inode range that has any.
  std::map<uint64_t, InodeContents> inodes;
  // The inode numbers named by ORPHAN items (kOrphanObjectid, ORPHAN, ino).
  std::set<uint64_t> orphans;
  // Items that do not decode or have no place in a filesystem tree.
  std::vector<std::string> problems;
};

// Reads every item of `tree`. Read errors of the tree as they come.
Result<TreeContents> read_tree_contents(const store::BTree& tree);

// "(objectid TYPE offset)" with the filesystem item type names of
// docs/FORMAT.md ("INODE_ITEM", "DIR_INDEX", ...; the number otherwise).
std::string fs_key_text(const store::Key& key);
// The name of a filesystem item type, or "UNKNOWN".
std::string_view fs_item_type_name(uint8_t type);

// A stored name as a quoted string for messages and dumps: printable ASCII
// as it is, '"' and '\\' escaped, every other byte as \xNN (in an encrypted
// directory the stored names are ciphertext).
std::string quoted_name(ByteSpan name);

// "directory", "regular file", "symlink", "character device", ... for the
// type bits of a mode; "unknown type" otherwise.
std::string_view file_type_name(uint32_t mode);

}  // namespace ecfs::fs
