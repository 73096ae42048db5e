// RootRef: where a tree's root node is. The root tree keeps one for every
// other tree; the superblock keeps the root tree's own.
#pragma once

#include <cstdint>

namespace ecfs::store {

struct RootRef {
  uint64_t bytenr = 0;
  uint64_t generation = 0;  // the root node's generation, checked when it is read
  uint8_t level = 0;        // the root node's level (0: the root is a leaf)
  friend bool operator==(const RootRef&, const RootRef&) = default;
};

}  // namespace ecfs::store
