// Subvolumes and snapshots through the FileSystem interface: names, node
// ids, copy-on-write independence, read-only snapshots, EXDEV, deletion in
// the background, remounts and fsck.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "block/memory_device.h"
#include "fs/filesystem.h"
#include "fs/fs_check.h"
#include "fs/fs_test_util.h"
#include "fscrypt/keyring_for_test.h"

namespace ecfs::fs {
namespace {

using testing::error_of;
using testing::must;

constexpr Caller kRoot{0, 0, 022};

#define ASSERT_OK(expr)                                                      \
  do {                                                                       \
    auto assert_ok_result_ = (expr);                                         \
    ASSERT_TRUE(assert_ok_result_) << assert_ok_result_.error().to_string(); \
  } while (0)

class SubvolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::make_filesystem(device_);
    mount();
  }
  void TearDown() override {
    if (fs_) ASSERT_OK(fs_->close());
  }
  void mount(MountOptions options = {}) { fs_ = must(FileSystem::open(device_, options)); }
  void remount(MountOptions options = {}) {
    ASSERT_OK(fs_->close());
    fs_.reset();
    mount(options);
  }
  void expect_fsck_clean() {
    ASSERT_OK(fs_->close());
    fs_.reset();
    testing::expect_full_check_clean(device_);
    mount();
  }
  uint64_t lookup(uint64_t dir, const std::string& name) {
    return must(fs_->lookup(dir, name)).ino;
  }
  uint64_t create(uint64_t dir, const std::string& name) {
    return must(fs_->mknod(dir, name, S_IFREG | 0644, 0, kRoot)).ino;
  }
  void write(uint64_t ino, uint64_t offset, const std::string& data) {
    EXPECT_EQ(must(fs_->write(ino, offset, as_bytes(data))), data.size());
  }
  std::string read_all(uint64_t ino) {
    const uint64_t size = must(fs_->getattr(ino)).size;
    Bytes out(size);
    EXPECT_EQ(must(fs_->read(ino, 0, out)), size);
    return std::string(out.begin(), out.end());
  }
  std::map<std::string, uint64_t> list(uint64_t dir) {
    std::map<std::string, uint64_t> names;
    EXPECT_TRUE(fs_->readdir(dir, 0, [&](const DirListEntry& e) {
      names.emplace(e.name, e.ino);
      return true;
    }));
    return names;
  }

  block::MemoryDevice device_{256ull << 20};
  std::unique_ptr<FileSystem> fs_;
};

TEST_F(SubvolumeTest, ASubvolumeIsADirectoryWithItsOwnInodeNumbers) {
  const uint64_t tree = must(fs_->create_subvolume(kRootDirIno, "sub", kRoot));
  EXPECT_EQ(tree, store::kFirstFreeTreeId);
  const Attributes root = must(fs_->lookup(kRootDirIno, "sub"));
  EXPECT_TRUE(S_ISDIR(root.mode));
  EXPECT_EQ(root.ino, node_id(tree, kRootDirIno));
  EXPECT_NE(root.ino, kRootDirIno);
  EXPECT_EQ(must(fs_->getattr(kRootDirIno)).nlink, 3u) << "a subvolume counts as a subdirectory";
  const uint64_t file = create(root.ino, "file");
  EXPECT_EQ(split_node_id(file).tree, tree);
  EXPECT_EQ(split_node_id(file).ino, kRootDirIno + 1);
  write(file, 0, "inside");
  const auto names = list(root.ino);
  EXPECT_EQ(names.at(".."), kRootDirIno);
  EXPECT_EQ(names.at("."), root.ino);
  EXPECT_EQ(list(kRootDirIno).at("sub"), root.ino);
  EXPECT_EQ(lookup(root.ino, ".."), kRootDirIno);
  expect_fsck_clean();
  const uint64_t again = lookup(lookup(kRootDirIno, "sub"), "file");
  EXPECT_EQ(again, file);
  EXPECT_EQ(read_all(again), "inside");
}

