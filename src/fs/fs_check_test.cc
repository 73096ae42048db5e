// check_filesystem: a filesystem after many kinds of operations checks
// clean with exact counts; then one corruption at a time, written straight
// into the committed tree through the engine, must be found with its own
// message (and, where the corruption is self-contained, with nothing else).
#include "fs/fs_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <functional>
#include <string>

#include "block/memory_device.h"
#include "fs/fs_test_util.h"
#include "fs/tree_contents.h"

namespace ecfs::fs {
namespace {

using store::Key;
using testing::error_of;
using testing::full_check;
using testing::joined;
using testing::kRootCaller;
using testing::must;

bool has_line(const std::vector<std::string>& lines, const std::string& part) {
  return std::ranges::any_of(
      lines, [&](const std::string& line) { return line.find(part) != std::string::npos; });
}

class FsCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::make_filesystem(device_);
    fs_ = must(FileSystem::open(device_));
  }
  void TearDown() override { unmount(); }

  void unmount() {
    if (!fs_) return;
    must(fs_->close());
    fs_.reset();
  }

  // Unmounts and checks the committed state (engine problems included in
  // the failure output of callers).
  FsCheckReport check() {
    unmount();
    store::OpenOptions options;
    options.read_only = true;
    auto engine = must(store::Engine::open(device_, options));
    return must(check_filesystem(*engine));
  }

  // Unmounts and changes the committed filesystem tree directly.
  void corrupt(const std::function<void(store::BTree&)>& change) {
    unmount();
    auto engine = must(store::Engine::open(device_));
    must(engine->begin());
    store::BTree* tree = must(engine->open_tree(store::kFsTreeId));
    change(*tree);
    must(engine->commit());
  }

  uint64_t create(uint64_t dir, const std::string& name) {
    return must(fs_->mknod(dir, name, S_IFREG | 0644, 0, kRootCaller)).ino;
  }
  uint64_t mkdir(uint64_t dir, const std::string& name) {
    return must(fs_->mkdir(dir, name, 0755, kRootCaller)).ino;
  }
  void write(uint64_t ino, uint64_t offset, size_t length, char fill) {
    const std::string data(length, fill);
    EXPECT_EQ(must(fs_->write(ino, offset, as_bytes(data))), length);
  }

  block::MemoryDevice device_{128ull << 20};
  std::unique_ptr<FileSystem> fs_;
};

// ---- tree surgery helpers (inside corrupt()) ----

InodeItem inode_item(store::BTree& tree, uint64_t ino) {
  auto data = must(tree.find({ino, kInodeItemKey, 0}));
  EXPECT_TRUE(data.has_value()) << "inode " << ino;
  return must(decode_inode_item(data.value_or(Bytes(kInodeItemSize))));
}
void put_inode_item(store::BTree& tree, uint64_t ino, const InodeItem& item) {
  must(tree.update({ino, kInodeItemKey, 0}, encode_inode_item(item)));
}
DirEntry find_entry(store::BTree& tree, uint64_t dir, std::string_view name) {
  auto data = must(tree.find({dir, kDirItemKey, name_hash(as_bytes(name))}));
  EXPECT_TRUE(data.has_value()) << name;
  for (const DirEntry& entry : must(decode_dir_entries(data.value_or(Bytes{})))) {
    if (std::string(entry.name.begin(), entry.name.end()) == name) return entry;
  }
  ADD_FAILURE() << "no entry " << name;
  return {};
}
Bytes encoded_entry(const DirEntry& entry) {
  Bytes out;
  append_dir_entry(entry, out);
  return out;
}
// Adds an entry the way directory.cc does, with all its bookkeeping, so
// that only what a test leaves out is wrong.
void add_entry(store::BTree& tree, uint64_t dir, std::string_view name, uint64_t ino, uint8_t type,
               bool with_ref = true) {
  InodeItem dir_item = inode_item(tree, dir);
  const DirEntry entry{ino, dir_item.next_dir_index++, type, Bytes(name.begin(), name.end())};
  dir_item.size += 2 * name.size();
  put_inode_item(tree, dir, dir_item);
  must(tree.insert({dir, kDirItemKey, name_hash(entry.name)}, encoded_entry(entry)));
  must(tree.insert({dir, kDirIndexKey, entry.index}, encoded_entry(entry)));
  if (with_ref) {
    Bytes ref = must(tree.find({ino, kInodeRefKey, dir})).value_or(Bytes{});
    append_inode_ref({entry.index, entry.name}, ref);
    must(tree.put({ino, kInodeRefKey, dir}, ref));
  }
}
void remove_entry(store::BTree& tree, uint64_t dir, std::string_view name) {
  const DirEntry entry = find_entry(tree, dir, name);
  must(tree.remove({dir, kDirItemKey, name_hash(entry.name)}));
  must(tree.remove({dir, kDirIndexKey, entry.index}));
  must(tree.remove({entry.ino, kInodeRefKey, dir}));
  InodeItem dir_item = inode_item(tree, dir);
  dir_item.size -= 2 * name.size();
  put_inode_item(tree, dir, dir_item);
}

