#include "store/relocation.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <set>

#include "block/memory_device.h"
#include "store/engine_test_util.h"

namespace ecfs::store {
namespace {

using testing::space_map;
using testing::TreeContents;
using testing::value_bytes;
using testing::value_or_die;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kSector = kSectorSize;

// An EXTENT_DATA item: the 32-byte head the engine reads plus bytes that
// belong to the filesystem layer (kept unchanged by relocation).
Bytes extent_item(const FileExtentRef& ref, uint64_t tag) {
  Bytes data = value_bytes(tag, kFileExtentRefSize + 13);
  encode_file_extent_ref(ref, data);
  return data;
}

class RelocationTest : public testing::EngineFixture {
 protected:
  explicit RelocationTest(uint64_t device_size = 64 * kMiB) : EngineFixture(device_size) {}

  Bytes raw(uint64_t bytenr, uint64_t length) {
    Bytes out(length);
    EXPECT_TRUE(device_.read(bytenr, out));
    return out;
  }

  // A data extent of `sectors` sectors filled with bytes derived from `tag`
  // (standing in for ciphertext: relocation never looks at it).
  uint64_t new_extent(uint64_t sectors, uint64_t tag) {
    const uint64_t bytenr = value_or_die(engine_->allocate_data(sectors * kSector));
    // Through the engine, so every sector gets its checksum.
    EXPECT_TRUE(engine_->write_data(bytenr, value_bytes(tag, sectors * kSector)));
    return bytenr;
  }

  // Inserts EXTENT_DATA (objectid, offset) into tree `id` naming
  // [extent_offset, +length) of the extent and adds its reference.
  void add_ref(uint64_t id, uint64_t objectid, uint64_t offset, uint64_t bytenr,
               uint64_t disk_length, uint64_t extent_offset, uint64_t length) {
    BTree* tree = value_or_die(engine_->open_tree(id));
    const FileExtentRef ref{bytenr, disk_length, extent_offset, length};
    ECFS_ASSERT_OK(tree->insert(Key{objectid, kExtentDataKey, offset}, extent_item(ref, offset)));
    ECFS_ASSERT_OK(engine_->add_data_ref(bytenr, disk_length,
                                         DataRef{id, objectid, offset, extent_offset, length}));
  }

  // Filler items so that trees have several levels.
  void fill(uint64_t id, uint64_t first, uint64_t count) {
    BTree* tree = value_or_die(engine_->open_tree(id));
    for (uint64_t i = first; i < first + count; ++i) {
      ECFS_ASSERT_OK(tree->put(Key{i, 1, 0}, value_bytes(i, 60)));
    }
  }

  FileExtentRef committed_ref(uint64_t id, uint64_t objectid, uint64_t offset) {
    BTree tree = value_or_die(engine_->committed_tree(id));
    auto data = value_or_die(tree.find(Key{objectid, kExtentDataKey, offset}));
    EXPECT_TRUE(data.has_value());
    if (!data) return {};
    return value_or_die(decode_file_extent_ref(*data));
  }

  // Every node bytenr reachable from every committed tree (and the root tree).
  std::set<uint64_t> committed_nodes() {
    std::set<uint64_t> nodes;
    const Superblock& sb = engine_->superblock();
    BTree root(*engine_, kRootTreeId,
               RootRef{sb.root_tree_bytenr, sb.root_tree_generation, sb.root_tree_level});
    auto visit = [&](const Node& node) {
      nodes.insert(node.bytenr);
      return true;
    };
    EXPECT_TRUE(root.for_each_node(visit));
    for (uint64_t id : value_or_die(engine_->list_trees())) {
      EXPECT_TRUE(value_or_die(engine_->committed_tree(id)).for_each_node(visit));
    }
    return nodes;
  }

  std::map<uint64_t, TreeContents> all_trees() {
    std::map<uint64_t, TreeContents> out;
    for (uint64_t id : value_or_die(engine_->list_trees())) {
      if (!is_unshared_tree(id)) out[id] = committed(id);  // not the extent, free-space trees
    }
    return out;
  }

