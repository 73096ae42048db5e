#include "store/engine.h"

#include <gtest/gtest.h>

#include <set>

#include "block/memory_device.h"
#include "store/engine_test_util.h"
#include "store/metadata_checksum.h"

namespace ecfs::store {
namespace {

using testing::problems_of;
using testing::read_all;
using testing::space_map;
using testing::TreeContents;
using testing::value_bytes;
using testing::value_or_die;

constexpr uint64_t kMiB = 1 << 20;
// Superblock field offsets (docs/FORMAT.md, "Superblock"; superblock.cc).
constexpr size_t kIncompatFlagsOffset = 88;
constexpr size_t kCompatRoFlagsOffset = 96;

class EngineTest : public testing::EngineFixture {
 protected:
  EngineTest() { mkfs_options_.label = "engine test"; }

  // Inserts keys [first, first + count) with values tagged `tag`.
  void fill(BTree& tree, uint64_t first, uint64_t count, uint64_t tag, TreeContents* model) {
    for (uint64_t i = first; i < first + count; ++i) {
      const Key key{i, 1, 0};
      const Bytes value = value_bytes(i + tag, 40 + i % 50);
      ECFS_ASSERT_OK(tree.put(key, value));
      if (model) (*model)[key] = value;
    }
  }
};

TEST_F(EngineTest, MkfsCreatesTheInitialTrees) {
  EXPECT_EQ(engine_->committed_generation(), 1u);
  EXPECT_EQ(engine_->superblock().label, "engine test");
  EXPECT_EQ(engine_->superblock().node_size, 4096u);
  auto ids = value_or_die(engine_->list_trees());
  EXPECT_EQ(ids, (std::vector<uint64_t>{kExtentTreeId, kFsTreeId, kCsumTreeId, kFreeSpaceTreeId}));
  EXPECT_TRUE(committed(kFsTreeId).empty());
  EXPECT_EQ(engine_->superblock().compat_ro_flags, kCompatRoFreeSpaceTree);
  expect_clean();
  // Root tree, extent tree, FS, CSUM and free-space trees: one leaf each.
  EXPECT_EQ(engine_->superblock().bytes_used, 5u * 4096);
  EXPECT_EQ(space_map(*engine_).allocated_bytes(), 5u * 4096);
}

TEST(RandomFsid, IsAVersion4Uuid) {
  const auto first = random_fsid();
  const auto second = random_fsid();
  ASSERT_TRUE(first && second);
  EXPECT_NE(*first, *second);
  EXPECT_EQ((*first)[6] >> 4, 4);       // version 4
  EXPECT_EQ((*first)[8] & 0xc0, 0x80);  // RFC 9562 variant
}

TEST_F(EngineTest, MkfsRejectsBadOptions) {
  block::MemoryDevice device(64 * kMiB);
  MkfsOptions options;
  options.node_size = 12288;
  EXPECT_EQ(mkfs(device, options).error().errno_value(), EINVAL);
  options.node_size = 2048;
  EXPECT_EQ(mkfs(device, options).error().errno_value(), EINVAL);
  options.node_size = 4096;
  options.label = std::string(256, 'x');
  EXPECT_EQ(mkfs(device, options).error().errno_value(), EINVAL);
  block::MemoryDevice tiny(kMiB);
  EXPECT_EQ(mkfs(tiny, MkfsOptions{}).error().errno_value(), EINVAL);
  // Nothing written: not an image.
  EXPECT_EQ(Engine::open(device).error().errno_value(), EIO);
}

TEST_F(EngineTest, CommitIsDurableAndAbortForgets) {
  TreeContents model;
  ECFS_ASSERT_OK(engine_->begin());
  BTree* tree = value_or_die(engine_->open_tree(kFsTreeId));
  fill(*tree, 0, 500, 1, &model);
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_EQ(engine_->committed_generation(), 2u);
  EXPECT_EQ(committed(kFsTreeId), model);
  expect_clean();

  ECFS_ASSERT_OK(engine_->begin());
  tree = value_or_die(engine_->open_tree(kFsTreeId));
  fill(*tree, 100, 800, 2, nullptr);
  for (uint64_t i = 0; i < 50; ++i) ECFS_ASSERT_OK(tree->remove(Key{i, 1, 0}));
  engine_->abort();
  EXPECT_EQ(engine_->committed_generation(), 2u);
  EXPECT_EQ(committed(kFsTreeId), model);
  expect_clean();

  reopen();
  EXPECT_EQ(engine_->committed_generation(), 2u);
  EXPECT_EQ(committed(kFsTreeId), model);
  expect_clean();
}

// Forwards to a device and remembers where each write went.
class SpyDevice final : public block::BlockDevice {
 public:
  explicit SpyDevice(block::BlockDevice& inner) : inner_(&inner) {}
  uint64_t size() const override { return inner_->size(); }
  Status read(uint64_t offset, MutableByteSpan out) override { return inner_->read(offset, out); }
  Status write(uint64_t offset, ByteSpan data) override {
    writes.push_back(offset);
    return inner_->write(offset, data);
  }
  Status flush() override { return inner_->flush(); }
  std::string describe() const override { return "spy"; }
  std::vector<uint64_t> writes;

