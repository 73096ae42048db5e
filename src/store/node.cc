#include "store/node.h"

#include <algorithm>
#include <string>
#include <utility>

#include "store/metadata_checksum.h"

namespace ecfs::store {
namespace {

// Header field offsets (format.h, docs/FORMAT.md "Tree nodes").
constexpr size_t kFsidOffset = kChecksumFieldSize;         // 32
constexpr size_t kBytenrOffset = kFsidOffset + kFsidSize;  // 48
constexpr size_t kGenerationOffset = kBytenrOffset + 8;    // 56
constexpr size_t kOwnerOffset = kGenerationOffset + 8;     // 64
constexpr size_t kFlagsOffset = kOwnerOffset + 8;          // 72
constexpr size_t kNritemsOffset = kFlagsOffset + 4;        // 76
constexpr size_t kLevelOffset = kNritemsOffset + 4;        // 80
constexpr size_t kReservedOffset = kLevelOffset + 1;       // 81
constexpr size_t kReservedSize = 7;
static_assert(kReservedOffset + kReservedSize == kNodeHeaderSize);

// Offsets inside the packed 17-byte key.
constexpr size_t kKeyTypeOffset = 8;
constexpr size_t kKeyOffsetOffset = 9;
static_assert(kKeyOffsetOffset + 8 == kKeySize);

// Offsets inside a leaf item header and a key pointer, after the key.
constexpr size_t kItemDataOffsetOffset = kKeySize;        // 17
constexpr size_t kItemDataSizeOffset = kKeySize + 4;      // 21
constexpr size_t kKeyPtrBlockptrOffset = kKeySize;        // 17
constexpr size_t kKeyPtrGenerationOffset = kKeySize + 8;  // 25
static_assert(kItemDataSizeOffset + 4 == kLeafItemHeaderSize);
static_assert(kKeyPtrGenerationOffset + 8 == kKeyPtrSize);

void store_key(uint8_t* p, const Key& key) {
  store_le64(p, key.objectid);
  p[kKeyTypeOffset] = key.type;
  store_le64(p + kKeyOffsetOffset, key.offset);
}

Key load_key(const uint8_t* p) {
  return Key{load_le64(p), p[kKeyTypeOffset], load_le64(p + kKeyOffsetOffset)};
}

std::string key_string(const Key& key) {
  return "(" + std::to_string(key.objectid) + " " + std::to_string(key.type) + " " +
         std::to_string(key.offset) + ")";
}

bool known_checksum_type(ChecksumType type) {
  return checksum_type_from_number(static_cast<uint16_t>(type)).has_value();
}

// The rules both the encoder and the decoder enforce, so that whatever
// encode_node writes, decode_node accepts. Each returns a description of the
// broken rule, or an empty string.

std::string key_order_problem(const Key& previous, const Key& key, size_t index) {
  if (key > previous) return {};
  return "key " + key_string(key) + " of item " + std::to_string(index) +
         " is not greater than key " + key_string(previous) + " of item " +
         std::to_string(index - 1);
}

// Child pointers name node-aligned blocks other than 0 (where nothing but
// the start of the device lives), and a child is never newer than its
// parent: copy-on-write rewrites the parent in the same transaction as the
// child.
std::string child_pointer_problem(const KeyPtr& child, size_t index, uint32_t node_size,
                                  uint64_t node_generation) {
  const std::string which = "child pointer " + std::to_string(index);
  if (child.bytenr == 0) return which + " is zero";
  if (child.bytenr % node_size != 0) {
    return which + " (byte " + std::to_string(child.bytenr) + ") is not aligned to the node size " +
           std::to_string(node_size);
  }
  if (child.generation > node_generation) {
    return which + " has generation " + std::to_string(child.generation) +
           ", newer than the node's generation " + std::to_string(node_generation);
  }
  return {};
}

std::unexpected<Error> node_error(uint64_t bytenr, const std::string& rule) {
  return fail(EIO, "tree node at byte " + std::to_string(bytenr) + ": " + rule);
}

std::unexpected<Error> encode_error(uint64_t bytenr, const std::string& rule) {
  return fail(EINVAL, "cannot encode tree node for byte " + std::to_string(bytenr) + ": " + rule);
}

Status check_node_for_encoding(const Node& node, uint32_t node_size) {
  if (node.level > kMaxTreeLevel) {
    return encode_error(node.bytenr, "level " + std::to_string(node.level) + " exceeds " +
                                         std::to_string(kMaxTreeLevel));
  }
  if (node.is_leaf()) {
    if (!node.children.empty()) return encode_error(node.bytenr, "a leaf has child pointers");
    for (size_t i = 1; i < node.items.size(); ++i) {
      if (auto problem = key_order_problem(node.items[i - 1].key, node.items[i].key, i);
          !problem.empty()) {
        return encode_error(node.bytenr, problem);
      }
    }
  } else {
    if (!node.items.empty()) return encode_error(node.bytenr, "an internal node has leaf items");
    if (node.children.empty()) return encode_error(node.bytenr, "an internal node is empty");
    for (size_t i = 0; i < node.children.size(); ++i) {
      if (i > 0) {
        if (auto problem = key_order_problem(node.children[i - 1].key, node.children[i].key, i);
            !problem.empty()) {
          return encode_error(node.bytenr, problem);
        }
      }
      if (auto problem = child_pointer_problem(node.children[i], i, node_size, node.generation);
          !problem.empty()) {
        return encode_error(node.bytenr, problem);
      }
    }
  }
  if (node.encoded_size() > node_size) {
    return encode_error(node.bytenr, "needs " + std::to_string(node.encoded_size()) +
                                         " bytes, more than the node size " +
                                         std::to_string(node_size));
  }
  return ok();
}

// A leaf item's data range relative to the end of the header.
struct DataRange {
  uint64_t begin;
  uint64_t end;
  size_t item;
};

Result<std::vector<LeafItem>> decode_leaf_items(ByteSpan payload, size_t count, uint64_t bytenr) {
  const uint64_t headers_end = uint64_t{count} * kLeafItemHeaderSize;
  std::vector<LeafItem> items;
  std::vector<DataRange> ranges;
  items.reserve(count);
  ranges.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* header = payload.data() + i * kLeafItemHeaderSize;
    const Key key = load_key(header);
    // 64-bit sums: offset + size cannot wrap.
    const uint64_t begin = load_le32(header + kItemDataOffsetOffset);
    const uint64_t end = begin + load_le32(header + kItemDataSizeOffset);
    if (i > 0) {
      if (auto problem = key_order_problem(items.back().key, key, i); !problem.empty()) {
        return node_error(bytenr, problem);
      }
    }
    const std::string range = "data of item " + std::to_string(i) + " at [" +
                              std::to_string(begin) + ", " + std::to_string(end) + ")";
    if (end > payload.size()) {
      return node_error(bytenr, range + " extends past the end of the node (payload is " +
                                    std::to_string(payload.size()) + " bytes)");
    }
    if (begin < headers_end) {
      return node_error(bytenr, range + " overlaps the item headers, which end at " +
                                    std::to_string(headers_end));
    }
    if (end > begin) ranges.push_back({begin, end, i});
    items.push_back(LeafItem{key, Bytes(payload.begin() + begin, payload.begin() + end)});
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const DataRange& a, const DataRange& b) { return a.begin < b.begin; });
  for (size_t r = 1; r < ranges.size(); ++r) {
    if (ranges[r].begin < ranges[r - 1].end) {
      return node_error(bytenr, "data of items " + std::to_string(ranges[r - 1].item) + " and " +
                                    std::to_string(ranges[r].item) + " overlap");
    }
  }
  return items;
}

