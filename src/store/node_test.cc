#include "store/node.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "store/metadata_test_util.h"

namespace ecfs::store {
namespace {

using testing::error_of;
using ::testing::HasSubstr;
using testing::kAllChecksumTypes;
using testing::message_of;
using testing::reference_crc32c;
using testing::reseal;

constexpr std::array<uint8_t, kFsidSize> kFsid = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
                                                  0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff};
constexpr uint64_t kBytenr = 1u << 20;  // aligned to every node size

NodeExpectation expectation(uint32_t node_size = kMinNodeSize,
                            ChecksumType type = ChecksumType::kCrc32c) {
  NodeExpectation expect;
  expect.fsid = kFsid;
  expect.node_size = node_size;
  expect.checksum_type = type;
  expect.bytenr = kBytenr;
  return expect;
}

Bytes encode_or_fail(const Node& node, uint32_t node_size = kMinNodeSize,
                     ChecksumType type = ChecksumType::kCrc32c) {
  Bytes block(node_size, 0xAA);
  auto status = encode_node(node, kFsid, type, block);
  EXPECT_TRUE(status) << message_of(status);
  return block;
}

Node small_leaf() {
  Node node;
  node.bytenr = kBytenr;
  node.generation = 0x0102030405060708;
  node.owner = 5;
  node.flags = 0xA0B0C0D0;
  node.items.push_back({Key{256, 1, 0}, Bytes{'a', 'b', 'c'}});
  node.items.push_back({Key{256, 1, 7}, Bytes{'x', 'y'}});
  return node;
}

Node small_internal() {
  Node node;
  node.bytenr = kBytenr;
  node.generation = 9;
  node.owner = 1;
  node.level = 2;
  node.children.push_back({Key{1, 2, 3}, 3 * kMinNodeSize, 8});
  node.children.push_back({Key{0x1122334455667788, 0x99, 0xAABBCCDDEEFF0011}, 7 * kMinNodeSize, 9});
  return node;
}

Key random_key(std::mt19937_64& rng) {
  // Few distinct objectids and types, so keys often share a prefix and the
  // later fields decide the order.
  return Key{rng() % 4, static_cast<uint8_t>(rng() % 3), rng() % 8};
}

// A random leaf with unique sorted keys that fits `node_size`.
Node random_leaf(std::mt19937_64& rng, uint32_t node_size) {
  Node node;
  node.bytenr = (rng() % 1000 + 1) * node_size;
  node.generation = rng();
  node.owner = rng();
  node.flags = static_cast<uint32_t>(rng());
  std::map<Key, Bytes> items;
  size_t used = kNodeHeaderSize;
  const size_t wanted = rng() % 40;
  for (size_t i = 0; i < wanted; ++i) {
    Key key{rng() % 1000, static_cast<uint8_t>(rng() % 256), rng()};
    if (items.contains(key)) continue;
    Bytes data(rng() % (rng() % 2 ? 8 : 400));
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    if (used + kLeafItemHeaderSize + data.size() > node_size) break;
    used += kLeafItemHeaderSize + data.size();
    items.emplace(key, std::move(data));
  }
  for (auto& [key, data] : items) node.items.push_back({key, std::move(data)});
  return node;
}

Node random_internal(std::mt19937_64& rng, uint32_t node_size) {
  Node node;
  node.bytenr = (rng() % 1000 + 1) * node_size;
  node.generation = rng() % 1000 + 1000;
  node.owner = rng();
  node.level = static_cast<uint8_t>(1 + rng() % kMaxTreeLevel);
  std::map<Key, KeyPtr> children;
  const size_t wanted = 1 + rng() % max_children(node_size);
  for (size_t i = 0; i < wanted; ++i) {
    const Key key = random_key(rng);
    children[key] = KeyPtr{key, (rng() % 100000 + 1) * node_size, rng() % (node.generation + 1)};
  }
  for (auto& [key, child] : children) node.children.push_back(child);
  return node;
}

// A leaf whose encoding fills the node exactly: `count` items, the data
// spread over them.
Node full_leaf(uint32_t node_size, size_t count) {
  Node node;
  node.bytenr = kBytenr;
  node.generation = 1;
  size_t data_left = node_payload_size(node_size) - count * kLeafItemHeaderSize;
  for (size_t i = 0; i < count; ++i) {
    const size_t size = i + 1 == count ? data_left : data_left / (count - i);
    node.items.push_back({Key{i, 1, 0}, Bytes(size, static_cast<uint8_t>(i))});
    data_left -= size;
  }
  return node;
}

Node full_internal(uint32_t node_size) {
  Node node;
  node.bytenr = kBytenr;
  node.generation = 50;
  node.level = 1;
  for (size_t i = 0; i < max_children(node_size); ++i) {
    node.children.push_back({Key{i, 0, 0}, (i + 1) * node_size, i % 50});
  }
  return node;
}

// ---- Sizes ----------------------------------------------------------------

TEST(NodeTest, EncodedSizeCountsHeaderItemHeadersAndData) {
  EXPECT_EQ(Node{}.encoded_size(), 88u);
  EXPECT_EQ(small_leaf().encoded_size(), 88u + 2 * 25 + 3 + 2);
  EXPECT_EQ(small_internal().encoded_size(), 88u + 2 * 33);
  EXPECT_EQ(max_children(4096), (4096u - 88) / 33);
  EXPECT_EQ(max_item_data_size(4096), 4096u - 88 - 25);
  EXPECT_EQ(max_leaf_items(16384), (16384u - 88) / 25);
}

TEST(NodeTest, ValidNodeSizesArePowersOfTwoFrom4KTo64K) {
  for (uint32_t size : {4096u, 8192u, 16384u, 32768u, 65536u})
    EXPECT_TRUE(is_valid_node_size(size));
  for (uint32_t size : {0u, 2048u, 4095u, 4097u, 12288u, 131072u}) {
    EXPECT_FALSE(is_valid_node_size(size)) << size;
  }
}

// ---- Exact byte layout ------------------------------------------------------

TEST(NodeTest, LeafLayoutIsPinned) {
  const Bytes block = encode_or_fail(small_leaf());
  ASSERT_EQ(block.size(), 4096u);
  const Bytes expected_header = {// fsid
                                 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
                                 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
                                 // bytenr 0x100000
                                 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
                                 // generation
                                 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                                 // owner 5
                                 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                 // flags
                                 0xD0, 0xC0, 0xB0, 0xA0,
                                 // nritems 2
                                 0x02, 0x00, 0x00, 0x00,
                                 // level 0, reserved[7]
                                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(Bytes(block.begin() + 32, block.begin() + 88), expected_header);

  // Payload is 4096 - 88 = 4008 bytes. Item 0's data ends the node; item 1's
  // data sits just before it. data_offset counts from the end of the header.
  const Bytes expected_items = {
      // item 0: key (256, 1, 0), data_offset 4005, data_size 3
      0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0xA5, 0x0F, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
      // item 1: key (256, 1, 7), data_offset 4003, data_size 2
      0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0xA3, 0x0F, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00};
  EXPECT_EQ(Bytes(block.begin() + 88, block.begin() + 138), expected_items);
  EXPECT_EQ(Bytes(block.end() - 5, block.end()), (Bytes{'x', 'y', 'a', 'b', 'c'}));
  // Free space between the item headers and the data is zero.
  for (size_t i = 138; i < 4096 - 5; ++i) ASSERT_EQ(block[i], 0) << "byte " << i;

  // crc32c of bytes [32, 4096), little-endian, then 28 zero bytes.
  const uint32_t crc = reference_crc32c(ByteSpan(block).subspan(32));
  EXPECT_EQ(load_le32(block.data()), crc);
  for (size_t i = 4; i < 32; ++i) EXPECT_EQ(block[i], 0) << "checksum padding byte " << i;
}

TEST(NodeTest, InternalLayoutIsPinned) {
  const Bytes block = encode_or_fail(small_internal());
  EXPECT_EQ(load_le32(block.data() + 76), 2u);  // nritems
  EXPECT_EQ(block[80], 2);                      // level
  const Bytes expected = {
      // key (1, 2, 3), blockptr 3 * 4096, generation 8
      0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00,
      // key (0x1122334455667788, 0x99, 0xAABBCCDDEEFF0011), blockptr 7 * 4096, generation 9
      0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x99, 0x11, 0x00, 0xFF, 0xEE, 0xDD, 0xCC,
      0xBB, 0xAA, 0x00, 0x70, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00};
  EXPECT_EQ(Bytes(block.begin() + 88, block.begin() + 88 + 66), expected);
  for (size_t i = 88 + 66; i < block.size(); ++i) ASSERT_EQ(block[i], 0) << "byte " << i;
  EXPECT_EQ(load_le32(block.data()), reference_crc32c(ByteSpan(block).subspan(32)));
}

TEST(NodeTest, WiderChecksumsFillMoreOfTheField) {
  // xxhash64 stores 8 bytes, sha256 and blake2b all 32; the rest is zero.
  for (ChecksumType type : kAllChecksumTypes) {
    const Bytes block = encode_or_fail(small_leaf(), kMinNodeSize, type);
    const Checksum expected = compute_checksum(type, ByteSpan(block).subspan(32));
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), block.begin())) << checksum_name(type);
    for (size_t i = checksum_size(type); i < 32; ++i) EXPECT_EQ(block[i], 0);
  }
}

