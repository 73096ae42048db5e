// Crash consistency of key rotation (fs/key_history.h): an encrypted tree
// (nested directories, files holding data, symlinks, a hard link across
// directories) is rotated to a second key one directory at a time, with a
// commit after each directory and a file written in between, then its
// contents are re-encrypted an extent at a time with a commit after each,
// on a RecordingDevice. Every crash image, at every flush, just after it and at
// points between, with the unflushed writes dropped, kept, chosen at random
// and torn, must be clean for both checks, mount, and with both keys read
// back every name, symlink target and byte it held before the rotation (so
// every directory is wholly under one key or the other, never between);
// running the rotation again must then finish it (every context and extent
// under the new key, no KEY_HISTORY left) with everything still reading
// back without the first key, and leave both checks clean.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "block/memory_device.h"
#include "block/recording_device.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "fs/key_history.h"
#include "fs/tree_contents.h"
#include "fscrypt/policy.h"
#include "store/tree_ids.h"

namespace ecfs::fs {
namespace {

using testing::kRootCaller;
using testing::must;

constexpr fscrypt::Caller kKeyRoot{0, true};

Bytes master_key(uint8_t seed) {
  Bytes key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed * 29 + i * 5);
  return key;
}

fscrypt::KeyIdentifier add_key(FileSystem& fs, uint8_t seed) {
  auto change =
      must(fs.add_key(kKeyRoot, fscrypt::KeySpecifier::from_identifier({}), master_key(seed)));
  fscrypt::KeyIdentifier identifier{};
  std::copy(change.key.bytes().begin(), change.key.bytes().end(), identifier.begin());
  return identifier;
}

// What the tree must read as: path -> file contents, or "-> target" for a
// symlink, or "/" for a directory.
using Expected = std::map<std::string, std::string>;

void read_tree(FileSystem& fs, uint64_t dir, const std::string& prefix, Expected& out,
               const std::string& what) {
  std::vector<DirListEntry> entries;
  auto listed = fs.readdir(dir, 0, [&](const DirListEntry& entry) {
    if (entry.name != "." && entry.name != "..") entries.push_back(entry);
    return true;
  });
  ASSERT_TRUE(listed) << what << ": readdir " << prefix << ": " << listed.error().to_string();
  for (const DirListEntry& entry : entries) {
    const std::string path = prefix + "/" + entry.name;
    auto attr = fs.lookup(dir, entry.name);
    ASSERT_TRUE(attr) << what << ": lookup " << path << ": " << attr.error().to_string();
    if (S_ISDIR(attr->mode)) {
      out[path] = "/";
      read_tree(fs, attr->ino, path, out, what);
    } else if (S_ISLNK(attr->mode)) {
      auto target = fs.readlink(attr->ino);
      ASSERT_TRUE(target) << what << ": readlink " << path << ": " << target.error().to_string();
      out[path] = "-> " + *target;
    } else {
      must(fs.open(attr->ino, O_RDONLY));
      Bytes data(attr->size);
      auto read = fs.read(attr->ino, 0, data);
      fs.release(attr->ino);
      ASSERT_TRUE(read) << what << ": read " << path << ": " << read.error().to_string();
      out[path] = std::string(data.begin(), data.begin() + static_cast<ptrdiff_t>(*read));
    }
    fs.forget(attr->ino, 1);
  }
}

// The directories of the tree under `dir`, parents first.
std::vector<uint64_t> directories(FileSystem& fs, uint64_t dir) {
  std::vector<uint64_t> out{dir};
  for (size_t i = 0; i < out.size(); ++i) {
    must(fs.readdir(out[i], 0, [&](const DirListEntry& entry) {
      if (entry.name != "." && entry.name != ".." && entry.type == DT_DIR) out.push_back(entry.ino);
      return true;
    }));
  }
  return out;
}

// The regular files of the tree under `dir`, each once.
std::set<uint64_t> regular_files(FileSystem& fs, uint64_t dir) {
  std::set<uint64_t> out;
  for (uint64_t each : directories(fs, dir)) {
    must(fs.readdir(each, 0, [&](const DirListEntry& entry) {
      if (entry.type == DT_REG) out.insert(entry.ino);
      return true;
    }));
  }
  return out;
}

// The contents pass of the rotation, a data extent per call, committing
// after each (`commit`), then the directories forget their earlier keys.
Status rewrite_contents(FileSystem& fs, uint64_t top, bool commit) {
  for (uint64_t file : regular_files(fs, top)) {
    for (;;) {
      auto step = fs.rekey_contents(file, 1, kKeyRoot);
      if (!step) return std::unexpected(step.error());
      if (commit) ECFS_TRY(fs.sync());
      if (step->done) break;
    }
  }
  for (uint64_t dir : directories(fs, top)) {
    auto forgot = fs.rekey_contents(dir, 1, kKeyRoot);
    if (!forgot) return std::unexpected(forgot.error());
  }
  return fs.sync();
}

struct RotatedTree {
  Expected expected;
  uint64_t top = 0;
};

// The encrypted tree, committed, then its rotation with a commit per
// directory and a write to a file between two of them.
RotatedTree build_and_rotate(block::BlockDevice& device) {
  RotatedTree setup;
  auto fs = must(FileSystem::open(device));
  const fscrypt::KeyIdentifier first = add_key(*fs, 1);
  const fscrypt::KeyIdentifier second = add_key(*fs, 2);
  setup.top = must(fs->mkdir(kRootDirIno, "top", 0755, kRootCaller)).ino;
  fscrypt::PolicyV2 policy;
  policy.flags = fscrypt::kPolicyFlagsPad32;
  policy.master_key_identifier = first;
  must(fs->set_policy(setup.top, policy, kKeyRoot));
  uint64_t parent = setup.top;
  for (int level = 0; level < 3; ++level) {
    for (int i = 0; i < 2; ++i) {
      const std::string name = "file-" + std::to_string(level) + "-" + std::to_string(i);
      const uint64_t file = must(fs->mknod(parent, name, S_IFREG | 0644, 0, kRootCaller)).ino;
      const std::string data(4096 * (1 + level + i) + 100 * i, static_cast<char>('a' + level));
      must(fs->write(file, 0, as_bytes(data)));
    }
    must(fs->symlink(parent, "link", "file-" + std::to_string(level) + "-0", kRootCaller));
    const uint64_t side = must(fs->mkdir(parent, "side", 0755, kRootCaller)).ino;
    must(fs->mknod(side, "empty", S_IFREG | 0600, 0, kRootCaller));
    parent = must(fs->mkdir(parent, "dir-" + std::to_string(level), 0755, kRootCaller)).ino;
  }
  // A hard link in two directories: moved once.
  const uint64_t shared = must(fs->lookup(setup.top, "file-0-0")).ino;
  must(fs->link(shared, parent, "hard"));
  must(fs->sync());
  read_tree(*fs, setup.top, "top", setup.expected, "before");

  const std::vector<uint64_t> dirs = directories(*fs, setup.top);
  for (size_t i = 0; i < dirs.size(); ++i) {
    must(fs->rekey_directory(dirs[i], second, kKeyRoot));
    must(fs->sync());
    if (i == 1) {
      // A write between two steps: a file with data under both keys.
      const uint64_t file = must(fs->lookup(setup.top, "file-0-1")).ino;
      const std::string tail(5000, 'z');
      must(fs->write(file, 8192, as_bytes(tail)));
      must(fs->sync());
      std::string& expected = setup.expected["top/file-0-1"];
      expected.resize(8192, '\0');
      expected += tail;
    }
  }
  must(rewrite_contents(*fs, setup.top, true));
  must(fs->close());
  return setup;
}

void check_crash_image(block::MemoryDevice& image, const RotatedTree& setup,
                       const std::string& what, const Expected& before_write) {
  const testing::FullCheck check = testing::full_check(image);
  ASSERT_TRUE(check.clean()) << what << ":\n" << check.problems();
  auto fs = FileSystem::open(image);
  ASSERT_TRUE(fs) << what << ": mount: " << fs.error().to_string();
  const fscrypt::KeyIdentifier first = add_key(**fs, 1);
  const fscrypt::KeyIdentifier second = add_key(**fs, 2);
  Expected found;
  ASSERT_NO_FATAL_FAILURE(read_tree(**fs, setup.top, "top", found, what));
  // The write between two steps is in or out, whole.
  EXPECT_TRUE(found == setup.expected || found == before_write) << what;

  // Running the rotation again finishes it, contents included.
  for (uint64_t dir : directories(**fs, setup.top)) {
    auto moved = (*fs)->rekey_directory(dir, second, kKeyRoot);
    ASSERT_TRUE(moved) << what << ": " << moved.error().to_string();
  }
  Status rewritten = rewrite_contents(**fs, setup.top, false);
  ASSERT_TRUE(rewritten) << what << ": " << rewritten.error().to_string();
  auto tree = must((*fs)->engine_for_test().committed_tree(store::kFsTreeId));
  const TreeContents contents = must(read_tree_contents(tree));
  for (const auto& [ino, inode] : contents.inodes) {
    if (!inode.fscrypt_context) continue;
    const fscrypt::Context context = must(fscrypt::parse_context(*inode.fscrypt_context));
    EXPECT_EQ(policy_key(context.policy), second) << what << ": inode " << ino;
    EXPECT_FALSE(inode.key_history.has_value()) << what << ": inode " << ino;
    for (const auto& [offset, extent] : inode.extents) {
      const auto extent_context = must(fscrypt::parse_extent_context(extent.context));
      EXPECT_EQ(extent_context.master_key_identifier, second) << what << ": inode " << ino;
    }
  }
  // Nothing needs the first key any more.
  must((*fs)->remove_key(kKeyRoot, fscrypt::KeySpecifier::from_identifier(first), false));
  Expected after;
  ASSERT_NO_FATAL_FAILURE(read_tree(**fs, setup.top, "top", after, what + ", finished"));
  EXPECT_EQ(after, found) << what;
  must((*fs)->close());
  fs->reset();
  const testing::FullCheck finished = testing::full_check(image);
  EXPECT_TRUE(finished.clean()) << what << " (finished):\n" << finished.problems();
}

TEST(RekeyCrashTest, EveryCrashStateReadsBackAndFinishes) {
  block::MemoryDevice base(64ull << 20);
  testing::make_filesystem(base);
  block::RecordingDevice recorder(base);
  const RotatedTree setup = build_and_rotate(recorder);
  ASSERT_FALSE(::testing::Test::HasFailure());
  Expected before_write = setup.expected;
  {
    std::string& data = before_write["top/file-0-1"];
    data = std::string(4096 * 2 + 100, 'a');
  }

  const size_t ops = recorder.op_count();
  std::set<size_t> points{ops};
  for (size_t flush : recorder.flush_points()) {
    points.insert(flush);
    points.insert(flush + 1);
  }
  const size_t stride = std::max<size_t>(1, ops / 60);
  for (size_t point = 0; point < ops; point += stride) points.insert(point);
  size_t states = 0;
  for (size_t point : points) {
    std::vector<std::pair<block::CrashMode, uint64_t>> variants{
        {block::CrashMode::kDropAllUnflushed, 0}};
    if (!recorder.unflushed_writes(point).empty()) {
      variants.push_back({block::CrashMode::kKeepAllUnflushed, 0});
      variants.push_back({block::CrashMode::kRandomSubset, point});
      variants.push_back({block::CrashMode::kRandomSubsetWithTears, point + 1});
    }
    for (const auto& [mode, seed] : variants) {
      auto image = recorder.crash_image(point, mode, seed);
      ASSERT_TRUE(image) << image.error().to_string();
      const std::string what =
          "crash at op " + std::to_string(point) + " of " + std::to_string(ops) + ", mode " +
          std::to_string(static_cast<int>(mode)) + ", seed " + std::to_string(seed);
      // Before the tree was committed there is nothing to read.
      auto probe = FileSystem::open(*image);
      ASSERT_TRUE(probe) << what << ": " << probe.error().to_string();
      const bool has_tree = (*probe)->lookup(kRootDirIno, "top").has_value();
      must((*probe)->close());
      probe->reset();
      if (!has_tree) continue;
      check_crash_image(*image, setup, what, before_write);
      if (::testing::Test::HasFailure()) return;
      ++states;
    }
  }
  std::printf("rekey crash test: %zu crash states checked at %zu points of %zu ops\n", states,
              points.size(), ops);
  EXPECT_GT(states, 20u);
}

}  // namespace
}  // namespace ecfs::fs