 private:
  block::BlockDevice* inner_;
};

TEST_F(EngineTest, CommitNeverOverwritesTheCommittedTrees) {
  ECFS_ASSERT_OK(engine_->begin());
  fill(*value_or_die(engine_->open_tree(kFsTreeId)), 0, 600, 1, nullptr);
  ECFS_ASSERT_OK(engine_->commit());
  engine_.reset();
  SpyDevice spy(device_);
  auto engine = value_or_die(Engine::open(spy));

  for (int round = 0; round < 4; ++round) {
    // Every block the committed generation uses.
    std::set<uint64_t> committed_blocks;
    for (uint64_t id : value_or_die(engine->list_trees())) {
      ECFS_ASSERT_OK(value_or_die(engine->committed_tree(id)).for_each_node([&](const Node& node) {
        committed_blocks.insert(node.bytenr);
        return true;
      }));
    }
    const Superblock& sb = engine->superblock();
    committed_blocks.insert(sb.root_tree_bytenr);
    ECFS_ASSERT_OK(BTree(*engine, kRootTreeId,
                         RootRef{sb.root_tree_bytenr, sb.root_tree_generation, sb.root_tree_level})
                       .for_each_node([&](const Node& node) {
                         committed_blocks.insert(node.bytenr);
                         return true;
                       }));
    // Churn: removals merge and free nodes, inserts allocate.
    ECFS_ASSERT_OK(engine->begin());
    BTree* tree = value_or_die(engine->open_tree(kFsTreeId));
    for (uint64_t i = round; i < 600; i += 2) ECFS_ASSERT_OK(tree->remove(Key{i, 1, 0}));
    fill(*tree, 1000 + round * 300, 300, round, nullptr);
    spy.writes.clear();
    ECFS_ASSERT_OK(engine->commit());
    ASSERT_FALSE(spy.writes.empty());
    for (uint64_t offset : spy.writes) {
      if (offset == kSuperblockOffsets[0]) continue;
      EXPECT_FALSE(committed_blocks.contains(offset))
          << "round " << round << " overwrote " << offset;
    }
    auto report = value_or_die(engine->check());
    EXPECT_TRUE(report.clean()) << problems_of(report);
    // Refill what was removed so the next round has something to remove.
    ECFS_ASSERT_OK(engine->begin());
    fill(*value_or_die(engine->open_tree(kFsTreeId)), 0, 600, round, nullptr);
    ECFS_ASSERT_OK(engine->commit());
  }
}

TEST_F(EngineTest, TransactionRules) {
  EXPECT_EQ(engine_->open_tree(kFsTreeId).error().errno_value(), EINVAL);  // no transaction
  EXPECT_EQ(engine_->commit().error().errno_value(), EINVAL);
  ECFS_ASSERT_OK(engine_->begin());
  EXPECT_EQ(engine_->begin().error().errno_value(), EBUSY);
  EXPECT_EQ(engine_->check().error().errno_value(), EBUSY);
  EXPECT_EQ(engine_->create_tree(kFsTreeId).error().errno_value(), EEXIST);
  EXPECT_EQ(engine_->create_tree(kExtentTreeId).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->open_tree(300).error().errno_value(), ENOENT);
  EXPECT_EQ(engine_->clone_tree(300, 301).error().errno_value(), ENOENT);
  EXPECT_EQ(engine_->clone_tree(kFsTreeId, kFsTreeId).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->clone_tree(kExtentTreeId, 301).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->drop_tree(kRootTreeId).error().errno_value(), EINVAL);
  // The checksum tree describes the whole device: never cloned or dropped.
  EXPECT_EQ(engine_->clone_tree(kCsumTreeId, 302).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->clone_tree(kFsTreeId, kCsumTreeId).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->drop_tree(kCsumTreeId).error().errno_value(), EINVAL);
  EXPECT_EQ(engine_->drop_tree(300).error().errno_value(), ENOENT);
  EXPECT_EQ(engine_->allocate_data(1000).error().errno_value(), EINVAL);
  ECFS_ASSERT_OK(engine_->create_tree(300));
  engine_->abort();
  EXPECT_EQ(value_or_die(engine_->list_trees()).size(), 4u);

  reopen(/*read_only=*/true);
  EXPECT_EQ(engine_->begin().error().errno_value(), EROFS);
  expect_clean();
}

TEST_F(EngineTest, CloneSharesAndDiverges) {
  TreeContents original;
  ECFS_ASSERT_OK(engine_->begin());
  fill(*value_or_die(engine_->open_tree(kFsTreeId)), 0, 1000, 1, &original);
  ECFS_ASSERT_OK(engine_->commit());
  const uint64_t used_before_clone = engine_->superblock().bytes_used;

  // O(1): the clone costs no node of its own until someone writes.
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->clone_tree(kFsTreeId, 256));
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
  EXPECT_EQ(committed(256), original);
  // Only the root and extent tree paths were rewritten.
  EXPECT_LE(engine_->superblock().bytes_used, used_before_clone + 2 * 4096);

