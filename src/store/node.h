// Tree nodes in memory, and their encoding to and from the on-disk layout of
// format.h. Decoding validates everything a corrupt or hostile image could
// get wrong (checksum, identity, counts, offsets, key order) and never reads
// out of bounds: it is a fuzz target.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "store/checksum.h"
#include "store/format.h"

namespace ecfs::store {

// A leaf item: key and opaque data.
struct LeafItem {
  Key key;
  Bytes data;

  friend bool operator==(const LeafItem&, const LeafItem&) = default;
};

// An internal node's pointer to a child: the child's first key, its block
// address and the generation it was written in (checked when it is read, to
// catch misdirected or lost writes).
struct KeyPtr {
  Key key;
  uint64_t bytenr = 0;
  uint64_t generation = 0;

  friend bool operator==(const KeyPtr&, const KeyPtr&) = default;
};

struct Node {
  uint64_t bytenr = 0;      // where the node lives (its identity)
  uint64_t generation = 0;  // transaction that wrote it
  uint64_t owner = 0;       // id of the tree that created it
  uint32_t flags = 0;
  uint8_t level = 0;             // 0 = leaf
  std::vector<LeafItem> items;   // level == 0, sorted by key, unique
  std::vector<KeyPtr> children;  // level > 0, sorted by key, unique, non-empty

  bool is_leaf() const { return level == 0; }
  size_t item_count() const { return is_leaf() ? items.size() : children.size(); }
  // The first key (the node's key in its parent). REQUIRES: non-empty.
  const Key& first_key() const { return is_leaf() ? items.front().key : children.front().key; }
  // Bytes this node occupies when encoded: header + item headers + data, or
  // header + key pointers. A node fits when encoded_size() <= node_size.
  size_t encoded_size() const;

  friend bool operator==(const Node&, const Node&) = default;
};

// True for the node sizes the format allows: a power of two in
// [kMinNodeSize, kMaxNodeSize].
inline constexpr bool is_valid_node_size(uint64_t size) {
  return size >= kMinNodeSize && size <= kMaxNodeSize && (size & (size - 1)) == 0;
}

// Bytes available for items in a node of `node_size`.
inline constexpr size_t node_payload_size(uint32_t node_size) {
  return node_size - kNodeHeaderSize;
}
// The largest item data one leaf can hold.
inline constexpr size_t max_item_data_size(uint32_t node_size) {
  return node_payload_size(node_size) - kLeafItemHeaderSize;
}
// Leaf items per leaf when every item's data is empty.
inline constexpr size_t max_leaf_items(uint32_t node_size) {
  return node_payload_size(node_size) / kLeafItemHeaderSize;
}
// Key pointers per internal node.
inline constexpr size_t max_children(uint32_t node_size) {
  return node_payload_size(node_size) / kKeyPtrSize;
}

// What a node read from disk must match.
struct NodeExpectation {
  std::array<uint8_t, kFsidSize> fsid{};
  uint32_t node_size = kDefaultNodeSize;
  ChecksumType checksum_type = ChecksumType::kCrc32c;
  uint64_t bytenr = 0;
  std::optional<uint64_t> generation;  // from the parent pointer / superblock
  std::optional<uint8_t> level;
};

// Encodes `node` into `out` (exactly node_size bytes) with checksum; bytes
// not used by items are zero. EINVAL if the node does not fit or is
// malformed (unsorted keys, empty internal node, level too high, a child
// pointer that is zero or not aligned to the node size), or if out.size()
// is not a valid node size.
Status encode_node(const Node& node, const std::array<uint8_t, kFsidSize>& fsid,
                   ChecksumType checksum_type, MutableByteSpan out);

// Decodes and validates a node block. EIO with a message naming the bytenr
// and what is wrong (checksum mismatch, wrong fsid/bytenr/generation/level,
// counts or offsets out of bounds, keys out of order); a block whose size is
// not expect.node_size is EIO too. EINVAL when `expect` itself is invalid
// (node size or checksum type). Whatever `block` holds, reads stay within it.
Result<Node> decode_node(ByteSpan block, const NodeExpectation& expect);

}  // namespace ecfs::store
