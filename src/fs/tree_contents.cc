#include "fs/tree_contents.h"

#include <sys/stat.h>

#include <cstdio>
#include <utility>

namespace ecfs::fs {

using store::Key;

std::string_view fs_item_type_name(uint8_t type) {
  switch (type) {
    case kInodeItemKey:
      return "INODE_ITEM";
    case kInodeRefKey:
      return "INODE_REF";
    case kXattrItemKey:
      return "XATTR_ITEM";
    case kXattrValueKey:
      return "XATTR_VALUE";
    case kFscryptInodeContextKey:
      return "FSCRYPT_INODE_CTX";
    case kKeyHistoryKey:
      return "KEY_HISTORY";
    case kOrphanItemKey:
      return "ORPHAN_ITEM";
    case kDirItemKey:
      return "DIR_ITEM";
    case kDirIndexKey:
      return "DIR_INDEX";
    case kExtentDataKey:
      return "EXTENT_DATA";
    case kSymlinkTargetKey:
      return "SYMLINK_TARGET";
    default:
      return "UNKNOWN";
  }
}

std::string fs_key_text(const Key& key) {
  const std::string_view name = fs_item_type_name(key.type);
  std::string type(name);
  if (name == "UNKNOWN") type += "/" + std::to_string(key.type);
  // The orphan objectid reads better by its name than as 2^64 - 5.
  const std::string objectid =
      key.objectid == kOrphanObjectid ? "ORPHAN" : std::to_string(key.objectid);
  return "(" + objectid + " " + type + " " + std::to_string(key.offset) + ")";
}

std::string quoted_name(ByteSpan name) {
  std::string out = "\"";
  for (uint8_t byte : name) {
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += static_cast<char>(byte);
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    }
  }
  out += '"';
  return out;
}

std::string_view file_type_name(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "regular file";
    case S_IFDIR:
      return "directory";
    case S_IFLNK:
      return "symlink";
    case S_IFCHR:
      return "character device";
    case S_IFBLK:
      return "block device";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    default:
      return "unknown type";
  }
}

void TreeContents::add(const Key& key, ByteSpan data) {
  const auto problem = [&](const std::string& what) {
    problems.push_back("item " + fs_key_text(key) + ": " + what);
  };
  if (key.objectid == kOrphanObjectid) {
    if (key.type != kOrphanItemKey) {
      problem("an item type that does not belong under the orphan objectid");
      return;
    }
    if (key.offset < kRootDirIno || key.offset > kLastIno) {
      problem("names no possible inode number");
      return;
    }
    if (!data.empty()) {
      problem("an ORPHAN_ITEM must be empty; this one holds " + std::to_string(data.size()) +
              " bytes");
    }
    orphans.insert(key.offset);
    return;
  }
  if (key.objectid < kRootDirIno || key.objectid > kLastIno) {
    problem("objectid outside the inode range of a filesystem tree");
    return;
  }
  InodeContents& inode = inodes[key.objectid];
  const auto offset_must_be_zero = [&] {
    if (key.offset == 0) return true;
    problem("key offset must be 0");
    return false;
  };
  switch (key.type) {
    case kInodeItemKey: {
      if (!offset_must_be_zero()) return;
      auto item = decode_inode_item(data);
      if (!item) return problem(item.error().message());
      inode.item = *item;
      return;
    }
    case kInodeRefKey: {
      auto refs = decode_inode_refs(data);
      if (!refs) return problem(refs.error().message());
      inode.refs[key.offset] = std::move(*refs);
      return;
    }
    case kDirItemKey: {
      auto entries = decode_dir_entries(data);
      if (!entries) return problem(entries.error().message());
      inode.hashed_entries[key.offset] = std::move(*entries);
      return;
    }
    case kDirIndexKey: {
      auto entries = decode_dir_entries(data);
      if (!entries) return problem(entries.error().message());
      if (entries->size() != 1) {
        return problem("a DIR_INDEX holds exactly one entry; this one holds " +
                       std::to_string(entries->size()));
      }
      inode.index_entries[key.offset] = std::move(entries->front());
      return;
    }
    case kXattrItemKey: {
      auto entries = decode_xattr_entries(data);
      if (!entries) return problem(entries.error().message());
      std::vector<std::string>& names = inode.xattr_names[key.offset];
      for (XattrEntry& entry : *entries) {
        if (entry.out_of_line) {
          const bool first = inode.xattr_out_of_line
                                 .emplace(entry.out_of_line->value_id,
                                          std::pair{entry.name, entry.out_of_line->length})
                                 .second;
          if (!first) problem("two xattrs share one out-of-line value");
        }
        names.push_back(std::move(entry.name));
      }
      return;
    }
    case kXattrValueKey:
      inode.xattr_value_parts[key.offset] = data.size();
      return;
    case kExtentDataKey: {
      auto item = decode_file_extent_item(data);
      if (!item) return problem(item.error().message());
      inode.extents[key.offset] = std::move(*item);
      return;
    }
    case kSymlinkTargetKey:
      inode.symlink_targets[key.offset] = Bytes(data.begin(), data.end());
      return;
    case kFscryptInodeContextKey:
      if (!offset_must_be_zero()) return;
      inode.fscrypt_context = Bytes(data.begin(), data.end());
      return;
    case kKeyHistoryKey:
      if (!offset_must_be_zero()) return;
      inode.key_history = Bytes(data.begin(), data.end());
      return;
    default:
      problem("an item type that does not belong in a filesystem tree");
      return;
  }
}

Result<TreeContents> read_tree_contents(const store::BTree& tree) {
  TreeContents contents;
  ECFS_TRY(tree.for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan data) {
    contents.add(key, data);
    return true;
  }));
  return contents;
}

}  // namespace ecfs::fs
