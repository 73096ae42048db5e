// The committed filesystem image of format version 1
// (tests/golden/format-v1-filesystem.img.gz, docs/FORMAT.md "Golden
// images"): today's code must mount it and find every file, name, link,
// xattr, ACL, hole and shared extent it was made with. The image is made by
// the filesystem interface itself: `ECFS_WRITE_GOLDEN=DIR build/bin/fs_tests
// --gtest_filter='GoldenFilesystem*'` writes a new one into DIR.
#include <dirent.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/sysmacros.h>

#include <map>
#include <string>

#include "block/gzip_image.h"
#include "block/memory_device.h"
#include "fs/filesystem.h"
#include "fs/fs_check.h"
#include "fs/fs_test_util.h"
#include "fs/posix_acl.h"
#include "store/engine.h"

namespace ecfs::fs {
namespace {

constexpr const char* kImageName = "format-v1-filesystem.img.gz";
constexpr uint64_t kDeviceSize = 16ull << 20;
constexpr Caller kOwner{1000, 1000, 022};

using testing::must;

// File contents that differ from file to file and from byte to byte.
std::string content(size_t size, char tag) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>(tag + (i * 31 + i / 4096) % 61);
  return out;
}

Bytes acl_bytes(std::vector<AclEntry> entries) { return encode_posix_acl({std::move(entries)}); }

// Entries without a qualifier carry the undefined id (-1), as Linux passes them.
constexpr uint32_t kNoId = UINT32_MAX;
const Bytes kDefaultAcl = acl_bytes({{kAclUserObj, 7, kNoId},
                                     {kAclUser, 5, 2000},
                                     {kAclGroupObj, 5, kNoId},
                                     {kAclMask, 7, kNoId},
                                     {kAclOther, 0, kNoId}});

// Builds the golden filesystem on `device` through the FileSystem interface.
void build(block::MemoryDevice& device) {
  store::MkfsOptions mkfs;
  mkfs.node_size = 4096;
  mkfs.label = "golden-fs";
  mkfs.fsid = std::array<uint8_t, store::kFsidSize>{0xec, 0xf5, 0x00, 0x01, 0x46, 0x53, 0x40, 0x01,
                                                    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
  mkfs.populate = [](store::Engine& engine) { return add_root_directory(engine, kOwner); };
  ASSERT_TRUE(store::mkfs(device, mkfs));
  auto fs = must(FileSystem::open(device));
  const uint64_t docs = must(fs->mkdir(kRootDirIno, "docs", 0755, kOwner)).ino;
  const uint64_t deep = must(fs->mkdir(docs, "deep", 0700, kOwner)).ino;
  const uint64_t small = must(fs->mknod(docs, "small.txt", S_IFREG | 0644, 0, kOwner)).ino;
  must(fs->write(small, 0, as_bytes(std::string("hello, golden image\n"))));
  const uint64_t big = must(fs->mknod(deep, "big.bin", S_IFREG | 0600, 0, kOwner)).ino;
  must(fs->write(big, 0, as_bytes(content(300000, 'A'))));
  // Sparse: data, a hole, data; then a punched hole and a preallocated tail.
  const uint64_t sparse = must(fs->mknod(kRootDirIno, "sparse", S_IFREG | 0644, 0, kOwner)).ino;
  must(fs->write(sparse, 0, as_bytes(content(8192, 'a'))));
  must(fs->write(sparse, 1 << 20, as_bytes(content(4096, 'b'))));
  ASSERT_TRUE(fs->fallocate(sparse, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096));
  ASSERT_TRUE(fs->fallocate(sparse, FALLOC_FL_KEEP_SIZE, 2 << 20, 64 << 10));
  // A reflinked copy, then the source changed: the copy keeps the old bytes.
  const uint64_t copy = must(fs->mknod(kRootDirIno, "copy.bin", S_IFREG | 0600, 0, kOwner)).ino;
  ASSERT_TRUE(fs->sync());
  must(fs->copy_file_range(big, 0, copy, 0, 300000));
  must(fs->write(big, 4096, as_bytes(std::string(100, 'Z'))));
  must(fs->link(small, kRootDirIno, "hardlink.txt"));
  must(fs->symlink(kRootDirIno, "link", "docs/small.txt", kOwner));
  must(fs->mknod(kRootDirIno, "fifo", S_IFIFO | 0640, 0, kOwner));
  must(fs->mknod(kRootDirIno, "null", S_IFCHR | 0666, makedev(1, 3), kOwner));
  ASSERT_TRUE(fs->setxattr(small, "user.comment", as_bytes(std::string("golden")), 0));
  ASSERT_TRUE(fs->setxattr(docs, "system.posix_acl_default", kDefaultAcl, 0));
  must(fs->mknod(docs, "inherits.txt", S_IFREG | 0666, 0, kOwner));
  ASSERT_TRUE(fs->setattr(small, {.atime = Timestamp{1700000000, 123456789},
                                  .mtime = Timestamp{1700000001, 987654321}}));
  must(fs->mknod(kRootDirIno, "renamed-from", S_IFREG | 0644, 0, kOwner));
  ASSERT_TRUE(fs->rename(kRootDirIno, "renamed-from", docs, "renamed-to", 0));
  ASSERT_TRUE(fs->close());
}

std::string read_file(FileSystem& fs, uint64_t ino) {
  const uint64_t size = must(fs.getattr(ino)).size;
  Bytes out(size);
  EXPECT_EQ(must(fs.read(ino, 0, out)), size);
  return std::string(out.begin(), out.end());
}

uint64_t lookup(FileSystem& fs, uint64_t dir, const std::string& name) {
  auto found = fs.lookup(dir, name);
  EXPECT_TRUE(found) << name << ": " << (found ? "" : found.error().to_string());
  return found ? found->ino : 0;
}

// What the image holds, checked through the interface.
void expect_golden_contents(FileSystem& fs) {
  std::map<std::string, uint8_t> root;
  ASSERT_TRUE(fs.readdir(kRootDirIno, 0, [&](const DirListEntry& e) {
    root[e.name] = e.type;
    return true;
  }));
  EXPECT_EQ(root, (std::map<std::string, uint8_t>{{".", DT_DIR},
                                                  {"..", DT_DIR},
                                                  {"docs", DT_DIR},
                                                  {"sparse", DT_REG},
                                                  {"copy.bin", DT_REG},
                                                  {"hardlink.txt", DT_REG},
                                                  {"link", DT_LNK},
                                                  {"fifo", DT_FIFO},
                                                  {"null", DT_CHR}}));
  const Attributes root_attr = must(fs.getattr(kRootDirIno));
  EXPECT_EQ(root_attr.uid, 1000u);
  EXPECT_EQ(root_attr.nlink, 3u);

  const uint64_t docs = lookup(fs, kRootDirIno, "docs");
  const uint64_t deep = lookup(fs, docs, "deep");
  EXPECT_EQ(must(fs.getattr(deep)).mode, S_IFDIR | 0700u);
  const uint64_t small = lookup(fs, docs, "small.txt");
  EXPECT_EQ(lookup(fs, kRootDirIno, "hardlink.txt"), small);
  const Attributes small_attr = must(fs.getattr(small));
  EXPECT_EQ(small_attr.nlink, 2u);
  EXPECT_EQ(small_attr.mtime, (Timestamp{1700000001, 987654321}));
  EXPECT_EQ(small_attr.atime, (Timestamp{1700000000, 123456789}));
  EXPECT_EQ(read_file(fs, small), "hello, golden image\n");
  Bytes comment = must(fs.getxattr(small, "user.comment"));
  EXPECT_EQ(std::string(comment.begin(), comment.end()), "golden");

  std::string big = content(300000, 'A');
  const std::string original = big;
  big.replace(4096, 100, std::string(100, 'Z'));
  EXPECT_EQ(read_file(fs, lookup(fs, deep, "big.bin")), big);
  EXPECT_EQ(read_file(fs, lookup(fs, kRootDirIno, "copy.bin")), original);

  const uint64_t sparse = lookup(fs, kRootDirIno, "sparse");
  std::string expected_sparse((1 << 20) + 4096, '\0');
  expected_sparse.replace(0, 8192, content(8192, 'a'));
  expected_sparse.replace(4096, 4096, std::string(4096, '\0'));
  expected_sparse.replace(1 << 20, 4096, content(4096, 'b'));
  EXPECT_EQ(read_file(fs, sparse), expected_sparse);
  EXPECT_EQ(must(fs.lseek(sparse, 0, SEEK_HOLE)), 4096u);
  EXPECT_EQ(must(fs.lseek(sparse, 4096, SEEK_DATA)), 1u << 20);
  EXPECT_EQ(must(fs.getattr(sparse)).blocks, (2 * 4096 + (64 << 10)) / 512u);

  EXPECT_EQ(must(fs.readlink(lookup(fs, kRootDirIno, "link"))), "docs/small.txt");
  EXPECT_EQ(must(fs.getattr(lookup(fs, kRootDirIno, "null"))).rdev, makedev(1, 3));
  EXPECT_EQ(must(fs.getattr(lookup(fs, kRootDirIno, "fifo"))).mode, S_IFIFO | 0640u);

  EXPECT_EQ(must(fs.getxattr(docs, "system.posix_acl_default")), kDefaultAcl);
  const uint64_t inherits = lookup(fs, docs, "inherits.txt");
  EXPECT_EQ(must(fs.getattr(inherits)).mode, S_IFREG | 0660u);
  PosixAcl access = must(decode_posix_acl(must(fs.getxattr(inherits, "system.posix_acl_access"))));
  EXPECT_EQ(access.entries[1], (AclEntry{kAclUser, 5, 2000}));
  lookup(fs, docs, "renamed-to");
  EXPECT_EQ(fs.lookup(kRootDirIno, "renamed-from").error().errno_value(), ENOENT);
}

TEST(GoldenFilesystemTest, CommittedImageMountsWithEverythingInPlace) {
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
    EXPECT_EQ(engine->superblock().label, "golden-fs");
  }
  {
    auto fs = must(FileSystem::open(*device, {.read_only = true}));
    expect_golden_contents(*fs);
  }
  // Still writable by today's code, and still clean afterwards.
  {
    auto fs = must(FileSystem::open(*device));
    expect_golden_contents(*fs);
    const uint64_t added = must(fs->mknod(kRootDirIno, "added", S_IFREG | 0644, 0, kOwner)).ino;
    must(fs->write(added, 0, as_bytes(std::string("new"))));
    ASSERT_TRUE(fs->unlink(kRootDirIno, "copy.bin"));
    ASSERT_TRUE(fs->close());
  }
  testing::expect_full_check_clean(*device);
}

// The builder gives what the check above expects; with ECFS_WRITE_GOLDEN=DIR
// it also writes the image there.
TEST(GoldenFilesystemWriter, BuilderMatchesTheExpectations) {
  block::MemoryDevice device(kDeviceSize, "golden filesystem");
  ASSERT_NO_FATAL_FAILURE(build(device));
  testing::expect_full_check_clean(device);
  {
    auto fs = must(FileSystem::open(device, {.read_only = true}));
    expect_golden_contents(*fs);
  }
  ASSERT_NO_FATAL_FAILURE(block::testing::write_golden_image_if_asked(device, kImageName));
}

}  // namespace
}  // namespace ecfs::fs