TEST_F(SubvolumeTest, ASnapshotIsFrozenAndEachSideChangesAlone) {
  const uint64_t dir = must(fs_->mkdir(kRootDirIno, "dir", 0755, kRoot)).ino;
  const uint64_t file = create(dir, "file");
  write(file, 0, std::string(100000, 'a'));  // buffered, not committed
  const uint64_t snap = must(fs_->snapshot(kRootDirIno, kRootDirIno, "snap", false));
  const uint64_t snap_root = lookup(kRootDirIno, "snap");
  EXPECT_EQ(snap_root, node_id(snap, kRootDirIno));
  const uint64_t snap_file = lookup(lookup(snap_root, "dir"), "file");
  EXPECT_EQ(split_node_id(snap_file).ino, split_node_id(file).ino);
  EXPECT_NE(snap_file, file) << "st_ino differs across subvolumes";
  EXPECT_EQ(read_all(snap_file), std::string(100000, 'a'));
  write(file, 0, "SOURCE");
  write(snap_file, 10, "SNAPSHOT");
  std::string source_expected(100000, 'a');
  source_expected.replace(0, 6, "SOURCE");
  std::string snapshot_expected(100000, 'a');
  snapshot_expected.replace(10, 8, "SNAPSHOT");
  EXPECT_EQ(read_all(file), source_expected);
  EXPECT_EQ(read_all(snap_file), snapshot_expected);
  // The snapshot does not hold itself: it was taken before its own name.
  EXPECT_FALSE(list(snap_root).contains("snap"));
  expect_fsck_clean();
  EXPECT_EQ(read_all(lookup(lookup(kRootDirIno, "dir"), "file")), source_expected);
  EXPECT_EQ(read_all(lookup(lookup(lookup(kRootDirIno, "snap"), "dir"), "file")),
            snapshot_expected);
}

TEST_F(SubvolumeTest, AReadOnlySnapshotRefusesEveryChange) {
  const uint64_t file = create(kRootDirIno, "file");
  write(file, 0, "data");
  ASSERT_OK(fs_->setxattr(file, "user.a", as_bytes(std::string("1")), 0));
  must(fs_->snapshot(kRootDirIno, kRootDirIno, "ro", true));
  const uint64_t root = lookup(kRootDirIno, "ro");
  const uint64_t ro_file = lookup(root, "file");
  EXPECT_EQ(read_all(ro_file), "data");
  EXPECT_EQ(error_of(fs_->write(ro_file, 0, as_bytes(std::string("x")))), EROFS);
  EXPECT_EQ(error_of(fs_->mknod(root, "new", S_IFREG | 0644, 0, kRoot)), EROFS);
  EXPECT_EQ(error_of(fs_->mkdir(root, "d", 0755, kRoot)), EROFS);
  EXPECT_EQ(error_of(fs_->symlink(root, "l", "file", kRoot)), EROFS);
  EXPECT_EQ(error_of(fs_->setattr(ro_file, SetAttributes{.mode = 0600})), EROFS);
  EXPECT_EQ(error_of(fs_->setattr(ro_file, SetAttributes{.size = 0})), EROFS);
  EXPECT_EQ(error_of(fs_->setxattr(ro_file, "user.b", as_bytes(std::string("2")), 0)), EROFS);
  EXPECT_EQ(error_of(fs_->removexattr(ro_file, "user.a")), EROFS);
  EXPECT_EQ(error_of(fs_->unlink(root, "file")), EROFS);
  EXPECT_EQ(error_of(fs_->rename(root, "file", root, "moved", 0)), EROFS);
  EXPECT_EQ(error_of(fs_->link(ro_file, root, "second")), EROFS);
  EXPECT_EQ(error_of(fs_->fallocate(ro_file, 0, 0, 4096)), EROFS);
  EXPECT_EQ(error_of(fs_->open(ro_file, O_WRONLY)), EROFS);
  EXPECT_TRUE(fs_->open(ro_file, O_RDONLY));
  fs_->release(ro_file);
  // Out of it and into it: EXDEV before EROFS, as across any subvolumes.
  EXPECT_EQ(error_of(fs_->rename(root, "file", kRootDirIno, "out", 0)), EXDEV);
  // Clearing the flag makes it writable.
  ASSERT_OK(fs_->set_subvolume_read_only(root, false));
  write(ro_file, 0, "DATA");
  EXPECT_EQ(read_all(ro_file), "DATA");
  EXPECT_EQ(read_all(file), "data");
  remount();
  EXPECT_EQ(read_all(lookup(lookup(kRootDirIno, "ro"), "file")), "DATA");
}

