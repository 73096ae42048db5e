// `ecfs fsck` on images holding data (written through the engine, as the
// command line cannot yet): --metadata-only skips reading data sectors and
// says so; progress appears on stderr only when stderr is a terminal (a
// pseudo-terminal here) and never in a pipe or file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "block/file_device.h"
#include "cli_test_util.h"
#include "store/engine.h"

namespace ecfs::cli_test {
namespace {

constexpr uint64_t kSector = 4096;
constexpr uint64_t kDataSectors = 16;
// The tree naming the data: an engine-level tree, not a filesystem tree, so
// that the filesystem check (which would call a bare EXTENT_DATA item
// malformed) has nothing to say about it.
constexpr uint64_t kDataTree = 200;

// Runs `argv` with stderr on a new pseudo-terminal (so isatty(2) holds),
// stdout into a file; returns what reached the terminal in `err`.
Outcome run_with_terminal_stderr(const std::vector<std::string>& argv, const std::string& scratch) {
  Outcome run;
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return run;
  const pid_t pid = spawn_program(argv, "/dev/null", scratch + "/.tty-stdout", ptsname(master));
  if (pid >= 0) {
    // Drained while the child runs: a full terminal buffer would block it.
    auto drain = [&] {
      char buffer[4096];
      pollfd ready{master, POLLIN, 0};
      while (poll(&ready, 1, 0) > 0 && (ready.revents & POLLIN) != 0) {
        const ssize_t n = read(master, buffer, sizeof buffer);
        if (n <= 0) break;  // EIO once the child closed the terminal
        run.err.append(buffer, static_cast<size_t>(n));
      }
    };
    wait_for_program(pid, 120, run, drain);
    drain();
  }
  close(master);
  run.out = read_whole_file(scratch + "/.tty-stdout");
  return run;
}

class FsckCliTest : public EcfsCommandTest {
 protected:
  // A 64 MiB image with one data extent of kDataSectors sectors that tree
  // kDataTree references, made through the engine.
  void SetUp() override {
    ASSERT_FALSE(scratch_.path().empty());
    image_ = scratch_.file("image");
    block::FileDeviceOptions options;
    options.create_size = 64ull << 20;
    auto device = block::open_file_device(image_, options);
    ASSERT_TRUE(device) << device.error().to_string();
    ASSERT_TRUE(store::mkfs(**device, store::MkfsOptions{}));
    auto engine = store::Engine::open(**device);
    ASSERT_TRUE(engine) << engine.error().to_string();
    ASSERT_TRUE((*engine)->begin());
    auto bytenr = (*engine)->allocate_data(kDataSectors * kSector);
    ASSERT_TRUE(bytenr);
    data_bytenr_ = *bytenr;
    Bytes data(kDataSectors * kSector);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + i / 4096);
    ASSERT_TRUE((*engine)->write_data(data_bytenr_, data));
    const store::FileExtentRef ref{data_bytenr_, data.size(), 0, data.size()};
    auto tree = (*engine)->create_tree(kDataTree);
    ASSERT_TRUE(tree);
    ASSERT_TRUE((*tree)->insert(store::Key{257, store::kExtentDataKey, 0},
                                store::encode_file_extent_ref(ref)));
    ASSERT_TRUE((*engine)->add_data_ref(data_bytenr_, data.size(),
                                        store::DataRef{kDataTree, 257, 0, 0, data.size()}));
    ASSERT_TRUE((*engine)->commit());
  }  // the engine and device close here: ecfs can lock the image