// ---- clean filesystems ----

TEST_F(FsCheckTest, FreshFilesystemIsClean) {
  const FsCheckReport report = check();
  EXPECT_TRUE(report.clean()) << joined(report.problems);
  EXPECT_EQ(report.inodes, 1u);
  EXPECT_EQ(report.directories, 1u);
  EXPECT_EQ(report.entries, 0u);
  EXPECT_TRUE(report.warnings.empty());
}

TEST_F(FsCheckTest, CleanAfterManyOperationsWithExactCounts) {
  const uint64_t a = mkdir(kRootDirIno, "a");
  const uint64_t b = mkdir(a, "b");
  mkdir(b, "c");
  const uint64_t file = create(a, "file");
  write(file, 0, 10000, 'x');
  must(fs_->sync());
  write(file, 20000, 5000, 'y');  // a hole, then a second extent
  must(fs_->link(file, kRootDirIno, "link-in-root"));
  must(fs_->link(file, a, "link-in-a"));
  must(fs_->symlink(a, "sym", "file", kRootCaller));
  must(fs_->mknod(kRootDirIno, "fifo", S_IFIFO | 0600, 0, kRootCaller));
  must(fs_->mknod(kRootDirIno, "chr", S_IFCHR | 0600, makedev(1, 3), kRootCaller));
  must(fs_->setxattr(file, "user.one", as_bytes(std::string_view("1")), 0));
  must(fs_->setxattr(a, "user.two", as_bytes(std::string_view("2")), 0));
  must(fs_->setxattr(a, "trusted.three", as_bytes(std::string_view("3")), 0));
  const uint64_t pre = create(kRootDirIno, "prealloc");
  must(fs_->fallocate(pre, FALLOC_FL_KEEP_SIZE, 0, 3 * store::kSectorSize));
  const uint64_t copy = create(kRootDirIno, "copy");
  EXPECT_EQ(must(fs_->copy_file_range(file, 0, copy, 0, 25000)), 25000u);
  must(fs_->fallocate(file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096));
  // Renames across directories, over a file, and a directory moved up.
  must(fs_->rename(a, "b", kRootDirIno, "b-moved", 0));
  const uint64_t doomed = create(kRootDirIno, "doomed");
  write(doomed, 0, 100, 'd');
  must(fs_->rename(kRootDirIno, "doomed", kRootDirIno, "copy", 0));
  must(fs_->unlink(a, "link-in-a"));
  mkdir(kRootDirIno, "gone");
  must(fs_->rmdir(kRootDirIno, "gone"));
  must(fs_->setattr(pre, {.size = 100u}));

  const FsCheckReport report = check();
  EXPECT_TRUE(report.clean()) << joined(report.problems);
  EXPECT_TRUE(report.warnings.empty()) << joined(report.warnings);
  // root, a, b(-moved), c, file, sym, fifo, chr, prealloc, doomed (now "copy").
  EXPECT_EQ(report.inodes, 10u);
  EXPECT_EQ(report.directories, 4u);
  EXPECT_EQ(report.regular_files, 3u);
  EXPECT_EQ(report.symlinks, 1u);
  EXPECT_EQ(report.special_files, 2u);
  // root: a, link-in-root, fifo, chr, prealloc, b-moved, copy; a: file, sym;
  // b-moved: c.
  EXPECT_EQ(report.entries, 10u);
  EXPECT_EQ(report.xattrs, 3u);
  EXPECT_EQ(report.orphans, 0u);
  EXPECT_GE(report.extents, 4u);

  store::OpenOptions options;
  options.read_only = true;
  auto engine = must(store::Engine::open(device_, options));
  auto engine_report = must(engine->check());
  EXPECT_TRUE(engine_report.clean()) << joined(engine_report.problems);
}