  // Reads through the engine: every sector is verified against its
  // checksum, so this fails unless the checksums moved with the data.
  Bytes checked(uint64_t bytenr, uint64_t length) {
    auto data = engine_->read_data(bytenr, length);
    EXPECT_TRUE(data) << data.error().to_string();
    return data ? *data : Bytes{};
  }
};

TEST_F(RelocationTest, SingleReferenceMovesAndOldSpaceIsFreed) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t old = new_extent(3, 7);
  add_ref(kFsTreeId, 257, 0, old, 3 * kSector, 0, 3 * kSector);
  ECFS_ASSERT_OK(engine_->commit());
  const Bytes before = raw(old, 3 * kSector);
  const TreeContents fs_before = committed(kFsTreeId);

  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t moved = value_or_die(relocate_data_extent(*engine_, old));
  EXPECT_NE(moved, old);
  ECFS_ASSERT_OK(engine_->commit());
  reopen();

  EXPECT_EQ(committed_ref(kFsTreeId, 257, 0), (FileExtentRef{moved, 3 * kSector, 0, 3 * kSector}));
  EXPECT_EQ(raw(moved, 3 * kSector), before);
  EXPECT_EQ(checked(moved, 3 * kSector), before);
  EXPECT_TRUE(space_map(*engine_).is_free(old, 3 * kSector));
  EXPECT_FALSE(space_map(*engine_).is_free(moved, 3 * kSector));
  // The filesystem layer's part of the item is untouched.
  const TreeContents fs_after = committed(kFsTreeId);
  const Key key{257, kExtentDataKey, 0};
  EXPECT_TRUE(std::equal(fs_before.at(key).begin() + kFileExtentRefSize, fs_before.at(key).end(),
                         fs_after.at(key).begin() + kFileExtentRefSize));
  expect_clean();
}

TEST_F(RelocationTest, ReflinksAndPartialReferencesKeepTheirRanges) {
  ECFS_ASSERT_OK(engine_->begin());
  fill(kFsTreeId, 1, 300);
  ASSERT_TRUE(engine_->create_tree(256));
  const uint64_t len = 4 * kSector;
  const uint64_t old = new_extent(4, 9);
  add_ref(kFsTreeId, 1000, 0, old, len, 0, len);                    // whole
  add_ref(kFsTreeId, 1001, 8192, old, len, kSector, kSector);       // partial, middle
  add_ref(kFsTreeId, 1001, 65536, old, len, 3 * kSector, kSector);  // partial, tail
  add_ref(256, 5000, 4096, old, len, 2 * kSector, 2 * kSector);     // another tree
  ECFS_ASSERT_OK(engine_->commit());
  const Bytes before = raw(old, len);

  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t moved = value_or_die(relocate_data_extent(*engine_, old));
  ECFS_ASSERT_OK(engine_->commit());
  reopen();

  EXPECT_EQ(committed_ref(kFsTreeId, 1000, 0), (FileExtentRef{moved, len, 0, len}));
  EXPECT_EQ(committed_ref(kFsTreeId, 1001, 8192), (FileExtentRef{moved, len, kSector, kSector}));
  EXPECT_EQ(committed_ref(kFsTreeId, 1001, 65536),
            (FileExtentRef{moved, len, 3 * kSector, kSector}));
  EXPECT_EQ(committed_ref(256, 5000, 4096), (FileExtentRef{moved, len, 2 * kSector, 2 * kSector}));
  EXPECT_EQ(raw(moved, len), before);
  EXPECT_EQ(checked(moved, len), before);
  EXPECT_TRUE(space_map(*engine_).is_free(old, len));
  expect_clean();
}

TEST_F(RelocationTest, ReferencesFromClonesAllMove) {
  ECFS_ASSERT_OK(engine_->begin());
  fill(kFsTreeId, 1, 400);  // several levels: clones share internal nodes and leaves
  const uint64_t len = 2 * kSector;
  const uint64_t old = new_extent(2, 3);
  add_ref(kFsTreeId, 200, 0, old, len, 0, len);
  add_ref(kFsTreeId, 390, 4096, old, len, kSector, kSector);
  ECFS_ASSERT_OK(engine_->clone_tree(kFsTreeId, 300));
  ECFS_ASSERT_OK(engine_->commit());
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->clone_tree(300, 301));
  // Clone 301 changes a leaf far from the references: some leaves shared by
  // three trees, some by two.
  fill(301, 5, 3);
  ECFS_ASSERT_OK(engine_->commit());
  const auto trees_before = all_trees();
  const Bytes before = raw(old, len);

