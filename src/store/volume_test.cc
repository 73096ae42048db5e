#include "store/volume.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "block/fault_device.h"
#include "block/memory_device.h"
#include "store/engine_test_util.h"
#include "store/tree_ids.h"

namespace ecfs::store {
namespace {

using testing::value_or_die;
using namespace std::chrono_literals;

std::mutex logged_mutex;
std::vector<std::string> logged;

void remember_log(log::Level, std::string_view message) {
  std::lock_guard lock(logged_mutex);
  logged.emplace_back(message);
}

// A client that buffers one item per put() and writes them at commit.
class BufferingClient final : public VolumeClient {
 public:
  explicit BufferingClient(Volume& volume) : volume_(volume) {}

  void put(uint64_t objectid) {
    pending_.push_back(objectid);
    volume_.note_change();
  }

  uint64_t buffered_bytes() const override { return pending_.size() * kSectorSize; }
  Status write_out_before_commit(std::unique_lock<std::mutex>&) override {
    ++write_outs;
    return ok();
  }
  Status flush_for_commit() override {
    if (fail_flush) return fail(EIO, "injected flush failure");
    auto tree = volume_.tree(kFsTreeId);
    if (!tree) return std::unexpected(tree.error());
    for (uint64_t objectid : pending_) ECFS_TRY((*tree)->put({objectid, 1, 0}, Bytes{1, 2, 3}));
    pending_.clear();
    return ok();
  }
  void committed(bool) override { ++commits; }
  void aborted() override {
    pending_.clear();
    ++aborts;
  }
  Status prepare_close() override {
    ++closes;
    return ok();
  }

  bool fail_flush = false;
  int write_outs = 0;
  std::atomic<int> commits{0};
  int aborts = 0;
  int closes = 0;

 private:
  Volume& volume_;
  std::vector<uint64_t> pending_;
};

class VolumeTest : public ::testing::Test {
 protected:
  VolumeTest() : memory_(64ull << 20), device_(memory_) {}

  void SetUp() override {
    MkfsOptions options;
    options.node_size = 4096;
    ASSERT_TRUE(mkfs(device_, options));
    open_volume();
  }
  void TearDown() override {
    close_volume();
    log::set_sink_for_test(nullptr);
  }

  // The volume goes before its client: closing it calls the client.
  void close_volume() {
    volume_.reset();
    client_.reset();
  }

  void open_volume(VolumeOptions options = {}) {
    close_volume();
    volume_ = value_or_die(Volume::open(device_, options));
    client_ = std::make_unique<BufferingClient>(*volume_);
    std::lock_guard lock(volume_->mutex());
    volume_->add_client(*client_);
  }

  bool committed_has(uint64_t objectid) {
    std::lock_guard lock(volume_->mutex());
    BTree tree = value_or_die(volume_->engine().committed_tree(kFsTreeId));
    return value_or_die(tree.find({objectid, 1, 0})).has_value();
  }