TEST_F(SubvolumeTest, RenameAndLinkAcrossSubvolumesGiveExdev) {
  must(fs_->create_subvolume(kRootDirIno, "sub", kRoot));
  const uint64_t sub = lookup(kRootDirIno, "sub");
  const uint64_t top_file = create(kRootDirIno, "top");
  create(sub, "inner");
  write(top_file, 0, std::string(8192, 't'));
  EXPECT_EQ(error_of(fs_->rename(kRootDirIno, "top", sub, "top", 0)), EXDEV);
  EXPECT_EQ(error_of(fs_->rename(sub, "inner", kRootDirIno, "inner", 0)), EXDEV);
  EXPECT_EQ(error_of(fs_->link(top_file, sub, "hard")), EXDEV);
  expect_fsck_clean();
}

// copy_file_range across subvolumes shares extents as within one (btrfs
// clones across the subvolumes of one filesystem): no data is copied, and
// each side changes alone afterwards.
TEST_F(SubvolumeTest, CopyFileRangeAcrossSubvolumesIsAReflink) {
  must(fs_->create_subvolume(kRootDirIno, "sub", kRoot));
  const uint64_t sub = lookup(kRootDirIno, "sub");
  const uint64_t top_file = create(kRootDirIno, "top");
  const uint64_t sub_file = create(sub, "inner");
  std::string data;
  for (int i = 0; i < (8 << 20) + 100; ++i) data.push_back(static_cast<char>('a' + i % 23));
  write(top_file, 0, data);
  ASSERT_OK(fs_->sync());
  const uint64_t free_before = must(fs_->statfs()).free_blocks;
  EXPECT_EQ(must(fs_->copy_file_range(top_file, 0, sub_file, 0, data.size())), data.size());
  ASSERT_OK(fs_->sync());
  // 8 MiB shared: what the copy took is metadata and at most a sector.
  const uint64_t used = free_before - must(fs_->statfs()).free_blocks;
  EXPECT_LT(used * store::kSectorSize, 256u << 10) << used << " sectors";
  EXPECT_EQ(read_all(sub_file), data);
  // Each side changes alone.
  write(top_file, 4096, "TOP");
  write(sub_file, 8192, "SUB");
  std::string top_expected = data, sub_expected = data;
  top_expected.replace(4096, 3, "TOP");
  sub_expected.replace(8192, 3, "SUB");
  EXPECT_EQ(read_all(top_file), top_expected);
  EXPECT_EQ(read_all(sub_file), sub_expected);
  expect_fsck_clean();

  // From a read-only snapshot back into the live tree: the way to restore
  // a file, with no data copied either.
  must(fs_->snapshot(sub, kRootDirIno, "snap", true));
  const uint64_t snap_file = lookup(lookup(kRootDirIno, "snap"), "inner");
  const uint64_t restored = create(kRootDirIno, "restored");
  EXPECT_EQ(must(fs_->copy_file_range(snap_file, 0, restored, 0, data.size())), data.size());
  EXPECT_EQ(read_all(restored), sub_expected);
  // Not into the read-only snapshot.
  EXPECT_EQ(error_of(fs_->copy_file_range(top_file, 0, snap_file, 0, 4096)), EROFS);
  // The source subvolume deleted: the copies keep the shared data.
  const uint64_t top = kRootDirIno;
  must(fs_->delete_subvolume(top, "snap"));
  must(fs_->delete_subvolume(top, "sub"));
  ASSERT_OK(fs_->wait_for_deletions());
  EXPECT_EQ(read_all(restored), sub_expected);
  EXPECT_EQ(read_all(top_file), top_expected);
  expect_fsck_clean();
  EXPECT_EQ(read_all(lookup(kRootDirIno, "restored")), sub_expected);
}

