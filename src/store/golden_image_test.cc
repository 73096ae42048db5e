// Golden images of format version 1 (DESIGN.md: "keep committed golden
// images of each format version with a test that mounts them"; docs/FORMAT.md
// "Golden images").
//
// One deterministic generator, golden_operations(), drives two sinks: an
// EngineSink that builds an image on a MemoryDevice, and a ModelSink that
// records what that image must hold without touching any engine code. The
// images committed under tests/golden/ are opened by today's engine and
// compared with the model, item by item and byte by byte, so a change that
// makes old images unreadable or reads them differently fails here.
//
// To write the images (into an existing directory):
//   ECFS_WRITE_GOLDEN=tests/golden build/bin/store_tests --gtest_filter='GoldenImage*'
// An image of a released format version is never rewritten: a format change
// gets a new version number and new images, and the old ones stay.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "block/gzip_image.h"
#include "block/memory_device.h"
#include "store/engine.h"
#include "store/engine_test_util.h"

namespace ecfs::store {
namespace {

using testing::problems_of;
using testing::read_all;
using testing::space_map;
using testing::TreeContents;
using testing::value_bytes;
using testing::value_or_die;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kSector = kSectorSize;

// ---------------------------------------------------------------- the specs

// One golden image: where it is committed and how it was made.
struct GoldenSpec {
  const char* file;  // under tests/golden/
  ChecksumType checksum_type;
  uint32_t node_size;
  uint64_t device_size;
  uint64_t items;  // items of the first batch in the user tree; the rest scales with it
  // Made with a free-space tree (compat_ro kCompatRoFreeSpaceTree); the
  // images from before it existed are made without.
  bool free_space_tree;
  // Made with an image origin (compat kCompatImageOrigin, kGoldenOrigin).
  bool origin = false;
};

// The main image (default node size, enough items for internal nodes) and a
// small one for each other checksum type, with 4 KiB nodes.
constexpr GoldenSpec kGoldenSpecs[] = {
    {"format-v1-engine.img.gz", ChecksumType::kCrc32c, 16384, 4 * kMiB, 1500, false},
    {"format-v1-xxhash64.img.gz", ChecksumType::kXxhash64, 4096, 3 * kMiB / 2, 64, false},
    {"format-v1-sha256.img.gz", ChecksumType::kSha256, 4096, 3 * kMiB / 2, 64, false},
    {"format-v1-blake2b.img.gz", ChecksumType::kBlake2b, 4096, 3 * kMiB / 2, 64, false},
    {"format-v1-free-space-tree.img.gz", ChecksumType::kCrc32c, 16384, 4 * kMiB, 1500, true},
    {"format-v1-image-origin.img.gz", ChecksumType::kCrc32c, 4096, 3 * kMiB / 2, 64, true, true},
};

// Fixed, so that the images are reproducible (a version 4 UUID in form).
constexpr std::array<uint8_t, kFsidSize> kGoldenFsid = {
    0xec, 0xf5, 0x60, 0x1d, 0x90, 0x1d, 0x4e, 0x01, 0x80, 0x00, 0x0f, 0x04, 0x3a, 0x7e, 0x00, 0x01};
constexpr const char* kGoldenLabel = "ecfs golden image v1";
const ImageOrigin kGoldenOrigin{"ecfs golden generator", 1796688000, 123456789};

// The generator's trees. Engine-level ids below the subvolume range, not
// filesystem trees: their items are the engine's test pattern, not inodes,
// and the filesystem check of `ecfs fsck` looks only at filesystem trees.
// FS_TREE stays as mkfs made it (empty).
constexpr uint64_t kUserTree = 200;
constexpr uint64_t kSecondTree = 201;
constexpr uint64_t kCloneOfUser = 202;
constexpr uint64_t kCloneOfSecond = 203;
constexpr uint64_t kDroppedTree = 204;
// Objectids of the files holding EXTENT_DATA items (apart from the filler).
constexpr uint64_t kFirstFile = 100000;

// ---------------------------------------------------------------- contents

// Data extent `tag` of `sectors` sectors: 64-byte text lines naming the
// extent, sector and line, so a byte read from the wrong place shows, and
// the image compresses well.
Bytes golden_data(uint64_t tag, uint64_t sectors) {
  Bytes out;
  out.reserve(sectors * kSector);
  for (uint64_t sector = 0; sector < sectors; ++sector) {
    for (uint64_t line = 0; line < kSector / 64; ++line) {
      char text[65];
      std::snprintf(text, sizeof text, "ecfs golden v1 extent %02llu sector %04llu line %02llu ",
                    static_cast<unsigned long long>(tag), static_cast<unsigned long long>(sector),
                    static_cast<unsigned long long>(line));
      std::string padded(text);
      padded.resize(63, '.');
      padded.push_back('\n');
      out.insert(out.end(), padded.begin(), padded.end());
    }
  }
  return out;
}

// The filler items: keys spread over objectids and types, values of 0 to
// 300 bytes.
Key filler_key(uint64_t i) {
  return Key{256 + i / 4, static_cast<uint8_t>(1 + i % 4), (i % 4) * 1000};
}
size_t filler_size(uint64_t i) { return (i * 37) % 301; }

// An EXTENT_DATA item: the FileExtentRef head, then bytes of the filesystem
// layer (opaque to the engine) derived from the key.
Bytes extent_data_item(const FileExtentRef& ref, uint64_t objectid, uint64_t offset) {
  Bytes data = value_bytes(objectid + offset, kFileExtentRefSize + 16);
  encode_file_extent_ref(ref, data);
  return data;
}

// ---------------------------------------------------------------- the generator

// What the generator does, applied to an engine or to the model.
class GoldenSink {
 public:
  virtual ~GoldenSink() = default;
  virtual Status begin() = 0;
  virtual Status commit() = 0;
  virtual Status create_tree(uint64_t id) = 0;
  virtual Status put(uint64_t tree, const Key& key, ByteSpan value) = 0;
  virtual Status remove(uint64_t tree, const Key& key) = 0;
  virtual Status clone(uint64_t source, uint64_t clone) = 0;
  virtual Status drop(uint64_t tree) = 0;
  // A new data extent `tag` (>= 1) of `sectors` sectors holding golden_data.
  virtual Status write_extent(uint64_t tag, uint64_t sectors) = 0;
  // Inserts EXTENT_DATA (objectid, offset) into `tree` naming [extent_offset,
  // +length) of extent `tag` (0: a hole of `length` bytes) and, for an
  // extent, adds its reference.
  virtual Status refer(uint64_t tree, uint64_t objectid, uint64_t offset, uint64_t tag,
                       uint64_t extent_offset, uint64_t length) = 0;
};

// The operations: five transactions after mkfs. Filler items in the user tree
// (several leaves and internal nodes), whole and partial references to data
// extents and a hole, a second tree with a reflink, clones of both trees, a
// clone and its source changed after cloning, and two dropped trees (one
// sharing nodes with a surviving clone, one holding the only reference to
// an extent, which is freed with its checksums).
Status golden_operations(const GoldenSpec& spec, GoldenSink& sink) {
  const uint64_t n = spec.items;
  // 1: the user tree with filler, extents, references.
  ECFS_TRY(sink.begin());
  ECFS_TRY(sink.create_tree(kUserTree));
  for (uint64_t i = 0; i < n; ++i) {
    ECFS_TRY(sink.put(kUserTree, filler_key(i), value_bytes(i, filler_size(i))));
  }
  ECFS_TRY(sink.write_extent(1, 8));
  ECFS_TRY(sink.write_extent(2, 3));
  ECFS_TRY(sink.write_extent(3, 1));
  ECFS_TRY(sink.refer(kUserTree, kFirstFile, 0, 1, 0, 8 * kSector));
  ECFS_TRY(sink.refer(kUserTree, kFirstFile + 1, 0, 1, kSector, 2 * kSector));
  ECFS_TRY(sink.refer(kUserTree, kFirstFile + 1, 2 * kSector, 2, 0, 3 * kSector));
  ECFS_TRY(sink.refer(kUserTree, kFirstFile + 1, 16 * kSector, 0, 0, 4 * kSector));
  ECFS_TRY(sink.refer(kUserTree, kFirstFile + 2, 0, 3, 0, kSector));
  ECFS_TRY(sink.commit());

  // 2: more filler, removals, rewrites with other sizes; a second tree with
  // a reflink into extent 2; a tree that will be dropped with its extent.
  ECFS_TRY(sink.begin());
  for (uint64_t i = n; i < n + n / 2; ++i) {
    ECFS_TRY(sink.put(kUserTree, filler_key(i), value_bytes(i, filler_size(i))));
  }
  for (uint64_t i = 0; i < n; i += 10) ECFS_TRY(sink.remove(kUserTree, filler_key(i)));
  for (uint64_t i = 1; i < n; i += 7) {
    ECFS_TRY(sink.put(kUserTree, filler_key(i), value_bytes(i + 7777, filler_size(i + 3))));
  }
  ECFS_TRY(sink.create_tree(kSecondTree));
  for (uint64_t i = 0; i < n / 10; ++i) {
    ECFS_TRY(sink.put(kSecondTree, Key{500 + i, 1, 0}, value_bytes(i + 300, 20 + i % 50)));
  }
  ECFS_TRY(sink.refer(kSecondTree, kFirstFile + 3, 0, 2, kSector, kSector));
  ECFS_TRY(sink.create_tree(kDroppedTree));
  ECFS_TRY(sink.write_extent(5, 2));
  ECFS_TRY(sink.refer(kDroppedTree, kFirstFile + 4, 0, 5, 0, 2 * kSector));
  ECFS_TRY(sink.put(kDroppedTree, Key{9, 1, 0}, value_bytes(9, 99)));
  ECFS_TRY(sink.commit());

  // 3: clones.
  ECFS_TRY(sink.begin());
  ECFS_TRY(sink.clone(kUserTree, kCloneOfUser));
  ECFS_TRY(sink.clone(kSecondTree, kCloneOfSecond));
  ECFS_TRY(sink.commit());

  // 4: the clone of the user tree diverges in its first quarter and at its end
  // (removals of items never removed before, rewrites, new items, a new
  // extent, a reflink of part of extent 1), sharing the leaves in between
  // with its source, which changes a little too.
  ECFS_TRY(sink.begin());
  for (uint64_t i = 5; i < n / 4; i += 10) ECFS_TRY(sink.remove(kCloneOfUser, filler_key(i)));
  for (uint64_t i = 2; i < n / 4; i += 11) {
    ECFS_TRY(sink.put(kCloneOfUser, filler_key(i), value_bytes(i + 5555, filler_size(i + 5))));
  }
  for (uint64_t i = n + n / 2; i < n + n / 2 + 50; ++i) {
    ECFS_TRY(sink.put(kCloneOfUser, filler_key(i), value_bytes(i, filler_size(i))));
  }
  ECFS_TRY(sink.write_extent(4, 2));
  ECFS_TRY(sink.refer(kCloneOfUser, kFirstFile + 5, 0, 4, 0, 2 * kSector));
  ECFS_TRY(sink.refer(kCloneOfUser, kFirstFile + 6, 0, 1, 4 * kSector, 4 * kSector));
  ECFS_TRY(sink.put(kUserTree, filler_key(3), value_bytes(3333, 40)));
  ECFS_TRY(sink.commit());

  // 5: drops.
  ECFS_TRY(sink.begin());
  ECFS_TRY(sink.drop(kSecondTree));   // its clone keeps the shared nodes
  ECFS_TRY(sink.drop(kDroppedTree));  // frees extent 5
  return sink.commit();
}

// Builds the image through the engine.
class EngineSink final : public GoldenSink {
 public:
  explicit EngineSink(Engine& engine) : engine_(engine) {}

