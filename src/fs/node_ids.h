// Node ids: inode numbers unique across a mount. Every subvolume numbers its
// inodes from 256 (its root directory) on, and FUSE gives every subvolume
// the same st_dev, so equal inode numbers in a snapshot and its source would
// make du, tar, cp -a and find -samefile take the files for hard links of
// each other. The node id puts the subvolume in the high bits:
//
//   node id = slot << 40 | inode number,  slot = 0 for FS_TREE 5,
//                                          tree id - 255 for trees 256 and up
//
// so the top level keeps its inode numbers as they are, and a mount can hold
// 2^24 - 1 subvolumes of 2^40 - 256 inodes each. st_ino is the node id.
#pragma once

#include <cstdint>

#include "store/tree_ids.h"

namespace ecfs::fs {

inline constexpr int kLocalInoBits = 40;
// The highest inode number a subvolume gives out.
inline constexpr uint64_t kMaxLocalIno = (uint64_t{1} << kLocalInoBits) - 1;
// The highest tree id a node id can name.
inline constexpr uint64_t kMaxSubvolumeTreeId =
    store::kFirstFreeTreeId - 1 + ((uint64_t{1} << (64 - kLocalInoBits)) - 1);

struct NodeParts {
  uint64_t tree = store::kFsTreeId;
  uint64_t ino = 0;
};

// REQUIRES: tree is FS_TREE 5 or in [256, kMaxSubvolumeTreeId]; ino <= kMaxLocalIno.
constexpr uint64_t node_id(uint64_t tree, uint64_t ino) {
  const uint64_t slot = tree == store::kFsTreeId ? 0 : tree - (store::kFirstFreeTreeId - 1);
  return (slot << kLocalInoBits) | ino;
}

constexpr NodeParts split_node_id(uint64_t node) {
  const uint64_t slot = node >> kLocalInoBits;
  return {slot == 0 ? store::kFsTreeId : slot + (store::kFirstFreeTreeId - 1), node & kMaxLocalIno};
}

}  // namespace ecfs::fs