TEST_F(SubvolumeTest, ASubvolumeNameRenamesWithinItsParent) {
  must(fs_->create_subvolume(kRootDirIno, "sub", kRoot));
  const uint64_t dir = must(fs_->mkdir(kRootDirIno, "dir", 0755, kRoot)).ino;
  create(lookup(kRootDirIno, "sub"), "file");
  ASSERT_OK(fs_->rename(kRootDirIno, "sub", dir, "moved", 0));
  EXPECT_FALSE(list(kRootDirIno).contains("sub"));
  const uint64_t moved = lookup(dir, "moved");
  EXPECT_EQ(lookup(moved, ".."), dir);
  EXPECT_TRUE(list(moved).contains("file"));
  EXPECT_EQ(must(fs_->getattr(dir)).nlink, 3u);
  EXPECT_EQ(must(fs_->getattr(kRootDirIno)).nlink, 3u);
  const auto listed = must(fs_->list_subvolumes());
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1].name, "moved");
  EXPECT_EQ(listed[1].parent_dir, dir);
  // Replacing a subvolume by rename, or exchanging one, is refused.
  must(fs_->mkdir(kRootDirIno, "other", 0755, kRoot));
  EXPECT_EQ(error_of(fs_->rename(kRootDirIno, "other", dir, "moved", 0)), EBUSY);
  EXPECT_EQ(error_of(fs_->rename(dir, "moved", kRootDirIno, "other", kRenameExchange)), EXDEV);
  expect_fsck_clean();
}

TEST_F(SubvolumeTest, DeletionFreesSpaceInTheBackgroundAndSurvivesRemount) {
  const uint64_t free_before = must(fs_->statfs()).free_blocks;
  must(fs_->create_subvolume(kRootDirIno, "sub", kRoot));
  const uint64_t sub = lookup(kRootDirIno, "sub");
  for (int i = 0; i < 8; ++i)
    write(create(sub, "f" + std::to_string(i)), 0, std::string(1 << 20, 'x'));
  ASSERT_OK(fs_->sync());
  EXPECT_LT(must(fs_->statfs()).free_blocks + 8 * 256, free_before + 64);
  // A snapshot shares everything: the space comes back only when both go.
  must(fs_->snapshot(sub, kRootDirIno, "snap", true));
  EXPECT_EQ(must(fs_->delete_subvolume(kRootDirIno, "sub")), store::kFirstFreeTreeId);
  EXPECT_EQ(error_of(fs_->lookup(kRootDirIno, "sub")), ENOENT);
  ASSERT_OK(fs_->wait_for_deletions());
  EXPECT_LT(must(fs_->statfs()).free_blocks + 8 * 256, free_before + 64) << "still shared";
  EXPECT_EQ(read_all(lookup(lookup(kRootDirIno, "snap"), "f3")), std::string(1 << 20, 'x'));
  // Deleted but not yet dropped at unmount: the next mount drops it.
  EXPECT_TRUE(fs_->delete_subvolume(kRootDirIno, "snap"));
  remount();
  ASSERT_OK(fs_->wait_for_deletions());
  EXPECT_GE(must(fs_->statfs()).free_blocks + 64, free_before);
  EXPECT_EQ(must(fs_->list_subvolumes()).size(), 1u);
  EXPECT_EQ(must(fs_->getattr(kRootDirIno)).nlink, 2u);
  expect_fsck_clean();
}