Result<std::vector<KeyPtr>> decode_key_pointers(ByteSpan payload, size_t count, uint32_t node_size,
                                                uint64_t node_generation, uint64_t bytenr) {
  std::vector<KeyPtr> children;
  children.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* p = payload.data() + i * kKeyPtrSize;
    const KeyPtr child{load_key(p), load_le64(p + kKeyPtrBlockptrOffset),
                       load_le64(p + kKeyPtrGenerationOffset)};
    if (i > 0) {
      if (auto problem = key_order_problem(children.back().key, child.key, i); !problem.empty()) {
        return node_error(bytenr, problem);
      }
    }
    if (auto problem = child_pointer_problem(child, i, node_size, node_generation);
        !problem.empty()) {
      return node_error(bytenr, problem);
    }
    children.push_back(child);
  }
  return children;
}

}  // namespace

size_t Node::encoded_size() const {
  if (!is_leaf()) return kNodeHeaderSize + children.size() * kKeyPtrSize;
  size_t size = kNodeHeaderSize + items.size() * kLeafItemHeaderSize;
  for (const LeafItem& item : items) size += item.data.size();
  return size;
}

Status encode_node(const Node& node, const std::array<uint8_t, kFsidSize>& fsid,
                   ChecksumType checksum_type, MutableByteSpan out) {
  if (!is_valid_node_size(out.size())) {
    return encode_error(
        node.bytenr, "buffer of " + std::to_string(out.size()) + " bytes is not a valid node size");
  }
  if (!known_checksum_type(checksum_type)) {
    return encode_error(node.bytenr, "unknown checksum type " +
                                         std::to_string(static_cast<uint16_t>(checksum_type)));
  }
  const auto node_size = static_cast<uint32_t>(out.size());
  ECFS_TRY(check_node_for_encoding(node, node_size));

  std::fill(out.begin(), out.end(), uint8_t{0});
  uint8_t* base = out.data();
  std::copy(fsid.begin(), fsid.end(), base + kFsidOffset);
  store_le64(base + kBytenrOffset, node.bytenr);
  store_le64(base + kGenerationOffset, node.generation);
  store_le64(base + kOwnerOffset, node.owner);
  store_le32(base + kFlagsOffset, node.flags);
  store_le32(base + kNritemsOffset, static_cast<uint32_t>(node.item_count()));
  base[kLevelOffset] = node.level;

  uint8_t* payload = base + kNodeHeaderSize;
  if (node.is_leaf()) {
    // As btrfs: headers from the front, data from the end in item order, so
    // item 0's data ends at the end of the node and free space is one gap.
    size_t data_end = node_payload_size(node_size);
    for (size_t i = 0; i < node.items.size(); ++i) {
      const LeafItem& item = node.items[i];
      const size_t data_begin = data_end - item.data.size();
      uint8_t* header = payload + i * kLeafItemHeaderSize;
      store_key(header, item.key);
      store_le32(header + kItemDataOffsetOffset, static_cast<uint32_t>(data_begin));
      store_le32(header + kItemDataSizeOffset, static_cast<uint32_t>(item.data.size()));
      std::copy(item.data.begin(), item.data.end(), payload + data_begin);
      data_end = data_begin;
    }
  } else {
    for (size_t i = 0; i < node.children.size(); ++i) {
      const KeyPtr& child = node.children[i];
      uint8_t* p = payload + i * kKeyPtrSize;
      store_key(p, child.key);
      store_le64(p + kKeyPtrBlockptrOffset, child.bytenr);
      store_le64(p + kKeyPtrGenerationOffset, child.generation);
    }
  }
  seal_metadata_block(checksum_type, out);
  return ok();
}