// ---- Round trips ------------------------------------------------------------

TEST(NodeTest, SmallNodesRoundTrip) {
  Node empty_leaf;
  empty_leaf.bytenr = kBytenr;
  for (const Node& node : {small_leaf(), small_internal(), empty_leaf}) {
    auto decoded = decode_node(encode_or_fail(node), expectation());
    ASSERT_TRUE(decoded) << message_of(decoded);
    EXPECT_EQ(*decoded, node);
  }
}

TEST(NodeTest, RandomNodesRoundTripForEveryChecksumAndNodeSize) {
  std::mt19937_64 rng(20240611);
  for (ChecksumType type : kAllChecksumTypes) {
    for (uint32_t node_size : {4096u, 16384u, 65536u}) {
      for (int round = 0; round < 40; ++round) {
        const Node node = round % 2 ? random_leaf(rng, node_size) : random_internal(rng, node_size);
        const Bytes block = encode_or_fail(node, node_size, type);
        NodeExpectation expect = expectation(node_size, type);
        expect.bytenr = node.bytenr;
        expect.generation = node.generation;
        expect.level = node.level;
        auto decoded = decode_node(block, expect);
        ASSERT_TRUE(decoded) << message_of(decoded);
        ASSERT_EQ(*decoded, node);
        // Encoding is deterministic: the decoded node re-encodes to the same bytes.
        ASSERT_EQ(encode_or_fail(*decoded, node_size, type), block);
      }
    }
  }
}

