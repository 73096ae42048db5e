#include "fs/snapshot_placeholders.h"

#include <dirent.h>
#include <sys/stat.h>

#include <string>

#include "fs/fs_internal.h"
#include "fs/items.h"

namespace ecfs::fs {
namespace {

using store::Key;

Status misplaced(uint64_t tree, uint64_t dir) {
  return fail(EUCLEAN, "the name of nested subvolume " + std::to_string(tree) + " in directory " +
                           std::to_string(dir) + " is not where its ROOT_REF says");
}

}  // namespace

Status replace_nested_subvolume_names(
    store::BTree& snapshot_tree, uint64_t generation,
    const std::vector<std::pair<uint64_t, store::RootRefItem>>& nested) {
  if (nested.empty()) return ok();
  // New inodes take numbers above every inode of the tree.
  auto last = snapshot_tree.upper_floor({kLastIno, UINT8_MAX, UINT64_MAX});
  if (!last) return std::unexpected(last.error());
  uint64_t next_ino =
      *last && (*last)->key.objectid >= kRootDirIno ? (*last)->key.objectid + 1 : kRootDirIno + 1;
  const Timestamp created = now();
  for (const auto& [tree, ref] : nested) {
    const uint64_t ino = next_ino++;
    // The DIR_ITEM (possibly shared with colliding names) and the DIR_INDEX.
    const Key item_key{ref.dirid, kDirItemKey, name_hash(ref.name)};
    auto item = snapshot_tree.find(item_key);
    if (!item) return std::unexpected(item.error());
    if (!*item) return misplaced(tree, ref.dirid);
    auto entries = decode_dir_entries(**item);
    if (!entries) return std::unexpected(entries.error());
    bool found = false;
    Bytes rewritten;
    for (DirEntry entry : *entries) {
      if (entry.name == ref.name && entry.ino == tree && names_subvolume(entry.type)) {
        entry.ino = ino;
        entry.type = DT_DIR;
        found = true;
      }
      append_dir_entry(entry, rewritten);
    }
    if (!found) return misplaced(tree, ref.dirid);
    ECFS_TRY(snapshot_tree.update(item_key, rewritten));
    const Key index_key{ref.dirid, kDirIndexKey, ref.index};
    auto index = snapshot_tree.find(index_key);
    if (!index) return std::unexpected(index.error());
    if (!*index) return misplaced(tree, ref.dirid);
    auto indexed = decode_dir_index_entry(**index);
    if (!indexed) return std::unexpected(indexed.error());
    if (indexed->ino != tree || !names_subvolume(indexed->type)) return misplaced(tree, ref.dirid);
    Bytes index_data;
    append_dir_entry(DirEntry{ino, ref.index, DT_DIR, ref.name}, index_data);
    ECFS_TRY(snapshot_tree.update(index_key, index_data));

    // The empty directory and its one name.
    InodeItem dir;
    dir.generation = generation;
    dir.transid = generation;
    dir.nlink = 2;
    dir.mode = S_IFDIR | 0755;
    dir.atime = dir.mtime = dir.ctime = dir.otime = created;
    ECFS_TRY(snapshot_tree.insert({ino, kInodeItemKey, 0}, encode_inode_item(dir)));
    Bytes ref_data;
    append_inode_ref({ref.index, ref.name}, ref_data);
    ECFS_TRY(snapshot_tree.insert({ino, kInodeRefKey, ref.dirid}, ref_data));
  }
  return ok();
}

}  // namespace ecfs::fs
