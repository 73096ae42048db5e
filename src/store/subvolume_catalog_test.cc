#include "store/subvolume_catalog.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "block/memory_device.h"
#include "block/recording_device.h"
#include "store/engine_test_util.h"
#include "store/tree_ids.h"

namespace ecfs::store {
namespace {

using testing::EngineFixture;
using testing::problems_of;
using testing::TreeContents;
using testing::value_or_die;

SubvolumeLink link_in(uint64_t parent, std::string_view name, uint64_t index = 2) {
  return {.parent = parent, .dirid = 256, .index = index, .name = Bytes(name.begin(), name.end())};
}

std::string catalog_problems(Engine& engine) {
  std::vector<std::string> problems;
  Status checked = SubvolumeCatalog(engine).check(problems);
  if (!checked) return checked.error().to_string();
  std::string out;
  for (const std::string& problem : problems) out += problem + "\n";
  return out;
}

// Items of a file in `tree`: a filler item and one 64 KiB data extent.
Status add_file(Engine& engine, uint64_t tree_id, uint64_t objectid, uint8_t tag) {
  auto tree = engine.open_tree(tree_id);
  if (!tree) return std::unexpected(tree.error());
  ECFS_TRY((*tree)->put({objectid, 1, 0}, testing::value_bytes(tag, 100)));
  constexpr uint64_t kLength = 64 * 1024;
  auto extent = engine.allocate_data(kLength);
  if (!extent) return std::unexpected(extent.error());
  ECFS_TRY(engine.write_data(*extent, testing::value_bytes(tag, kLength)));
  const FileExtentRef ref{*extent, kLength, 0, kLength};
  ECFS_TRY((*tree)->insert({objectid, kExtentDataKey, 0}, encode_file_extent_ref(ref)));
  return engine.add_data_ref(*extent, kLength, DataRef{tree_id, objectid, 0, 0, kLength});
}

TEST(SubvolumeItems, RoundTripAndRejectMalformed) {
  const RootRefItem ref{.dirid = 256, .index = 7, .name = Bytes{'s', 'n', 'a', 'p'}};
  EXPECT_EQ(value_or_die(decode_root_ref(encode_root_ref(ref))), ref);
  Bytes bad = encode_root_ref(ref);
  bad.pop_back();
  EXPECT_EQ(decode_root_ref(bad).error().errno_value(), EUCLEAN);
  EXPECT_EQ(decode_root_ref(Bytes(10)).error().errno_value(), EUCLEAN);
  Bytes empty_name = encode_root_ref({.dirid = 1, .index = 2, .name = Bytes{'x'}});
  empty_name[16] = 0;
  empty_name.pop_back();
  EXPECT_EQ(decode_root_ref(empty_name).error().errno_value(), EUCLEAN);

  SubvolumeInfo info;
  info.flags = kSubvolReadOnly;
  info.uuid[0] = 1;
  info.parent_uuid[15] = 2;
  info.created_generation = 9;
  info.source_generation = 8;
  info.otime_sec = -5;
  info.otime_nsec = 999'999'999;
  EXPECT_EQ(value_or_die(decode_subvolume_info(encode_subvolume_info(info))), info);
  Bytes unknown_flag = encode_subvolume_info(info);
  unknown_flag[0] |= 2;
  EXPECT_EQ(decode_subvolume_info(unknown_flag).error().errno_value(), EUCLEAN);
  EXPECT_EQ(decode_subvolume_info(Bytes(95)).error().errno_value(), EUCLEAN);
}

class SubvolumeCatalogTest : public EngineFixture {
 protected:
  SubvolumeCatalog catalog() { return SubvolumeCatalog(*engine_); }

  void expect_all_clean() {
    expect_clean();
    EXPECT_EQ(catalog_problems(*engine_), "");
  }
};

TEST_F(SubvolumeCatalogTest, CreateNamesATreeAndSetsTheFeatureBit) {
  EXPECT_EQ(engine_->superblock().incompat_flags & kIncompatSubvolumes, 0u);
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t id = value_or_die(catalog().create(link_in(kFsTreeId, "sub")));
  EXPECT_EQ(id, kFirstFreeTreeId);
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_NE(engine_->superblock().incompat_flags & kIncompatSubvolumes, 0u);
  expect_all_clean();

  auto entries = value_or_die(catalog().list());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].id, kFsTreeId);
  EXPECT_FALSE(entries[0].link);
  EXPECT_EQ(entries[1].id, id);
  ASSERT_TRUE(entries[1].link);
  EXPECT_EQ(*entries[1].link, link_in(kFsTreeId, "sub"));
  EXPECT_FALSE(entries[1].info.read_only());
  EXPECT_NE(entries[1].info.uuid, Uuid{});
  EXPECT_EQ(entries[1].info.parent_uuid, Uuid{});
  auto children = value_or_die(catalog().children(kFsTreeId));
  ASSERT_EQ(children.size(), 1u);
  EXPECT_EQ(children[0].first, id);

