// The filesystem on a failing device (block/fault_device.h) and on a full
// one:
//  - a disk that starts failing writes or flushes in the middle of a commit
//    (sync or fsync): the call reports EIO, the filesystem turns read-only
//    (changes give EROFS, sync and fsync EIO), committed data still reads,
//    and once the device works again the image opens as the last committed
//    state (or the one whose commit was in flight when the superblock was
//    already written), passes Engine::check and check_filesystem, and takes
//    new changes;
//  - a failure while writing out buffered data (the dirty-data limit forces
//    it inside write()): the write reports EIO and nothing of the running
//    transaction is committed;
//  - a small device filled to the last block: ENOSPC for writes,
//    preallocation and new inodes, never a turn to read-only; every
//    acknowledged byte commits and survives a remount; deleting gives the
//    space back, again and again (no leak across fill / delete cycles).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>

#include "block/fault_device.h"
#include "block/memory_device.h"
#include "block/testing.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"

namespace ecfs::fs {
namespace {

using testing::error_of;
using testing::full_check;
using testing::kRootCaller;
using testing::make_filesystem;
using testing::must;

// Deterministic contents that differ between seeds and offsets.
std::string pattern(size_t size, uint64_t seed) {
  const Bytes bytes = block::testing::pattern(size, seed);
  return std::string(bytes.begin(), bytes.end());
}

int status_errno(const Status& status) { return status ? 0 : status.error().errno_value(); }

// The regular files of the root directory and their contents, as `fs` reads
// them (lookup references given back at once).
using Contents = std::map<std::string, std::string>;

Contents contents_of(FileSystem& fs) {
  std::vector<std::string> names;
  EXPECT_TRUE(fs.readdir(kRootDirIno, 0, [&](const DirListEntry& entry) {
    if (entry.name != "." && entry.name != "..") names.push_back(entry.name);
    return true;
  }));
  Contents contents;
  for (const std::string& name : names) {
    auto attributes = fs.lookup(kRootDirIno, name);
    if (!attributes) {
      ADD_FAILURE() << "lookup " << name << ": " << attributes.error().to_string();
      continue;
    }
    Bytes data(attributes->size);
    auto read = fs.read(attributes->ino, 0, data);
    fs.forget(attributes->ino, 1);
    if (!read) {
      ADD_FAILURE() << "read " << name << ": " << read.error().to_string();
      continue;
    }
    EXPECT_EQ(*read, data.size()) << name;
    contents[name] = std::string(data.begin(), data.end());
  }
  return contents;
}

std::string describe(const Contents& contents) {
  std::string text;
  for (const auto& [name, data] : contents) {
    text += name + ":" + std::to_string(data.size()) + " ";
  }
  return text;
}

class FaultFixture : public ::testing::Test {
 protected:
  static constexpr uint64_t kDeviceSize = 256ull << 20;

  void SetUp() override { make_filesystem(base_); }

  void mount(block::BlockDevice& device, MountOptions options = {}) {
    options.commit_interval = std::chrono::hours(1);  // commits only where the test asks
    fs_ = must(FileSystem::open(device, options), "mount");
  }

  // A new file named `name` holding `data` (its lookup reference given back).
  uint64_t create(const std::string& name, const std::string& data) {
    const uint64_t ino = must(fs_->mknod(kRootDirIno, name, S_IFREG | 0644, 0, kRootCaller)).ino;
    fs_->forget(ino, 1);
    if (!data.empty()) {
      EXPECT_EQ(must(fs_->write(ino, 0, as_bytes(data))), data.size());
    }
    return ino;
  }
  uint64_t ino_of(const std::string& name) {
    const uint64_t ino = must(fs_->lookup(kRootDirIno, name)).ino;
    fs_->forget(ino, 1);
    return ino;
  }
  void write(const std::string& name, uint64_t offset, const std::string& data, Contents& model) {
    EXPECT_EQ(must(fs_->write(ino_of(name), offset, as_bytes(data))), data.size());
    std::string& file = model[name];
    if (file.size() < offset + data.size()) file.resize(offset + data.size(), '\0');
    file.replace(offset, data.size(), data);
  }