  ECFS_ASSERT_OK(engine_->begin());
  // A clone taken in the relocating transaction shares the leaves too.
  ECFS_ASSERT_OK(engine_->clone_tree(kFsTreeId, 302));
  const uint64_t moved = value_or_die(relocate_data_extent(*engine_, old));
  ECFS_ASSERT_OK(engine_->commit());
  reopen();

  for (uint64_t id : {kFsTreeId, uint64_t{300}, uint64_t{301}, uint64_t{302}}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(committed_ref(id, 200, 0), (FileExtentRef{moved, len, 0, len}));
    EXPECT_EQ(committed_ref(id, 390, 4096), (FileExtentRef{moved, len, kSector, kSector}));
    // Everything else is as it was.
    TreeContents expected = trees_before.at(id == 302 ? kFsTreeId : id);
    TreeContents actual = committed(id);
    for (auto* contents : {&expected, &actual}) {
      contents->erase(Key{200, kExtentDataKey, 0});
      contents->erase(Key{390, kExtentDataKey, 4096});
    }
    EXPECT_EQ(actual, expected);
  }
  EXPECT_EQ(raw(moved, len), before);
  EXPECT_EQ(checked(moved, len), before);
  EXPECT_TRUE(space_map(*engine_).is_free(old, len));
  expect_clean();
}

TEST_F(RelocationTest, ExtentWrittenInTheSameTransaction) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t old = new_extent(1, 11);
  add_ref(kFsTreeId, 257, 0, old, kSector, 0, kSector);
  const uint64_t moved = value_or_die(relocate_data_extent(*engine_, old));
  ECFS_ASSERT_OK(engine_->commit());
  reopen();
  EXPECT_EQ(committed_ref(kFsTreeId, 257, 0), (FileExtentRef{moved, kSector, 0, kSector}));
  EXPECT_EQ(checked(moved, kSector), value_bytes(11, kSector));
  EXPECT_TRUE(space_map(*engine_).is_free(old, kSector));
  expect_clean();
}

TEST_F(RelocationTest, RejectsWhatIsNotADataExtent) {
  EXPECT_EQ(relocate_data_extent(*engine_, 2 * kMiB).error().errno_value(),
            EINVAL);  // no transaction
  ECFS_ASSERT_OK(engine_->begin());
  EXPECT_EQ(relocate_data_extent(*engine_, 32 * kMiB).error().errno_value(), ENOENT);
  const uint64_t node = value_or_die(engine_->open_tree(kFsTreeId))->root().bytenr;
  EXPECT_EQ(relocate_data_extent(*engine_, node).error().errno_value(), ENOENT);
  EXPECT_EQ(relocate_tree_node(*engine_, 32 * kMiB).error().errno_value(), ENOENT);
  engine_->abort();
  EXPECT_EQ(
      relocate_tree_node(*engine_, engine_->superblock().root_tree_bytenr).error().errno_value(),
      EINVAL);  // no transaction
}

class RelocationNoSpaceTest : public RelocationTest {
 protected:
  RelocationNoSpaceTest() : RelocationTest(16 * kMiB) {}
};

