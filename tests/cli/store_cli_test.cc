// Command-line tests of `ecfs mkfs`, `ecfs fsck` and `ecfs inspect`, run as
// subprocesses on image files: the happy path (mkfs -> fsck clean -> inspect
// --json shows generation 1 and the four initial trees), btrfs-progs habits
// (refusal to overwrite without --force, exit 2 for bad options with one line
// on stderr), and damaged images (garbage, truncated, one superblock copy
// damaged, flipped bytes in each tree node) which must give a clear error
// and a non-zero exit, never a signal or a hang.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cli_test_util.h"

namespace ecfs::cli_test {
namespace {

constexpr const char* kUuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
// Big enough for the second superblock copy at 64 MiB.
constexpr uint64_t kImageSize = 128ull << 20;

class StoreCliTest : public EcfsCommandTest {
 protected:
  void SetUp() override {
    ASSERT_FALSE(scratch_.path().empty());
    image_ = scratch_.file("image");
  }

  void make_image(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"mkfs", image_, "--size", "128M", "--uuid", kUuid};
    args.insert(args.end(), extra.begin(), extra.end());
    const Outcome run = ecfs(args);
    ASSERT_EQ(run.exit_status, 0) << run.describe();
  }

  // inspect --json of the image, checked to exit 0.
  std::string inspect_json(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"inspect", "--json", image_};
    args.insert(args.end(), extra.begin(), extra.end());
    const Outcome run = ecfs(args);
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    return run.out;
  }

  // Every tree node (bytenr) of the image, from inspect --json.
  std::vector<uint64_t> node_bytenrs() {
    const std::string nodes =
        query(inspect_json(), "' '.join(str(n['bytenr']) for t in d['trees'] for n in t['nodes'])");
    std::vector<uint64_t> out;
    std::istringstream in(nodes);
    for (uint64_t bytenr; in >> bytenr;) out.push_back(bytenr);
    return out;
  }

  void expect_usage_error(std::vector<std::string> args) {
    const Outcome run = ecfs(args);
    EXPECT_EQ(run.exit_status, 2) << run.describe();
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
    EXPECT_EQ(run.out, "");
  }

  std::string image_;
};

// ------------------------------------------------------------------- mkfs