  std::string image_;
  uint64_t data_bytenr_ = 0;
};

TEST_F(FsckCliTest, FullCheckReadsEveryDataSector) {
  const Outcome run = ecfs({"fsck", image_});
  EXPECT_EQ(run.exit_status, 0) << run.describe();
  EXPECT_NE(run.out.find("Data sectors:     16 verified against their checksums"),
            std::string::npos)
      << run.out;
  const Outcome json = ecfs({"fsck", "--json", image_});
  EXPECT_EQ(json.exit_status, 0) << json.describe();
  EXPECT_EQ(query(json.out, "d['clean'], d['data_verified'], d['data_sectors_checked']"),
            "True True 16");
}

TEST_F(FsckCliTest, MetadataOnlySkipsDataSectorsAndSaysSo) {
  flip_byte(image_, data_bytenr_ + 9 * kSector + 123, 0x40);
  const Outcome full = ecfs({"fsck", image_});
  EXPECT_EQ(full.exit_status, 1) << full.describe();
  EXPECT_NE(full.out.find("ERROR: data checksum mismatch in the data sector at byte offset " +
                          std::to_string(data_bytenr_ + 9 * kSector)),
            std::string::npos)
      << full.out;

  const Outcome quick = ecfs({"fsck", "--metadata-only", image_});
  EXPECT_EQ(quick.exit_status, 0) << quick.describe();
  EXPECT_NE(quick.out.find("Data sectors:     not read (--metadata-only"), std::string::npos)
      << quick.out;
  EXPECT_NE(quick.out.find("no errors found"), std::string::npos) << quick.out;
  const Outcome json = ecfs({"fsck", "--json", "--metadata-only", image_});
  EXPECT_EQ(json.exit_status, 0) << json.describe();
  EXPECT_EQ(query(json.out, "d['clean'], d['data_verified'], d['data_sectors_checked']"),
            "True False 0");

  // Metadata damage is still found: a flipped byte in the primary
  // superblock copy (the only one that fits in 64 MiB).
  flip_byte(image_, (64 << 10) + 200);
  const Outcome damaged = ecfs({"fsck", "--metadata-only", image_});
  EXPECT_EQ(damaged.exit_status, 1) << damaged.describe();
}

TEST_F(FsckCliTest, NoProgressWhenStderrIsNotATerminal) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"fsck", image_},
                                               {"fsck", "--json", image_},
                                               {"fsck", "--metadata-only", image_}}) {
    const Outcome run = ecfs(args);
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    EXPECT_EQ(run.err, "") << "progress or chatter on a non-terminal stderr";
    EXPECT_EQ(run.out.find('\r'), std::string::npos) << run.out;
    EXPECT_EQ(run.out.find("checking"), std::string::npos) << run.out;
  }
}

