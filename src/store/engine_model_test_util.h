// EngineModel: drives an Engine with a random workload and keeps std::map
// models of every tree (only *_test.cc include this): random inserts,
// updates and removes through the BTree API, file extent items with data
// references and reflinks between trees, clones taken and dropped, commits
// and aborts, and reopening the device from scratch, checked against the
// models and the fsck invariant (Engine::check) after every commit.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <random>

#include "block/block_device.h"
#include "store/engine.h"
#include "store/engine_test_util.h"

namespace ecfs::store::testing {

using Model = std::map<uint64_t, TreeContents>;  // tree id -> contents

class EngineModel {
 public:
  // Formats `device` unless `format` is false (then it must hold a freshly
  // made image with the default trees).
  EngineModel(uint64_t seed, block::BlockDevice& device, uint32_t node_size, bool format = true,
              OpenOptions open_options = {})
      : rng_(seed), device_(device), open_options_(open_options) {
    if (format) {
      MkfsOptions options;
      options.node_size = node_size;
      auto made = mkfs(device_, options);
      EXPECT_TRUE(made) << made.error().to_string();
    }
    reopen();
    committed_[kFsTreeId] = {};
    committed_[kCsumTreeId] = {};
  }

  void reopen() {
    engine_.reset();
    engine_ = value_or_die(Engine::open(device_, open_options_));
  }

  uint64_t pick(uint64_t n) { return rng_() % n; }

  uint64_t random_tree(const Model& model) {
    std::vector<uint64_t> ids;
    for (const auto& [id, contents] : model) {
      if (id != kCsumTreeId) ids.push_back(id);
    }
    return ids[pick(ids.size())];
  }

  // One change to tree `id` in the running transaction.
  void change(Model& model, uint64_t id) {
    BTree* tree = value_or_die(engine_->open_tree(id));
    TreeContents& contents = model[id];
    const int op = static_cast<int>(pick(100));
    if (op < 45) {  // put a plain item
      const Key key{pick(3000), 1, pick(3)};
      const Bytes value = value_bytes(rng_(), 1 + pick(300));
      ASSERT_TRUE(tree->put(key, value));
      contents[key] = value;
    } else if (op < 70) {  // remove a plain or file extent item
      if (contents.empty()) return;
      auto it = contents.lower_bound(Key{pick(3000), 0, 0});
      if (it == contents.end()) it = contents.begin();
      if (it->first.type == kExtentDataKey) drop_file_extent_ref(id, it->first, it->second);
      ASSERT_TRUE(tree->remove(it->first));
      contents.erase(it);
    } else if (op < 85) {  // a new data extent referenced by a file extent item
      const uint64_t sectors = 1 + pick(8);
      const uint64_t length = sectors * kSectorSize;
      const uint64_t bytenr = value_or_die(engine_->allocate_data(length));
      const uint64_t skip = pick(sectors) * kSectorSize;
      const FileExtentRef ref{bytenr, length, skip, length - skip};
      put_file_extent(model, id, Key{5000 + pick(40), kExtentDataKey, pick(16) * 4096}, ref);
    } else if (op < 95) {  // reflink: share part of an extent another item names
      const uint64_t from = random_tree(model);
      std::vector<std::pair<Key, Bytes>> extents;
      for (const auto& [key, value] : model[from]) {
        if (key.type == kExtentDataKey) extents.emplace_back(key, value);
      }
      if (extents.empty()) return;
      const FileExtentRef source =
          value_or_die(decode_file_extent_ref(extents[pick(extents.size())].second));
      const uint64_t sectors = source.length / kSectorSize;
      const uint64_t first = pick(sectors);
      const uint64_t count = 1 + pick(sectors - first);
      const FileExtentRef ref{source.disk_bytenr, source.disk_length,
                              source.extent_offset + first * kSectorSize, count * kSectorSize};
      put_file_extent(model, id, Key{5000 + pick(40), kExtentDataKey, pick(16) * 4096}, ref);
    } else {  // an allocated extent nobody references: freed at commit
      (void)value_or_die(engine_->allocate_data(kSectorSize * (1 + pick(4))));
    }
  }