  Status begin() override { return engine_.begin(); }
  Status commit() override { return engine_.commit(); }
  Status create_tree(uint64_t id) override {
    auto tree = engine_.create_tree(id);
    if (!tree) return std::unexpected(tree.error());
    return ok();
  }
  Status put(uint64_t tree, const Key& key, ByteSpan value) override {
    auto open = engine_.open_tree(tree);
    if (!open) return std::unexpected(open.error());
    return (*open)->put(key, value);
  }
  Status remove(uint64_t tree, const Key& key) override {
    auto open = engine_.open_tree(tree);
    if (!open) return std::unexpected(open.error());
    return (*open)->remove(key);
  }
  Status clone(uint64_t source, uint64_t clone) override {
    return engine_.clone_tree(source, clone);
  }
  Status drop(uint64_t tree) override { return engine_.drop_tree(tree); }
  Status write_extent(uint64_t tag, uint64_t sectors) override {
    auto bytenr = engine_.allocate_data(sectors * kSector);
    if (!bytenr) return std::unexpected(bytenr.error());
    ECFS_TRY(engine_.write_data(*bytenr, golden_data(tag, sectors)));
    extents_[tag] = {*bytenr, sectors * kSector};
    return ok();
  }
  Status refer(uint64_t tree, uint64_t objectid, uint64_t offset, uint64_t tag,
               uint64_t extent_offset, uint64_t length) override {
    FileExtentRef ref{0, 0, 0, length};
    if (tag != 0) {
      const auto [bytenr, disk_length] = extents_.at(tag);
      ref = FileExtentRef{bytenr, disk_length, extent_offset, length};
    }
    auto open = engine_.open_tree(tree);
    if (!open) return std::unexpected(open.error());
    ECFS_TRY((*open)->insert(Key{objectid, kExtentDataKey, offset},
                             extent_data_item(ref, objectid, offset)));
    if (tag == 0) return ok();
    // The leaf holding the item now belongs to `tree` (the insert cowed it),
    // so the back reference names that tree (docs/FORMAT.md DataRefItem).
    return engine_.add_data_ref(ref.disk_bytenr, ref.disk_length,
                                DataRef{tree, objectid, offset, extent_offset, length});
  }