// An unlinked file still open at the last commit is an orphan: clean, and
// counted; after the next mount it is gone.
TEST_F(FsCheckTest, OrphanOfACrashIsCleanAndCounted) {
  const uint64_t ino = create(kRootDirIno, "tmp");
  write(ino, 0, 9000, 't');
  must(fs_->open(ino, O_RDWR));
  must(fs_->unlink(kRootDirIno, "tmp"));
  must(fs_->sync());
  block::MemoryDevice crashed = device_;  // as committed, never unmounted
  auto report = full_check(crashed);
  EXPECT_TRUE(report.clean()) << report.problems();
  EXPECT_EQ(report.filesystem.orphans, 1u);
  EXPECT_EQ(report.filesystem.inodes, 2u);
  {
    auto fs = must(FileSystem::open(crashed));
    EXPECT_EQ(error_of(fs->getattr(ino)), ENOENT);
    must(fs->close());
  }
  report = full_check(crashed);
  EXPECT_TRUE(report.clean()) << report.problems();
  EXPECT_EQ(report.filesystem.orphans, 0u);
  EXPECT_EQ(report.filesystem.inodes, 1u);
  fs_->release(ino);
}

TEST_F(FsCheckTest, ImageWithoutRootDirectory) {
  block::MemoryDevice bare(64ull << 20);
  must(store::mkfs(bare, {}));
  auto engine = must(store::Engine::open(bare));
  const FsCheckReport report = must(check_filesystem(*engine));
  EXPECT_TRUE(has_line(report.problems, "the root directory (inode 256) does not exist"))
      << joined(report.problems);
  EXPECT_EQ(error_of(check_filesystem(*engine, 4242)), ENOENT);
}

// ---- one corruption at a time ----

TEST_F(FsCheckTest, MissingDirIndex) {
  const uint64_t file = create(kRootDirIno, "f");
  corrupt([&](store::BTree& tree) {
    const DirEntry entry = find_entry(tree, kRootDirIno, "f");
    must(tree.remove({kRootDirIno, kDirIndexKey, entry.index}));
  });
  const FsCheckReport report = check();
  EXPECT_TRUE(has_line(report.problems,
                       "directory 256: entry \"f\" (index 2) of the DIR_ITEM has "
                       "no DIR_INDEX"))
      << joined(report.problems);
  // The name no longer counts, so the link count and the back reference
  // disagree with what is left.
  EXPECT_TRUE(has_line(report.problems, "inode " + std::to_string(file) +
                                            " (regular file): nlink 1, but it has 0 names"))
      << joined(report.problems);
  EXPECT_TRUE(has_line(report.problems,
                       "INODE_REF record \"f\" (index 2) in directory 256 has "
                       "no directory entry"))
      << joined(report.problems);
}