TEST_F(RelocationNoSpaceTest, EnospcLeavesTheStateUnchangedAfterAbort) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t len = 10 * kMiB;  // a second copy cannot fit on 16 MiB
  const uint64_t old = new_extent(len / kSector, 5);
  add_ref(kFsTreeId, 257, 0, old, len, 0, len);
  ECFS_ASSERT_OK(engine_->commit());
  const auto trees_before = all_trees();
  const uint64_t free_before = space_map(*engine_).free_bytes();
  const uint64_t generation = engine_->committed_generation();

  ECFS_ASSERT_OK(engine_->begin());
  auto moved = relocate_data_extent(*engine_, old);
  ASSERT_FALSE(moved);
  EXPECT_EQ(moved.error().errno_value(), ENOSPC);
  engine_->abort();

  EXPECT_EQ(engine_->committed_generation(), generation);
  EXPECT_EQ(space_map(*engine_).free_bytes(), free_before);
  EXPECT_EQ(all_trees(), trees_before);
  EXPECT_EQ(committed_ref(kFsTreeId, 257, 0), (FileExtentRef{old, len, 0, len}));
  reopen();
  EXPECT_EQ(all_trees(), trees_before);
  expect_clean();
}

// The nodes of committed tree `id`, by level: level -> bytenrs.
std::map<uint8_t, std::vector<uint64_t>> nodes_by_level(Engine& engine, uint64_t id) {
  std::map<uint8_t, std::vector<uint64_t>> out;
  EXPECT_TRUE(value_or_die(engine.committed_tree(id)).for_each_node([&](const Node& node) {
    out[node.level].push_back(node.bytenr);
    return true;
  }));
  return out;
}

TEST_F(RelocationTest, TreeNodesMoveLeafInternalRootAndShared) {
  ECFS_ASSERT_OK(engine_->begin());
  fill(kFsTreeId, 1, 8000);  // three levels with 4 KiB nodes
  ECFS_ASSERT_OK(engine_->commit());
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->clone_tree(kFsTreeId, 300));
  fill(300, 7990, 5);  // the clone diverges on its last leaf only
  ECFS_ASSERT_OK(engine_->commit());

  // A leaf and an internal node shared by both trees, the root of the
  // source (no longer shared: the clone cowed its root) and a leaf of the
  // extent tree. Chosen just before each move: commits move extent tree
  // nodes by themselves.
  const std::vector<std::function<uint64_t()>> choose = {
      [&] { return nodes_by_level(*engine_, kFsTreeId)[0][1]; },
      [&] { return nodes_by_level(*engine_, kFsTreeId)[1][0]; },
      [&] { return nodes_by_level(*engine_, kFsTreeId).rbegin()->second[0]; },
      [&] { return nodes_by_level(*engine_, kExtentTreeId)[0][0]; },
  };
  ASSERT_GE(nodes_by_level(*engine_, kFsTreeId).size(), 3u);
  ASSERT_EQ(nodes_by_level(*engine_, kFsTreeId)[0][1], nodes_by_level(*engine_, 300)[0][1]);
  for (const auto& chooser : choose) {
    const uint64_t victim = chooser();
    SCOPED_TRACE(victim);
    const auto trees_before = all_trees();
    ASSERT_TRUE(committed_nodes().contains(victim));
    ECFS_ASSERT_OK(engine_->begin());
    ECFS_ASSERT_OK(relocate_tree_node(*engine_, victim));
    ECFS_ASSERT_OK(engine_->commit());
    reopen();
    EXPECT_FALSE(committed_nodes().contains(victim));
    EXPECT_EQ(all_trees(), trees_before);
    expect_clean();
  }
}

// The nodes of the committed root tree, by level.
std::map<uint8_t, std::vector<uint64_t>> root_tree_nodes(Engine& engine) {
  const Superblock& sb = engine.superblock();
  std::map<uint8_t, std::vector<uint64_t>> out;
  EXPECT_TRUE(BTree(engine, kRootTreeId,
                    RootRef{sb.root_tree_bytenr, sb.root_tree_generation, sb.root_tree_level})
                  .for_each_node([&](const Node& node) {
                    out[node.level].push_back(node.bytenr);
                    return true;
                  }));
  return out;
}