 private:
  Engine& engine_;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> extents_;  // tag -> (bytenr, length)
};

// What the image must hold. EXTENT_DATA items are kept with the extent's
// tag in place of its disk_bytenr (where the allocator puts an extent is
// the engine's business, not the format's).
struct GoldenModel {
  std::map<uint64_t, TreeContents> trees;
  std::map<uint64_t, uint64_t> extent_sectors;  // tag -> sectors, every extent written
  uint64_t commits = 0;
  // A commit by today's engine after the generator's (which adds a
  // free-space tree to an image without one).
  bool written_since = false;

  // The tags named by some EXTENT_DATA item: the extents that must survive.
  std::set<uint64_t> live_extents() const {
    std::set<uint64_t> tags;
    for (const auto& [id, items] : trees) {
      for (const auto& [key, data] : items) {
        if (key.type != kExtentDataKey) continue;
        const uint64_t tag = value_or_die(decode_file_extent_ref(data)).disk_bytenr;
        if (tag != 0) tags.insert(tag);
      }
    }
    return tags;
  }
};

class ModelSink final : public GoldenSink {
 public:
  explicit ModelSink(GoldenModel& model) : model_(model) {}

  Status begin() override { return ok(); }
  Status commit() override {
    ++model_.commits;
    return ok();
  }
  Status create_tree(uint64_t id) override {
    if (!model_.trees.emplace(id, TreeContents{}).second) return fail(EEXIST, "tree exists");
    return ok();
  }
  Status put(uint64_t tree, const Key& key, ByteSpan value) override {
    ECFS_TRY(require(tree));
    model_.trees[tree][key] = Bytes(value.begin(), value.end());
    return ok();
  }
  Status remove(uint64_t tree, const Key& key) override {
    ECFS_TRY(require(tree));
    if (model_.trees[tree].erase(key) == 0) return fail(ENOENT, "no such item");
    return ok();
  }
  Status clone(uint64_t source, uint64_t clone) override {
    ECFS_TRY(require(source));
    if (model_.trees.contains(clone)) return fail(EEXIST, "tree exists");
    model_.trees[clone] = model_.trees[source];
    return ok();
  }
  Status drop(uint64_t tree) override {
    ECFS_TRY(require(tree));
    model_.trees.erase(tree);
    return ok();
  }
  Status write_extent(uint64_t tag, uint64_t sectors) override {
    model_.extent_sectors[tag] = sectors;
    return ok();
  }
  Status refer(uint64_t tree, uint64_t objectid, uint64_t offset, uint64_t tag,
               uint64_t extent_offset, uint64_t length) override {
    ECFS_TRY(require(tree));
    const FileExtentRef ref = tag == 0 ? FileExtentRef{0, 0, 0, length}
                                       : FileExtentRef{tag, model_.extent_sectors.at(tag) * kSector,
                                                       extent_offset, length};
    const Key key{objectid, kExtentDataKey, offset};
    if (model_.trees[tree].contains(key)) return fail(EEXIST, "item exists");
    model_.trees[tree][key] = extent_data_item(ref, objectid, offset);
    return ok();
  }

