// Buffered data past the dirty limit is written out with the filesystem's
// lock released (FileSystem::write_out_buffered): these tests hold a
// writeout at the device and check what may go on meanwhile (writes beside
// it, reads of it) and what must wait (writes over it, truncates, commits),
// then run writers, truncates and syncs together against a model.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "block/memory_device.h"
#include "block/wrapping_device.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"

namespace ecfs::fs {
namespace {

using namespace std::chrono_literals;
using testing::kRootCaller;
using testing::must;

// Holds the first write after arm() until release().
class GatedDevice final : public block::WrappingDevice {
 public:
  using WrappingDevice::WrappingDevice;
  void arm() {
    std::lock_guard lock(mutex_);
    armed_ = true;
    entered_ = false;
  }
  // True once a write is held (within `timeout`).
  bool wait_until_held(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return entered_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    armed_ = false;
    changed_.notify_all();
  }
  Status write(uint64_t offset, ByteSpan data) override {
    {
      std::unique_lock lock(mutex_);
      if (armed_) {
        entered_ = true;
        changed_.notify_all();
        changed_.wait(lock, [&] { return !armed_; });
      }
    }
    return WrappingDevice::write(offset, data);
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool armed_ = false;
  bool entered_ = false;
};

Bytes pattern(uint8_t seed, size_t size) {
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 12));
  return out;
}

Bytes read_all(FileSystem& fs, uint64_t ino, size_t size) {
  Bytes out(size);
  EXPECT_EQ(must(fs.read(ino, 0, out)), size);
  return out;
}

// Lets the held write go at the end of a test, whatever failed, before the
// futures declared earlier wait for their threads.
struct ReleaseAtExit {
  GatedDevice& device;
  ~ReleaseAtExit() { device.release(); }
};

// Closes `fs` (committing) and opens the device again.
void remount(std::unique_ptr<FileSystem>& fs, block::BlockDevice& device,
             const MountOptions& options) {
  must(fs->close());
  fs.reset();
  fs = must(FileSystem::open(device, options));
}

// Closes `fs` and checks the whole device.
void close_and_check(std::unique_ptr<FileSystem>& fs, block::BlockDevice& device) {
  must(fs->close());
  fs.reset();
  testing::expect_full_check_clean(device);
}

template <typename T>
bool finishes_within(std::future<T>& future, std::chrono::milliseconds timeout) {
  return future.wait_for(timeout) == std::future_status::ready;
}

TEST(ConcurrentWriteoutTest, WritesBesideAWriteoutGoOnAndWritesOverItWait) {
  block::MemoryDevice memory(64ull << 20);
  GatedDevice device(memory);
  testing::make_filesystem(device);
  MountOptions options;
  options.dirty_data_limit = 1 << 20;
  auto fs = must(FileSystem::open(device, options));
  const uint64_t big = must(fs->mknod(kRootDirIno, "big", S_IFREG | 0644, 0, kRootCaller)).ino;
  const uint64_t other = must(fs->mknod(kRootDirIno, "other", S_IFREG | 0644, 0, kRootCaller)).ino;
  constexpr size_t kBig = 2 << 20;
  const Bytes first = pattern(1, kBig);

  std::future<Result<size_t>> writing_out, other_write, overwrite;
  std::future<Result<Attributes>> truncate;
  std::future<Status> synced;
  // Whatever fails below, the device lets the held write go before the
  // futures wait for their threads.
  ReleaseAtExit release_at_exit{device};

  // This write passes the limit: it writes out the buffered data and is
  // held at the device, with the filesystem's lock released.
  device.arm();
  writing_out = std::async(std::launch::async, [&] { return fs->write(big, 0, first); });
  ASSERT_TRUE(device.wait_until_held(10s)) << "the write did not start a writeout";

  // Meanwhile: a write to another file, a write past the frozen data, a
  // read of the data being written out and a getattr all complete.
  const Bytes beside = pattern(2, 64 << 10);
  other_write = std::async(std::launch::async, [&] { return fs->write(other, 0, beside); });
  ASSERT_TRUE(finishes_within(other_write, 10s)) << "a write waited for an unrelated writeout";
  EXPECT_EQ(must(other_write.get()), beside.size());
  const Bytes tail = pattern(3, 4096);
  EXPECT_EQ(must(fs->write(big, kBig, tail)), tail.size());
  EXPECT_EQ(read_all(*fs, big, kBig), first);
  EXPECT_EQ(must(fs->getattr(big)).size, kBig + tail.size());

  // A write over the frozen data, a truncate and a sync wait for the
  // writeout (nothing they do may land before it ends).
  const Bytes over = pattern(4, 8192);
  // (The overwrite and the truncate may then run in either order: both
  // leave the same bytes.)
  overwrite = std::async(std::launch::async, [&] { return fs->write(big, 4096, over); });
  EXPECT_FALSE(finishes_within(overwrite, 200ms)) << "a write over frozen data did not wait";
  SetAttributes shrink;
  shrink.size = kBig / 2;
  truncate = std::async(std::launch::async, [&] { return fs->setattr(big, shrink); });
  EXPECT_FALSE(finishes_within(truncate, 200ms)) << "a truncate did not wait for the writeout";
  synced = std::async(std::launch::async, [&] { return fs->sync(); });
  EXPECT_FALSE(finishes_within(synced, 200ms)) << "a commit did not wait for the writeout";

  device.release();
  EXPECT_EQ(must(writing_out.get()), first.size());
  EXPECT_EQ(must(overwrite.get()), over.size());
  must(truncate.get());
  must(synced.get());

  Bytes expected(first.begin(), first.begin() + kBig / 2);
  std::memcpy(expected.data() + 4096, over.data(), over.size());
  EXPECT_EQ(read_all(*fs, big, kBig / 2), expected);
  EXPECT_EQ(must(fs->getattr(big)).size, kBig / 2);

  // As committed.
  remount(fs, device, options);
  EXPECT_EQ(read_all(*fs, big, kBig / 2), expected);
  EXPECT_EQ(read_all(*fs, other, beside.size()), beside);
  close_and_check(fs, device);
}

// A sync (or fsync, or the periodic commit) with much data buffered writes
// it out with the lock released too: other requests go on meanwhile, a
// write over the data being written waits.
TEST(ConcurrentWriteoutTest, ASyncWritesTheBulkOutWithoutTheLock) {
  block::MemoryDevice memory(64ull << 20);
  GatedDevice device(memory);
  testing::make_filesystem(device);
  MountOptions options;
  options.dirty_data_limit = 32 << 20;  // the writes below stay buffered
  options.commit_interval = std::chrono::hours(1);
  auto fs = must(FileSystem::open(device, options));
  const uint64_t big = must(fs->mknod(kRootDirIno, "big", S_IFREG | 0644, 0, kRootCaller)).ino;
  const Bytes first = pattern(7, 8 << 20);
  must(fs->write(big, 0, first));
  std::future<Status> synced;
  std::future<Result<size_t>> overwrite;
  ReleaseAtExit release_at_exit{device};

  device.arm();
  synced = std::async(std::launch::async, [&] { return fs->fsync(big, false); });
  ASSERT_TRUE(device.wait_until_held(10s)) << "the fsync wrote nothing";
  // Held at the device: a create, a write beside, a read and a getattr go on.
  const Bytes beside = pattern(8, 64 << 10);
  auto other_write = std::async(std::launch::async, [&]() -> Result<size_t> {
    auto other = fs->mknod(kRootDirIno, "other", S_IFREG | 0644, 0, kRootCaller);
    if (!other) return std::unexpected(other.error());
    return fs->write(other->ino, 0, beside);
  });
  ASSERT_TRUE(finishes_within(other_write, 10s)) << "requests waited for a sync's writeout";
  EXPECT_EQ(must(other_write.get()), beside.size());
  EXPECT_EQ(read_all(*fs, big, first.size()), first);
  // A write over the data being written out waits.
  const Bytes over = pattern(9, 4096);
  overwrite = std::async(std::launch::async, [&] { return fs->write(big, 0, over); });
  EXPECT_FALSE(finishes_within(overwrite, 200ms)) << "a write over frozen data did not wait";

  device.release();
  must(synced.get());
  EXPECT_EQ(must(overwrite.get()), over.size());
  Bytes expected = first;
  std::memcpy(expected.data(), over.data(), over.size());
  EXPECT_EQ(read_all(*fs, big, first.size()), expected);

  remount(fs, device, options);
  EXPECT_EQ(read_all(*fs, big, first.size()), expected);
  const uint64_t other = must(fs->lookup(kRootDirIno, "other")).ino;
  EXPECT_EQ(read_all(*fs, other, beside.size()), beside);
  close_and_check(fs, device);
}

// A writeout that fails at the device aborts the transaction: the mount
// turns read-only and what was committed before stays.
TEST(ConcurrentWriteoutTest, AFailedWriteoutLeavesTheCommittedState) {
  block::MemoryDevice memory(64ull << 20);
  class FailingDevice final : public block::WrappingDevice {
   public:
    using WrappingDevice::WrappingDevice;
    std::atomic<bool> fail_writes = false;
    Status write(uint64_t offset, ByteSpan data) override {
      if (fail_writes) return fail(EIO, "injected write error");
      return WrappingDevice::write(offset, data);
    }
  } device(memory);
  testing::make_filesystem(device);
  MountOptions options;
  options.dirty_data_limit = 1 << 20;
  auto fs = must(FileSystem::open(device, options));
  const uint64_t ino = must(fs->mknod(kRootDirIno, "f", S_IFREG | 0644, 0, kRootCaller)).ino;
  const Bytes committed = pattern(5, 64 << 10);
  must(fs->write(ino, 0, committed));
  must(fs->sync());
  device.fail_writes = true;
  auto written = fs->write(ino, 0, pattern(6, 2 << 20));
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().errno_value(), EIO);
  EXPECT_EQ(testing::error_of(fs->write(ino, 0, committed)), EROFS);
  device.fail_writes = false;
  fs.reset();
  fs = must(FileSystem::open(device, options));
  EXPECT_EQ(read_all(*fs, ino, committed.size()), committed);
  close_and_check(fs, device);
}