TEST_F(FsCheckTest, MissingDirItem) {
  create(kRootDirIno, "f");
  corrupt([&](store::BTree& tree) {
    must(tree.remove({kRootDirIno, kDirItemKey, name_hash(as_bytes(std::string_view("f")))}));
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems, std::vector<std::string>{"directory 256: entry \"f\" (index 2) has "
                                                      "no DIR_ITEM"});
}

TEST_F(FsCheckTest, WrongLinkCount) {
  const uint64_t file = create(kRootDirIno, "f");
  must(fs_->link(file, kRootDirIno, "g"));
  const uint64_t dir = mkdir(kRootDirIno, "d");
  corrupt([&](store::BTree& tree) {
    InodeItem item = inode_item(tree, file);
    item.nlink = 3;
    put_inode_item(tree, file, item);
    item = inode_item(tree, dir);
    item.nlink = 7;
    put_inode_item(tree, dir, item);
  });
  const FsCheckReport report = check();
  EXPECT_EQ(
      report.problems,
      (std::vector<std::string>{
          "inode " + std::to_string(file) + " (regular file): nlink 3, but it has 2 names",
          "inode " + std::to_string(dir) + " (directory): nlink 7, but 2 + 0 subdirectories = 2"}));
}

TEST_F(FsCheckTest, RootLinkCountCountsSubdirectories) {
  mkdir(kRootDirIno, "d1");
  mkdir(kRootDirIno, "d2");
  corrupt([&](store::BTree& tree) {
    InodeItem item = inode_item(tree, kRootDirIno);
    item.nlink = 2;
    put_inode_item(tree, kRootDirIno, item);
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems, std::vector<std::string>{
                                 "inode 256 (directory): nlink 2, but 2 + 2 subdirectories = 4"});
}

TEST_F(FsCheckTest, MissingInodeRef) {
  const uint64_t dir = mkdir(kRootDirIno, "d");
  const uint64_t file = create(dir, "f");
  corrupt([&](store::BTree& tree) { must(tree.remove({file, kInodeRefKey, dir})); });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{
                "directory " + std::to_string(dir) + ": entry \"f\" (index 2) names inode " +
                std::to_string(file) + ", which has no matching INODE_REF record (" +
                std::to_string(file) + " INODE_REF " + std::to_string(dir) + ")"});
}

TEST_F(FsCheckTest, InodeRefWithoutEntry) {
  const uint64_t file = create(kRootDirIno, "f");
  corrupt([&](store::BTree& tree) {
    Bytes ref;
    append_inode_ref({2, Bytes{'f'}}, ref);
    append_inode_ref({77, Bytes{'z'}}, ref);
    must(tree.update({file, kInodeRefKey, kRootDirIno}, ref));
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{"inode " + std::to_string(file) +
                                     ": INODE_REF record \"z\" (index 77) in directory 256 has "
                                     "no directory entry"});
}

TEST_F(FsCheckTest, EntryNamingAMissingInodeWithAnUnprintableName) {
  corrupt([&](store::BTree& tree) {
    add_entry(tree, kRootDirIno, "bad\x01name", 9999, DT_REG, /*with_ref=*/false);
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{"directory 256: entry \"bad\\x01name\" (index 2) names "
                                     "inode 9999, which does not exist"});
}

TEST_F(FsCheckTest, ItemsOfAMissingInode) {
  corrupt([&](store::BTree& tree) {
    Bytes xattr;
    append_xattr_entry({"user.x", Bytes{'1'}}, xattr);
    must(
        tree.insert({5000, kXattrItemKey, name_hash(as_bytes(std::string_view("user.x")))}, xattr));
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems, std::vector<std::string>{
                                 "inode 5000 does not exist (no INODE_ITEM) but has XATTR_ITEM"});
}

TEST_F(FsCheckTest, OutOfLineXattrValuesMustBeWhole) {
  const uint64_t file = create(kRootDirIno, "f");
  must(fs_->setxattr(file, "user.big", Bytes(40000, 'v'), 0));
  must(fs_->close());
  fs_.reset();
  EXPECT_TRUE(check().problems.empty());
  corrupt([&](store::BTree& tree) {
    std::vector<store::Key> parts;
    must(tree.for_each({file, kXattrValueKey, 0}, {file, kXattrValueKey, UINT64_MAX},
                       [&](const store::Key& key, ByteSpan) {
                         parts.push_back(key);
                         return true;
                       }));
    ASSERT_GE(parts.size(), 2u);
    must(tree.remove(parts[1]));
    // A part of no value.
    must(tree.insert({file, kXattrValueKey, parts[0].offset + kXattrValueIdStride}, Bytes(10)));
  });
  const FsCheckReport report = check();
  ASSERT_EQ(report.problems.size(), 2u);
  EXPECT_THAT(report.problems[0], ::testing::HasSubstr("its XATTR_VALUE parts hold"));
  EXPECT_THAT(report.problems[1], ::testing::HasSubstr("belongs to no xattr"));
}

TEST_F(FsCheckTest, WrongTypeByte) {
  const uint64_t file = create(kRootDirIno, "f");
  corrupt([&](store::BTree& tree) {
    DirEntry entry = find_entry(tree, kRootDirIno, "f");
    entry.type = DT_DIR;
    must(tree.update({kRootDirIno, kDirItemKey, name_hash(entry.name)}, encoded_entry(entry)));
    must(tree.update({kRootDirIno, kDirIndexKey, entry.index}, encoded_entry(entry)));
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{"directory 256: entry \"f\" (index 2) has type byte 4 but "
                                     "names inode " +
                                     std::to_string(file) + " (regular file), type byte 8"});
}

TEST_F(FsCheckTest, DirItemAndDirIndexDisagree) {
  create(kRootDirIno, "f");
  corrupt([&](store::BTree& tree) {
    DirEntry entry = find_entry(tree, kRootDirIno, "f");
    entry.type = DT_FIFO;
    must(tree.update({kRootDirIno, kDirItemKey, name_hash(entry.name)}, encoded_entry(entry)));
  });
  const FsCheckReport report = check();
  ASSERT_EQ(report.problems.size(), 1u) << joined(report.problems);
  EXPECT_NE(report.problems[0].find("DIR_ITEM says inode 257 index 2 type 1, DIR_INDEX says "
                                    "inode 257 index 2 type 8"),
            std::string::npos)
      << report.problems[0];
}

TEST_F(FsCheckTest, EntryUnderTheWrongHash) {
  create(kRootDirIno, "f");
  corrupt([&](store::BTree& tree) {
    const Key key{kRootDirIno, kDirItemKey, name_hash(as_bytes(std::string_view("f")))};
    Bytes data = must(tree.find(key)).value();
    must(tree.remove(key));
    must(tree.insert({kRootDirIno, kDirItemKey, 12345}, data));
  });
  const FsCheckReport report = check();
  EXPECT_TRUE(has_line(report.problems, "is in the DIR_ITEM of hash 0x3039 but its name hashes"))
      << joined(report.problems);
  EXPECT_TRUE(has_line(report.problems, "entry \"f\" (index 2) has no DIR_ITEM"))
      << joined(report.problems);
}

TEST_F(FsCheckTest, NlinkZeroWithoutOrphanItem) {
  const uint64_t ino = create(kRootDirIno, "tmp");
  must(fs_->open(ino, O_RDWR));
  must(fs_->unlink(kRootDirIno, "tmp"));
  must(fs_->sync());
  // The committed state, as a crash would leave it (a clean unmount would
  // delete the orphan).
  block::MemoryDevice crashed = device_;
  fs_->release(ino);
  {
    auto engine = must(store::Engine::open(crashed));
    must(engine->begin());
    store::BTree* tree = must(engine->open_tree(store::kFsTreeId));
    must(tree->remove({kOrphanObjectid, kOrphanItemKey, ino}));
    must(engine->commit());
    const FsCheckReport report = must(check_filesystem(*engine));
    EXPECT_EQ(report.problems,
              std::vector<std::string>{"inode " + std::to_string(ino) +
                                       " (regular file): nlink 0 but no ORPHAN item (it would "
                                       "never be deleted)"});
  }
}

TEST_F(FsCheckTest, LeftoverOrphanItemIsAWarningAndLinkedOrphanAProblem) {
  const uint64_t file = create(kRootDirIno, "f");
  corrupt([&](store::BTree& tree) {
    must(tree.insert({kOrphanObjectid, kOrphanItemKey, 4000}, {}));
  });
  FsCheckReport report = check();
  EXPECT_TRUE(report.clean()) << joined(report.problems);
  EXPECT_EQ(report.warnings,
            std::vector<std::string>{"leftover ORPHAN item for inode 4000, which no longer exists "
                                     "(the next mount removes it)"});
  EXPECT_EQ(report.orphans, 1u);
  corrupt([&](store::BTree& tree) {
    must(tree.insert({kOrphanObjectid, kOrphanItemKey, file}, {}));
  });
  report = check();
  EXPECT_TRUE(has_line(report.problems, "ORPHAN item for inode " + std::to_string(file) +
                                            " (regular file), which has nlink 1"))
      << joined(report.problems);
}

TEST_F(FsCheckTest, OverlappingExtents) {
  const uint64_t file = create(kRootDirIno, "f");
  write(file, 0, 8192, 'a');
  must(fs_->sync());
  write(file, 8192, 8192, 'b');
  must(fs_->sync());
  corrupt([&](store::BTree& tree) {
    auto second = must(tree.find({file, kExtentDataKey, 8192}));
    ASSERT_TRUE(second.has_value()) << "expected a second extent item at 8192";
    must(tree.remove({file, kExtentDataKey, 8192}));
    must(tree.insert({file, kExtentDataKey, 4096}, *second));
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{"inode " + std::to_string(file) +
                                     " (regular file): extents at file offsets 0 and 4096 "
                                     "overlap"});
}

TEST_F(FsCheckTest, NbytesMismatch) {
  const uint64_t file = create(kRootDirIno, "f");
  write(file, 0, 5000, 'a');
  corrupt([&](store::BTree& tree) {
    InodeItem item = inode_item(tree, file);
    EXPECT_EQ(item.nbytes, 8192u);
    item.nbytes = 4096;
    put_inode_item(tree, file, item);
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems, std::vector<std::string>{
                                 "inode " + std::to_string(file) +
                                 " (regular file): nbytes 4096, but its extents hold 8192 bytes"});
}

TEST_F(FsCheckTest, RegularDataPastTheEndOfTheFile) {
  const uint64_t file = create(kRootDirIno, "f");
  write(file, 0, 8192, 'a');
  corrupt([&](store::BTree& tree) {
    InodeItem item = inode_item(tree, file);
    item.size = 100;
    put_inode_item(tree, file, item);
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{"inode " + std::to_string(file) +
                                     " (regular file): extent at file offset 0 holds data past "
                                     "the end of the file (i_size 100)"});
}

TEST_F(FsCheckTest, ExtentOnADirectory) {
  const uint64_t file = create(kRootDirIno, "f");
  write(file, 0, 4096, 'a');
  const uint64_t dir = mkdir(kRootDirIno, "d");
  corrupt([&](store::BTree& tree) {
    auto extent = must(tree.find({file, kExtentDataKey, 0}));
    must(tree.insert({dir, kExtentDataKey, 0}, extent.value()));
  });
  const FsCheckReport report = check();
  const std::string prefix = "inode " + std::to_string(dir) + " (directory)";
  EXPECT_TRUE(has_line(report.problems, prefix + " has 1 EXTENT_DATA items"))
      << joined(report.problems);
  EXPECT_TRUE(has_line(report.problems, prefix + ": nbytes 0, but its extents hold 4096 bytes"))
      << joined(report.problems);
}

TEST_F(FsCheckTest, DirectoryCycle) {
  // root -> a -> b; then a's name moves from the root into b: a and b form a
  // cycle that no path from the root reaches. Every count is kept right, so
  // reachability is all that is wrong.
  const uint64_t a = mkdir(kRootDirIno, "a");
  const uint64_t b = mkdir(a, "b");
  corrupt([&](store::BTree& tree) {
    remove_entry(tree, kRootDirIno, "a");
    add_entry(tree, b, "loop", a, DT_DIR);
    InodeItem root = inode_item(tree, kRootDirIno);
    --root.nlink;
    put_inode_item(tree, kRootDirIno, root);
    InodeItem b_item = inode_item(tree, b);
    ++b_item.nlink;
    put_inode_item(tree, b, b_item);
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            (std::vector<std::string>{
                "inode " + std::to_string(a) +
                    " (directory) is not reachable from the root directory (a cycle or a "
                    "detached subtree)",
                "inode " + std::to_string(b) +
                    " (directory) is not reachable from the root directory (a cycle or a "
                    "detached subtree)"}));
}

TEST_F(FsCheckTest, HardLinkToADirectory) {
  const uint64_t dir = mkdir(kRootDirIno, "d");
  corrupt([&](store::BTree& tree) {
    add_entry(tree, kRootDirIno, "d2", dir, DT_DIR);
    InodeItem root = inode_item(tree, kRootDirIno);
    ++root.nlink;
    put_inode_item(tree, kRootDirIno, root);
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{"inode " + std::to_string(dir) +
                                     " (directory) has 2 names; a directory has exactly one (no "
                                     "hard links to directories)"});
}

TEST_F(FsCheckTest, DirectorySizeAndNextIndex) {
  create(kRootDirIno, "abc");
  create(kRootDirIno, "de");
  corrupt([&](store::BTree& tree) {
    InodeItem root = inode_item(tree, kRootDirIno);
    EXPECT_EQ(root.size, 10u);
    EXPECT_EQ(root.next_dir_index, 4u);
    root.size = 11;
    root.next_dir_index = 3;
    put_inode_item(tree, kRootDirIno, root);
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            (std::vector<std::string>{
                "directory 256: entry \"de\" (index 3): index not below the directory's "
                "next_dir_index 3",
                "inode 256 (directory): i_size 11, but twice the length of its entries' names "
                "is 10"}));
}

TEST_F(FsCheckTest, SymlinkTargets) {
  const uint64_t link = must(fs_->symlink(kRootDirIno, "l", "target", kRootCaller)).ino;
  const uint64_t other = must(fs_->symlink(kRootDirIno, "m", "x", kRootCaller)).ino;
  corrupt([&](store::BTree& tree) {
    must(tree.update({link, kSymlinkTargetKey, 0}, as_bytes(std::string_view("targ"))));
    must(tree.remove({other, kSymlinkTargetKey, 0}));
  });
  const FsCheckReport report = check();
  EXPECT_EQ(
      report.problems,
      (std::vector<std::string>{
          "inode " + std::to_string(link) + " (symlink): i_size 6, but its target holds 4 bytes",
          "inode " + std::to_string(other) +
              " (symlink) has 0 SYMLINK_TARGET items; it needs exactly one, at key "
              "offset 0"}));
}

TEST_F(FsCheckTest, UndecodableAndForeignItems) {
  const uint64_t file = create(kRootDirIno, "f");
  corrupt([&](store::BTree& tree) {
    must(tree.insert({file, 200, 0}, {}));
    must(tree.insert({17, kInodeItemKey, 0}, {}));
    must(tree.update({file, kInodeRefKey, kRootDirIno}, Bytes{1, 2, 3}));
  });
  const FsCheckReport report = check();
  const std::string f = std::to_string(file);
  EXPECT_TRUE(has_line(report.problems, "item (" + f + " INODE_REF 256): malformed inode ref"))
      << joined(report.problems);
  EXPECT_TRUE(has_line(report.problems, "item (" + f +
                                            " UNKNOWN/200 0): an item type that does "
                                            "not belong in a filesystem tree"))
      << joined(report.problems);
  EXPECT_TRUE(has_line(report.problems, "item (17 INODE_ITEM 0): objectid outside the inode range"))
      << joined(report.problems);
}

TEST_F(FsCheckTest, EncryptedFlagWithoutContext) {
  const uint64_t file = create(kRootDirIno, "f");
  corrupt([&](store::BTree& tree) {
    InodeItem item = inode_item(tree, file);
    item.flags |= kInodeFlagEncrypted;
    put_inode_item(tree, file, item);
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{"inode " + std::to_string(file) +
                                     " (regular file) is marked encrypted but has no "
                                     "FSCRYPT_INODE_CTX"});
}

// An encrypted directory with one encrypted file of `length` bytes.
struct EncryptedFile {
  uint64_t dir = 0;
  uint64_t file = 0;
};
EncryptedFile make_encrypted_file(FileSystem& fs, uint64_t length) {
  const fscrypt::Caller root{0, true};
  const Bytes raw(32, 0x5a);
  auto change = must(fs.add_key(root, fscrypt::KeySpecifier::from_identifier({}), raw));
  fscrypt::PolicyV2 policy;
  policy.flags = fscrypt::kPolicyFlagsPad32;
  std::copy(change.key.bytes().begin(), change.key.bytes().end(),
            policy.master_key_identifier.begin());
  EncryptedFile made;
  made.dir = must(fs.mkdir(kRootDirIno, "secret", 0755, kRootCaller)).ino;
  must(fs.set_policy(made.dir, policy, root));
  made.file = must(fs.mknod(made.dir, "f", S_IFREG | 0644, 0, kRootCaller)).ino;
  const std::string data(length, 'e');
  EXPECT_EQ(must(fs.write(made.file, 0, as_bytes(data))), length);
  return made;
}

FileExtentItem first_extent(store::BTree& tree, uint64_t ino) {
  auto data = must(tree.find({ino, kExtentDataKey, 0}));
  EXPECT_TRUE(data.has_value());
  return must(decode_file_extent_item(data.value_or(Bytes{})));
}

TEST_F(FsCheckTest, EncryptedFilesystemIsClean) {
  make_encrypted_file(*fs_, 100000);
  const FsCheckReport report = check();
  EXPECT_TRUE(report.clean()) << joined(report.problems);
}

TEST_F(FsCheckTest, PlaintextExtentInAnEncryptedFile) {
  const EncryptedFile made = make_encrypted_file(*fs_, 8192);
  corrupt([&](store::BTree& tree) {
    FileExtentItem extent = first_extent(tree, made.file);
    extent.encryption = ExtentEncryption::kNone;
    extent.context.clear();
    must(tree.update({made.file, kExtentDataKey, 0}, encode_file_extent_item(extent)));
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{"inode " + std::to_string(made.file) +
                                     " (regular file): extent at file offset 0 is not "
                                     "encrypted but the inode is"});
}

TEST_F(FsCheckTest, ExtentContextOfAnotherKey) {
  const EncryptedFile made = make_encrypted_file(*fs_, 8192);
  corrupt([&](store::BTree& tree) {
    FileExtentItem extent = first_extent(tree, made.file);
    extent.context[5] ^= 1;  // a byte of the master key identifier
    must(tree.update({made.file, kExtentDataKey, 0}, encode_file_extent_item(extent)));
  });
  const FsCheckReport report = check();
  ASSERT_EQ(report.problems.size(), 1u) << joined(report.problems);
  EXPECT_TRUE(report.problems[0].starts_with(
      "inode " + std::to_string(made.file) +
      " (regular file): extent at file offset 0: its extent context does not belong to the "
      "inode's policy"))
      << report.problems[0];
}

TEST_F(FsCheckTest, EncryptedExtentInAPlainFile) {
  const EncryptedFile made = make_encrypted_file(*fs_, 8192);
  const uint64_t plain = create(kRootDirIno, "plain");
  write(plain, 0, 8192, 'p');
  corrupt([&](store::BTree& tree) {
    FileExtentItem extent = first_extent(tree, plain);
    extent.encryption = ExtentEncryption::kFscrypt;
    extent.context = first_extent(tree, made.file).context;
    must(tree.update({plain, kExtentDataKey, 0}, encode_file_extent_item(extent)));
  });
  const FsCheckReport report = check();
  EXPECT_EQ(report.problems,
            std::vector<std::string>{"inode " + std::to_string(plain) +
                                     " (regular file): extent at file offset 0 is encrypted "
                                     "but the inode is not"});
}

TEST(QuotedNameTest, EscapesWhatIsNotPrintable) {
  EXPECT_EQ(quoted_name(as_bytes(std::string_view("plain name"))), "\"plain name\"");
  EXPECT_EQ(quoted_name(Bytes{'a', 0x00, 0xff, '"', '\\', 0x7f}), "\"a\\x00\\xff\\\"\\\\\\x7f\"");
}

}  // namespace
}  // namespace ecfs::fs