// A snapshot takes its source's tree alone: where a nested subvolume was
// it shows an empty directory of its own (as btrfs), which behaves as any
// directory; the nested subvolume itself is untouched.
TEST_F(SubvolumeTest, ASnapshotShowsAnEmptyDirectoryWhereANestedSubvolumeWas) {
  must(fs_->create_subvolume(kRootDirIno, "outer", kRoot));
  const uint64_t outer = lookup(kRootDirIno, "outer");
  const uint64_t dir = must(fs_->mkdir(outer, "dir", 0755, kRoot)).ino;
  write(create(outer, "file"), 0, "outer data");
  must(fs_->create_subvolume(outer, "inner", kRoot));
  must(fs_->create_subvolume(dir, "deeper", kRoot));
  write(create(lookup(outer, "inner"), "kept"), 0, "inner data");
  const uint32_t outer_links = must(fs_->getattr(outer)).nlink;
  const auto listed_before = list(outer);

  for (bool read_only : {false, true}) {
    const std::string name = read_only ? "snap-ro" : "snap";
    must(fs_->snapshot(outer, kRootDirIno, name, read_only));
    const uint64_t snap = lookup(kRootDirIno, name);
    // The same names in the same order, the same link count.
    std::set<std::string> names, names_before;
    for (const auto& [entry, ino] : list(snap)) names.insert(entry);
    for (const auto& [entry, ino] : listed_before) names_before.insert(entry);
    EXPECT_EQ(names, names_before);
    EXPECT_EQ(must(fs_->getattr(snap)).nlink, outer_links);
    EXPECT_EQ(read_all(lookup(snap, "file")), "outer data");
    // In place of each nested subvolume, an empty directory of the
    // snapshot's own (not the subvolume's root).
    for (const auto& [parent, child] : {std::pair{snap, std::string("inner")},
                                        std::pair{lookup(snap, "dir"), std::string("deeper")}}) {
      const uint64_t placeholder = lookup(parent, child);
      const auto attributes = must(fs_->getattr(placeholder));
      EXPECT_TRUE(S_ISDIR(attributes.mode));
      EXPECT_EQ(attributes.nlink, 2u);
      EXPECT_EQ(list(placeholder).size(), 2u) << "only . and ..";
      EXPECT_EQ(must(fs_->subvolume_of(placeholder)).id, must(fs_->subvolume_of(snap)).id);
    }
    if (!read_only) {
      // An ordinary directory: it takes files and goes with rmdir.
      create(lookup(snap, "inner"), "new");
      ASSERT_OK(fs_->unlink(lookup(snap, "inner"), "new"));
      ASSERT_OK(fs_->rmdir(snap, "inner"));
    } else {
      EXPECT_EQ(error_of(fs_->rmdir(snap, "inner")), EROFS);
    }
  }
  // The nested subvolumes are as they were.
  EXPECT_EQ(read_all(lookup(lookup(outer, "inner"), "kept")), "inner data");
  EXPECT_EQ(must(fs_->list_subvolumes()).size(), 6u);  // top, outer, inner, deeper, 2 snapshots
  expect_fsck_clean();
  remount();
  EXPECT_EQ(list(lookup(lookup(kRootDirIno, "snap-ro"), "inner")).size(), 2u);
}

// As in btrfs, files open in a subvolume when it is deleted stay usable
// until closed; no new name appears in it; the last close lets the drop go.
TEST_F(SubvolumeTest, FilesOpenInADeletedSubvolumeStayWritableUntilClosed) {
  must(fs_->create_subvolume(kRootDirIno, "vol", kRoot));
  const uint64_t vol = lookup(kRootDirIno, "vol");
  const uint64_t file = create(vol, "log");
  write(file, 0, "before");
  ASSERT_OK(fs_->sync());
  const uint64_t free_before = must(fs_->statfs()).free_blocks;
  ASSERT_TRUE(fs_->open(file, O_RDWR));
  must(fs_->delete_subvolume(kRootDirIno, "vol"));
  EXPECT_EQ(error_of(fs_->lookup(kRootDirIno, "vol")), ENOENT);
  // The open file: written, read, resized, synced.
  write(file, 6, " and after");
  EXPECT_EQ(read_all(file), "before and after");
  ASSERT_OK(fs_->setattr(file, SetAttributes{.size = 6}));
  EXPECT_EQ(read_all(file), "before");
  write(file, 0, std::string(1 << 20, 'x'));
  ASSERT_OK(fs_->fsync(file, false));
  // No new names in it.
  EXPECT_EQ(error_of(fs_->mknod(vol, "new", S_IFREG | 0644, 0, kRoot)), ENOENT);
  EXPECT_EQ(error_of(fs_->mkdir(vol, "dir", 0755, kRoot)), ENOENT);
  EXPECT_EQ(error_of(fs_->unlink(vol, "log")), ENOENT);
  EXPECT_EQ(error_of(fs_->rename(vol, "log", vol, "moved", 0)), ENOENT);
  // Its tree waits for the file; the last close lets it go.
  fs_->release(file);
  fs_->forget(file, 1);
  ASSERT_OK(fs_->wait_for_deletions());
  EXPECT_GE(must(fs_->statfs()).free_blocks + 64, free_before);
  expect_fsck_clean();
}