Result<Node> decode_node(ByteSpan block, const NodeExpectation& expect) {
  const uint64_t bytenr = expect.bytenr;
  if (!is_valid_node_size(expect.node_size)) {
    return fail(EINVAL, "reading tree node at byte " + std::to_string(bytenr) +
                            ": invalid node size " + std::to_string(expect.node_size));
  }
  if (!known_checksum_type(expect.checksum_type)) {
    return fail(EINVAL, "reading tree node at byte " + std::to_string(bytenr) +
                            ": unknown checksum type " +
                            std::to_string(static_cast<uint16_t>(expect.checksum_type)));
  }
  if (block.size() != expect.node_size) {
    return node_error(bytenr, "block is " + std::to_string(block.size()) +
                                  " bytes, the node size is " + std::to_string(expect.node_size));
  }
  // The checksum first: nothing else in a block that fails it is worth
  // reporting, and it makes every later rule a check on data the writer
  // meant (bugs, hostile images), not on media corruption.
  if (!metadata_block_checksum_valid(expect.checksum_type, block)) {
    return fail(EIO, "checksum mismatch in tree node at byte " + std::to_string(bytenr));
  }
  const uint8_t* base = block.data();
  if (!std::equal(expect.fsid.begin(), expect.fsid.end(), base + kFsidOffset)) {
    return node_error(bytenr, "belongs to another filesystem (fsid " +
                                  to_hex(block.subspan(kFsidOffset, kFsidSize)) + ")");
  }
  Node node;
  node.bytenr = load_le64(base + kBytenrOffset);
  node.generation = load_le64(base + kGenerationOffset);
  node.owner = load_le64(base + kOwnerOffset);
  node.flags = load_le32(base + kFlagsOffset);
  node.level = base[kLevelOffset];
  const uint32_t count = load_le32(base + kNritemsOffset);

  if (node.bytenr != bytenr) {
    return node_error(bytenr, "header names byte " + std::to_string(node.bytenr) +
                                  " (misplaced or misdirected write)");
  }
  const ByteSpan reserved = block.subspan(kReservedOffset, kReservedSize);
  if (std::any_of(reserved.begin(), reserved.end(), [](uint8_t b) { return b != 0; })) {
    return node_error(bytenr, "reserved header bytes are not zero");
  }
  if (node.level > kMaxTreeLevel) {
    return node_error(bytenr, "level " + std::to_string(node.level) + " exceeds the maximum " +
                                  std::to_string(kMaxTreeLevel));
  }
  if (expect.level && node.level != *expect.level) {
    return node_error(bytenr, "level " + std::to_string(node.level) + ", expected " +
                                  std::to_string(*expect.level));
  }
  if (expect.generation && node.generation != *expect.generation) {
    return node_error(bytenr, "generation " + std::to_string(node.generation) + ", expected " +
                                  std::to_string(*expect.generation) + " (lost or stale write)");
  }

  const ByteSpan payload = block.subspan(kNodeHeaderSize);
  const size_t capacity =
      node.is_leaf() ? max_leaf_items(expect.node_size) : max_children(expect.node_size);
  if (count > capacity) {
    return node_error(bytenr, std::to_string(count) + " items, more than the " +
                                  std::to_string(capacity) + " that fit");
  }
  if (node.is_leaf()) {
    auto items = decode_leaf_items(payload, count, bytenr);
    if (!items) return std::unexpected(std::move(items).error());
    node.items = std::move(*items);
  } else {
    if (count == 0) return node_error(bytenr, "internal node has no children");
    auto children = decode_key_pointers(payload, count, expect.node_size, node.generation, bytenr);
    if (!children) return std::unexpected(std::move(children).error());
    node.children = std::move(*children);
  }
  return node;
}

}  // namespace ecfs::store
