// Command-line tests of the filesystem layer in `ecfs fsck` and `ecfs
// inspect`: a fresh image (mkfs makes the root directory) checks clean with
// the filesystem counts and dumps its root inode in inspect's filesystem
// section; filesystem-level damage written into FS_TREE through the engine
// (this binary links the store only, so items are edited as raw bytes:
// docs/FORMAT.md "Filesystem items") gives exit 1 with the problem named,
// and a harmless leftover a warning with exit 0. Corruptions of every kind
// are covered by src/fs/fs_check_test.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "block/file_device.h"
#include "cli_test_util.h"
#include "store/engine.h"
#include "store/tree_ids.h"

namespace ecfs::cli_test {
namespace {

// Filesystem item keys (fs/items.h), spelled out: this test does not link
// the fs layer.
constexpr uint64_t kRootDirIno = 256;
constexpr uint8_t kInodeItemKey = 1;
constexpr uint8_t kOrphanItemKey = 48;
constexpr uint64_t kOrphanObjectid = static_cast<uint64_t>(-5);
constexpr size_t kInodeNlinkOffset = 40;  // InodeItem: nlink u32 at byte 40

class FsCliTest : public EcfsCommandTest {
 protected:
  void SetUp() override {
    ASSERT_FALSE(scratch_.path().empty());
    image_ = scratch_.file("image");
    const Outcome run = ecfs({"mkfs", image_, "--size", "128M"});
    ASSERT_EQ(run.exit_status, 0) << run.describe();
  }

  // One committed change to FS_TREE through the engine.
  void edit_fs_tree(const std::function<void(store::BTree&)>& change) {
    auto device = block::open_file_device(image_);
    ASSERT_TRUE(device) << device.error().to_string();
    auto engine = store::Engine::open(**device);
    ASSERT_TRUE(engine) << engine.error().to_string();
    ASSERT_TRUE((*engine)->begin());
    auto tree = (*engine)->open_tree(store::kFsTreeId);
    ASSERT_TRUE(tree) << tree.error().to_string();
    change(**tree);
    auto committed = (*engine)->commit();
    ASSERT_TRUE(committed) << committed.error().to_string();
  }