 private:
  Status require(uint64_t tree) const {
    if (!model_.trees.contains(tree)) {
      return fail(ENOENT, "no tree " + std::to_string(tree));
    }
    return ok();
  }
  GoldenModel& model_;
};

// The expectation, from the generator alone (no engine involved).
GoldenModel expected_model(const GoldenSpec& spec) {
  GoldenModel model;
  model.trees[kFsTreeId] = {};  // made by mkfs, left empty
  ModelSink sink(model);
  Status status = golden_operations(spec, sink);
  EXPECT_TRUE(status) << status.error().to_string();
  return model;
}

MkfsOptions golden_mkfs_options(const GoldenSpec& spec) {
  MkfsOptions options;
  options.node_size = spec.node_size;
  options.checksum_type = spec.checksum_type;
  options.label = kGoldenLabel;
  options.fsid = kGoldenFsid;
  options.free_space_tree = spec.free_space_tree;
  if (spec.origin) options.origin = kGoldenOrigin;
  return options;
}

// Writes the image of `spec` onto a fresh device.
block::MemoryDevice generate_image(const GoldenSpec& spec) {
  block::MemoryDevice device(spec.device_size, spec.file);
  Status made = mkfs(device, golden_mkfs_options(spec));
  EXPECT_TRUE(made) << made.error().to_string();
  OpenOptions open_options;
  open_options.add_free_space_tree = spec.free_space_tree;
  auto engine = value_or_die(Engine::open(device, open_options));
  EngineSink sink(*engine);
  Status status = golden_operations(spec, sink);
  EXPECT_TRUE(status) << status.error().to_string();
  // Free space still holds the nodes that earlier generations used. No
  // reader looks at it; zeros keep the compressed image small.
  for (const auto& [start, end] : space_map(*engine).free_ranges()) {
    EXPECT_TRUE(device.write(start, Bytes(end - start)));
  }
  return device;
}

// ---------------------------------------------------------------- checking an image

// Compares the committed state of `engine` with `model`: superblock fields,
// fsck, the set of trees, every item of every tree, every data extent and
// every byte of its data.
void expect_image_holds(Engine& engine, const GoldenSpec& spec, const GoldenModel& model) {
  const Superblock& sb = engine.superblock();
  EXPECT_EQ(sb.format_version, 1u);
  EXPECT_EQ(sb.node_size, spec.node_size);
  EXPECT_EQ(sb.sector_size, kSectorSize);
  EXPECT_EQ(sb.checksum_type, spec.checksum_type);
  EXPECT_EQ(sb.fsid, kGoldenFsid);
  EXPECT_EQ(sb.label, kGoldenLabel);
  EXPECT_EQ(sb.generation, 1 + model.commits);  // mkfs commits generation 1
  EXPECT_EQ(sb.total_bytes, spec.device_size);
  EXPECT_EQ(sb.incompat_flags, 0u);
  EXPECT_EQ(sb.compat_flags, spec.origin ? kCompatImageOrigin : 0u);
  EXPECT_EQ(value_or_die(engine.image_origin()),
            spec.origin ? std::optional(kGoldenOrigin) : std::nullopt);
  // Images made without a free-space tree get one at their first commit.
  const bool free_space_tree = spec.free_space_tree || model.written_since;
  EXPECT_EQ(sb.compat_ro_flags, free_space_tree ? kCompatRoFreeSpaceTree : 0u);

  // Trees: the model's and the device trees.
  std::vector<uint64_t> ids{kExtentTreeId, kCsumTreeId};
  if (free_space_tree) ids.push_back(kFreeSpaceTreeId);
  for (const auto& [id, items] : model.trees) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(value_or_die(engine.list_trees()), ids);
  // Internal nodes are part of what the image exercises.
  EXPECT_GE(value_or_die(engine.committed_tree(kUserTree)).root().level, 1);

  // Items, with every extent's disk_bytenr replaced by the tag the model
  // gives the same item; the mapping must be one to one.
  std::map<uint64_t, uint64_t> tag_of;     // disk bytenr -> tag
  std::map<uint64_t, uint64_t> bytenr_of;  // tag -> disk bytenr
  for (const auto& [id, expected] : model.trees) {
    SCOPED_TRACE("tree " + std::to_string(id));
    TreeContents found = value_or_die(read_all(value_or_die(engine.committed_tree(id))));
    for (auto& [key, data] : found) {
      if (key.type != kExtentDataKey) continue;
      auto ref = decode_file_extent_ref(data);
      ASSERT_TRUE(ref) << ref.error().to_string();
      auto model_item = expected.find(key);
      if (ref->disk_bytenr == 0 || model_item == expected.end()) continue;
      const uint64_t tag = value_or_die(decode_file_extent_ref(model_item->second)).disk_bytenr;
      const auto [by_bytenr, new_bytenr] = tag_of.emplace(ref->disk_bytenr, tag);
      const auto [by_tag, new_tag] = bytenr_of.emplace(tag, ref->disk_bytenr);
      EXPECT_EQ(by_bytenr->second, tag) << "extent " << ref->disk_bytenr << " has two tags";
      EXPECT_EQ(by_tag->second, ref->disk_bytenr) << "tag " << tag << " has two extents";
      ref->disk_bytenr = tag;
      encode_file_extent_ref(*ref, data);
    }
    EXPECT_EQ(found.size(), expected.size());
    EXPECT_TRUE(found == expected) << "the items of tree " << id << " differ from the model";
  }

  // Data extents: exactly the live ones, with their lengths and bytes. The
  // dropped tree's extent is gone.
  std::map<uint64_t, uint64_t> extent_items;  // bytenr -> length
  ASSERT_TRUE(value_or_die(engine.committed_tree(kExtentTreeId))
                  .for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan) {
                    if (key.type == kExtentItemKey) extent_items[key.objectid] = key.offset;
                    return true;
                  }));
  std::map<uint64_t, uint64_t> expected_extents;
  uint64_t live_sectors = 0;
  for (uint64_t tag : model.live_extents()) {
    ASSERT_TRUE(bytenr_of.contains(tag)) << "no item names extent " << tag;
    const uint64_t sectors = model.extent_sectors.at(tag);
    expected_extents[bytenr_of[tag]] = sectors * kSector;
    live_sectors += sectors;
    SCOPED_TRACE("extent " + std::to_string(tag));
    auto data = engine.read_data(bytenr_of[tag], sectors * kSector);
    ASSERT_TRUE(data) << data.error().to_string();
    EXPECT_TRUE(*data == golden_data(tag, sectors)) << "the data of extent " << tag << " differs";
  }
  EXPECT_EQ(extent_items, expected_extents);
  EXPECT_LT(model.live_extents().size(), model.extent_sectors.size());  // one was freed

