// The committed image with subvolumes and snapshots
// (tests/golden/format-v1-subvolumes.img.gz: format version 1 with the
// incompat feature kIncompatSubvolumes, docs/FORMAT.md "Golden images"): a
// subvolume holding an encrypted directory, a read-only snapshot of it taken
// before the subvolume changed, and a subvolume created and deleted again.
// Today's code must read it all back, with and without the key, and keep
// changing it. `ECFS_WRITE_GOLDEN=DIR build/bin/fs_tests
// --gtest_filter='GoldenSubvolumes*'` writes a new one into DIR.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "block/gzip_image.h"
#include "block/memory_device.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "fscrypt/keyring_for_test.h"
#include "store/engine.h"

namespace ecfs::fs {
namespace {

constexpr const char* kImageName = "format-v1-subvolumes.img.gz";
constexpr uint64_t kDeviceSize = 16ull << 20;
constexpr Caller kOwner{1000, 1000, 022};
constexpr fscrypt::Caller kKeyRoot{0, true};

using testing::must;

std::string text(size_t size, int tag) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + (i * 7 + tag) % 26);
  return out;
}

Bytes master_key() { return Bytes(64, 0x3c); }

fscrypt::KeyIdentifier add_key(FileSystem& fs) {
  auto change =
      must(fs.add_key(kKeyRoot, fscrypt::KeySpecifier::from_identifier({}), master_key()));
  fscrypt::KeyIdentifier identifier{};
  std::copy(change.key.bytes().begin(), change.key.bytes().end(), identifier.begin());
  return identifier;
}

uint64_t lookup_path(FileSystem& fs, const std::string& path) {
  uint64_t node = fs.root_node();
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    node = must(fs.lookup(node, path.substr(start, end - start)), path.c_str()).ino;
    start = end + 1;
  }
  return node;
}

std::string read_all(FileSystem& fs, uint64_t ino) {
  const uint64_t size = must(fs.getattr(ino)).size;
  Bytes out(size);
  EXPECT_EQ(must(fs.read(ino, 0, out)), size);
  return std::string(out.begin(), out.end());
}

void write_file(FileSystem& fs, uint64_t dir, const std::string& name, const std::string& data) {
  const uint64_t ino = must(fs.mknod(dir, name, S_IFREG | 0644, 0, kOwner)).ino;
  ASSERT_EQ(must(fs.write(ino, 0, as_bytes(data))), data.size());
}

std::set<std::string> names_in(FileSystem& fs, uint64_t dir) {
  std::set<std::string> names;
  EXPECT_TRUE(fs.readdir(dir, 0, [&](const DirListEntry& entry) {
    names.insert(entry.name);
    return true;
  }));
  return names;
}

void build(block::MemoryDevice& device) {
  store::MkfsOptions mkfs;
  mkfs.node_size = 4096;
  mkfs.label = "golden-subvolumes";
  mkfs.fsid = std::array<uint8_t, store::kFsidSize>{0xec, 0xf5, 0x00, 0x01, 0x53, 0x56, 0x40, 0x01,
                                                    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03};
  mkfs.populate = [](store::Engine& engine) { return add_root_directory(engine, kOwner); };
  ASSERT_TRUE(store::mkfs(device, mkfs));
  auto fs = must(FileSystem::open(device));
  ASSERT_NO_FATAL_FAILURE(write_file(*fs, kRootDirIno, "top.txt", "top-level data"));
  must(fs->create_subvolume(kRootDirIno, "vol", kOwner));
  const uint64_t vol = lookup_path(*fs, "vol");
  ASSERT_NO_FATAL_FAILURE(write_file(*fs, vol, "inner.txt", text(100000, 1)));
  const uint64_t secret = must(fs->mkdir(vol, "secret", 0700, kOwner)).ino;
  ASSERT_TRUE(fs->set_policy(secret, fscrypt::test_support::v2_policy(add_key(*fs)), kKeyRoot));
  ASSERT_NO_FATAL_FAILURE(write_file(*fs, secret, "plan.txt", text(30000, 2)));
  must(fs->create_subvolume(kRootDirIno, "gone", kOwner));
  must(fs->snapshot(vol, kRootDirIno, "vol-ro", true));
  // The subvolume changes after the snapshot; the snapshot keeps the old.
  const uint64_t inner = lookup_path(*fs, "vol/inner.txt");
  ASSERT_TRUE(fs->setattr(inner, SetAttributes{.size = 0}));
  ASSERT_EQ(must(fs->write(inner, 0, as_bytes(std::string("new")))), 3u);
  must(fs->delete_subvolume(kRootDirIno, "gone"));
  ASSERT_TRUE(fs->wait_for_deletions());
  ASSERT_TRUE(fs->close());
}

