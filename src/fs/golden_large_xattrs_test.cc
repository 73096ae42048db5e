// The committed image with out-of-line xattr values
// (tests/golden/format-v1-large-xattrs.img.gz: format version 1 with the
// incompat feature kIncompatLargeXattrValues, docs/FORMAT.md "Golden
// images"): today's code must read every value back, byte for byte.
// `ECFS_WRITE_GOLDEN=DIR build/bin/fs_tests --gtest_filter='GoldenLargeXattrs*'`
// writes a new one into DIR.
#include <gtest/gtest.h>

#include <string>

#include "block/gzip_image.h"
#include "block/memory_device.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "store/engine.h"

namespace ecfs::fs {
namespace {

constexpr const char* kImageName = "format-v1-large-xattrs.img.gz";
constexpr uint64_t kDeviceSize = 4ull << 20;
constexpr Caller kOwner{1000, 1000, 022};

using testing::must;

// Values that differ from xattr to xattr and from byte to byte.
Bytes value(size_t size, uint8_t tag) {
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(tag + i * 13 + i / 509);
  return out;
}

// What the image holds: (file, name, value).
struct Stored {
  const char* file;
  const char* name;
  Bytes bytes;
};
std::vector<Stored> expected_values() {
  return {{"max", "user.max", value(65536, 1)},
          {"max", "user.inline", value(100, 2)},
          {"max", "security.mid", value(9000, 3)},
          {"rewritten", "user.again", value(30001, 4)},
          {"rewritten", "trusted.shrunk", value(12, 5)}};
}

void build(block::MemoryDevice& device) {
  store::MkfsOptions mkfs;
  mkfs.node_size = 4096;  // the most parts per value
  mkfs.label = "golden-xattrs";
  mkfs.fsid = std::array<uint8_t, store::kFsidSize>{0xec, 0xf5, 0x00, 0x01, 0x58, 0x41, 0x40, 0x01,
                                                    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02};
  mkfs.populate = [](store::Engine& engine) { return add_root_directory(engine, kOwner); };
  ASSERT_TRUE(store::mkfs(device, mkfs));
  auto fs = must(FileSystem::open(device));
  const uint64_t max = must(fs->mknod(kRootDirIno, "max", S_IFREG | 0644, 0, kOwner)).ino;
  const uint64_t rewritten =
      must(fs->mknod(kRootDirIno, "rewritten", S_IFREG | 0644, 0, kOwner)).ino;
  // Written, committed, then replaced: large by large, large by small.
  ASSERT_TRUE(fs->setxattr(rewritten, "user.again", value(50000, 9), 0));
  ASSERT_TRUE(fs->setxattr(rewritten, "trusted.shrunk", value(20000, 8), 0));
  ASSERT_TRUE(fs->sync());
  for (const Stored& stored : expected_values()) {
    const uint64_t ino = std::string(stored.file) == "max" ? max : rewritten;
    ASSERT_TRUE(fs->setxattr(ino, stored.name, stored.bytes, 0));
  }
  ASSERT_TRUE(fs->close());
}

void expect_values(FileSystem& fs) {
  for (const Stored& stored : expected_values()) {
    const uint64_t ino = must(fs.lookup(kRootDirIno, stored.file)).ino;
    EXPECT_EQ(must(fs.getxattr(ino, stored.name)), stored.bytes)
        << stored.file << " " << stored.name;
  }
}

TEST(GoldenLargeXattrsTest, CommittedImageReadsEveryValue) {
  const std::string path = block::testing::golden_image_path(kImageName);
  auto device = block::testing::read_gzip_image(path);
  ASSERT_TRUE(device) << device.error().to_string()
                      << " (regenerate with ECFS_WRITE_GOLDEN, see docs/FORMAT.md)";
  ASSERT_EQ(device->size(), kDeviceSize);
  testing::expect_full_check_clean(*device);
  {
    store::OpenOptions read_only;
    read_only.read_only = true;
    auto engine = must(store::Engine::open(*device, read_only));
    EXPECT_EQ(engine->superblock().format_version, 1u);
    EXPECT_EQ(engine->superblock().incompat_flags, store::kIncompatLargeXattrValues);
  }
  {
    auto fs = must(FileSystem::open(*device, {.read_only = true}));
    expect_values(*fs);
  }
  // Still writable by today's code, and still clean afterwards.
  {
    auto fs = must(FileSystem::open(*device));
    expect_values(*fs);
    const uint64_t max = must(fs->lookup(kRootDirIno, "max")).ino;
    ASSERT_TRUE(fs->removexattr(max, "user.max"));
    ASSERT_TRUE(fs->setxattr(max, "user.added", value(40000, 7), 0));
    ASSERT_TRUE(fs->close());
  }
  testing::expect_full_check_clean(*device);
}

// The builder gives what the check above expects; with ECFS_WRITE_GOLDEN=DIR
// it also writes the image there.
TEST(GoldenLargeXattrsWriter, BuilderMatchesTheExpectations) {
  block::MemoryDevice device(kDeviceSize, "golden large xattrs");
  ASSERT_NO_FATAL_FAILURE(build(device));
  testing::expect_full_check_clean(device);
  {
    auto fs = must(FileSystem::open(device, {.read_only = true}));
    expect_values(*fs);
  }
  ASSERT_NO_FATAL_FAILURE(block::testing::write_golden_image_if_asked(device, kImageName));
}

}  // namespace
}  // namespace ecfs::fs