  // A nested one gets the next id; the parent must be live.
  ECFS_ASSERT_OK(engine_->begin());
  EXPECT_EQ(value_or_die(catalog().create(link_in(id, "nested"))), id + 1);
  EXPECT_EQ(catalog().create(link_in(999, "x")).error().errno_value(), ENOENT);
  EXPECT_EQ(catalog().create(link_in(kFsTreeId, "")).error().errno_value(), EINVAL);
  ECFS_ASSERT_OK(engine_->commit());
  expect_all_clean();
}

TEST_F(SubvolumeCatalogTest, SnapshotSharesEverythingAndDivergesOnWrite) {
  ECFS_ASSERT_OK(engine_->begin());
  for (uint64_t file = 300; file < 340; ++file) {
    ECFS_ASSERT_OK(add_file(*engine_, kFsTreeId, file, static_cast<uint8_t>(file)));
  }
  ECFS_ASSERT_OK(engine_->commit());
  const TreeContents before = committed(kFsTreeId);
  const uint64_t used_before = engine_->space_usage().allocated_bytes();

  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t snap =
      value_or_die(catalog().snapshot(kFsTreeId, link_in(kFsTreeId, "snap"), true));
  ECFS_ASSERT_OK(engine_->commit());
  expect_all_clean();
  EXPECT_EQ(committed(snap), before);
  // O(1): a snapshot adds at most a few nodes (the root tree's changes).
  EXPECT_LE(engine_->space_usage().allocated_bytes(), used_before + 8 * engine_->node_size());
  const SubvolumeEntry entry = value_or_die(catalog().get(snap));
  EXPECT_TRUE(entry.info.read_only());
  EXPECT_EQ(entry.info.source_generation, engine_->committed_generation() - 1);

  // Changing the source leaves the snapshot as it was, and the other way.
  ECFS_ASSERT_OK(engine_->begin());
  auto source = value_or_die(engine_->open_tree(kFsTreeId));
  ECFS_ASSERT_OK(source->put({300, 1, 0}, Bytes{9}));
  ECFS_ASSERT_OK(add_file(*engine_, snap, 900, 1));
  ECFS_ASSERT_OK(engine_->commit());
  expect_all_clean();
  TreeContents snapshot_now = committed(snap);
  EXPECT_EQ(snapshot_now.at(Key{300, 1, 0}), before.at(Key{300, 1, 0}));
  EXPECT_TRUE(snapshot_now.contains(Key{900, kExtentDataKey, 0}));
  EXPECT_FALSE(committed(kFsTreeId).contains(Key{900, kExtentDataKey, 0}));
}