  ECFS_ASSERT_OK(engine_->begin());
  TreeContents clone = original;
  fill(*value_or_die(engine_->open_tree(256)), 500, 100, 7, &clone);
  BTree* source = value_or_die(engine_->open_tree(kFsTreeId));
  for (uint64_t i = 0; i < 1000; i += 3) {
    ECFS_ASSERT_OK(source->remove(Key{i, 1, 0}));
    original.erase(Key{i, 1, 0});
  }
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
  EXPECT_EQ(committed(kFsTreeId), original);
  EXPECT_EQ(committed(256), clone);

  reopen();
  EXPECT_EQ(committed(kFsTreeId), original);
  EXPECT_EQ(committed(256), clone);

  // Dropping the clone frees exactly what only it referenced: the space in
  // use is what the source alone would need.
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->drop_tree(256));
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
  EXPECT_EQ(committed(kFsTreeId), original);
  EXPECT_EQ(engine_->committed_tree(256).error().errno_value(), ENOENT);
  uint64_t source_nodes = 0;
  ECFS_ASSERT_OK(value_or_die(engine_->committed_tree(kFsTreeId)).for_each_node([&](const Node&) {
    ++source_nodes;
    return true;
  }));
  auto report = value_or_die(engine_->check());
  uint64_t other_nodes = report.tree_nodes - source_nodes;
  EXPECT_EQ(engine_->superblock().bytes_used, (source_nodes + other_nodes) * 4096);
  EXPECT_LT(other_nodes, 10u);  // root tree, extent tree, empty CSUM tree
}

TEST_F(EngineTest, CloneInTheSameTransactionAsWrites) {
  TreeContents model;
  ECFS_ASSERT_OK(engine_->begin());
  fill(*value_or_die(engine_->open_tree(kFsTreeId)), 0, 400, 1, &model);
  ECFS_ASSERT_OK(engine_->clone_tree(kFsTreeId, 256));  // shares dirty nodes
  TreeContents clone = model;
  fill(*value_or_die(engine_->open_tree(256)), 0, 200, 5, &clone);
  fill(*value_or_die(engine_->open_tree(kFsTreeId)), 100, 50, 9, &model);
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
  EXPECT_EQ(committed(kFsTreeId), model);
  EXPECT_EQ(committed(256), clone);

  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->clone_tree(256, 257));
  ECFS_ASSERT_OK(engine_->drop_tree(256));
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
  EXPECT_EQ(committed(257), clone);
}