TEST(NodeTest, FullNodesRoundTripAndOneMoreByteDoesNotFit) {
  for (uint32_t node_size : {4096u, 65536u}) {
    for (size_t count : {size_t{1}, size_t{3}, size_t{100}, max_leaf_items(node_size)}) {
      Node leaf = full_leaf(node_size, count);
      ASSERT_EQ(leaf.encoded_size(), node_size);
      auto decoded = decode_node(encode_or_fail(leaf, node_size), expectation(node_size));
      ASSERT_TRUE(decoded) << message_of(decoded);
      EXPECT_EQ(*decoded, leaf);
      // One more data byte, or one more (empty) item, no longer fits.
      Node bigger = leaf;
      bigger.items.back().data.push_back(0);
      Bytes block(node_size);
      EXPECT_EQ(error_of(encode_node(bigger, kFsid, ChecksumType::kCrc32c, block)), EINVAL);
    }
    // max_leaf_items empty items fit (encoded_size may be below node_size).
    Node many;
    many.bytenr = kBytenr;
    for (size_t i = 0; i < max_leaf_items(node_size); ++i) many.items.push_back({Key{i, 0, 0}, {}});
    auto decoded = decode_node(encode_or_fail(many, node_size), expectation(node_size));
    ASSERT_TRUE(decoded) << message_of(decoded);
    EXPECT_EQ(*decoded, many);
    many.items.push_back({Key{UINT64_MAX, 0, 0}, {}});
    Bytes block(node_size);
    EXPECT_EQ(error_of(encode_node(many, kFsid, ChecksumType::kCrc32c, block)), EINVAL);

    Node internal = full_internal(node_size);
    decoded = decode_node(encode_or_fail(internal, node_size), expectation(node_size));
    ASSERT_TRUE(decoded) << message_of(decoded);
    EXPECT_EQ(*decoded, internal);
    internal.children.push_back({Key{UINT64_MAX, 0, 0}, node_size, 1});
    EXPECT_EQ(error_of(encode_node(internal, kFsid, ChecksumType::kCrc32c, block)), EINVAL);
  }
}

