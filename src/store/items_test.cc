#include "store/items.h"

#include <gtest/gtest.h>

namespace ecfs::store {
namespace {

TEST(ItemsTest, RootItemRoundTripAndLayout) {
  RootItem item{{0x1122334455667788ull, 42, 3}, 1, 40, 0};
  const Bytes encoded = encode_root_item(item);
  ASSERT_EQ(encoded.size(), kRootItemSize);
  // Little-endian fields at their documented offsets (docs/FORMAT.md).
  EXPECT_EQ(encoded[0], 0x88);
  EXPECT_EQ(encoded[7], 0x11);
  EXPECT_EQ(encoded[8], 42);
  EXPECT_EQ(encoded[16], 3);
  EXPECT_EQ(encoded[24], 1);
  EXPECT_EQ(encoded[32], 40);
  EXPECT_EQ(*decode_root_item(encoded), item);
}

TEST(ItemsTest, RootItemRejectsDamage) {
  Bytes encoded = encode_root_item(RootItem{{65536, 1, 0}});
  EXPECT_EQ(decode_root_item(ByteSpan(encoded).first(47)).error().errno_value(), EUCLEAN);
  encoded[16] = kMaxTreeLevel + 1;
  EXPECT_EQ(decode_root_item(encoded).error().errno_value(), EUCLEAN);
  Bytes zero_root = encode_root_item(RootItem{{0, 1, 0}});
  EXPECT_EQ(decode_root_item(zero_root).error().errno_value(), EUCLEAN);
}

TEST(ItemsTest, ExtentItemRoundTrip) {
  ExtentItem tree{3, 17, kExtentFlagTreeBlock, 5, 2};
  EXPECT_EQ(*decode_extent_item(encode_extent_item(tree)), tree);
  ExtentItem data{1, 18, kExtentFlagData, 0, 0};
  const Bytes encoded = encode_extent_item(data);
  ASSERT_EQ(encoded.size(), kExtentItemSize);
  EXPECT_EQ(encoded[16], kExtentFlagData);
  EXPECT_EQ(*decode_extent_item(encoded), data);
}

TEST(ItemsTest, ExtentItemRejectsZeroRefsAndUnknownFlags) {
  EXPECT_EQ(
      decode_extent_item(encode_extent_item({0, 1, kExtentFlagData, 0, 0})).error().errno_value(),
      EUCLEAN);
  EXPECT_EQ(decode_extent_item(encode_extent_item({1, 1, 3, 0, 0})).error().errno_value(), EUCLEAN);
  EXPECT_EQ(decode_extent_item(Bytes(39)).error().errno_value(), EUCLEAN);
}

TEST(ItemsTest, DataRefItemRoundTripAndHash) {
  DataRefItem item{{256, 257, 8192, 4096, 12288}, 2};
  EXPECT_EQ(*decode_data_ref_item(encode_data_ref_item(item)), item);
  EXPECT_EQ(decode_data_ref_item(encode_data_ref_item({item.ref, 0})).error().errno_value(),
            EUCLEAN);
  // FNV-1a 64 of 40 zero bytes: the offset basis run through 40 rounds of
  // "xor 0, multiply by the prime".
  uint64_t expected = 0xcbf29ce484222325ull;
  for (int i = 0; i < 40; ++i) expected *= 0x100000001b3ull;
  EXPECT_EQ(data_ref_hash(DataRef{}), expected);
  // Every field feeds the hash.
  const DataRef base{1, 2, 3, 4, 5};
  EXPECT_NE(data_ref_hash(base), data_ref_hash(DataRef{1, 2, 3, 4, 6}));
  EXPECT_NE(data_ref_hash(base), data_ref_hash(DataRef{2, 2, 3, 4, 5}));
  EXPECT_NE(data_ref_hash(base), data_ref_hash(DataRef{1, 2, 3, 5, 5}));
}

TEST(ItemsTest, FileExtentRefHeadAndTail) {
  const FileExtentRef ref{1 << 20, 65536, 4096, 8192};
  Bytes item = encode_file_extent_ref(ref);
  item.push_back(0xAB);  // the filesystem layer's part
  EXPECT_EQ(*decode_file_extent_ref(item), ref);
  EXPECT_EQ(decode_file_extent_ref(ByteSpan(item).first(31)).error().errno_value(), EUCLEAN);
  // A hole names no extent and is not range-checked.
  EXPECT_TRUE(decode_file_extent_ref(encode_file_extent_ref({0, 0, 0, 4096})));
  // Ranges outside the extent.
  EXPECT_EQ(decode_file_extent_ref(encode_file_extent_ref({4096, 8192, 4096, 8192}))
                .error()
                .errno_value(),
            EUCLEAN);
  EXPECT_EQ(
      decode_file_extent_ref(encode_file_extent_ref({4096, 8192, 0, 0})).error().errno_value(),
      EUCLEAN);
  EXPECT_EQ(decode_file_extent_ref(encode_file_extent_ref({4096, 8192, 1ull << 63, 8192}))
                .error()
                .errno_value(),
            EUCLEAN);
}

}  // namespace
}  // namespace ecfs::store