TEST_F(EngineTest, DataExtentReferences) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = value_or_die(engine_->allocate_data(64 * 1024));
  const uint64_t unused = value_or_die(engine_->allocate_data(8192));
  BTree* tree = value_or_die(engine_->open_tree(kFsTreeId));
  // Two file extent items covering halves of the extent.
  for (uint64_t half = 0; half < 2; ++half) {
    const FileExtentRef ref{extent, 64 * 1024, half * 32 * 1024, 32 * 1024};
    ECFS_ASSERT_OK(
        tree->insert(Key{300, kExtentDataKey, half * 32 * 1024}, encode_file_extent_ref(ref)));
    ECFS_ASSERT_OK(engine_->add_data_ref(
        extent, 64 * 1024, DataRef{kFsTreeId, 300, half * 32 * 1024, half * 32 * 1024, 32 * 1024}));
  }
  EXPECT_EQ(engine_->add_data_ref(extent, 64 * 1024, DataRef{kFsTreeId, 300, 0, 60000, 8192})
                .error()
                .errno_value(),
            EINVAL);
  EXPECT_EQ(engine_->add_data_ref(extent + 4096, 4096, DataRef{kFsTreeId, 1, 0, 0, 4096})
                .error()
                .errno_value(),
            ENOENT);
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
  // The unreferenced extent was released at commit.
  EXPECT_TRUE(space_map(*engine_).is_free(unused, 8192));
  EXPECT_FALSE(space_map(*engine_).is_free(extent, 4096));
  EXPECT_EQ(value_or_die(engine_->check()).data_extents, 1u);

  // A clone shares the leaf; when the clone's copy of the leaf is made, each
  // item gains a reference. Dropping the source leaves the clone's.
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->clone_tree(kFsTreeId, 256));
  ECFS_ASSERT_OK(value_or_die(engine_->open_tree(256))->put(Key{1, 1, 0}, value_bytes(1, 8)));
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();

  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->drop_tree(kFsTreeId));
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
  EXPECT_FALSE(space_map(*engine_).is_free(extent, 4096));
  reopen();
  expect_clean();

  // The last reference goes: the extent is free after the commit.
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->drop_tree(256));
  EXPECT_FALSE(space_map(*engine_).is_free(extent, 4096));
  ECFS_ASSERT_OK(engine_->commit());
  expect_clean();
  EXPECT_TRUE(space_map(*engine_).is_free(extent, 64 * 1024));
  EXPECT_EQ(value_or_die(engine_->check()).data_extents, 0u);
}

TEST_F(EngineTest, DroppingAMissingDataReferenceFailsTheCommit) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t extent = value_or_die(engine_->allocate_data(4096));
  ECFS_ASSERT_OK(engine_->add_data_ref(extent, 4096, DataRef{kFsTreeId, 1, 0, 0, 4096}));
  ECFS_ASSERT_OK(engine_->commit());  // leaked on purpose: no EXTENT_DATA item
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->drop_data_ref(extent, 4096, DataRef{kFsTreeId, 2, 0, 0, 4096}));
  auto status = engine_->commit();
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().errno_value(), EUCLEAN);
  EXPECT_FALSE(engine_->in_transaction());
  EXPECT_EQ(engine_->committed_generation(), 2u);
  // fsck sees the leak.
  auto report = value_or_die(engine_->check());
  EXPECT_FALSE(report.clean());
}

TEST_F(EngineTest, RunsOutOfSpaceCleanly) {
  block::MemoryDevice small(2 * kMiB);
  MkfsOptions options;
  options.node_size = 4096;
  ECFS_ASSERT_OK(mkfs(small, options));
  auto engine = value_or_die(Engine::open(small));
  ECFS_ASSERT_OK(engine->begin());
  BTree* tree = value_or_die(engine->open_tree(kFsTreeId));
  Status status = ok();
  for (uint64_t i = 0; status; ++i) status = tree->put(Key{i, 1, 0}, value_bytes(i, 500));
  EXPECT_EQ(status.error().errno_value(), ENOSPC);
  engine->abort();
  auto report = value_or_die(engine->check());
  EXPECT_TRUE(report.clean()) << problems_of(report);
  // After the abort the space is back.
  ECFS_ASSERT_OK(engine->begin());
  ECFS_ASSERT_OK(value_or_die(engine->open_tree(kFsTreeId))->put(Key{1, 1, 0}, value_bytes(1, 9)));
  ECFS_ASSERT_OK(engine->commit());
}

TEST_F(EngineTest, CorruptNodeIsReportedWithItsAddress) {
  ECFS_ASSERT_OK(engine_->begin());
  fill(*value_or_die(engine_->open_tree(kFsTreeId)), 0, 10, 1, nullptr);
  ECFS_ASSERT_OK(engine_->commit());
  const RootRef root = value_or_die(engine_->committed_tree(kFsTreeId)).root();
  uint8_t byte = 0;
  ECFS_ASSERT_OK(device_.read_at(root.bytenr + 200, {&byte, 1}));
  byte ^= 0x40;
  ECFS_ASSERT_OK(device_.write_at(root.bytenr + 200, {&byte, 1}));
  reopen();  // fresh cache
  auto contents = read_all(value_or_die(engine_->committed_tree(kFsTreeId)));
  ASSERT_FALSE(contents);
  EXPECT_EQ(contents.error().errno_value(), EIO);
  EXPECT_NE(contents.error().message().find(std::to_string(root.bytenr)), std::string::npos)
      << contents.error().message();
}