TEST(NodeTest, LargestSingleItemFits) {
  Node node;
  node.bytenr = kBytenr;
  node.items.push_back({Key{1, 1, 1}, Bytes(max_item_data_size(kMinNodeSize), 0x5A)});
  auto decoded = decode_node(encode_or_fail(node), expectation());
  ASSERT_TRUE(decoded) << message_of(decoded);
  EXPECT_EQ(*decoded, node);
}

TEST(NodeTest, KeyOrderIsObjectidThenTypeThenOffset) {
  Node node;
  node.bytenr = kBytenr;
  // Sorted by (objectid, type, offset): a larger offset never outranks a
  // larger type, and a larger type never outranks a larger objectid.
  node.items = {{Key{1, 0, UINT64_MAX}, {}},
                {Key{1, 1, 0}, {}},
                {Key{1, UINT8_MAX, UINT64_MAX}, {}},
                {Key{2, 0, 0}, {}}};
  EXPECT_TRUE(decode_node(encode_or_fail(node), expectation()));
  std::swap(node.items[1], node.items[2]);
  Bytes block(kMinNodeSize);
  EXPECT_EQ(error_of(encode_node(node, kFsid, ChecksumType::kCrc32c, block)), EINVAL);
}

// ---- Encoder refusals -----------------------------------------------------

TEST(NodeTest, EncodeRefusesMalformedNodes) {
  Bytes block(kMinNodeSize);
  const auto encode = [&](const Node& node) {
    return encode_node(node, kFsid, ChecksumType::kCrc32c, block);
  };
  Node duplicate = small_leaf();
  duplicate.items[1].key = duplicate.items[0].key;
  EXPECT_EQ(error_of(encode(duplicate)), EINVAL);

  Node leaf_with_children = small_leaf();
  leaf_with_children.children.push_back({Key{}, kMinNodeSize, 0});
  EXPECT_EQ(error_of(encode(leaf_with_children)), EINVAL);

  Node internal_with_items = small_internal();
  internal_with_items.items.push_back({Key{}, {}});
  EXPECT_EQ(error_of(encode(internal_with_items)), EINVAL);

  Node empty_internal = small_internal();
  empty_internal.children.clear();
  EXPECT_EQ(error_of(encode(empty_internal)), EINVAL);

  Node too_high = small_internal();
  too_high.level = kMaxTreeLevel + 1;
  EXPECT_EQ(error_of(encode(too_high)), EINVAL);
  too_high.level = kMaxTreeLevel;
  EXPECT_TRUE(encode(too_high));

  Node zero_child = small_internal();
  zero_child.children[0].bytenr = 0;
  EXPECT_EQ(error_of(encode(zero_child)), EINVAL);

  Node unaligned_child = small_internal();
  unaligned_child.children[1].bytenr += 512;
  EXPECT_EQ(error_of(encode(unaligned_child)), EINVAL);

  Node newer_child = small_internal();
  newer_child.children[0].generation = newer_child.generation + 1;
  EXPECT_EQ(error_of(encode(newer_child)), EINVAL);

  Node unsorted_children = small_internal();
  std::swap(unsorted_children.children[0], unsorted_children.children[1]);
  EXPECT_EQ(error_of(encode(unsorted_children)), EINVAL);
}