  block::MemoryDevice memory_;
  block::FaultDevice device_;
  std::unique_ptr<Volume> volume_;
  std::unique_ptr<BufferingClient> client_;
};

TEST_F(VolumeTest, CommitWritesWhatClientsBuffer) {
  std::unique_lock lock(volume_->mutex());
  client_->put(300);
  EXPECT_TRUE(volume_->changed());
  ASSERT_TRUE(volume_->commit(lock));
  EXPECT_EQ(client_->write_outs, 1);
  EXPECT_EQ(client_->commits, 1);
  EXPECT_FALSE(volume_->changed());
  lock.unlock();
  EXPECT_TRUE(committed_has(300));
}

TEST_F(VolumeTest, CloseCommitsAfterClientsPrepare) {
  {
    std::lock_guard lock(volume_->mutex());
    client_->put(301);
  }
  ASSERT_TRUE(volume_->close());
  EXPECT_EQ(client_->closes, 1);
  ASSERT_TRUE(volume_->close()) << "idempotent";
  EXPECT_EQ(client_->closes, 1);
  open_volume();
  EXPECT_TRUE(committed_has(301));
  std::lock_guard lock(volume_->mutex());
}

TEST_F(VolumeTest, ChangesAfterCloseAreRefused) {
  ASSERT_TRUE(volume_->close());
  std::lock_guard lock(volume_->mutex());
  auto writable = volume_->check_writable();
  ASSERT_FALSE(writable);
  EXPECT_EQ(writable.error().errno_value(), ESHUTDOWN);
}

TEST_F(VolumeTest, PeriodicCommitRunsOnItsOwn) {
  VolumeOptions options;
  options.commit_interval = 20ms;
  open_volume(options);
  volume_->start_background_jobs();
  {
    std::lock_guard lock(volume_->mutex());
    client_->put(302);
  }
  for (int i = 0; i < 500 && client_->commits == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GE(client_->commits, 1);
  EXPECT_TRUE(committed_has(302));
}

TEST_F(VolumeTest, FailedChangeTurnsReadOnlyKeepsCommittedAndLogsWhy) {
  log::set_sink_for_test(remember_log);
  logged.clear();
  std::unique_lock lock(volume_->mutex());
  client_->put(303);
  ASSERT_TRUE(volume_->commit(lock));
  client_->put(304);
  auto aborted = volume_->abort_change(Error(EIO, "injected device failure"));
  EXPECT_EQ(aborted.error().errno_value(), EIO);
  EXPECT_TRUE(volume_->failed());
  EXPECT_EQ(client_->aborts, 1);
  auto writable = volume_->check_writable();
  ASSERT_FALSE(writable);
  EXPECT_EQ(writable.error().errno_value(), EROFS);
  auto synced = volume_->check_syncable();
  ASSERT_FALSE(synced);
  EXPECT_EQ(synced.error().errno_value(), EIO);
  // A later abort is not logged again.
  (void)volume_->abort_change(Error(EIO, "second"));
  lock.unlock();
  {
    std::lock_guard seen(logged_mutex);
    ASSERT_EQ(logged.size(), 1u);
    EXPECT_NE(logged[0].find("turned read-only"), std::string::npos) << logged[0];
    EXPECT_NE(logged[0].find("injected device failure"), std::string::npos) << logged[0];
  }
  EXPECT_TRUE(committed_has(303));
  EXPECT_FALSE(committed_has(304));
  // Remounting read-write is refused; a new mount is read-write again.
  lock.lock();
  auto rw = volume_->set_read_only(lock, false);
  ASSERT_FALSE(rw);
  EXPECT_EQ(rw.error().errno_value(), EROFS);
  lock.unlock();
  open_volume();
  std::lock_guard again(volume_->mutex());
  EXPECT_TRUE(volume_->check_writable());
}

TEST_F(VolumeTest, FailedFlushAbortsTheCommit) {
  log::set_sink_for_test(remember_log);
  std::unique_lock lock(volume_->mutex());
  client_->put(305);
  client_->fail_flush = true;
  auto committed = volume_->commit(lock);
  ASSERT_FALSE(committed);
  EXPECT_TRUE(volume_->failed());
  EXPECT_EQ(client_->aborts, 1);
  lock.unlock();
  EXPECT_FALSE(committed_has(305));
}

TEST_F(VolumeTest, FailedDeviceWriteAtCommitTurnsReadOnlyAndLogs) {
  log::set_sink_for_test(remember_log);
  logged.clear();
  std::unique_lock lock(volume_->mutex());
  client_->put(306);
  device_.fail_after(block::FaultOp::kWrite, 0, EIO);
  auto committed = volume_->commit(lock);
  ASSERT_FALSE(committed);
  EXPECT_TRUE(volume_->failed());
  EXPECT_EQ(client_->aborts, 1);
  device_.heal();
  lock.unlock();
  std::lock_guard seen(logged_mutex);
  ASSERT_FALSE(logged.empty());
  EXPECT_NE(logged[0].find("failed commit"), std::string::npos) << logged[0];
}

TEST_F(VolumeTest, ReadOnlyRemountCommitsThenRefusesAndWritesNothing) {
  std::unique_lock lock(volume_->mutex());
  client_->put(307);
  ASSERT_TRUE(volume_->set_read_only(lock, true));
  EXPECT_TRUE(volume_->read_only());
  EXPECT_EQ(volume_->check_writable().error().errno_value(), EROFS);
  const uint64_t generation = volume_->engine().committed_generation();
  lock.unlock();
  EXPECT_TRUE(committed_has(307));
  ASSERT_TRUE(volume_->close());
  EXPECT_EQ(client_->closes, 0) << "nothing is prepared for a commit that does not happen";
  open_volume();
  std::lock_guard again(volume_->mutex());
  EXPECT_EQ(volume_->engine().committed_generation(), generation);
}

TEST_F(VolumeTest, ReadPinHoldsBackACommit) {
  std::unique_lock lock(volume_->mutex());
  client_->put(308);
  Volume::ReadPin pin = volume_->pin_for_read();
  lock.unlock();
  std::atomic<bool> done{false};
  std::thread committer([&] {
    std::unique_lock inner(volume_->mutex());
    ASSERT_TRUE(volume_->commit(inner));
    done = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(done) << "a commit must wait for reads in flight";
  pin.unlock();
  committer.join();
  EXPECT_TRUE(done);
}

TEST_F(VolumeTest, CommitWaitsForTheRunningWriteout) {
  std::unique_lock lock(volume_->mutex());
  volume_->begin_writeout();
  lock.unlock();
  std::atomic<bool> done{false};
  std::thread committer([&] {
    std::unique_lock inner(volume_->mutex());
    ASSERT_TRUE(volume_->commit(inner));
    done = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(done);
  lock.lock();
  volume_->end_writeout();
  lock.unlock();
  committer.join();
  EXPECT_TRUE(done);
}

TEST_F(VolumeTest, SpaceCheckCountsBufferedBytes) {
  std::lock_guard lock(volume_->mutex());
  const uint64_t available = volume_->available_bytes();
  EXPECT_TRUE(volume_->check_space(available / 2));
  auto too_much = volume_->check_space(available + 2 * kSectorSize);
  ASSERT_FALSE(too_much);
  EXPECT_EQ(too_much.error().errno_value(), ENOSPC);
  client_->put(309);
  EXPECT_EQ(volume_->available_bytes(), available - kSectorSize);
}

TEST_F(VolumeTest, ReadOnlyOpenNeverBeginsATransaction) {
  VolumeOptions options;
  options.read_only = true;
  open_volume(options);
  std::lock_guard lock(volume_->mutex());
  EXPECT_FALSE(volume_->engine().in_transaction());
  EXPECT_TRUE(volume_->read_tree(kFsTreeId));
  EXPECT_EQ(volume_->tree(kFsTreeId).error().errno_value(), EROFS);
}

SubvolumeLink link_named(std::string_view name, uint64_t index) {
  return {
      .parent = kFsTreeId, .dirid = 256, .index = index, .name = Bytes(name.begin(), name.end())};
}

TEST_F(VolumeTest, DeletedSubvolumesAreDroppedInTheBackground) {
  VolumeOptions options;
  options.commit_interval = 50ms;
  open_volume(options);
  volume_->start_background_jobs();
  std::unique_lock lock(volume_->mutex());
  const uint64_t sub = value_or_die(volume_->catalog().create(link_named("sub", 2)));
  volume_->note_change();
  ASSERT_TRUE(volume_->commit(lock));
  ASSERT_TRUE(volume_->catalog().unlink(sub));
  volume_->note_change();
  volume_->wake_cleaner();
  ASSERT_TRUE(volume_->wait_for_deletions(lock));
  EXPECT_TRUE(value_or_die(volume_->catalog().dead_trees()).empty());
  EXPECT_EQ(volume_->catalog().get(sub).error().errno_value(), ENOENT);
}

// A deletion committed but not yet dropped when the volume went away (a
// crash, or an unmount first) is finished by the next mount's cleaner.
TEST_F(VolumeTest, AnInterruptedDeletionResumesAtTheNextMount) {
  uint64_t sub = 0;
  {
    std::unique_lock lock(volume_->mutex());
    sub = value_or_die(volume_->catalog().create(link_named("sub", 2)));
    ASSERT_TRUE(volume_->catalog().unlink(sub));
    volume_->note_change();
    ASSERT_TRUE(volume_->commit(lock));
  }
  open_volume();  // no background jobs ran
  {
    std::lock_guard lock(volume_->mutex());
    EXPECT_EQ(value_or_die(volume_->catalog().dead_trees()), std::vector<uint64_t>{sub});
  }
  volume_->start_background_jobs();
  std::unique_lock lock(volume_->mutex());
  ASSERT_TRUE(volume_->wait_for_deletions(lock));
  EXPECT_TRUE(value_or_die(volume_->catalog().dead_trees()).empty());
  lock.unlock();
  auto report = value_or_die([&] {
    std::lock_guard inner(volume_->mutex());
    volume_->engine().abort();
    auto checked = volume_->engine().check();
    EXPECT_TRUE(volume_->engine().begin());
    return checked;
  }());
  EXPECT_TRUE(report.clean()) << testing::problems_of(report);
}

class TreeHoldingClient final : public VolumeClient {
 public:
  uint64_t buffered_bytes() const override { return 0; }
  Status write_out_before_commit(std::unique_lock<std::mutex>&) override { return ok(); }
  Status flush_for_commit() override { return ok(); }
  void committed(bool) override {}
  void aborted() override {}
  Status prepare_close() override { return ok(); }
  bool uses_tree(uint64_t id) const override { return id == held; }
  uint64_t held = 0;
};

TEST_F(VolumeTest, ATreeInUseIsDroppedOnlyOnceLetGo) {
  VolumeOptions options;
  options.commit_interval = 20ms;
  open_volume(options);
  TreeHoldingClient holder;
  std::unique_lock lock(volume_->mutex());
  volume_->add_client(holder);
  const uint64_t sub = value_or_die(volume_->catalog().create(link_named("sub", 2)));
  holder.held = sub;
  ASSERT_TRUE(volume_->catalog().unlink(sub));
  volume_->note_change();
  ASSERT_TRUE(volume_->commit(lock));
  lock.unlock();
  volume_->start_background_jobs();
  std::this_thread::sleep_for(100ms);
  lock.lock();
  EXPECT_EQ(value_or_die(volume_->catalog().dead_trees()), std::vector<uint64_t>{sub});
  holder.held = 0;
  volume_->wake_cleaner();
  ASSERT_TRUE(volume_->wait_for_deletions(lock));
  EXPECT_TRUE(value_or_die(volume_->catalog().dead_trees()).empty());
  lock.unlock();
  close_volume();
}

}  // namespace
}  // namespace ecfs::store