TEST_F(SubvolumeTest, RmdirDeletesOnlyAnEmptySubvolumeAndNestedOnesComeFirst) {
  must(fs_->create_subvolume(kRootDirIno, "outer", kRoot));
  const uint64_t outer = lookup(kRootDirIno, "outer");
  must(fs_->create_subvolume(outer, "inner", kRoot));
  EXPECT_EQ(error_of(fs_->rmdir(kRootDirIno, "outer")), ENOTEMPTY);
  EXPECT_EQ(error_of(fs_->delete_subvolume(kRootDirIno, "outer")), ENOTEMPTY);
  create(lookup(outer, "inner"), "file");
  EXPECT_EQ(error_of(fs_->rmdir(outer, "inner")), ENOTEMPTY);
  ASSERT_OK(fs_->delete_subvolume(outer, "inner"));
  ASSERT_OK(fs_->rmdir(kRootDirIno, "outer"));
  EXPECT_EQ(error_of(fs_->unlink(kRootDirIno, "outer")), ENOENT);
  must(fs_->mkdir(kRootDirIno, "plain", 0755, kRoot));
  EXPECT_EQ(error_of(fs_->delete_subvolume(kRootDirIno, "plain")), EINVAL);
  ASSERT_OK(fs_->wait_for_deletions());
  expect_fsck_clean();
}

TEST_F(SubvolumeTest, SnapshotsTakeOnlySubvolumeRootsAndFreshNames) {
  const uint64_t dir = must(fs_->mkdir(kRootDirIno, "dir", 0755, kRoot)).ino;
  EXPECT_EQ(error_of(fs_->snapshot(dir, kRootDirIno, "s", false)), EINVAL);
  EXPECT_EQ(error_of(fs_->snapshot(kRootDirIno, kRootDirIno, "dir", false)), EEXIST);
  EXPECT_EQ(error_of(fs_->create_subvolume(kRootDirIno, "dir", kRoot)), EEXIST);
  EXPECT_EQ(error_of(fs_->create_subvolume(create(kRootDirIno, "f"), "x", kRoot)), ENOTDIR);
  std::string long_name(256, 'n');
  EXPECT_EQ(error_of(fs_->create_subvolume(kRootDirIno, long_name, kRoot)), ENAMETOOLONG);
}

TEST_F(SubvolumeTest, ASubvolumeMountsAsTheRoot) {
  must(fs_->mkdir(kRootDirIno, "vols", 0755, kRoot));
  const uint64_t tree = must(fs_->create_subvolume(lookup(kRootDirIno, "vols"), "home", kRoot));
  write(create(lookup(lookup(kRootDirIno, "vols"), "home"), "file"), 0, "home data");
  remount({.subvolume = "vols/home"});
  EXPECT_EQ(fs_->root_node(), node_id(tree, kRootDirIno));
  EXPECT_EQ(read_all(lookup(fs_->root_node(), "file")), "home data");
  EXPECT_EQ(list(fs_->root_node()).at(".."), fs_->root_node());
  ASSERT_OK(fs_->close());
  fs_.reset();
  EXPECT_EQ(error_of(FileSystem::open(device_, {.subvolume = "vols"})), EINVAL);
  EXPECT_EQ(error_of(FileSystem::open(device_, {.subvolume = "nothing"})), ENOENT);
  mount();
}