  // fsck: consistent, and every written sector of the live extents has a
  // checksum that matches (extents are written whole).
  auto report = engine.check();
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_TRUE(report->clean()) << problems_of(*report);
  EXPECT_EQ(report->data_sectors_checked, live_sectors);
  EXPECT_EQ(report->trees, ids.size() + 1);  // and the root tree
}

// ---------------------------------------------------------------- gzip files

std::string golden_path(const GoldenSpec& spec) {
  return std::string(ECFS_SOURCE_DIR) + "/tests/golden/" + spec.file;
}

// ---------------------------------------------------------------- tests

// The committed images open with today's engine and hold what the
// generator says; they stay writable: one more commit on each is clean.
TEST(GoldenImageTest, CommittedImagesOpenAndHoldTheGeneratorsModel) {
  for (const GoldenSpec& spec : kGoldenSpecs) {
    SCOPED_TRACE(spec.file);
    auto device = block::testing::read_gzip_image(golden_path(spec));
    ASSERT_TRUE(device) << device.error().to_string()
                        << " (regenerate with ECFS_WRITE_GOLDEN, see docs/FORMAT.md)";
    ASSERT_EQ(device->size(), spec.device_size);
    const GoldenModel model = expected_model(spec);
    {
      OpenOptions read_only;
      read_only.read_only = true;
      auto engine = Engine::open(*device, read_only);
      ASSERT_TRUE(engine) << engine.error().to_string();
      expect_image_holds(**engine, spec, model);
    }

    auto engine = value_or_die(Engine::open(*device));
    ASSERT_TRUE(engine->begin());
    BTree* tree = value_or_die(engine->open_tree(kCloneOfUser));
    ASSERT_TRUE(tree->put(Key{1, 1, 1}, value_bytes(1, 10)));
    ASSERT_TRUE(engine->commit());
    GoldenModel changed = model;
    changed.trees[kCloneOfUser][Key{1, 1, 1}] = value_bytes(1, 10);
    ++changed.commits;
    changed.written_since = true;
    engine.reset();
    expect_image_holds(*value_or_die(Engine::open(*device)), spec, changed);
  }
}

