// The image origin: its codec, mkfs recording it behind the compat bit,
// commits keeping it, and fsck holding the item and the bit to each other.
#include "store/image_origin.h"

#include <gtest/gtest.h>

#include "block/memory_device.h"
#include "store/engine.h"
#include "store/engine_test_util.h"

namespace ecfs::store {
namespace {

using testing::problems_of;
using testing::value_bytes;
using testing::value_or_die;

constexpr uint64_t kDeviceSize = 8 << 20;

const ImageOrigin kOrigin{"ecfs 0.1.0", 1796671104, 500865015};

TEST(ImageOriginTest, RoundTripsAndHasTheDocumentedLayout) {
  const Bytes encoded = value_or_die(encode_image_origin(kOrigin));
  // created_sec i64 | created_nsec u32 | program_len u16 | program.
  ASSERT_EQ(encoded.size(), 14u + kOrigin.program.size());
  EXPECT_EQ(load_le64(&encoded[0]), 1796671104u);
  EXPECT_EQ(load_le32(&encoded[8]), 500865015u);
  EXPECT_EQ(encoded[12], kOrigin.program.size());
  EXPECT_EQ(encoded[13], 0);
  EXPECT_EQ(std::string(encoded.begin() + 14, encoded.end()), kOrigin.program);
  EXPECT_EQ(value_or_die(decode_image_origin(encoded)), kOrigin);

  // Times before the epoch are kept with their sign.
  const ImageOrigin early{"x", -5, 0};
  EXPECT_EQ(value_or_die(decode_image_origin(value_or_die(encode_image_origin(early)))), early);
}

TEST(ImageOriginTest, EncodingRefusesWhatDecodingWouldReject) {
  for (const ImageOrigin& bad :
       {ImageOrigin{"", 0, 0}, ImageOrigin{std::string(65, 'a'), 0, 0}, ImageOrigin{"ecfs\n", 0, 0},
        ImageOrigin{"\xc3\xa9", 0, 0}, ImageOrigin{"ecfs", 0, 1'000'000'000}}) {
    auto encoded = encode_image_origin(bad);
    ASSERT_FALSE(encoded) << bad.program;
    EXPECT_EQ(encoded.error().errno_value(), EINVAL);
  }
  EXPECT_TRUE(encode_image_origin(ImageOrigin{std::string(64, '~'), 0, 999'999'999}));
}

TEST(ImageOriginTest, MalformedItemsAreEuclean) {
  const Bytes good = value_or_die(encode_image_origin(kOrigin));
  std::vector<Bytes> bad;
  bad.push_back(Bytes(13, 0));                         // shorter than the head
  bad.push_back(Bytes(good.begin(), good.end() - 1));  // program cut short
  Bytes longer = good;
  longer.push_back('x');  // a byte past the program
  bad.push_back(longer);
  Bytes empty(14, 0);  // no program
  bad.push_back(empty);
  Bytes control = good;
  control.back() = '\x07';
  bad.push_back(control);
  Bytes late = good;
  store_le32(&late[8], 1'000'000'000);
  bad.push_back(late);
  for (const Bytes& data : bad) {
    auto decoded = decode_image_origin(data);
    ASSERT_FALSE(decoded) << to_hex(data);
    EXPECT_EQ(decoded.error().errno_value(), EUCLEAN);
  }
}

// Rewrites every superblock copy of `device` with `change` applied, as a
// damaged or hand-edited image would have it.
void rewrite_superblocks(block::MemoryDevice& device, uint64_t compat_flags) {
  Superblock sb = value_or_die(read_newest_superblock(device));
  sb.compat_flags = compat_flags;
  for (uint64_t offset : superblock_offsets_for(device.size())) {
    sb.bytenr = offset;
    const auto block = value_or_die(encode_superblock(sb));
    ASSERT_TRUE(device.write(offset, block));
  }
}

TEST(ImageOriginTest, MkfsRecordsItAndCommitsKeepIt) {
  block::MemoryDevice device(kDeviceSize, "origin");
  MkfsOptions options;
  options.origin = kOrigin;
  ECFS_ASSERT_OK(mkfs(device, options));
  auto engine = value_or_die(Engine::open(device));
  EXPECT_EQ(engine->superblock().compat_flags, kCompatImageOrigin);
  EXPECT_EQ(value_or_die(engine->image_origin()), kOrigin);
  // Later transactions leave it as mkfs wrote it.
  for (uint64_t i = 0; i < 3; ++i) {
    ECFS_ASSERT_OK(engine->begin());
    BTree* tree = value_or_die(engine->open_tree(kFsTreeId));
    ECFS_ASSERT_OK(tree->put(Key{i + 1, 1, 0}, value_bytes(i, 100)));
    ECFS_ASSERT_OK(engine->commit());
  }
  engine = value_or_die(Engine::open(device));
  EXPECT_EQ(value_or_die(engine->image_origin()), kOrigin);
  EXPECT_EQ(engine->superblock().compat_flags, kCompatImageOrigin);
  const CheckReport report = value_or_die(engine->check());
  EXPECT_TRUE(report.clean()) << problems_of(report);
}

TEST(ImageOriginTest, ImagesWithoutOneHaveNone) {
  block::MemoryDevice device(kDeviceSize, "no origin");
  ECFS_ASSERT_OK(mkfs(device, MkfsOptions{}));
  auto engine = value_or_die(Engine::open(device));
  EXPECT_EQ(engine->superblock().compat_flags, 0u);
  EXPECT_EQ(value_or_die(engine->image_origin()), std::nullopt);
  EXPECT_TRUE(value_or_die(engine->check()).clean());
}

TEST(ImageOriginTest, MkfsRefusesABadOriginAndWritesNothing) {
  block::MemoryDevice device(kDeviceSize, "bad origin");
  MkfsOptions options;
  options.origin = ImageOrigin{"", 0, 0};
  auto made = mkfs(device, options);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().errno_value(), EINVAL);
  EXPECT_FALSE(Engine::open(device));
}

// fsck holds the bit and the item to each other: either alone is a problem.
TEST(ImageOriginTest, CheckReportsTheBitAndTheItemApart) {
  {
    block::MemoryDevice device(kDeviceSize, "item without bit");
    MkfsOptions options;
    options.origin = kOrigin;
    ECFS_ASSERT_OK(mkfs(device, options));
    rewrite_superblocks(device, 0);
    auto engine = value_or_die(Engine::open(device));
    const CheckReport report = value_or_die(engine->check());
    EXPECT_NE(problems_of(report).find("an image origin without the compat bit"), std::string::npos)
        << problems_of(report);
  }
  {
    block::MemoryDevice device(kDeviceSize, "bit without item");
    ECFS_ASSERT_OK(mkfs(device, MkfsOptions{}));
    rewrite_superblocks(device, kCompatImageOrigin);
    auto engine = value_or_die(Engine::open(device));
    const CheckReport report = value_or_die(engine->check());
    EXPECT_NE(problems_of(report).find("the compat bit image_origin without an image origin"),
              std::string::npos)
        << problems_of(report);
  }
}

// A compat bit this build does not know is informational: the image opens
// read-write and fsck is clean (docs/FORMAT.md "Versions and feature flags").
TEST(ImageOriginTest, UnknownCompatBitsAreIgnored) {
  block::MemoryDevice device(kDeviceSize, "future compat");
  MkfsOptions options;
  options.origin = kOrigin;
  ECFS_ASSERT_OK(mkfs(device, options));
  rewrite_superblocks(device, kCompatImageOrigin | (1ull << 40));
  auto engine = value_or_die(Engine::open(device));
  ECFS_ASSERT_OK(engine->begin());
  ECFS_ASSERT_OK(engine->commit());
  EXPECT_EQ(engine->superblock().compat_flags, kCompatImageOrigin | (1ull << 40));
  EXPECT_TRUE(value_or_die(engine->check()).clean());
}

}  // namespace
}  // namespace ecfs::store