TEST_F(SubvolumeCatalogTest, DeleteThenDropFreesExactlyWhatOnlyItHeld) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t sub = value_or_die(catalog().create(link_in(kFsTreeId, "sub")));
  for (uint64_t file = 300; file < 320; ++file) ECFS_ASSERT_OK(add_file(*engine_, sub, file, 3));
  ECFS_ASSERT_OK(engine_->commit());
  const uint64_t used_with_sub = engine_->space_usage().allocated_bytes();
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t snap = value_or_die(catalog().snapshot(sub, link_in(kFsTreeId, "snap", 3), false));
  ECFS_ASSERT_OK(add_file(*engine_, snap, 500, 4));  // only the snapshot holds this one
  ECFS_ASSERT_OK(engine_->commit());
  EXPECT_GT(engine_->space_usage().allocated_bytes(), used_with_sub);

  ECFS_ASSERT_OK(engine_->begin());
  EXPECT_EQ(catalog().unlink(kFsTreeId).error().errno_value(), EPERM);
  ECFS_ASSERT_OK(catalog().unlink(snap));
  EXPECT_EQ(catalog().unlink(snap).error().errno_value(), ENOENT);
  ECFS_ASSERT_OK(engine_->commit());
  expect_all_clean();
  EXPECT_EQ(value_or_die(catalog().dead_trees()), std::vector<uint64_t>{snap});
  EXPECT_TRUE(value_or_die(catalog().get(snap)).deleted);
  EXPECT_FALSE(value_or_die(catalog().get(snap)).link);

  const uint64_t used_before_drop = engine_->space_usage().allocated_bytes();
  ECFS_ASSERT_OK(engine_->begin());
  ECFS_ASSERT_OK(catalog().drop_dead(snap));
  EXPECT_EQ(catalog().drop_dead(sub).error().errno_value(), ENOENT) << "a live one";
  ECFS_ASSERT_OK(engine_->commit());
  expect_all_clean();
  EXPECT_TRUE(value_or_die(catalog().dead_trees()).empty());
  EXPECT_EQ(catalog().get(snap).error().errno_value(), ENOENT);
  // The snapshot's own extent and nodes went (fsck finds no leak); the
  // shared files stay. The root and extent trees may keep a node or two
  // more than before the snapshot: a B-tree does not always shrink back.
  EXPECT_LE(engine_->space_usage().allocated_bytes(), used_before_drop - 64 * 1024);
  EXPECT_LE(engine_->space_usage().allocated_bytes(), used_with_sub + 4 * engine_->node_size());
  EXPECT_EQ(committed(sub).size(), 40u);
}

TEST_F(SubvolumeCatalogTest, ASubvolumeHoldingAnotherIsNotDeleted) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t outer = value_or_die(catalog().create(link_in(kFsTreeId, "outer")));
  const uint64_t inner = value_or_die(catalog().create(link_in(outer, "inner")));
  EXPECT_EQ(catalog().unlink(outer).error().errno_value(), ENOTEMPTY);
  ECFS_ASSERT_OK(catalog().unlink(inner));
  ECFS_ASSERT_OK(catalog().unlink(outer));
  // A dead parent takes no new names.
  EXPECT_EQ(catalog().create(link_in(outer, "late")).error().errno_value(), ENOENT);
  ECFS_ASSERT_OK(engine_->commit());
  expect_all_clean();
  EXPECT_EQ(value_or_die(catalog().dead_trees()), (std::vector<uint64_t>{outer, inner}));
}

TEST_F(SubvolumeCatalogTest, ReadOnlyFlagChanges) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t sub = value_or_die(catalog().create(link_in(kFsTreeId, "sub")));
  ECFS_ASSERT_OK(catalog().set_read_only(sub, true));
  EXPECT_TRUE(value_or_die(catalog().get(sub)).info.read_only());
  ECFS_ASSERT_OK(catalog().set_read_only(sub, false));
  EXPECT_FALSE(value_or_die(catalog().get(sub)).info.read_only());
  EXPECT_EQ(catalog().set_read_only(kFsTreeId, true).error().errno_value(), EPERM);
  ECFS_ASSERT_OK(engine_->commit());
}

TEST_F(SubvolumeCatalogTest, CheckFindsBrokenCatalogs) {
  ECFS_ASSERT_OK(engine_->begin());
  const uint64_t sub = value_or_die(catalog().create(link_in(kFsTreeId, "sub")));
  ECFS_ASSERT_OK(engine_->remove_catalog_item({sub, kRootBackrefKey, kFsTreeId}));
  ECFS_ASSERT_OK(
      engine_->put_catalog_item({4000, kSubvolInfoKey, 0}, encode_subvolume_info(SubvolumeInfo{})));
  ECFS_ASSERT_OK(engine_->put_catalog_item({kDeadRootObjectid, kDeadRootKey, 4001}, {}));
  EXPECT_EQ(engine_->put_catalog_item({1, kRootItemKey, 0}, {}).error().errno_value(), EINVAL)
      << "the engine's own items are not the catalog's";
  ECFS_ASSERT_OK(engine_->commit());
  const std::string problems = catalog_problems(*engine_);
  EXPECT_NE(problems.find("has no ROOT_BACKREF"), std::string::npos) << problems;
  EXPECT_NE(problems.find("SUBVOL_INFO of subvolume 4000"), std::string::npos) << problems;
  EXPECT_NE(problems.find("dead root 4001 has no tree"), std::string::npos) << problems;
}

