// check_filesystem: fsck of the POSIX layer. Reads one filesystem tree as
// last committed and checks every invariant FileSystem keeps between its
// items (docs/FORMAT.md "Filesystem items"; the rules are those of
// directory.cc, subvolume.cc and file_data.h, as btrfs check verifies the
// same items of a btrfs fs tree):
//
//  - every item decodes and has a key the format defines;
//  - the root directory (inode 256) exists and is a directory;
//  - names: each DIR_INDEX entry has the same entry (ino, index, type, name)
//    in the DIR_ITEM of its name's hash and vice versa; the hash matches;
//    the entry names an existing inode of the entry's DT type; the inode has
//    the INODE_REF record (index, name) under that directory and every
//    INODE_REF record has its entry;
//  - nlink: the number of names for non-directories; 2 + subdirectories for
//    directories, which have exactly one name (the root none) and are
//    reachable from the root (no cycles, no detached subtrees);
//  - directories: next_dir_index above every index, i_size twice the sum of
//    the name lengths (directory.cc add_entry / remove_entry);
//  - orphans: an inode with nlink 0 has no name and an ORPHAN item (else it
//    would never be deleted), and an ORPHAN item names an inode with nlink 0;
//  - symlinks: exactly one SYMLINK_TARGET, of length i_size, not empty;
//  - extents: EXTENT_DATA only on regular files, sector aligned, inside
//    their data extent, not overlapping, no regular data past the last
//    sector of i_size, and nbytes equal to the sum of their lengths (after a
//    commit nothing is buffered: file_data.h counts nbytes that way);
//  - fscrypt: the FSCRYPT_INODE_CTX item (40 bytes) exactly on inodes with
//    the encrypted flag; fscrypt extent contexts of 34 bytes;
//  - items of an inode number without an INODE_ITEM are problems;
//  - (check_all_subvolumes) the protector tree: every record decodes, every
//    wrapped key has its protector and is filed under its identifier, and
//    the compat bit protectors is set exactly when the tree exists;
//  - subvolumes: an entry naming one (items.h kDirEntrySubvolume) is a
//    directory entry counted in nlink with no inode of this tree; every
//    ROOT_REF of the tree in the catalog has its entry and every such entry
//    its ROOT_REF.
//
// Problems are human-readable lines naming inode numbers and, where it
// helps, a name (quoted_name: ciphertext in encrypted directories is
// printed escaped). Leftovers that a crash can leave and the next mount
// cleans up are warnings, not problems: an ORPHAN item whose inode is
// already gone (subvolume.cc cleanup_orphans removes it).
//
// The data references and checksums of the extents are Engine::check's.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "fs/tree_contents.h"
#include "store/engine.h"
#include "store/subvolume_catalog.h"
#include "store/tree_ids.h"

namespace ecfs::fs {

struct FsCheckReport {
  uint64_t inodes = 0;
  uint64_t directories = 0;
  uint64_t regular_files = 0;
  uint64_t symlinks = 0;
  uint64_t special_files = 0;  // device nodes, FIFOs, sockets
  uint64_t entries = 0;        // names (DIR_INDEX entries)
  uint64_t extents = 0;        // EXTENT_DATA items
  uint64_t xattrs = 0;         // extended attributes (names)
  uint64_t orphans = 0;        // ORPHAN items
  // Entries that name subvolumes: (directory, entry).
  std::vector<std::pair<uint64_t, DirEntry>> subvolume_entries;
  std::vector<std::string> problems;  // the tree breaks an invariant
  std::vector<std::string> warnings;  // harmless leftovers
  bool clean() const { return problems.empty(); }
};

// Checks the invariants above on the tree's contents (already read).
FsCheckReport check_tree_contents(const TreeContents& contents);

// Reads tree `tree_id` as last committed (never the running transaction's
// changes; nothing is written) and checks it. ENOENT when there is no such
// tree; read errors (EIO, EUCLEAN from a damaged node) as they come. The
// engine is not thread-safe: nothing else may use it meanwhile.
Result<FsCheckReport> check_filesystem(store::Engine& engine, uint64_t tree_id = store::kFsTreeId);

// check_filesystem of every subvolume that is not deleted (the top level
// and each one the catalog names), in one report: counts summed, problems
// and warnings of subvolumes other than the top level prefixed with
// "subvolume N: ".
Result<FsCheckReport> check_all_subvolumes(store::Engine& engine);

}  // namespace ecfs::fs