TEST(NodeTest, EncodeRefusesBadBufferSizesAndChecksumTypes) {
  for (size_t size : {size_t{0}, size_t{88}, size_t{4095}, size_t{6000}, size_t{131072}}) {
    Bytes block(size);
    EXPECT_EQ(error_of(encode_node(small_leaf(), kFsid, ChecksumType::kCrc32c, block)), EINVAL)
        << size;
  }
  Bytes block(kMinNodeSize);
  EXPECT_EQ(error_of(encode_node(small_leaf(), kFsid, static_cast<ChecksumType>(9), block)),
            EINVAL);
}

// ---- Decoder: corruption ----------------------------------------------------

// Every byte is covered by the checksum except the checksum field itself,
// whose unused tail must be zero: any single-byte change must be refused.
void expect_every_byte_flip_detected(const Node& node, uint32_t node_size, ChecksumType type) {
  Bytes block = encode_or_fail(node, node_size, type);
  NodeExpectation expect = expectation(node_size, type);
  expect.bytenr = node.bytenr;
  ASSERT_TRUE(decode_node(block, expect));
  for (size_t i = 0; i < block.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
      block[i] ^= mask;
      auto decoded = decode_node(block, expect);
      ASSERT_EQ(error_of(decoded), EIO) << "byte " << i << " mask " << int(mask);
      ASSERT_THAT(message_of(decoded), HasSubstr("checksum mismatch in tree node at byte " +
                                                 std::to_string(node.bytenr)));
      block[i] ^= mask;
    }
  }
}

TEST(NodeTest, EveryByteFlipOfALeafIsDetected) {
  std::mt19937_64 rng(7);
  expect_every_byte_flip_detected(full_leaf(kMinNodeSize, 12), kMinNodeSize, ChecksumType::kCrc32c);
  expect_every_byte_flip_detected(random_leaf(rng, 16384), 16384, ChecksumType::kXxhash64);
}

TEST(NodeTest, EveryByteFlipOfAnInternalNodeIsDetected) {
  expect_every_byte_flip_detected(full_internal(kMinNodeSize), kMinNodeSize, ChecksumType::kCrc32c);
  expect_every_byte_flip_detected(small_internal(), kMinNodeSize, ChecksumType::kBlake2b);
}

TEST(NodeTest, WrongChecksumTypeIsAMismatch) {
  const Bytes block = encode_or_fail(small_leaf(), kMinNodeSize, ChecksumType::kSha256);
  auto decoded = decode_node(block, expectation(kMinNodeSize, ChecksumType::kBlake2b));
  EXPECT_EQ(error_of(decoded), EIO);
  EXPECT_THAT(message_of(decoded), HasSubstr("checksum mismatch"));
}

TEST(NodeTest, TruncatedAndOversizedBlocksAreRefused) {
  const Bytes block = encode_or_fail(small_leaf());
  for (size_t size : {size_t{0}, size_t{1}, size_t{31}, size_t{32}, size_t{88}, size_t{4095}}) {
    auto decoded = decode_node(ByteSpan(block).first(size), expectation());
    EXPECT_EQ(error_of(decoded), EIO) << size;
    EXPECT_THAT(message_of(decoded), HasSubstr("at byte 1048576"));
  }
  Bytes longer = block;
  longer.push_back(0);
  EXPECT_EQ(error_of(decode_node(longer, expectation())), EIO);
  // The same block read with a larger node size.
  EXPECT_EQ(error_of(decode_node(block, expectation(8192))), EIO);
}

TEST(NodeTest, GarbageIsRefused) {
  std::mt19937_64 rng(99);
  Bytes block(kMinNodeSize);
  EXPECT_EQ(error_of(decode_node(block, expectation())), EIO);  // all zeros
  for (int round = 0; round < 200; ++round) {
    for (auto& b : block) b = static_cast<uint8_t>(rng());
    EXPECT_EQ(error_of(decode_node(block, expectation())), EIO);
    // Garbage with a correct checksum fails on identity (fsid) instead.
    reseal(block);
    EXPECT_EQ(error_of(decode_node(block, expectation())), EIO);
  }
}