TEST_F(FsckCliTest, ProgressOnATerminalIsOneLineErasedAtTheEnd) {
  const Outcome run = run_with_terminal_stderr({ECFS_BINARY, "fsck", image_}, scratch_.path());
  ASSERT_EQ(run.exit_status, 0) << run.describe();
  // The first phase is always drawn; the line is redrawn in place (no
  // newline) and erased before the report, which goes to stdout untouched.
  EXPECT_NE(run.err.find("\recfs fsck: checking trees"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find('\n'), std::string::npos) << run.err;
  const std::string erase = "\r\x1b[K";
  ASSERT_GE(run.err.size(), erase.size());
  EXPECT_EQ(run.err.substr(run.err.size() - erase.size()), erase) << run.err;
  EXPECT_NE(run.out.find("no errors found"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find('\r'), std::string::npos) << run.out;
}

// The committed golden images (docs/FORMAT.md "Golden images") read clean
// through the command line too, with and without reading their data.
using GoldenImageCliTest = EcfsCommandTest;

TEST_F(GoldenImageCliTest, CommittedImagesAreCleanThroughTheCommandLine) {
  const std::filesystem::path golden =
      std::filesystem::path(__FILE__).parent_path().parent_path() / "golden";
  const char* gzip = access("/usr/bin/gzip", X_OK) == 0 ? "/usr/bin/gzip" : "/bin/gzip";
  if (access(gzip, X_OK) != 0) GTEST_SKIP() << "gzip is not installed";
  ASSERT_FALSE(scratch_.path().empty());
  int images = 0;
  for (const auto& entry : std::filesystem::directory_iterator(golden)) {
    if (!entry.path().string().ends_with(".img.gz")) continue;
    SCOPED_TRACE(entry.path().string());
    ++images;
    // The engine images (src/store/golden_image_test.cc) and the filesystem
    // images (src/fs/golden_filesystem_test.cc, golden_encrypted_test.cc,
    // golden_large_xattrs_test.cc, golden_subvolumes_test.cc) differ in
    // history and trees.
    struct Expected {
      std::string state;
      std::string trees;
    };
    static const std::map<std::string, Expected> kFilesystemImages = {
        {"format-v1-filesystem.img.gz", {"True 3 golden-fs", "1 [1, 2, 5, 7]"}},
        {"format-v1-encrypted.img.gz", {"True 3 golden-encrypted", "1 [1, 2, 5, 7]"}},
        {"format-v1-large-xattrs.img.gz", {"True 3 golden-xattrs", "1 [1, 2, 5, 7]"}},
        {"format-v1-subvolumes.img.gz", {"True 9 golden-subvolumes", "1 [1, 2, 5, 7, 256, 258]"}},
        {"format-v1-free-space-tree.img.gz",
         {"True 6 ecfs golden image v1", "1 [1, 2, 5, 7, 10, 200, 202, 203]"}},
        {"format-v1-image-origin.img.gz",
         {"True 6 ecfs golden image v1", "1 [1, 2, 5, 7, 10, 200, 202, 203]"}},
        {"format-v1-protectors.img.gz", {"True 8 golden-protectors", "1 [1, 2, 5, 7, 10, 11]"}},
        {"format-v1-key-rotation.img.gz", {"True 9 golden-rotation", "1 [1, 2, 5, 7, 10, 11]"}},
    };
    const auto filesystem_image = kFilesystemImages.find(entry.path().filename().string());
    const Expected expected =
        filesystem_image != kFilesystemImages.end()
            ? filesystem_image->second
            : Expected{"True 6 ecfs golden image v1", "1 [1, 2, 5, 7, 200, 202, 203]"};
    const std::string& expected_state = expected.state;
    const std::string& expected_trees = expected.trees;
    const Outcome unpacked = run_program({gzip, "-dc", entry.path().string()}, scratch_.path());
    ASSERT_EQ(unpacked.exit_status, 0) << unpacked.describe();
    const std::string image = scratch_.file("golden.img");
    std::ofstream(image, std::ios::binary | std::ios::trunc) << unpacked.out;
    for (bool metadata_only : {false, true}) {
      std::vector<std::string> args = {"fsck", "--json", image};
      if (metadata_only) args.push_back("--metadata-only");
      const Outcome fsck = ecfs(args);
      EXPECT_EQ(fsck.exit_status, 0) << fsck.describe();
      EXPECT_EQ(
          query(fsck.out, "d['clean'], d['superblock']['generation'], d['superblock']['label']"),
          expected_state);
    }
    const Outcome inspect = ecfs({"inspect", "--json", image});
    EXPECT_EQ(inspect.exit_status, 0) << inspect.describe();
    EXPECT_EQ(
        query(inspect.out, "d['superblock']['format_version'], [t['id'] for t in d['trees']]"),
        expected_trees);
    // Only the images made with an origin name their maker.
    static const std::map<std::string, std::string> kMakers = {
        {"format-v1-image-origin.img.gz", "ecfs golden generator"},
        {"format-v1-protectors.img.gz", "ecfs 0.1.0"},
        {"format-v1-key-rotation.img.gz", "ecfs 0.1.0"}};
    const auto maker = kMakers.find(entry.path().filename().string());
    EXPECT_EQ(query(inspect.out, "d['origin'] and d['origin']['program']"),
              maker != kMakers.end() ? maker->second : "None");
    if (entry.path().filename() == "format-v1-subvolumes.img.gz") {
      // Every subvolume's inodes, beside the top level's.
      EXPECT_EQ(query(inspect.out, "[s['tree'] for s in d['subvolumes']]"), "[256, 258]");
    }
  }
  EXPECT_GE(images, 12);
}

}  // namespace
}  // namespace ecfs::cli_test