  void expect_clean(block::BlockDevice& device) {
    const testing::FullCheck check = full_check(device);
    EXPECT_TRUE(check.clean()) << check.problems();
  }

  block::MemoryDevice base_{kDeviceSize};
  std::unique_ptr<FileSystem> fs_;
};

// Committed state A: three files. Then the changes of state B, in the
// running transaction.
struct TwoStates {
  Contents committed;
  Contents pending;
};

class FailingDiskTest : public FaultFixture {
 protected:
  TwoStates build_states() {
    TwoStates states;
    Contents& a = states.committed;
    a["keep"] = pattern(300000, 1);
    a["edit"] = pattern(70000, 2);
    a["doomed"] = pattern(5000, 3);
    for (const auto& [name, data] : a) create(name, data);
    EXPECT_TRUE(fs_->sync());
    Contents b = a;
    write("edit", 1000, pattern(40000, 4), b);
    write("edit", 200000, pattern(3, 5), b);
    b["new"] = pattern(2 << 20, 6);
    create("new", b["new"]);
    EXPECT_TRUE(fs_->unlink(kRootDirIno, "doomed"));
    b.erase("doomed");
    states.pending = b;
    EXPECT_EQ(contents_of(*fs_), b);
    return states;
  }
};

TEST_F(FailingDiskTest, FailedCommitTurnsReadOnlyAndKeepsTheLastCommit) {
  int failed_before_commit_point = 0, failed_after_commit_point = 0, not_reached = 0;
  for (block::FaultOp op : {block::FaultOp::kWrite, block::FaultOp::kFlush}) {
    for (uint64_t successes : {0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89}) {
      for (bool use_fsync : {false, true}) {
        SCOPED_TRACE(std::string(op == block::FaultOp::kWrite ? "writes" : "flushes") +
                     " fail after " + std::to_string(successes) +
                     (use_fsync ? ", fsync" : ", sync"));
        base_ = block::MemoryDevice(kDeviceSize);
        make_filesystem(base_);
        block::FaultDevice device(base_);
        mount(device);
        const TwoStates states = build_states();
        ASSERT_FALSE(HasFatalFailure());
        const uint64_t keep = ino_of("keep");
        const uint64_t edit = ino_of("edit");

        device.fail_after(op, successes, EIO);
        const Status committed = use_fsync ? fs_->fsync(edit, false) : fs_->sync();
        if (committed) {
          ++not_reached;  // the commit needed fewer requests
          device.heal();
          ASSERT_TRUE(fs_->close());
          fs_.reset();
          continue;
        }
        EXPECT_EQ(committed.error().errno_value(), EIO) << committed.error().to_string();
        // Read-only now: changes are refused, durability calls report the error.
        EXPECT_EQ(error_of(fs_->write(keep, 0, as_bytes("x"))), EROFS);
        EXPECT_EQ(error_of(fs_->mknod(kRootDirIno, "later", S_IFREG | 0644, 0, kRootCaller)),
                  EROFS);
        EXPECT_EQ(status_errno(fs_->unlink(kRootDirIno, "keep")), EROFS);
        EXPECT_EQ(status_errno(fs_->fallocate(keep, 0, 0, 4096)), EROFS);
        EXPECT_EQ(status_errno(fs_->sync()), EIO);
        EXPECT_EQ(status_errno(fs_->fsync(keep, false)), EIO);
        // Committed data still reads (the device still reads).
        const Contents seen = contents_of(*fs_);
        EXPECT_TRUE(seen == states.committed || seen == states.pending)
            << "read after the failure: " << describe(seen);
        EXPECT_EQ(seen.at("keep"), states.committed.at("keep"));
        (void)fs_->close();
        fs_.reset();

        // The device works again: the image is one of the two states, clean.
        device.heal();
        expect_clean(base_);
        mount(base_);
        const Contents reopened = contents_of(*fs_);
        if (reopened == states.committed) {
          ++failed_before_commit_point;
        } else {
          EXPECT_EQ(reopened, states.pending) << "neither state: " << describe(reopened);
          ++failed_after_commit_point;
        }
        // And it takes new changes.
        create("after", "works");
        ASSERT_TRUE(fs_->sync());
        ASSERT_TRUE(fs_->close());
        fs_.reset();
        expect_clean(base_);
        mount(base_);
        EXPECT_EQ(contents_of(*fs_).at("after"), "works");
        ASSERT_TRUE(fs_->close());
        fs_.reset();
      }
    }
  }
  std::printf(
      "failed commits: %d kept the old state, %d had passed the commit point; %d "
      "commits needed fewer requests\n",
      failed_before_commit_point, failed_after_commit_point, not_reached);
  EXPECT_GT(failed_before_commit_point, 10);
}

TEST_F(FailingDiskTest, WriteOutFailureInsideWriteGivesEioAndCommitsNothing) {
  block::FaultDevice device(base_);
  MountOptions options;
  options.dirty_data_limit = 1 << 20;  // write() itself writes buffered data out
  mount(device, options);
  const TwoStates states = build_states();
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t big = create("big", "");

  device.fail_after(block::FaultOp::kWrite, 0, EIO);
  int error = 0;
  const std::string chunk = pattern(256 << 10, 9);
  for (uint64_t offset = 0; offset < (64ull << 20) && error == 0; offset += chunk.size()) {
    error = error_of(fs_->write(big, offset, as_bytes(chunk)));
  }
  EXPECT_EQ(error, EIO) << "a write that had to write out buffered data";
  EXPECT_EQ(error_of(fs_->write(big, 0, as_bytes("x"))), EROFS);
  EXPECT_EQ(status_errno(fs_->sync()), EIO);
  EXPECT_EQ(contents_of(*fs_).at("keep"), states.committed.at("keep"));
  (void)fs_->close();
  fs_.reset();

  device.heal();
  expect_clean(base_);
  mount(base_);
  EXPECT_EQ(contents_of(*fs_), states.committed) << "nothing of the failed transaction";
  ASSERT_TRUE(fs_->close());
  fs_.reset();
}

TEST_F(FailingDiskTest, ReadErrorsAreReportedWithoutTurningReadOnly) {
  block::FaultDevice device(base_);
  mount(device);
  create("file", pattern(1 << 20, 10));
  ASSERT_TRUE(fs_->close());
  fs_.reset();
  mount(device);  // nothing cached: reads reach the device
  const uint64_t ino = ino_of("file");
  device.fail_after(block::FaultOp::kRead, 0, EIO);
  Bytes data(1 << 20);
  EXPECT_EQ(error_of(fs_->read(ino, 0, data)), EIO);
  device.heal();
  // A failed read changes nothing: the filesystem stays writable.
  EXPECT_EQ(must(fs_->read(ino, 0, data)), data.size());
  EXPECT_EQ(std::string(data.begin(), data.end()), pattern(1 << 20, 10));
  create("more", "still writable");
  EXPECT_TRUE(fs_->sync());
  ASSERT_TRUE(fs_->close());
  fs_.reset();
  expect_clean(base_);
}

class DiskFullTest : public FaultFixture {
 protected:
  static constexpr uint64_t kSmallDevice = 48ull << 20;
  void SetUp() override {
    base_ = block::MemoryDevice(kSmallDevice);
    make_filesystem(base_);
  }
};

TEST_F(DiskFullTest, EnospcKeepsCommittedDataAndSpaceIsReusable) {
  mount(base_);
  Contents model;
  model["keep"] = pattern(100000, 20);
  create("keep", model["keep"]);
  ASSERT_TRUE(fs_->sync());
  const uint64_t free_at_start = must(fs_->statfs()).free_blocks;

  uint64_t first_round = 0;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // Fill: files of 1 MiB writes (and an unaligned tail) until ENOSPC.
    uint64_t acknowledged = 0;
    int error = 0;
    std::vector<std::string> fill_names;
    for (int file = 0; error == 0 && file < 100; ++file) {
      const std::string name = "fill" + std::to_string(round) + "-" + std::to_string(file);
      const uint64_t ino = create(name, "");
      fill_names.push_back(name);
      model[name] = "";
      for (int piece = 0; piece < 8; ++piece) {
        const std::string data =
            pattern(piece == 7 ? 12345 : 1 << 20, round * 1000 + file * 10 + piece);
        auto written = fs_->write(ino, model[name].size(), as_bytes(data));
        if (!written) {
          error = written.error().errno_value();
          break;
        }
        ASSERT_EQ(*written, data.size());
        model[name] += data;
        acknowledged += data.size();
      }
    }
    ASSERT_EQ(error, ENOSPC) << "the device never filled";
    // Other requests for space are refused the same way.
    auto blocked = fs_->fallocate(ino_of("keep"), 0, 0, 64ull << 20);
    EXPECT_EQ(status_errno(blocked), ENOSPC);
    // ENOSPC is not a failure of the filesystem: everything acknowledged
    // commits.
    ASSERT_TRUE(fs_->sync()) << "commit after ENOSPC";
    EXPECT_FALSE(fs_->read_only());
    EXPECT_EQ(contents_of(*fs_), model);
    ASSERT_TRUE(fs_->close());
    fs_.reset();
    expect_clean(base_);
    mount(base_);
    EXPECT_EQ(contents_of(*fs_), model) << "after remount";
    std::printf("round %d: %llu MiB acknowledged before ENOSPC\n", round,
                static_cast<unsigned long long>(acknowledged >> 20));
    if (round == 0) {
      first_round = acknowledged;
    } else {
      // Deleting gave all of it back.
      EXPECT_GE(acknowledged, first_round - first_round / 20);
    }
    // Delete the fill; the space comes back.
    for (const std::string& name : fill_names) {
      ASSERT_TRUE(fs_->unlink(kRootDirIno, name));
      model.erase(name);
    }
    ASSERT_TRUE(fs_->sync());
    const uint64_t free_now = must(fs_->statfs()).free_blocks;
    EXPECT_GE(free_now + 64, free_at_start) << "free blocks after deleting the fill";
  }
  ASSERT_TRUE(fs_->close());
  fs_.reset();
  expect_clean(base_);
  mount(base_);
  EXPECT_EQ(contents_of(*fs_), model);
  ASSERT_TRUE(fs_->close());
  fs_.reset();
}

TEST_F(DiskFullTest, NewFilesAndNamesAreRefusedWhenFullAndAcceptedAfterDeleting) {
  mount(base_);
  const uint64_t ino = create("fill", "");
  const std::string chunk = pattern(1 << 20, 30);
  uint64_t offset = 0;
  while (fs_->write(ino, offset, as_bytes(chunk))) offset += chunk.size();
  // Keep creating empty files until the metadata reserve refuses.
  int error = 0;
  int created = 0;
  for (; created < 100000 && error == 0; ++created) {
    auto made =
        fs_->mknod(kRootDirIno, "e" + std::to_string(created), S_IFREG | 0644, 0, kRootCaller);
    if (!made) {
      error = made.error().errno_value();
    } else {
      fs_->forget(made->ino, 1);
    }
  }
  EXPECT_EQ(error, ENOSPC) << created << " files created on a full device";
  ASSERT_TRUE(fs_->sync());
  ASSERT_TRUE(fs_->unlink(kRootDirIno, "fill"));
  ASSERT_TRUE(fs_->sync());
  auto made = fs_->mknod(kRootDirIno, "after", S_IFREG | 0644, 0, kRootCaller);
  ASSERT_TRUE(made) << made.error().to_string();
  fs_->forget(made->ino, 1);
  EXPECT_TRUE(fs_->write(made->ino, 0, as_bytes(chunk)));
  ASSERT_TRUE(fs_->close());
  fs_.reset();
  expect_clean(base_);
}

}  // namespace
}  // namespace ecfs::fs