TEST(NodeTest, InvalidExpectationIsEinval) {
  const Bytes block = encode_or_fail(small_leaf());
  EXPECT_EQ(error_of(decode_node(block, expectation(5000))), EINVAL);
  NodeExpectation bad_type = expectation();
  bad_type.checksum_type = static_cast<ChecksumType>(77);
  EXPECT_EQ(error_of(decode_node(block, bad_type)), EINVAL);
}

// ---- Decoder: every rule after the checksum ---------------------------------
// Each case changes the encoded bytes, re-seals the checksum so the rule
// itself is what refuses the block, and checks errno and message.

struct Tampered {
  Bytes block;
  NodeExpectation expect = expectation();
};

void expect_refused(Tampered t, const std::string& rule) {
  reseal(t.block);
  auto decoded = decode_node(t.block, t.expect);
  ASSERT_EQ(error_of(decoded), EIO) << rule;
  EXPECT_THAT(message_of(decoded), HasSubstr("tree node at byte 1048576"));
  EXPECT_THAT(message_of(decoded), HasSubstr(rule));
}

TEST(NodeTest, ResealedBlocksStillDecode) {
  // The tampering helper itself must not break a valid block.
  Tampered t{encode_or_fail(small_leaf())};
  reseal(t.block);
  EXPECT_TRUE(decode_node(t.block, t.expect));
}

TEST(NodeTest, NonzeroChecksumPaddingIsAMismatch) {
  Bytes block = encode_or_fail(small_leaf());
  block[31] = 1;
  auto decoded = decode_node(block, expectation());
  EXPECT_EQ(error_of(decoded), EIO);
  EXPECT_THAT(message_of(decoded), HasSubstr("checksum mismatch"));
}

TEST(NodeTest, IdentityMismatchesAreRefused) {
  Tampered fsid{encode_or_fail(small_leaf())};
  fsid.block[40] ^= 1;
  expect_refused(fsid, "another filesystem");

  Tampered bytenr{encode_or_fail(small_leaf())};
  bytenr.expect.bytenr = kBytenr;
  store_le64(bytenr.block.data() + 48, kBytenr + 4096);
  expect_refused(bytenr, "header names byte 1052672");

  Tampered generation{encode_or_fail(small_leaf())};
  generation.expect.generation = 3;
  expect_refused(generation, "generation 72623859790382856, expected 3");

  Tampered level{encode_or_fail(small_internal())};
  level.expect.level = 1;
  expect_refused(level, "level 2, expected 1");

  // Matching expectations pass.
  NodeExpectation exact = expectation();
  exact.generation = small_internal().generation;
  exact.level = 2;
  EXPECT_TRUE(decode_node(encode_or_fail(small_internal()), exact));
}

TEST(NodeTest, ReservedHeaderBytesMustBeZero) {
  for (size_t i = 81; i < 88; ++i) {
    Tampered t{encode_or_fail(small_leaf())};
    t.block[i] = 0x40;
    expect_refused(t, "reserved header bytes");
  }
}

TEST(NodeTest, LevelAboveMaximumIsRefused) {
  Tampered t{encode_or_fail(small_internal())};
  t.block[80] = kMaxTreeLevel + 1;
  expect_refused(t, "level 9 exceeds the maximum 8");
  t.block[80] = 255;
  expect_refused(t, "level 255");
}

TEST(NodeTest, ItemCountBeyondCapacityIsRefused) {
  Tampered leaf{encode_or_fail(small_leaf())};
  store_le32(leaf.block.data() + 76, static_cast<uint32_t>(max_leaf_items(kMinNodeSize) + 1));
  expect_refused(leaf, "more than the 160 that fit");
  store_le32(leaf.block.data() + 76, UINT32_MAX);
  expect_refused(leaf, "4294967295 items");

  Tampered internal{encode_or_fail(small_internal())};
  store_le32(internal.block.data() + 76, static_cast<uint32_t>(max_children(kMinNodeSize) + 1));
  expect_refused(internal, "more than the 121 that fit");
}