// Damage to the committed image is caught where it is: a data sector by
// its checksum, a tree node by its own.
TEST(GoldenImageTest, DamageToTheCommittedImageIsDetected) {
  const GoldenSpec& spec = kGoldenSpecs[0];
  auto device = block::testing::read_gzip_image(golden_path(spec));
  ASSERT_TRUE(device) << device.error().to_string();
  auto engine = value_or_die(Engine::open(*device));
  const FileExtentRef first = value_or_die(decode_file_extent_ref(*value_or_die(
      value_or_die(engine->committed_tree(kUserTree)).find(Key{kFirstFile, kExtentDataKey, 0}))));
  const uint64_t sector = first.disk_bytenr + 5 * kSector;
  uint8_t byte = 0;
  ASSERT_TRUE(device->read_at(sector + 100, {&byte, 1}));
  byte ^= 0x20;
  ASSERT_TRUE(device->write_at(sector + 100, {&byte, 1}));

  auto data = engine->read_data(first.disk_bytenr, first.disk_length);
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().errno_value(), EIO);
  EXPECT_NE(data.error().message().find(std::to_string(sector)), std::string::npos)
      << data.error().message();
  auto report = value_or_die(engine->check());
  ASSERT_EQ(report.problems.size(), 1u) << problems_of(report);
  EXPECT_NE(report.problems[0].find("data checksum mismatch"), std::string::npos);

  const uint64_t root = engine->superblock().root_tree_bytenr;
  engine.reset();
  ASSERT_TRUE(device->read_at(root + 200, {&byte, 1}));
  byte ^= 0x01;
  ASSERT_TRUE(device->write_at(root + 200, {&byte, 1}));
  auto reopened = Engine::open(*device);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().errno_value(), EIO);
  EXPECT_NE(reopened.error().message().find("checksum mismatch"), std::string::npos)
      << reopened.error().message();
}