void expect_contents(FileSystem& fs, bool with_key) {
  const auto listed = must(fs.list_subvolumes());
  std::map<std::string, uint64_t> paths;
  for (const SubvolumeListing& listing : listed) paths[listing.path] = listing.id;
  EXPECT_EQ(paths, (std::map<std::string, uint64_t>{{"", 5}, {"vol", 256}, {"vol-ro", 258}}));
  for (const SubvolumeListing& listing : listed) {
    EXPECT_EQ(listing.info.read_only(), listing.path == "vol-ro") << listing.path;
    EXPECT_FALSE(listing.deleted);
  }
  EXPECT_EQ(read_all(fs, lookup_path(fs, "top.txt")), "top-level data");
  EXPECT_EQ(read_all(fs, lookup_path(fs, "vol/inner.txt")), "new");
  EXPECT_EQ(read_all(fs, lookup_path(fs, "vol-ro/inner.txt")), text(100000, 1));
  EXPECT_NE(lookup_path(fs, "vol/inner.txt"), lookup_path(fs, "vol-ro/inner.txt"));
  // Both trees hold the same stored names: the same listing either way.
  EXPECT_EQ(names_in(fs, lookup_path(fs, "vol/secret")),
            names_in(fs, lookup_path(fs, "vol-ro/secret")));
  EXPECT_EQ(names_in(fs, lookup_path(fs, "vol-ro/secret")).contains("plan.txt"), with_key);
  if (with_key) {
    EXPECT_EQ(read_all(fs, lookup_path(fs, "vol-ro/secret/plan.txt")), text(30000, 2));
  }
}

TEST(GoldenSubvolumesTest, CommittedImageReadsEverySubvolume) {
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
    EXPECT_EQ(engine->superblock().incompat_flags, store::kIncompatSubvolumes);
  }
  {
    auto fs = must(FileSystem::open(*device, {.read_only = true}));
    expect_contents(*fs, false);
    add_key(*fs);
    expect_contents(*fs, true);
  }
  // Still writable by today's code, and still clean afterwards.
  {
    auto fs = must(FileSystem::open(*device));
    add_key(*fs);
    expect_contents(*fs, true);
    ASSERT_NO_FATAL_FAILURE(write_file(*fs, lookup_path(*fs, "vol/secret"), "more", "more"));
    must(fs->snapshot(lookup_path(*fs, "vol"), kRootDirIno, "vol-2", false));
    must(fs->delete_subvolume(kRootDirIno, "vol-ro"));
    ASSERT_TRUE(fs->wait_for_deletions());
    EXPECT_EQ(read_all(*fs, lookup_path(*fs, "vol-2/secret/more")), "more");
    ASSERT_TRUE(fs->close());
  }
  testing::expect_full_check_clean(*device);
}

// The builder gives what the check above expects; with ECFS_WRITE_GOLDEN=DIR
// it also writes the image there.
TEST(GoldenSubvolumesWriter, BuilderMatchesTheExpectations) {
  block::MemoryDevice device(kDeviceSize, "golden subvolumes");
  ASSERT_NO_FATAL_FAILURE(build(device));
  testing::expect_full_check_clean(device);
  {
    auto fs = must(FileSystem::open(device, {.read_only = true}));
    expect_contents(*fs, false);
  }
  ASSERT_NO_FATAL_FAILURE(block::testing::write_golden_image_if_asked(device, kImageName));
}

}  // namespace
}  // namespace ecfs::fs