TEST(NodeTest, ItemCountAtCapacityReadsOnlyWithinTheBlock) {
  // A leaf claiming exactly as many items as fit: the headers fill the
  // payload, so any data offset lands outside or on the headers.
  Tampered t{encode_or_fail(small_leaf())};
  store_le32(t.block.data() + 76, static_cast<uint32_t>(max_leaf_items(kMinNodeSize)));
  reseal(t.block);
  EXPECT_EQ(error_of(decode_node(t.block, t.expect)), EIO);
}

TEST(NodeTest, EmptyInternalNodeIsRefused) {
  Tampered t{encode_or_fail(small_internal())};
  store_le32(t.block.data() + 76, 0);
  expect_refused(t, "internal node has no children");
}

TEST(NodeTest, DataRangesOutsideTheNodeAreRefused) {
  // Item 0's header is at 88: data_offset at 88+17, data_size at 88+21.
  Tampered past_end{encode_or_fail(small_leaf())};
  store_le32(past_end.block.data() + 105, 4006);  // 4006 + 3 > 4008
  expect_refused(past_end, "data of item 0 at [4006, 4009) extends past the end of the node");

  Tampered huge_size{encode_or_fail(small_leaf())};
  store_le32(huge_size.block.data() + 109, UINT32_MAX);
  expect_refused(huge_size, "extends past the end");

  // offset + size would wrap a 32-bit sum back into range.
  Tampered wraps{encode_or_fail(small_leaf())};
  store_le32(wraps.block.data() + 105, UINT32_MAX);
  store_le32(wraps.block.data() + 109, 2);
  expect_refused(wraps, "extends past the end");
}

TEST(NodeTest, DataOverlappingItemHeadersIsRefused) {
  Tampered t{encode_or_fail(small_leaf())};
  store_le32(t.block.data() + 88 + 25 + 17, 49);  // item 1's data inside the two headers (0..50)
  expect_refused(t, "data of item 1 at [49, 51) overlaps the item headers, which end at 50");
}

TEST(NodeTest, OverlappingItemDataIsRefused) {
  Tampered t{encode_or_fail(small_leaf())};
  store_le32(t.block.data() + 88 + 25 + 17, 4004);  // item 1 [4004, 4006) vs item 0 [4005, 4008)
  expect_refused(t, "data of items 1 and 0 overlap");
}

TEST(NodeTest, DataInAnotherOrderIsAccepted) {
  // The rule is "in bounds and disjoint"; the encoder's packing order is not
  // required. Two equal-size items with their data ranges swapped decode
  // with their data swapped.
  Node node = small_leaf();
  node.items[1].data = {'x', 'y', 'z'};
  Tampered t{encode_or_fail(node)};
  store_le32(t.block.data() + 88 + 17, 4002);
  store_le32(t.block.data() + 88 + 25 + 17, 4005);
  reseal(t.block);
  auto decoded = decode_node(t.block, t.expect);
  ASSERT_TRUE(decoded) << message_of(decoded);
  EXPECT_EQ(decoded->items[0].data, (Bytes{'x', 'y', 'z'}));
  EXPECT_EQ(decoded->items[1].data, (Bytes{'a', 'b', 'c'}));
}

TEST(NodeTest, EmptyItemDataMayPointAnywhereInTheFreeSpace) {
  Node node = small_leaf();
  node.items[1].data.clear();
  for (uint32_t offset : {50u, 2000u, 4005u, 4008u}) {
    Tampered t{encode_or_fail(node)};
    store_le32(t.block.data() + 88 + 25 + 17, offset);
    reseal(t.block);
    auto decoded = decode_node(t.block, t.expect);
    ASSERT_TRUE(decoded) << offset << ": " << message_of(decoded);
    EXPECT_TRUE(decoded->items[1].data.empty());
  }
  Tampered past{encode_or_fail(node)};
  store_le32(past.block.data() + 88 + 25 + 17, 4009);
  expect_refused(past, "extends past the end");
  Tampered in_headers{encode_or_fail(node)};
  store_le32(in_headers.block.data() + 88 + 25 + 17, 49);
  expect_refused(in_headers, "overlaps the item headers");
}