// The generator: deterministic (two runs give identical devices), and what
// it builds matches the model. With ECFS_WRITE_GOLDEN=DIR it also writes the
// images into DIR.
TEST(GoldenImageWriter, GeneratorIsDeterministicAndMatchesItsModel) {
  const char* out_dir = std::getenv("ECFS_WRITE_GOLDEN");
  for (const GoldenSpec& spec : kGoldenSpecs) {
    SCOPED_TRACE(spec.file);
    const block::MemoryDevice image = generate_image(spec);
    EXPECT_TRUE(image.same_contents(generate_image(spec)))
        << "the generator is not deterministic: first difference in block "
        << generate_image(spec).first_different_block(image).value_or(0);
    block::MemoryDevice copy = image;
    expect_image_holds(*value_or_die(Engine::open(copy)), spec, expected_model(spec));
    if (out_dir == nullptr) continue;
    const std::string path = std::string(out_dir) + "/" + spec.file;
    Status written = block::testing::write_gzip_image(image, path);
    ASSERT_TRUE(written) << written.error().to_string();
    std::printf("wrote %s: %llu bytes (%zu blocks in use of %llu)\n", path.c_str(),
                static_cast<unsigned long long>(std::filesystem::file_size(path)),
                image.allocated_blocks(), static_cast<unsigned long long>(image.size() / kSector));
  }
}

}  // namespace
}  // namespace ecfs::store