// Writers of their own files, each checking its reads against its own
// model, with a small dirty limit so that writeouts run all the time, beside
// truncates and syncs; then the committed files against the models.
TEST(ConcurrentWriteoutTest, WritersTruncatesAndSyncsAgreeWithTheModel) {
  block::MemoryDevice memory(256ull << 20);
  testing::make_filesystem(memory);
  MountOptions options;
  options.dirty_data_limit = 256 << 10;
  auto fs = must(FileSystem::open(memory, options));
  constexpr int kWriters = 3;
  constexpr size_t kMaxSize = 3 << 20;
  std::vector<uint64_t> inos;
  for (int i = 0; i < kWriters; ++i) {
    inos.push_back(
        must(fs->mknod(kRootDirIno, "f" + std::to_string(i), S_IFREG | 0644, 0, kRootCaller)).ino);
  }
  std::vector<Bytes> models(kWriters);
  std::vector<std::string> problems(kWriters);
  auto writer = [&](int index) {
    std::mt19937 random(static_cast<uint32_t>(index + 1));
    Bytes& model = models[index];
    const uint64_t ino = inos[index];
    for (int step = 0; step < 600 && problems[index].empty(); ++step) {
      const uint32_t choice = random() % 100;
      if (choice < 70) {
        // Mostly sequential-ish runs, some small unaligned writes.
        const size_t length = choice < 35 ? (random() % 256 + 1) << 10 : random() % 9000 + 1;
        const size_t offset = random() % (kMaxSize - length);
        const Bytes data = pattern(static_cast<uint8_t>(random()), length);
        auto written = fs->write(ino, offset, data);
        if (!written || *written != length) {
          problems[index] = "write failed";
          break;
        }
        if (model.size() < offset + length) model.resize(offset + length, 0);
        std::memcpy(model.data() + offset, data.data(), length);
      } else if (choice < 80) {
        SetAttributes change;
        change.size = random() % kMaxSize;
        if (!fs->setattr(ino, change)) {
          problems[index] = "truncate failed";
          break;
        }
        model.resize(*change.size, 0);
      } else if (choice < 85) {
        if (!fs->sync()) problems[index] = "sync failed";
      } else {
        const size_t offset = model.empty() ? 0 : random() % model.size();
        const size_t length = std::min<size_t>(model.size() - offset, random() % (512 << 10));
        Bytes out(length);
        auto read = fs->read(ino, offset, out);
        if (!read || *read != length ||
            !std::equal(out.begin(), out.end(), model.begin() + static_cast<ptrdiff_t>(offset))) {
          problems[index] = "read at " + std::to_string(offset) + " disagrees with the model";
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) threads.emplace_back(writer, i);
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kWriters; ++i) EXPECT_EQ(problems[i], "") << "writer " << i;
  remount(fs, memory, options);
  for (int i = 0; i < kWriters; ++i) {
    EXPECT_EQ(must(fs->getattr(inos[i])).size, models[i].size());
    EXPECT_TRUE(read_all(*fs, inos[i], models[i].size()) == models[i]) << "file " << i;
  }
  close_and_check(fs, memory);
}

}  // namespace
}  // namespace ecfs::fs