TEST(NodeTest, KeysOutOfOrderAreRefused) {
  Tampered equal{encode_or_fail(small_leaf())};
  equal.block[88 + 25 + 9] = 0;  // item 1 offset 7 -> 0: same key as item 0
  expect_refused(equal, "key (256 1 0) of item 1 is not greater than key (256 1 0) of item 0");

  Tampered decreasing{encode_or_fail(small_internal())};
  for (size_t i = 0; i < 8; ++i) decreasing.block[88 + 33 + i] = 0;  // child 1 objectid -> 0
  expect_refused(decreasing, "of item 1 is not greater than key (1 2 3) of item 0");
}

TEST(NodeTest, BadChildPointersAreRefused) {
  Tampered zero{encode_or_fail(small_internal())};
  store_le64(zero.block.data() + 88 + 17, 0);
  expect_refused(zero, "child pointer 0 is zero");

  Tampered unaligned{encode_or_fail(small_internal())};
  store_le64(unaligned.block.data() + 88 + 33 + 17, 7 * 4096 + 512);
  expect_refused(unaligned, "child pointer 1 (byte 29184) is not aligned to the node size 4096");

  Tampered newer{encode_or_fail(small_internal())};
  store_le64(newer.block.data() + 88 + 33 + 25, 10);
  expect_refused(newer, "child pointer 1 has generation 10, newer than the node's generation 9");
}

TEST(NodeTest, ChildAlignmentFollowsTheNodeSize) {
  Node node = small_internal();
  node.children[0].bytenr = 16384;
  node.children[1].bytenr = 16384 + 4096;  // aligned for 4 KiB nodes only
  Bytes block(16384);
  EXPECT_EQ(error_of(encode_node(node, kFsid, ChecksumType::kCrc32c, block)), EINVAL);
  node.children[1].bytenr = 2 * 16384;
  ASSERT_TRUE(encode_node(node, kFsid, ChecksumType::kCrc32c, block));
  EXPECT_TRUE(decode_node(block, expectation(16384)));
}

// Random damage after the checksum (re-sealed): the decoder either refuses
// the block with EIO or returns a node that satisfies every rule, which the
// encoder must then accept and which round-trips.
TEST(NodeTest, RandomDamageBehindAValidChecksumIsRefusedOrConsistent) {
  std::mt19937_64 rng(4242);
  int refused = 0;
  for (int round = 0; round < 3000; ++round) {
    const Node original =
        round % 2 ? random_leaf(rng, kMinNodeSize) : random_internal(rng, kMinNodeSize);
    Bytes block = encode_or_fail(original);
    const size_t changes = 1 + rng() % 4;
    for (size_t c = 0; c < changes; ++c) {
      // Aim at the header fields and item headers, where the rules live.
      const size_t at = 48 + rng() % (rng() % 2 ? 200 : kMinNodeSize - 48);
      block[at] = static_cast<uint8_t>(rng());
    }
    reseal(block);
    NodeExpectation expect = expectation();
    expect.bytenr = load_le64(block.data() + 48);
    auto decoded = decode_node(block, expect);
    if (!decoded) {
      ASSERT_EQ(error_of(decoded), EIO) << message_of(decoded);
      ++refused;
      continue;
    }
    Bytes again(kMinNodeSize);
    auto encoded = encode_node(*decoded, kFsid, ChecksumType::kCrc32c, again);
    ASSERT_TRUE(encoded) << message_of(encoded);
    auto redecoded = decode_node(again, expect);
    ASSERT_TRUE(redecoded) << message_of(redecoded);
    ASSERT_EQ(*redecoded, *decoded);
  }
  EXPECT_GT(refused, 100);  // the damage is not all in data bytes
}

}  // namespace
}  // namespace ecfs::store