TEST_F(StoreCliTest, MkfsCreatesASparseImageAndPrintsASummary) {
  const Outcome run =
      ecfs({"mkfs", image_, "--size", "128M", "--label", "backup", "--uuid", kUuid});
  ASSERT_EQ(run.exit_status, 0) << run.describe();
  EXPECT_NE(run.out.find("Label:              backup"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find(std::string("UUID:               ") + kUuid), std::string::npos);
  EXPECT_NE(run.out.find("Node size:          16384"), std::string::npos);
  EXPECT_NE(run.out.find("Sector size:        4096"), std::string::npos);
  EXPECT_NE(run.out.find("Checksum:           crc32c"), std::string::npos);
  EXPECT_NE(run.out.find("Filesystem size:    128.00MiB (134217728 bytes)"), std::string::npos);
  EXPECT_EQ(run.err, "");
  struct stat st;
  ASSERT_EQ(stat(image_.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kImageSize);
  // Sparse: only the trees and superblocks take space.
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 4ull << 20);
}

TEST_F(StoreCliTest, FreshImageIsCleanAndInspectShowsGenerationOneAndTheInitialTrees) {
  make_image({"--label", "fresh"});
  const Outcome fsck = ecfs({"fsck", image_});
  EXPECT_EQ(fsck.exit_status, 0) << fsck.describe();
  EXPECT_NE(fsck.out.find("no errors found"), std::string::npos) << fsck.out;
  EXPECT_NE(fsck.out.find(kUuid), std::string::npos) << fsck.out;

  const Outcome fsck_json = ecfs({"fsck", "--json", image_});
  EXPECT_EQ(fsck_json.exit_status, 0) << fsck_json.describe();
  EXPECT_EQ(query(fsck_json.out,
                  "d['clean'], d['problem_count'], d['trees'], d['superblock']['generation']"),
            "True 0 5 1");

  const std::string json = inspect_json();
  EXPECT_EQ(query(json, "d['superblock']['generation']"), "1");
  EXPECT_EQ(query(json, "d['superblock']['uuid']"), kUuid);
  EXPECT_EQ(query(json, "d['superblock']['label']"), "fresh");
  EXPECT_EQ(query(json, "d['superblock']['node_size'], d['superblock']['sector_size']"),
            "16384 4096");
  EXPECT_EQ(query(json, "d['superblock']['checksum_name'], d['superblock']['format_version']"),
            "crc32c 1");
  EXPECT_EQ(query(json, "d['superblock']['total_bytes']"), std::to_string(kImageSize));
  EXPECT_EQ(
      query(json,
            "[(c['offset'], c['valid'], c.get('generation')) for c in d['superblock_copies']]"),
      "[(65536, True, 1), (67108864, True, 1)]");
  EXPECT_EQ(query(json, "[(t['id'], t['name']) for t in d['trees']]"),
            "[(1, 'ROOT_TREE'), (2, 'EXTENT_TREE'), (5, 'FS_TREE'), (7, 'CSUM_TREE'), "
            "(10, 'FREE_SPACE_TREE')]");
  // The root tree's ROOT_ITEMs, decoded, point where each tree's root is.
  EXPECT_EQ(query(json,
                  "all(i['root_item']['bytenr'] == t['root']['bytenr'] "
                  "for i in d['trees'][0]['nodes'][0]['items'] "
                  "for t in d['trees'] if t['id'] == i['key']['objectid'])"),
            "True");
  EXPECT_EQ(query(json, "[i['key']['type_name'] for i in d['trees'][0]['nodes'][0]['items']]"),
            "['ROOT_ITEM', 'ROOT_ITEM', 'ROOT_ITEM', 'ROOT_ITEM', 'PERSISTENT_ITEM']");
  // The extent tree holds one METADATA_ITEM per tree node, each with one
  // reference and the right owner.
  EXPECT_EQ(
      query(json,
            "sorted((i['key']['objectid'], i['extent_item']['refs'], i['extent_item']['owner']) "
            "for i in d['trees'][1]['nodes'][0]['items']) == "
            "sorted((n['bytenr'], 1, t['id']) for t in d['trees'] for n in t['nodes'])"),
      "True");
  // A fresh superblock's root tree is where the root tree dump starts.
  EXPECT_EQ(query(json, "d['superblock']['root_tree_bytenr'] == d['trees'][0]['root']['bytenr']"),
            "True");
  EXPECT_EQ(query(json, "d['errors']"), "[]");
}

// mkfs records which ecfs made the image and when; inspect shows it, and
// the feature bits by name.
TEST_F(StoreCliTest, MkfsRecordsTheVersionThatMadeTheImage) {
  const time_t before = time(nullptr);
  make_image();
  const time_t after = time(nullptr);
  const Outcome version = ecfs({"--version"});
  ASSERT_EQ(version.exit_status, 0) << version.describe();
  const std::string program = version.out.substr(0, version.out.find('\n'));
  ASSERT_EQ(program.rfind("ecfs ", 0), 0u) << version.out;

  const std::string json = inspect_json();
  EXPECT_EQ(query(json, "d['origin']['program']"), program);
  const int64_t created = std::stoll(query(json, "d['origin']['created_sec']"));
  EXPECT_GE(created, before);
  EXPECT_LE(created, after);
  EXPECT_EQ(query(json, "d['superblock']['compat_features'], d['superblock']['compat_flags']"),
            "image_origin 1");
  EXPECT_EQ(query(json, "d['superblock']['compat_ro_features']"), "free_space_tree");
  EXPECT_EQ(query(json, "d['trees'][0]['nodes'][0]['items'][-1]['image_origin']['program']"),
            program);

  const Outcome text = ecfs({"inspect", image_});
  ASSERT_EQ(text.exit_status, 0) << text.describe();
  EXPECT_NE(text.out.find("made_by                " + program + ", " +
                          query(json, "d['origin']['created']")),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("compat_flags           0x1 (image_origin)"), std::string::npos)
      << text.out;
}

// An image made before the origin was recorded says so, and stays clean.
TEST_F(StoreCliTest, ImagesWithoutAnOriginSayNotRecorded) {
  const std::string golden =
      (std::filesystem::path(__FILE__).parent_path().parent_path() / "golden/").string();
  const Outcome unpacked =
      run_program({"/bin/sh", "-c", "gzip -dc \"$0\"", golden + "format-v1-free-space-tree.img.gz"},
                  scratch_.path());
  ASSERT_EQ(unpacked.exit_status, 0) << unpacked.describe();
  const std::string old_image = scratch_.file("old.img");
  std::ofstream(old_image, std::ios::binary | std::ios::trunc) << unpacked.out;
  const Outcome text = ecfs({"inspect", "--tree", "1", old_image});
  ASSERT_EQ(text.exit_status, 0) << text.describe();
  EXPECT_NE(text.out.find("made_by                (not recorded)"), std::string::npos) << text.out;
  const Outcome json = ecfs({"inspect", "--json", "--tree", "1", old_image});
  EXPECT_EQ(query(json.out, "d['origin'], d['superblock']['compat_features']"), "None ");
}

TEST_F(StoreCliTest, InspectTextShowsSuperblockAndDecodedItems) {
  make_image();
  const Outcome run = ecfs({"inspect", image_});
  ASSERT_EQ(run.exit_status, 0) << run.describe();
  EXPECT_NE(run.out.find("superblock copy at 65536: valid, generation 1"), std::string::npos);
  EXPECT_NE(run.out.find("tree 2 EXTENT_TREE"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("key (5 ROOT_ITEM 0) size 48"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("root_item: bytenr "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("METADATA_ITEM 0) size 40"), std::string::npos) << run.out;
}

TEST_F(StoreCliTest, InspectOneTree) {
  make_image();
  EXPECT_EQ(query(inspect_json({"--tree", "5"}), "[t['id'] for t in d['trees']]"), "[5]");
  const Outcome missing = ecfs({"inspect", "--json", "--tree", "99", image_});
  EXPECT_EQ(missing.exit_status, 1) << missing.describe();
  EXPECT_NE(missing.err.find("no tree 99"), std::string::npos) << missing.err;
  EXPECT_EQ(query(missing.out, "d['trees'], len(d['errors'])"), "[] 1");
  expect_usage_error({"inspect", "--tree", "five", image_});
}

TEST_F(StoreCliTest, MkfsOptionsReachTheSuperblock) {
  for (const char* checksum : {"crc32c", "xxhash64", "sha256", "blake2b"}) {
    SCOPED_TRACE(checksum);
    const Outcome run = ecfs({"mkfs", image_, "--force", "--size", "65536K", "--nodesize", "4K",
                              "--checksum", checksum});
    ASSERT_EQ(run.exit_status, 0) << run.describe();
    const std::string json = inspect_json();
    EXPECT_EQ(query(json,
                    "d['superblock']['checksum_name'], d['superblock']['node_size'], "
                    "d['superblock']['total_bytes']"),
              std::string(checksum) + " 4096 67108864");
    const Outcome fsck = ecfs({"fsck", image_});
    EXPECT_EQ(fsck.exit_status, 0) << fsck.describe();
  }
}

TEST_F(StoreCliTest, MkfsRefusesToOverwriteAnEcfsImageWithoutForce) {
  make_image();
  const Outcome refused = ecfs({"mkfs", image_, "--size", "128M"});
  EXPECT_EQ(refused.exit_status, 1) << refused.describe();
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  EXPECT_EQ(query(inspect_json(), "d['superblock']['uuid']"), kUuid);  // untouched

  const Outcome forced = ecfs({"mkfs", image_, "--force"});  // keeps the file's size
  ASSERT_EQ(forced.exit_status, 0) << forced.describe();
  const std::string json = inspect_json();
  EXPECT_NE(query(json, "d['superblock']['uuid']"), kUuid);  // random this time
  // A version 4 UUID (RFC 9562 section 5.4), as mkfs.btrfs makes.
  EXPECT_EQ(query(json, "__import__('uuid').UUID(d['superblock']['uuid']).version"), "4");
  EXPECT_EQ(query(json, "d['superblock']['total_bytes']"), std::to_string(kImageSize));
}

TEST_F(StoreCliTest, MkfsUsesAnExistingNonEcfsFileWithoutForce) {
  {
    std::ofstream file(image_, std::ios::binary);
    file << std::string(1 << 20, 'x');
  }
  std::filesystem::resize_file(image_, 32 << 20);
  const Outcome run = ecfs({"mkfs", image_});
  ASSERT_EQ(run.exit_status, 0) << run.describe();
  EXPECT_EQ(ecfs({"fsck", image_}).exit_status, 0);
}

TEST_F(StoreCliTest, MkfsBadOptionsExitTwoAndTouchNothing) {
  for (const char* size :
       {"8Q", "abc", "-1", "", "0", "1.5G", "8 G", "99999999999999999999", "16777216T"}) {
    SCOPED_TRACE(size);
    expect_usage_error({"mkfs", image_, "--size", size});
  }
  expect_usage_error({"mkfs", image_, "--size", "128M", "--nodesize", "3000"});
  expect_usage_error({"mkfs", image_, "--size", "128M", "--nodesize", "128K"});
  expect_usage_error({"mkfs", image_, "--size", "128M", "--nodesize", "2K"});
  expect_usage_error({"mkfs", image_, "--size", "128M", "--checksum", "md5"});
  expect_usage_error({"mkfs", image_, "--size", "128M", "--uuid", "not-a-uuid"});
  expect_usage_error(
      {"mkfs", image_, "--size", "128M", "--uuid", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"});
  expect_usage_error({"mkfs", image_, "--size", "128M", "--label", std::string(256, 'L')});
  expect_usage_error({"mkfs", image_});  // does not exist: --size needed
  expect_usage_error({"mkfs"});
  expect_usage_error({"mkfs", image_, "--size", "128M", "--bogus"});
  EXPECT_FALSE(std::filesystem::exists(image_));
}

TEST_F(StoreCliTest, MkfsOfATooSmallImageFailsAndLeavesNoFile) {
  const Outcome run = ecfs({"mkfs", image_, "--size", "1M"});
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_NE(run.err.find("at least"), std::string::npos) << run.err;
  EXPECT_FALSE(std::filesystem::exists(image_));
}

TEST_F(StoreCliTest, SizeUnitsAreBinary) {
  const Outcome run = ecfs({"mkfs", image_, "--size", "1g"});
  ASSERT_EQ(run.exit_status, 0) << run.describe();
  EXPECT_EQ(query(inspect_json(), "d['superblock']['total_bytes']"), std::to_string(1ull << 30));
}

// ------------------------------------------------------------------ fsck

TEST_F(StoreCliTest, FsckUsage) {
  expect_usage_error({"fsck"});
  expect_usage_error({"fsck", "--frobnicate", image_});
  const Outcome missing = ecfs({"fsck", scratch_.file("no-such-image")});
  EXPECT_EQ(missing.exit_status, 1) << missing.describe();
  EXPECT_NE(missing.err.find("no-such-image"), std::string::npos) << missing.err;
}

TEST_F(StoreCliTest, FsckOfAGarbageFileSaysItIsNotAnEcfsImage) {
  {
    std::mt19937_64 random(42);
    std::string garbage(8 << 20, '\0');
    for (char& c : garbage) c = static_cast<char>(random());
    std::ofstream(image_, std::ios::binary) << garbage;
  }
  for (bool json : {false, true}) {
    const Outcome run = json ? ecfs({"fsck", "--json", image_}) : ecfs({"fsck", image_});
    ASSERT_TRUE(run.exited()) << run.describe();
    EXPECT_EQ(run.exit_status, 1) << run.describe();
    EXPECT_NE(run.err.find("not an ecfs image"), std::string::npos) << run.err;
    if (json) {
      EXPECT_EQ(query(run.out, "d['clean'], d['superblock']"), "False None");
    }
  }
  const Outcome inspect = ecfs({"inspect", "--json", image_});
  EXPECT_EQ(inspect.exit_status, 1) << inspect.describe();
  EXPECT_EQ(query(inspect.out, "[c['valid'] for c in d['superblock_copies']], d['trees']"),
            "[False] []");  // 8 MiB: room for the first copy only
}

TEST_F(StoreCliTest, FsckOfATinyOrEmptyFileFails) {
  std::ofstream(image_, std::ios::binary) << "ecfs";
  const Outcome run = ecfs({"fsck", image_});
  ASSERT_TRUE(run.exited()) << run.describe();
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_NE(run.err.find("not an ecfs image"), std::string::npos) << run.err;
}

TEST_F(StoreCliTest, FsckOfATruncatedImageFails) {
  make_image();
  for (uint64_t size : {100ull << 20, 32ull << 20, 68ull << 10}) {
    SCOPED_TRACE(size);
    std::filesystem::resize_file(image_, size);
    const Outcome run = ecfs({"fsck", image_});
    ASSERT_TRUE(run.exited()) << run.describe();
    EXPECT_EQ(run.exit_status, 1) << run.describe();
    EXPECT_NE(run.err.find("truncated"), std::string::npos) << run.err;
  }
}

TEST_F(StoreCliTest, FsckUsesTheOtherSuperblockCopyAndReportsTheDamagedOne) {
  make_image();
  flip_byte(image_, (64 << 10) + 200);  // inside the primary copy's checksummed area
  const Outcome run = ecfs({"fsck", image_});
  ASSERT_TRUE(run.exited()) << run.describe();
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_NE(run.out.find("using the copy at 67108864"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("ERROR: superblock copy at 64"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("Trees:            5"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("errors found"), std::string::npos) << run.err;

  const Outcome json = ecfs({"fsck", "--json", image_});
  EXPECT_EQ(json.exit_status, 1) << json.describe();
  EXPECT_EQ(query(json.out,
                  "d['superblock']['copy_bytenr'], len(d['superblock_problems']), "
                  "d['problems'], d['trees']"),
            "67108864 1 [] 5");
  // inspect still dumps everything, marking the damaged copy.
  const std::string dump = inspect_json();
  EXPECT_EQ(query(dump, "[c['valid'] for c in d['superblock_copies']], d['superblock']['bytenr']"),
            "[False, True] 67108864");
}

TEST_F(StoreCliTest, FsckOfAnImageWithEveryCopyDamagedFails) {
  make_image();
  flip_byte(image_, (64 << 10) + 200);
  flip_byte(image_, (64 << 20) + 200);
  const Outcome run = ecfs({"fsck", image_});
  ASSERT_TRUE(run.exited()) << run.describe();
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_NE(run.err.find("copy at"), std::string::npos) << run.err;
}

// A flipped byte anywhere in any tree node -- checksum, header, item headers,
// item data -- is found, and the message names the node.
TEST_F(StoreCliTest, FsckFindsAFlippedByteInEveryTreeNode) {
  make_image();
  const std::vector<uint64_t> nodes = node_bytenrs();
  ASSERT_EQ(nodes.size(), 5u);
  for (uint64_t bytenr : nodes) {
    for (uint64_t offset : {0ull, 40ull, 56ull, 64ull, 84ull, 90ull, 100ull, 16383ull}) {
      SCOPED_TRACE("node " + std::to_string(bytenr) + " byte " + std::to_string(offset));
      flip_byte(image_, bytenr + offset, 0x10);
      const Outcome run = ecfs({"fsck", image_});
      ASSERT_TRUE(run.exited()) << run.describe();
      EXPECT_EQ(run.exit_status, 1) << run.describe();
      EXPECT_NE((run.out + run.err).find(std::to_string(bytenr)), std::string::npos)
          << run.describe();
      const Outcome inspect = ecfs({"inspect", "--json", image_});
      ASSERT_TRUE(inspect.exited()) << inspect.describe();
      EXPECT_EQ(inspect.exit_status, 1) << inspect.describe();
      EXPECT_EQ(query(inspect.out, "len(d['errors']) > 0"), "True");
      // inspect still dumps every tree it can reach: only the damaged
      // node's subtree is missing (all of them when it is the root tree's).
      EXPECT_EQ(query(inspect.out, "len(d['trees']), sum(len(t['nodes']) for t in d['trees'])"),
                bytenr == nodes.front() ? "1 0" : "5 4");
      flip_byte(image_, bytenr + offset, 0x10);  // repaired for the next round
      ASSERT_EQ(ecfs({"fsck", image_}).exit_status, 0);
    }
  }
}

// Random damage anywhere in the used part of the image: every run ends by
// itself with 0 or 1, and whenever a byte of a tree node or of a superblock
// copy changed, fsck does not call the image clean.
TEST_F(StoreCliTest, FsckSurvivesRandomDamage) {
  make_image();
  const std::vector<uint64_t> nodes = node_bytenrs();
  const uint64_t high = *std::max_element(nodes.begin(), nodes.end()) + 16384;
  std::mt19937_64 random(7);
  for (int round = 0; round < 30; ++round) {
    bool hit_metadata = false;
    std::vector<std::pair<uint64_t, uint8_t>> flipped;
    for (int flips = 0; flips < 4; ++flips) {
      // Half the flips land in tree nodes, half anywhere up to the last node
      // (boot area, primary superblock copy, nodes).
      uint64_t offset = random() % high;
      if (flips % 2 == 0) offset = nodes[random() % nodes.size()] + random() % 16384;
      const auto mask = static_cast<uint8_t>(1u << (random() % 8));
      flip_byte(image_, offset, mask);
      flipped.emplace_back(offset, mask);
      for (uint64_t bytenr : nodes) hit_metadata |= offset >= bytenr && offset < bytenr + 16384;
    }
    SCOPED_TRACE("round " + std::to_string(round));
    const Outcome run = ecfs({"fsck", image_});
    ASSERT_TRUE(run.exited()) << run.describe();
    EXPECT_TRUE(run.exit_status == 0 || run.exit_status == 1) << run.describe();
    if (hit_metadata) {
      EXPECT_EQ(run.exit_status, 1) << run.describe();
    }
    const Outcome inspect = ecfs({"inspect", image_});
    ASSERT_TRUE(inspect.exited()) << inspect.describe();
    for (auto it = flipped.rbegin(); it != flipped.rend(); ++it)
      flip_byte(image_, it->first, it->second);
  }
  EXPECT_EQ(ecfs({"fsck", image_}).exit_status, 0);  // every flip undone
}

}  // namespace
}  // namespace ecfs::cli_test
