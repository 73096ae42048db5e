// A FileData on a fresh engine on a MemoryDevice, with the bookkeeping a
// FileSystem would do (each file's size and nbytes), for the FileData tests
// (only *_test.cc include this).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <vector>

#include "block/memory_device.h"
#include "fs/file_data.h"
#include "store/engine.h"
#include "store/engine_test_util.h"

namespace ecfs::fs::testing {

using store::testing::problems_of;
using store::testing::value_or_die;

// Deterministic bytes, never zero (so that any zero read is a hole or a
// zeroed range, never data).
inline Bytes pattern(uint64_t seed, size_t size) {
  Bytes out(size);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<uint8_t>(x % 255 + 1);
  }
  return out;
}

class FileDataTest : public ::testing::Test {
 protected:
  struct File {
    uint64_t size = 0;
    int64_t nbytes = 0;
  };

  explicit FileDataTest(uint64_t device_size = 256ull << 20) : device_(device_size) {}

  void SetUp() override {
    store::MkfsOptions mkfs_options;
    mkfs_options.node_size = 4096;  // small nodes: deep trees from few items
    ASSERT_TRUE(store::mkfs(device_, mkfs_options));
    open_engine();
  }

  void TearDown() override {
    data_.reset();
    engine_.reset();
  }

  void open_engine() {
    auto engine = store::Engine::open(device_);
    ASSERT_TRUE(engine) << engine.error().to_string();
    engine_ = std::move(*engine);
    ASSERT_TRUE(engine_->begin());
    data_ = std::make_unique<FileData>(*engine_, store::kFsTreeId, options_);
  }

  // Commits (without flushing) and runs fsck, then begins a new transaction.
  void commit_and_check() {
    auto committed = engine_->commit();
    ASSERT_TRUE(committed) << committed.error().to_string();
    auto report = engine_->check();
    ASSERT_TRUE(report) << report.error().to_string();
    EXPECT_TRUE(report->clean()) << problems_of(*report);
    ASSERT_TRUE(engine_->begin());
  }

  // Flushes everything, commits, checks, then opens the engine afresh.
  void flush_commit_reopen() {
    ASSERT_TRUE(data_->flush_all());
    commit_and_check();
    engine_->abort();
    data_.reset();
    engine_.reset();
    open_engine();
  }

  // The FileSystem's part of each operation: apply the nbytes change and
  // the new size.
  void write(uint64_t ino, uint64_t offset, ByteSpan bytes) {
    File& file = files_[ino];
    auto delta = data_->write(ino, file.size, offset, bytes);
    ASSERT_TRUE(delta) << delta.error().to_string();
    file.nbytes += *delta;
    file.size = std::max(file.size, offset + bytes.size());
  }
  void truncate(uint64_t ino, uint64_t size) {
    File& file = files_[ino];
    auto delta = data_->truncate(ino, file.size, size);
    ASSERT_TRUE(delta) << delta.error().to_string();
    file.nbytes += *delta;
    file.size = size;
  }

  Bytes read(uint64_t ino, uint64_t offset, uint64_t length) {
    Bytes out(length, 0xee);
    auto got = data_->read(ino, files_[ino].size, offset, out);
    EXPECT_TRUE(got) << got.error().to_string();
    if (!got) return {};
    out.resize(*got);
    return out;
  }
  Bytes read_all(uint64_t ino) { return read(ino, 0, files_[ino].size); }

  std::vector<PlacedExtent> extents(uint64_t ino) {
    auto tree = value_or_die(engine_->open_tree(store::kFsTreeId));
    return value_or_die(extents_in(*tree, ino, 0, UINT64_MAX));
  }

  // The nbytes the extent items account for (after a flush: the buffer is
  // empty).
  uint64_t allocated_by_items(uint64_t ino) {
    uint64_t total = 0;
    for (const PlacedExtent& extent : extents(ino)) total += extent.item.length;
    return total;
  }

  // The committed reference count of data extent `bytenr` (0 if absent).
  // Outside a transaction.
  uint64_t committed_refs(uint64_t bytenr) {
    auto tree = value_or_die(engine_->committed_tree(store::kExtentTreeId));
    auto item = value_or_die(tree.lower_bound({bytenr, store::kExtentItemKey, 0}));
    if (!item || item->key.objectid != bytenr || item->key.type != store::kExtentItemKey) return 0;
    return value_or_die(store::decode_extent_item(item->data)).refs;
  }

  block::MemoryDevice device_;
  FileDataOptions options_;
  std::unique_ptr<store::Engine> engine_;
  std::unique_ptr<FileData> data_;
  std::map<uint64_t, File> files_;
};

}  // namespace ecfs::fs::testing