  std::string image_;
};

TEST_F(FsCliTest, FreshImageChecksCleanWithFilesystemCounts) {
  const Outcome text = ecfs({"fsck", image_});
  EXPECT_EQ(text.exit_status, 0) << text.describe();
  EXPECT_NE(text.out.find("Inodes:           1 (1 directories, 0 regular files, 0 symlinks, 0 "
                          "special files)\n"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("Orphans:          0\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("no errors found"), std::string::npos) << text.out;

  const Outcome json = ecfs({"fsck", "--json", image_});
  EXPECT_EQ(json.exit_status, 0) << json.describe();
  EXPECT_EQ(query(json.out, "d['clean'], d['problem_count']"), "True 0");
  EXPECT_EQ(query(json.out,
                  "[d['filesystem'][k] for k in ('inodes', 'directories', 'regular_files', "
                  "'symlinks', 'special_files', 'entries', 'extents', 'xattrs', 'orphans')]"),
            "[1, 1, 0, 0, 0, 0, 0, 0, 0]");
  EXPECT_EQ(query(json.out, "d['filesystem']['problems'], d['filesystem']['warnings']"), "[] []");
}

TEST_F(FsCliTest, InspectShowsTheRootDirectory) {
  const Outcome run = ecfs({"inspect", "--json", image_});
  ASSERT_EQ(run.exit_status, 0) << run.describe();
  const std::string fs = "d['filesystem']";
  EXPECT_EQ(query(run.out, fs + "['tree'], " + fs + "['orphans'], " + fs + "['errors']"),
            "5 [] []");
  EXPECT_EQ(query(run.out, "[i['ino'] for i in " + fs + "['inodes']]"), "[256]");
  const std::string root = fs + "['inodes'][0]";
  const std::string item = root + "['inode_item']";
  EXPECT_EQ(query(run.out, item + "['type'], oct(" + item + "['mode']), " + item + "['nlink']"),
            "directory 0o40755 2");
  EXPECT_EQ(query(run.out, item + "['uid'], " + item + "['gid']"),
            std::to_string(getuid()) + " " + std::to_string(getgid()));
  EXPECT_EQ(query(run.out, item + "['size'], " + item + "['nbytes'], " + item +
                               "['next_dir_index'], " + item + "['encrypted']"),
            "0 0 2 False");
  // Times are "seconds.nanoseconds", all four equal at creation.
  EXPECT_EQ(query(run.out, "len({" + item + "[k] for k in ('atime', 'mtime', 'ctime', 'otime')})"),
            "1");
  EXPECT_EQ(query(run.out, "len(" + item + "['mtime'].split('.')[1])"), "9");
  EXPECT_EQ(query(run.out, root + "['names'], " + root + "['entries'], " + root + "['xattrs'], " +
                               root + "['orphan']"),
            "[] [] [] False");
  EXPECT_EQ(query(run.out, "'extents' in " + root + ", 'symlink_targets' in " + root),
            "False False");

  // Text output has the same section.
  const Outcome text = ecfs({"inspect", image_});
  ASSERT_EQ(text.exit_status, 0) << text.describe();
  EXPECT_NE(text.out.find("filesystem (tree 5): 1 inodes, 0 orphans\n  inode 256 directory mode "
                          "040755 nlink 2"),
            std::string::npos)
      << text.out;

  // Without FS_TREE in the dump there is no filesystem section.
  const Outcome extent_tree = ecfs({"inspect", "--json", "--tree", "2", image_});
  ASSERT_EQ(extent_tree.exit_status, 0) << extent_tree.describe();
  EXPECT_EQ(query(extent_tree.out, "d['filesystem']"), "None");
}

TEST_F(FsCliTest, WrongLinkCountFailsTheCheck) {
  edit_fs_tree([](store::BTree& tree) {
    auto item = tree.find({kRootDirIno, kInodeItemKey, 0});
    ASSERT_TRUE(item && *item);
    Bytes data = **item;
    ASSERT_EQ(data.size(), 120u);
    ASSERT_EQ(data[kInodeNlinkOffset], 2);
    data[kInodeNlinkOffset] = 3;
    ASSERT_TRUE(tree.update({kRootDirIno, kInodeItemKey, 0}, data));
  });
  const Outcome text = ecfs({"fsck", image_});
  EXPECT_EQ(text.exit_status, 1) << text.describe();
  EXPECT_NE(text.out.find("ERROR: filesystem: inode 256 (directory): nlink 3, but 2 + 0 "
                          "subdirectories = 2\n"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("1 error found"), std::string::npos) << text.out;
  EXPECT_NE(text.err.find("errors found"), std::string::npos) << text.err;

  const Outcome json = ecfs({"fsck", "--json", image_});
  EXPECT_EQ(json.exit_status, 1) << json.describe();
  EXPECT_EQ(query(json.out, "d['clean'], d['problem_count'], d['problems']"), "False 1 []");
  EXPECT_EQ(query(json.out, "d['filesystem']['problems']"),
            "['inode 256 (directory): nlink 3, but 2 + 0 subdirectories = 2']");

  // inspect still dumps it as it is and exits 0: nothing failed to read.
  const Outcome inspect = ecfs({"inspect", "--json", image_});
  EXPECT_EQ(inspect.exit_status, 0) << inspect.describe();
  EXPECT_EQ(query(inspect.out, "d['filesystem']['inodes'][0]['inode_item']['nlink']"), "3");
}

TEST_F(FsCliTest, LeftoverOrphanItemIsAWarningOnly) {
  edit_fs_tree([](store::BTree& tree) {
    ASSERT_TRUE(tree.insert({kOrphanObjectid, kOrphanItemKey, 4000}, {}));
  });
  const Outcome text = ecfs({"fsck", image_});
  EXPECT_EQ(text.exit_status, 0) << text.describe();
  EXPECT_NE(text.out.find("WARNING: filesystem: leftover ORPHAN item for inode 4000"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("Orphans:          1\n"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("no errors found"), std::string::npos) << text.out;

  const Outcome inspect = ecfs({"inspect", "--json", image_});
  EXPECT_EQ(inspect.exit_status, 0) << inspect.describe();
  EXPECT_EQ(query(inspect.out, "d['filesystem']['orphans']"), "[4000]");
}

// A store-only image (FS_TREE empty, as the engine's mkfs leaves it) has no
// filesystem to check: fsck says nothing about one and passes.
TEST_F(FsCliTest, EngineImageWithoutFilesystemIsNotCheckedAsOne) {
  const std::string bare = scratch_.file("bare");
  {
    block::FileDeviceOptions options;
    options.create_size = 128ull << 20;
    auto device = block::open_file_device(bare, options);
    ASSERT_TRUE(device) << device.error().to_string();
    ASSERT_TRUE(store::mkfs(**device, {}));
  }
  const Outcome json = ecfs({"fsck", "--json", bare});
  EXPECT_EQ(json.exit_status, 0) << json.describe();
  EXPECT_EQ(query(json.out, "d['clean'], d['filesystem']"), "True None");
  const Outcome inspect = ecfs({"inspect", "--json", bare});
  EXPECT_EQ(inspect.exit_status, 0) << inspect.describe();
  EXPECT_EQ(query(inspect.out, "d['filesystem']"), "None");
}

}  // namespace
}  // namespace ecfs::cli_test