TEST_F(RelocationTest, EveryRootTreeNodeMoves) {
  // A root tree of three levels: with 4 KiB nodes a leaf holds at most 54
  // ROOT_ITEMs (48 bytes + a 25-byte item header) and an internal node 121
  // pointers. Clones cost no node of their own; a few trees have their own.
  ECFS_ASSERT_OK(engine_->begin());
  fill(kFsTreeId, 1, 5);
  for (uint64_t id = kFirstFreeTreeId; id < kFirstFreeTreeId + 10000; ++id) {
    if (id % 1000 == 0) {
      ECFS_ASSERT_OK(engine_->create_tree(id));
      fill(id, id, 3);
    } else {
      ECFS_ASSERT_OK(engine_->clone_tree(kFsTreeId, id));
    }
  }
  ECFS_ASSERT_OK(engine_->commit());
  const auto before = root_tree_nodes(*engine_);
  ASSERT_EQ(before.size(), 3u);
  std::set<uint64_t> old_nodes;
  for (const auto& [level, bytenrs] : before) old_nodes.insert(bytenrs.begin(), bytenrs.end());
  const auto trees_before = all_trees();

  // Leaves first, then their parents (which the leaves' moves already
  // cowed, so those are no-ops), then the root: every order must work.
  ECFS_ASSERT_OK(engine_->begin());
  for (const auto& [level, bytenrs] : before) {
    for (uint64_t bytenr : bytenrs) ECFS_ASSERT_OK(relocate_tree_node(*engine_, bytenr));
  }
  ECFS_ASSERT_OK(engine_->commit());
  reopen();

  const auto after = root_tree_nodes(*engine_);
  ASSERT_EQ(after.size(), 3u);
  for (const auto& [level, bytenrs] : after) {
    EXPECT_EQ(bytenrs.size(), before.at(level).size()) << "level " << int{level};
    for (uint64_t bytenr : bytenrs) EXPECT_FALSE(old_nodes.contains(bytenr)) << bytenr;
  }
  EXPECT_NE(engine_->superblock().root_tree_bytenr, before.rbegin()->second[0]);
  for (uint64_t bytenr : old_nodes) {
    EXPECT_TRUE(space_map(*engine_).is_free(bytenr, engine_->node_size())) << bytenr;
  }
  EXPECT_EQ(all_trees(), trees_before);
  expect_clean();
}

TEST_F(RelocationTest, RootTreeNodeWrittenInTheSameTransactionMoves) {
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->create_tree(400));
  fill(400, 1, 10);
  BTree* root_tree = engine_->root_tree_for_relocation();
  ASSERT_NE(root_tree, nullptr);
  const uint64_t dirty_root = root_tree->root().bytenr;
  ASSERT_NE(dirty_root, engine_->superblock().root_tree_bytenr);  // cowed by create_tree
  ECFS_ASSERT_OK(relocate_tree_node(*engine_, dirty_root));
  EXPECT_NE(root_tree->root().bytenr, dirty_root);
  ECFS_ASSERT_OK(engine_->commit());
  reopen();
  EXPECT_NE(engine_->superblock().root_tree_bytenr, dirty_root);
  EXPECT_TRUE(space_map(*engine_).is_free(dirty_root, engine_->node_size()));
  EXPECT_EQ(committed(400).size(), 10u);
  expect_clean();
}

