// Pieces shared by the files that implement FileSystem (filesystem.cc,
// directory.cc, file_ops.cc, xattr_ops.cc); not part of the fs interface.
#pragma once

#include <cstdint>
#include <optional>

#include "fs/filesystem.h"
#include "fs/items.h"

namespace ecfs::fs {

// The current time (CLOCK_REALTIME) as stored in inodes.
Timestamp now();

struct FileSystem::InodeState {
  uint64_t ino = 0;
  // The inode item as it will be written at the next commit; empty when it
  // must be read again from the tree (after an aborted transaction).
  std::optional<InodeItem> item;
  bool dirty = false;
  uint64_t lookups = 0;  // kernel references (FUSE lookup count)
  uint32_t opens = 0;    // open file handles
};

}  // namespace ecfs::fs