TEST_F(EngineTest, NewestSuperblockWins) {
  ECFS_ASSERT_OK(engine_->begin());
  fill(*value_or_die(engine_->open_tree(kFsTreeId)), 0, 10, 1, nullptr);
  ECFS_ASSERT_OK(engine_->commit());
  // Corrupt the primary copy: the mirror at 64 MiB does not fit a 64 MiB
  // device, so there is only one copy and the image is unreadable.
  Bytes zero(4096, 0);
  ECFS_ASSERT_OK(device_.write(kSuperblockOffsets[0], zero));
  engine_.reset();
  EXPECT_EQ(Engine::open(device_).error().errno_value(), EIO);
}

TEST_F(EngineTest, UnknownFeaturesAreRefused) {
  engine_.reset();
  const Superblock original = value_or_die(read_newest_superblock(device_));
  // encode_superblock refuses unknown features, so set the bits in an
  // encoded copy and seal it again, as a newer ecfs would have written it.
  auto rewrite = [&](uint64_t incompat, uint64_t compat_ro) {
    auto encoded = encode_superblock(original);
    ASSERT_TRUE(encoded) << encoded.error().to_string();
    std::array<uint8_t, kSuperblockSize> block = *encoded;
    store_le64(&block[kIncompatFlagsOffset], incompat);
    store_le64(&block[kCompatRoFlagsOffset], compat_ro);
    seal_metadata_block(original.checksum_type, block);
    ECFS_ASSERT_OK(device_.write(kSuperblockOffsets[0], block));
  };
  rewrite(1ull << 40, 0);
  EXPECT_EQ(Engine::open(device_).error().errno_value(), EOPNOTSUPP);

  rewrite(0, 1ull << 40);
  EXPECT_EQ(Engine::open(device_).error().errno_value(), EROFS);
  OpenOptions read_only;
  read_only.read_only = true;
  auto engine = Engine::open(device_, read_only);
  ASSERT_TRUE(engine) << engine.error().to_string();
  EXPECT_EQ((*engine)->begin().error().errno_value(), EROFS);

  rewrite(0, 0);
  EXPECT_TRUE(Engine::open(device_));
}

TEST_F(EngineTest, IncompatFeaturesAreSetByTheCommitOfTheirTransaction) {
  EXPECT_EQ(engine_->enable_incompat_features(kIncompatLargeXattrValues).error().errno_value(),
            EINVAL);  // no transaction
  ECFS_ASSERT_OK(engine_->begin());
  EXPECT_EQ(engine_->enable_incompat_features(1ull << 40).error().errno_value(), EINVAL);
  ECFS_ASSERT_OK(engine_->enable_incompat_features(kIncompatLargeXattrValues));
  engine_->abort();
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_EQ(engine_->superblock().incompat_flags, 0u) << "an aborted transaction's feature";

  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->enable_incompat_features(kIncompatLargeXattrValues));
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_EQ(engine_->superblock().incompat_flags, kIncompatLargeXattrValues);
  engine_.reset();
  EXPECT_EQ(value_or_die(read_newest_superblock(device_)).incompat_flags,
            kIncompatLargeXattrValues);
  engine_ = value_or_die(Engine::open(device_));
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_EQ(engine_->superblock().incompat_flags, kIncompatLargeXattrValues) << "kept";
}

TEST_F(EngineTest, MirrorCopiesServeWhenThePrimaryIsLost) {
  block::MemoryDevice big(80 * kMiB);
  MkfsOptions options;
  options.node_size = 4096;
  ECFS_ASSERT_OK(mkfs(big, options));
  {
    auto engine = value_or_die(Engine::open(big));
    ECFS_ASSERT_OK(engine->begin());
    fill(*value_or_die(engine->open_tree(kFsTreeId)), 0, 10, 1, nullptr);
    ECFS_ASSERT_OK(engine->commit());
  }
  Bytes zero(4096, 0);
  ECFS_ASSERT_OK(big.write(kSuperblockOffsets[0], zero));
  auto engine = value_or_die(Engine::open(big));
  EXPECT_EQ(engine->committed_generation(), 2u);
  EXPECT_EQ(value_or_die(read_all(value_or_die(engine->committed_tree(kFsTreeId)))).size(), 10u);
}

}  // namespace
}  // namespace ecfs::store