// Catalog jobs crash-safely: for crash points across create, snapshot,
// delete and drop, every crash image opens with a clean engine and catalog,
// and finishing the drops it finds leaves it clean with exactly the space of
// the run's end.
TEST(SubvolumeCatalogCrashTest, EveryCrashStateIsConsistentAndDropsResume) {
  block::MemoryDevice base(80ull << 20);
  MkfsOptions options;
  options.node_size = 4096;
  ASSERT_TRUE(mkfs(base, options));
  block::RecordingDevice recorder(base);
  uint64_t final_allocated = 0;
  {
    auto engine = value_or_die(Engine::open(recorder));
    SubvolumeCatalog catalog(*engine);
    ECFS_ASSERT_OK(engine->begin());
    const uint64_t sub = value_or_die(catalog.create(link_in(kFsTreeId, "sub")));
    for (uint64_t file = 300; file < 330; ++file) {
      ECFS_ASSERT_OK(add_file(*engine, sub, file, 5));
    }
    ECFS_ASSERT_OK(engine->commit());
    ECFS_ASSERT_OK(engine->begin());
    const uint64_t snap = value_or_die(catalog.snapshot(sub, link_in(kFsTreeId, "snap", 3), true));
    ECFS_ASSERT_OK(engine->commit());
    ECFS_ASSERT_OK(engine->begin());
    for (uint64_t file = 300; file < 330; file += 3) {
      ECFS_ASSERT_OK(add_file(*engine, sub, file + 1000, 6));
      auto tree = value_or_die(engine->open_tree(sub));
      ECFS_ASSERT_OK(tree->put({file, 1, 0}, Bytes{7}));
    }
    ECFS_ASSERT_OK(engine->commit());
    ECFS_ASSERT_OK(engine->begin());
    ECFS_ASSERT_OK(catalog.unlink(sub));
    ECFS_ASSERT_OK(engine->commit());
    ECFS_ASSERT_OK(engine->begin());
    ECFS_ASSERT_OK(catalog.drop_dead(sub));
    ECFS_ASSERT_OK(engine->commit());
    ECFS_ASSERT_OK(engine->begin());
    ECFS_ASSERT_OK(catalog.unlink(snap));
    ECFS_ASSERT_OK(engine->commit());
    ECFS_ASSERT_OK(engine->begin());
    ECFS_ASSERT_OK(catalog.drop_dead(snap));
    ECFS_ASSERT_OK(engine->commit());
    final_allocated = engine->space_usage().allocated_bytes();
  }
  std::set<size_t> points{recorder.op_count()};
  for (size_t flush : recorder.flush_points()) {
    points.insert(flush);
    points.insert(flush + 1);
  }
  for (size_t point = 0; point < recorder.op_count(); point += 11) points.insert(point);
  EXPECT_GE(recorder.flush_points().size(), 7u * 3) << "seven commits, three flushes each";
  for (size_t point : points) {
    for (block::CrashMode mode :
         {block::CrashMode::kDropAllUnflushed, block::CrashMode::kRandomSubsetWithTears}) {
      auto image = recorder.crash_image(point, mode, point);
      ASSERT_TRUE(image) << image.error().to_string();
      const std::string what = "crash at op " + std::to_string(point);
      auto engine = Engine::open(*image);
      ASSERT_TRUE(engine) << what << ": " << engine.error().to_string();
      auto report = value_or_die((*engine)->check());
      ASSERT_TRUE(report.clean()) << what << ":\n" << problems_of(report);
      ASSERT_EQ(catalog_problems(**engine), "") << what;
      // Resume: delete what is left and drop every dead root, as a mount
      // would finish the run.
      SubvolumeCatalog catalog(**engine);
      ECFS_ASSERT_OK((*engine)->begin());
      for (const SubvolumeEntry& entry : value_or_die(catalog.list())) {
        if (entry.id != kFsTreeId && !entry.deleted) ECFS_ASSERT_OK(catalog.unlink(entry.id));
      }
      for (uint64_t dead : value_or_die(catalog.dead_trees())) {
        ECFS_ASSERT_OK(catalog.drop_dead(dead));
      }
      ECFS_ASSERT_OK((*engine)->commit());
      report = value_or_die((*engine)->check());
      ASSERT_TRUE(report.clean()) << what << " after resuming:\n" << problems_of(report);
      ASSERT_EQ(catalog_problems(**engine), "") << what;
      EXPECT_EQ((*engine)->space_usage().allocated_bytes(), final_allocated) << what;
    }
  }
}

}  // namespace
}  // namespace ecfs::store