TEST_F(RelocationTest, NodeWrittenInTheSameTransactionMoves) {
  ECFS_ASSERT_OK(engine_->begin());
  fill(kFsTreeId, 1, 50);
  BTree* tree = value_or_die(engine_->open_tree(kFsTreeId));
  const uint64_t dirty_root = tree->root().bytenr;
  ECFS_ASSERT_OK(relocate_tree_node(*engine_, dirty_root));
  EXPECT_NE(tree->root().bytenr, dirty_root);
  ECFS_ASSERT_OK(engine_->commit());
  reopen();
  EXPECT_FALSE(committed_nodes().contains(dirty_root));
  EXPECT_EQ(committed(kFsTreeId).size(), 50u);
  expect_clean();
}

TEST_F(RelocationTest, EmptyTreeRootMoves) {
  const uint64_t root = value_or_die(engine_->committed_tree(kCsumTreeId)).root().bytenr;
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(relocate_tree_node(*engine_, root));
  ECFS_ASSERT_OK(engine_->commit());
  reopen();
  EXPECT_NE(value_or_die(engine_->committed_tree(kCsumTreeId)).root().bytenr, root);
  EXPECT_TRUE(committed(kCsumTreeId).empty());
  expect_clean();
}

// Random workload (items, data references, clones, drops) interleaved with
// relocations of random data extents and tree nodes, compared with a model
// of every tree's contents; data extents keep their bytes.
TEST_F(RelocationTest, RandomizedAgainstModel) {
  std::mt19937_64 rng(20261122);
  std::map<uint64_t, TreeContents> model;  // tree id -> items
  std::map<uint64_t, Bytes> extent_bytes;  // live data extents -> their bytes
  model[kFsTreeId] = {};
  uint64_t next_tree = 300;
  uint64_t tag = 1;

  auto pick = [&](auto& container) {
    auto it = container.begin();
    std::advance(it, rng() % container.size());
    return it;
  };
  // Replace extent bytenr `from` by `to` in the model.
  auto model_move = [&](uint64_t from, uint64_t to) {
    for (auto& [id, items] : model) {
      for (auto& [key, data] : items) {
        if (key.type != kExtentDataKey) continue;
        FileExtentRef ref = value_or_die(decode_file_extent_ref(data));
        if (ref.disk_bytenr != from) continue;
        ref.disk_bytenr = to;
        encode_file_extent_ref(ref, data);
      }
    }
    extent_bytes[to] = extent_bytes.at(from);
    extent_bytes.erase(from);
  };
  // Every extent currently named by an item: bytenr -> (one) reference.
  auto referenced_extents = [&] {
    std::map<uint64_t, FileExtentRef> out;
    for (const auto& [tid, items] : model) {
      for (const auto& [key, data] : items) {
        if (key.type != kExtentDataKey) continue;
        const FileExtentRef ref = value_or_die(decode_file_extent_ref(data));
        out[ref.disk_bytenr] = ref;
      }
    }
    return out;
  };
  int data_moves = 0;
  int node_moves = 0;

  for (int round = 0; round < 25; ++round) {
    SCOPED_TRACE(round);
    ECFS_ASSERT_OK(engine_->begin());
    std::map<uint64_t, uint64_t> moved_away;  // old bytenr -> length
    for (int op = 0; op < 30; ++op) {
      const uint64_t id = pick(model)->first;
      BTree* tree = value_or_die(engine_->open_tree(id));
      switch (rng() % 9) {
        case 0:
        case 1: {  // filler items
          const uint64_t first = rng() % 3000;
          for (uint64_t i = first; i < first + 20; ++i) {
            const Bytes value = value_bytes(i + tag, 30 + i % 40);
            ECFS_ASSERT_OK(tree->put(Key{i, 1, 0}, value));
            model[id][Key{i, 1, 0}] = value;
          }
          ++tag;
          break;
        }
        case 2: {  // a new extent with one or two references
          const uint64_t sectors = 1 + rng() % 4;
          const uint64_t bytenr = new_extent(sectors, ++tag);
          extent_bytes[bytenr] = value_bytes(tag, sectors * kSector);
          for (int r = 0; r < 2; ++r) {
            const uint64_t objectid = 10000 + rng() % 500;
            const uint64_t offset = (rng() % 64) * kSector;
            const Key key{objectid, kExtentDataKey, offset};
            if (model[id].contains(key)) continue;
            const uint64_t extent_offset = (rng() % sectors) * kSector;
            const uint64_t length = sectors * kSector - extent_offset;
            add_ref(id, objectid, offset, bytenr, sectors * kSector, extent_offset, length);
            model[id][key] = extent_item(
                FileExtentRef{bytenr, sectors * kSector, extent_offset, length}, offset);
          }
          break;
        }
        case 3: {  // clone
          if (model.size() >= 6) break;
          ECFS_ASSERT_OK(engine_->clone_tree(id, next_tree));
          model[next_tree] = model[id];
          ++next_tree;
          break;
        }
        case 4: {  // drop a clone
          if (id == kFsTreeId) break;
          ECFS_ASSERT_OK(engine_->drop_tree(id));
          model.erase(id);
          break;
        }
        case 5:
        case 6: {  // relocate a live extent (referenced somewhere)
          const auto referenced = referenced_extents();
          if (referenced.empty()) break;
          const auto [from, ref] = *pick(referenced);
          const uint64_t to = value_or_die(relocate_data_extent(*engine_, from));
          moved_away[from] = ref.disk_length;
          model_move(from, to);
          ++data_moves;
          break;
        }
        case 8: {  // reflink a sector of a live extent into this tree
          const auto referenced = referenced_extents();
          if (referenced.empty()) break;
          const FileExtentRef whole = pick(referenced)->second;
          const Key key{20000 + rng() % 200, kExtentDataKey, (rng() % 16) * kSector};
          if (model[id].contains(key)) break;
          const uint64_t extent_offset = (rng() % (whole.disk_length / kSector)) * kSector;
          add_ref(id, key.objectid, key.offset, whole.disk_bytenr, whole.disk_length, extent_offset,
                  kSector);
          model[id][key] = extent_item(
              FileExtentRef{whole.disk_bytenr, whole.disk_length, extent_offset, kSector},
              key.offset);
          break;
        }
        case 7: {  // relocate a random node of a random tree, or of the root tree
          std::vector<uint64_t> nodes;
          const BTree* source = rng() % 4 == 0 ? engine_->root_tree_for_relocation() : tree;
          ECFS_ASSERT_OK(source->for_each_node([&](const Node& node) {
            nodes.push_back(node.bytenr);
            return true;
          }));
          ECFS_ASSERT_OK(relocate_tree_node(*engine_, nodes[rng() % nodes.size()]));
          ++node_moves;
          break;
        }
      }
    }
    ECFS_ASSERT_OK(engine_->commit());
    if (round % 5 == 4) reopen();

    // Extents no item names any more were freed at commit.
    std::set<uint64_t> referenced;
    for (const auto& [id, items] : model) {
      ASSERT_EQ(committed(id), items) << "tree " << id;
      for (const auto& [key, data] : items) {
        if (key.type == kExtentDataKey) {
          referenced.insert(value_or_die(decode_file_extent_ref(data)).disk_bytenr);
        }
      }
    }
    for (auto it = extent_bytes.begin(); it != extent_bytes.end();) {
      if (!referenced.contains(it->first)) {
        EXPECT_TRUE(space_map(*engine_).is_free(it->first, it->second.size()));
        it = extent_bytes.erase(it);
        continue;
      }
      EXPECT_EQ(checked(it->first, it->second.size()), it->second) << "extent " << it->first;
      ++it;
    }
    for (const auto& [bytenr, length] : moved_away) {
      EXPECT_TRUE(space_map(*engine_).is_free(bytenr, length)) << "moved extent " << bytenr;
    }
    EXPECT_FALSE(space_map(*engine_).pinned_bytes());
    ASSERT_NO_FATAL_FAILURE(expect_clean());
  }
  EXPECT_GT(data_moves, 20);
  EXPECT_GT(node_moves, 20);
}

}  // namespace
}  // namespace ecfs::store