  void put_file_extent(Model& model, uint64_t id, const Key& key, const FileExtentRef& ref) {
    TreeContents& contents = model[id];
    BTree* tree = value_or_die(engine_->open_tree(id));
    if (auto old = contents.find(key); old != contents.end()) {
      drop_file_extent_ref(id, key, old->second);
    }
    Bytes value = encode_file_extent_ref(ref);
    value.push_back(static_cast<uint8_t>(pick(256)));  // the filesystem's own tail
    ASSERT_TRUE(tree->put(key, value));
    auto added =
        engine_->add_data_ref(ref.disk_bytenr, ref.disk_length,
                              DataRef{id, key.objectid, key.offset, ref.extent_offset, ref.length});
    ASSERT_TRUE(added) << added.error().to_string();
    contents[key] = value;
  }

  void drop_file_extent_ref(uint64_t id, const Key& key, const Bytes& value) {
    const FileExtentRef ref = value_or_die(decode_file_extent_ref(value));
    auto dropped = engine_->drop_data_ref(
        ref.disk_bytenr, ref.disk_length,
        DataRef{id, key.objectid, key.offset, ref.extent_offset, ref.length});
    ASSERT_TRUE(dropped) << dropped.error().to_string();
  }

  void check_committed(const char* when) {
    auto report = engine_->check();
    ASSERT_TRUE(report) << when << ": " << report.error().to_string();
    ASSERT_TRUE(report->clean()) << when << ":\n" << problems_of(*report);
    std::vector<uint64_t> expected_ids{kExtentTreeId, kFreeSpaceTreeId};
    for (const auto& [id, contents] : committed_) expected_ids.push_back(id);
    std::sort(expected_ids.begin(), expected_ids.end());
    ASSERT_EQ(value_or_die(engine_->list_trees()), expected_ids) << when;
    for (const auto& [id, contents] : committed_) {
      auto tree = value_or_die(engine_->committed_tree(id));
      ASSERT_TRUE(tree.check_invariants()) << when;
      ASSERT_EQ(value_or_die(read_all(tree)), contents) << when << ": tree " << id;
    }
  }

  void run(int transactions) {
    for (int t = 0; t < transactions; ++t) {
      ASSERT_TRUE(engine_->begin());
      Model working = committed_;
      const int ops = 1 + static_cast<int>(pick(120));
      for (int i = 0; i < ops; ++i) {
        const int kind = static_cast<int>(pick(100));
        if (kind < 3 && working.size() < 8) {  // clone
          const uint64_t source = random_tree(working);
          ASSERT_TRUE(engine_->clone_tree(source, next_tree_id_));
          working[next_tree_id_] = working[source];
          ++next_tree_id_;
        } else if (kind < 5 && working.size() > 3) {  // drop (keep tree 5)
          const uint64_t id = random_tree(working);
          if (id == kFsTreeId) continue;
          ASSERT_TRUE(engine_->drop_tree(id));
          working.erase(id);
        } else if (kind < 6 && working.size() < 8) {  // a new empty tree
          ASSERT_TRUE(engine_->create_tree(next_tree_id_));
          working[next_tree_id_++] = {};
        } else {
          change(working, random_tree(working));
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
      if (pick(6) == 0) {
        engine_->abort();
        ++aborts_;
      } else {
        auto committed = engine_->commit();
        ASSERT_TRUE(committed) << committed.error().to_string();
        committed_ = std::move(working);
        ++commits_;
        if (after_commit_) after_commit_();
      }
      check_committed("after commit/abort");
      if (::testing::Test::HasFatalFailure()) return;
      if (pick(5) == 0) {
        reopen();
        ++reopens_;
        check_committed("after reopen");
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }

  std::mt19937_64 rng_;
  block::BlockDevice& device_;
  OpenOptions open_options_;
  std::unique_ptr<Engine> engine_;
  // Called after every successful commit.
  std::function<void()> after_commit_;
  Model committed_;
  uint64_t next_tree_id_ = kFirstFreeTreeId;
  int commits_ = 0;
  int aborts_ = 0;
  int reopens_ = 0;
};

}  // namespace ecfs::store::testing