TEST_F(SubvolumeTest, SnapshotOfAnEncryptedTreeNeedsNoKey) {
  // Written with a key, snapshotted without it, read back with it.
  const Bytes raw_key(64, 0x5a);
  const fscrypt::Caller admin{0, true};
  auto added = must(fs_->add_key(admin, fscrypt::KeySpecifier::from_identifier({}), raw_key));
  const uint64_t dir = must(fs_->mkdir(kRootDirIno, "secret", 0700, kRoot)).ino;
  fscrypt::KeyIdentifier identifier{};
  std::copy(added.key.bytes().begin(), added.key.bytes().end(), identifier.begin());
  ASSERT_OK(fs_->set_policy(dir, fscrypt::test_support::v2_policy(identifier), admin));
  write(create(dir, "plan.txt"), 0, std::string(50000, 'p'));
  ASSERT_OK(fs_->sync());
  std::set<std::string> with_key;
  for (const auto& [name, ino] : list(dir)) with_key.insert(name);
  must(fs_->remove_key(admin, added.key, false));
  const std::map<std::string, uint64_t> nokey_names = list(dir);
  must(fs_->snapshot(kRootDirIno, kRootDirIno, "snap", true));
  const uint64_t snap_dir = lookup(lookup(kRootDirIno, "snap"), "secret");
  // The same no-key names in the snapshot, without the key.
  std::set<std::string> source_names, snapshot_names;
  for (const auto& [name, ino] : nokey_names) source_names.insert(name);
  for (const auto& [name, ino] : list(snap_dir)) snapshot_names.insert(name);
  EXPECT_EQ(snapshot_names, source_names);
  EXPECT_FALSE(snapshot_names.contains("plan.txt"));
  must(fs_->add_key(admin, fscrypt::KeySpecifier::from_identifier({}), raw_key));
  EXPECT_EQ(read_all(lookup(snap_dir, "plan.txt")), std::string(50000, 'p'));
  EXPECT_EQ(error_of(fs_->create_subvolume(dir, "inside", kRoot)), EXDEV)
      << "no subvolume inside an encrypted directory";
  expect_fsck_clean();
}

// An encrypted file reflinked from a snapshot into the live tree keeps its
// extents' contexts (the same policy on both sides): it reads back with the
// key, and shows no plaintext without it.
TEST_F(SubvolumeTest, EncryptedReflinkAcrossSubvolumesSharesCiphertext) {
  const Bytes raw_key(64, 0x3c);
  const fscrypt::Caller admin{0, true};
  auto added = must(fs_->add_key(admin, fscrypt::KeySpecifier::from_identifier({}), raw_key));
  fscrypt::KeyIdentifier identifier{};
  std::copy(added.key.bytes().begin(), added.key.bytes().end(), identifier.begin());
  const uint64_t dir = must(fs_->mkdir(kRootDirIno, "secret", 0700, kRoot)).ino;
  ASSERT_OK(fs_->set_policy(dir, fscrypt::test_support::v2_policy(identifier), admin));
  const std::string data(1 << 20, 'e');
  write(create(dir, "doc"), 0, data);
  must(fs_->snapshot(kRootDirIno, kRootDirIno, "snap", true));
  const uint64_t snap_doc = lookup(lookup(lookup(kRootDirIno, "snap"), "secret"), "doc");
  ASSERT_OK(fs_->sync());
  const uint64_t free_before = must(fs_->statfs()).free_blocks;
  const uint64_t copy = create(dir, "copy");
  EXPECT_EQ(must(fs_->copy_file_range(snap_doc, 0, copy, 0, data.size())), data.size());
  ASSERT_OK(fs_->sync());
  EXPECT_LT((free_before - must(fs_->statfs()).free_blocks) * store::kSectorSize, 128u << 10);
  EXPECT_EQ(read_all(copy), data);
  // Into an unencrypted directory the bytes are copied (decrypted and
  // written as plaintext), as within one subvolume.
  const uint64_t plain = create(kRootDirIno, "plain");
  EXPECT_EQ(must(fs_->copy_file_range(snap_doc, 0, plain, 0, data.size())), data.size());
  EXPECT_EQ(read_all(plain), data);
  expect_fsck_clean();
}

}  // namespace
}  // namespace ecfs::fs
