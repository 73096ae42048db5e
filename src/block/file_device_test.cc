#include "block/file_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "block/testing.h"

namespace ecfs::block {
namespace {

using testing::error_of;
using testing::message_of;
using testing::pattern;
using testing::read_back;
using testing::TempDir;

FileDeviceOptions create_options(uint64_t size) {
  FileDeviceOptions options;
  options.create_size = size;
  return options;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(FileDeviceTest, CreatesASparseImageOfTheGivenSize) {
  TempDir dir;
  const std::string path = dir.file("image");
  auto device = open_file_device(path, create_options(64u << 20));
  ASSERT_TRUE(device) << device.error().to_string();
  EXPECT_EQ((*device)->size(), 64u << 20);
  EXPECT_EQ((*device)->path(), path);
  EXPECT_EQ((*device)->describe(), path);
  EXPECT_FALSE((*device)->is_block_device());
  EXPECT_FALSE((*device)->read_only());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 64u << 20);
  // Sparse: (almost) nothing allocated for 64 MiB of zeros.
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// discard punches a hole: the range reads as zeros, the file keeps its
// size and gives the blocks back; neighbours stay.
TEST(FileDeviceTest, DiscardPunchesAHoleInTheImage) {
  TempDir dir;
  const std::string path = dir.file("image");
  auto device = open_file_device(path, create_options(4u << 20));
  ASSERT_TRUE(device) << device.error().to_string();
  const Bytes data = pattern(2u << 20, 3);
  ASSERT_TRUE((*device)->write(0, data));
  ASSERT_TRUE((*device)->flush());
  const auto allocated = [&] {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  };
  const uint64_t before = allocated();
  ASSERT_TRUE((*device)->discard(kBlockSize, 1u << 20));
  EXPECT_LE(allocated() + (1u << 20) - 64 * 1024, before);
  EXPECT_EQ(read_back(**device, kBlockSize, 1u << 20), Bytes(1u << 20, 0));
  EXPECT_EQ(read_back(**device, 0, kBlockSize), Bytes(data.begin(), data.begin() + kBlockSize));
  EXPECT_EQ((*device)->size(), 4u << 20);
  EXPECT_EQ(error_of((*device)->discard(1, kBlockSize)), EINVAL);
}

TEST(FileDeviceTest, DataSurvivesCloseAndReopen) {
  TempDir dir;
  const std::string path = dir.file("image");
  const Bytes data = pattern(3 * kBlockSize, 1);
  {
    auto device = open_file_device(path, create_options(1u << 20));
    ASSERT_TRUE(device);
    ASSERT_TRUE((*device)->write(5 * kBlockSize, data));
    ASSERT_TRUE((*device)->flush());
  }
  auto device = open_file_device(path);
  ASSERT_TRUE(device) << device.error().to_string();
  EXPECT_EQ((*device)->size(), 1u << 20);
  EXPECT_EQ(read_back(**device, 5 * kBlockSize, data.size()), data);
}

TEST(FileDeviceTest, SizeOfAnExistingFileIsRoundedDownToWholeBlocks) {
  TempDir dir;
  const std::string path = dir.file("odd");
  std::ofstream(path) << std::string(3 * kBlockSize + 100, 'x');
  auto device = open_file_device(path);
  ASSERT_TRUE(device);
  EXPECT_EQ((*device)->size(), 3 * kBlockSize);
}

TEST(FileDeviceTest, CreateRefusesAnExistingImageUnlessReplacing) {
  TempDir dir;
  const std::string path = dir.file("image");
  {
    auto device = open_file_device(path, create_options(1u << 20));
    ASSERT_TRUE(device);
    ASSERT_TRUE((*device)->write(0, pattern(kBlockSize, 2)));
  }
  auto again = open_file_device(path, create_options(1u << 20));
  EXPECT_EQ(error_of(again), EEXIST);
  EXPECT_TRUE(contains(message_of(again), path));

  FileDeviceOptions replace = create_options(2u << 20);
  replace.replace_existing = true;
  auto replaced = open_file_device(path, replace);
  ASSERT_TRUE(replaced) << replaced.error().to_string();
  EXPECT_EQ((*replaced)->size(), 2u << 20);
  // Replaced means emptied: the old block is gone.
  EXPECT_EQ(read_back(**replaced, 0, kBlockSize), Bytes(kBlockSize, 0));
}

TEST(FileDeviceTest, BadOpenRequestsGiveTheRightErrno) {
  TempDir dir;
  EXPECT_EQ(error_of(open_file_device(dir.file("missing"))), ENOENT);
  EXPECT_EQ(error_of(open_file_device(dir.path().string())), EISDIR);
  EXPECT_EQ(error_of(open_file_device("/dev/null")), EINVAL);  // a character device
  EXPECT_EQ(error_of(open_file_device(dir.file("a"), create_options(0))), EINVAL);
  EXPECT_EQ(error_of(open_file_device(dir.file("b"), create_options(kBlockSize + 1))), EINVAL);
  FileDeviceOptions read_only_create = create_options(kBlockSize);
  read_only_create.read_only = true;
  EXPECT_EQ(error_of(open_file_device(dir.file("c"), read_only_create)), EINVAL);
  EXPECT_EQ(error_of(open_file_device(dir.file("no-dir/image"), create_options(kBlockSize))),
            ENOENT);
  // None of the refused creations left a file behind.
  EXPECT_FALSE(std::filesystem::exists(dir.file("a")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("b")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("c")));
}

TEST(FileDeviceTest, SecondWriterGetsEbusyNamingTheImage) {
  TempDir dir;
  const std::string path = dir.file("image");
  auto first = open_file_device(path, create_options(1u << 20));
  ASSERT_TRUE(first);
  auto second = open_file_device(path);
  EXPECT_EQ(error_of(second), EBUSY);
  EXPECT_TRUE(contains(message_of(second), path));
  EXPECT_TRUE(contains(message_of(second), "in use"));
  FileDeviceOptions read_only;
  read_only.read_only = true;
  EXPECT_EQ(error_of(open_file_device(path, read_only)), EBUSY);
  // Replacing an image in use is refused before anything is truncated.
  ASSERT_TRUE((*first)->write(0, pattern(kBlockSize, 3)));
  FileDeviceOptions replace = create_options(1u << 20);
  replace.replace_existing = true;
  EXPECT_EQ(error_of(open_file_device(path, replace)), EBUSY);
  EXPECT_EQ(read_back(**first, 0, kBlockSize), pattern(kBlockSize, 3));
  // Once the first opener is gone, the image is free again.
  first->reset();
  EXPECT_TRUE(open_file_device(path));
}

TEST(FileDeviceTest, ReadersShareButExcludeWriters) {
  TempDir dir;
  const std::string path = dir.file("image");
  ASSERT_TRUE(open_file_device(path, create_options(1u << 20)));
  FileDeviceOptions read_only;
  read_only.read_only = true;
  auto reader1 = open_file_device(path, read_only);
  auto reader2 = open_file_device(path, read_only);
  ASSERT_TRUE(reader1);
  ASSERT_TRUE(reader2);
  EXPECT_EQ(error_of(open_file_device(path)), EBUSY);
  FileDeviceOptions unlocked;
  unlocked.lock = false;
  EXPECT_TRUE(open_file_device(path, unlocked));
}

TEST(FileDeviceTest, ReadOnlyDeviceRefusesWritesWithErofs) {
  TempDir dir;
  const std::string path = dir.file("image");
  ASSERT_TRUE(open_file_device(path, create_options(1u << 20)));
  FileDeviceOptions read_only;
  read_only.read_only = true;
  auto device = open_file_device(path, read_only);
  ASSERT_TRUE(device);
  EXPECT_TRUE((*device)->read_only());
  EXPECT_EQ(error_of((*device)->write(0, pattern(kBlockSize, 4))), EROFS);
  EXPECT_TRUE((*device)->flush());
  EXPECT_EQ(read_back(**device, 0, kBlockSize), Bytes(kBlockSize, 0));
}

TEST(FileDeviceTest, TruncatedImageReadsGiveEioWithPathAndOffset) {
  TempDir dir;
  const std::string path = dir.file("image");
  auto device = open_file_device(path, create_options(1u << 20));
  ASSERT_TRUE(device);
  ASSERT_EQ(::truncate(path.c_str(), 8 * kBlockSize), 0);
  Bytes out(kBlockSize);
  auto status = (*device)->read(16 * kBlockSize, out);
  EXPECT_EQ(error_of(status), EIO);
  EXPECT_TRUE(contains(message_of(status), path));
  EXPECT_TRUE(contains(message_of(status), std::to_string(16 * kBlockSize)));
}

TEST(FileDeviceTest, DirectIoPreferenceIsHonouredOrReported) {
  TempDir dir;
  const std::string path = dir.file("image");
  ASSERT_TRUE(open_file_device(path, create_options(1u << 20)));
  FileDeviceOptions off;
  auto buffered = open_file_device(path, off);
  ASSERT_TRUE(buffered);
  EXPECT_FALSE((*buffered)->direct_io());
  buffered->reset();

  FileDeviceOptions require;
  require.direct_io = DirectIo::kRequire;
  auto required = open_file_device(path, require);
  FileDeviceOptions prefer;
  prefer.direct_io = DirectIo::kPrefer;
  if (required) {
    EXPECT_TRUE((*required)->direct_io());
    required->reset();
    auto preferred = open_file_device(path, prefer);
    ASSERT_TRUE(preferred);
    EXPECT_TRUE((*preferred)->direct_io());
  } else {
    // The host refuses O_DIRECT: kRequire says so, kPrefer falls back.
    EXPECT_EQ(error_of(required), EINVAL);
    EXPECT_TRUE(contains(message_of(required), "O_DIRECT"));
    auto preferred = open_file_device(path, prefer);
    ASSERT_TRUE(preferred);
    EXPECT_FALSE((*preferred)->direct_io());
  }
}

// A small filesystem of our own: a tmpfs mount, which needs root (or
// CAP_SYS_ADMIN). Unmounted when the object goes away.
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& where, uint64_t bytes) : where_(where) {
    std::filesystem::create_directory(where_);
    const std::string options = "size=" + std::to_string(bytes);
    if (::mount("tmpfs", where_.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::string("mount tmpfs: ") + std::strerror(errno);
    }
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(where_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string where_;
  bool mounted_ = false;
  std::string error_;
};

TEST(FileDeviceTest, FullHostFilesystemGivesEnospc) {
  TempDir dir;
  const std::string mount_point = dir.file("small");
  SmallTmpfs tmpfs(mount_point, 256 << 10);
  if (!tmpfs.mounted()) {
    GTEST_SKIP() << "cannot mount a small tmpfs to fill (needs root or CAP_SYS_ADMIN): "
                 << tmpfs.error();
  }
  const std::string path = mount_point + "/image";
  // A sparse 4 MiB image on a 256 KiB filesystem: creating it works,
  // filling it cannot.
  auto device = open_file_device(path, create_options(4u << 20));
  ASSERT_TRUE(device) << device.error().to_string();
  const Bytes chunk = pattern(64 * kBlockSize, 5);
  Status status = ok();
  uint64_t offset = 0;
  for (; offset < (*device)->size(); offset += chunk.size()) {
    status = (*device)->write(offset, chunk);
    if (!status) break;
  }
  ASSERT_FALSE(status) << "4 MiB fit into a 256 KiB tmpfs";
  EXPECT_EQ(error_of(status), ENOSPC) << status.error().to_string();
  EXPECT_TRUE(contains(message_of(status), path));
  EXPECT_TRUE(contains(message_of(status), "offset"));
  EXPECT_LE(offset, 256u << 10);
}

// A loop device over a file: a real block device, which needs root and
// /dev/loop-control.
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& backing) {
    if (::geteuid() != 0) {
      error_ = "not root";
      return;
    }
    const std::string command = "losetup --find --show " + backing + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
      error_ = "popen failed";
      return;
    }
    char line[256] = {};
    const bool got = std::fgets(line, sizeof(line), pipe) != nullptr;
    const int rc = ::pclose(pipe);
    std::string output = got ? line : "";
    while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
    if (rc != 0 || output.rfind("/dev/loop", 0) != 0) {
      error_ = "losetup: " + output;
      return;
    }
    path_ = output;
  }
  ~LoopDevice() {
    if (!path_.empty()) (void)std::system(("losetup -d " + path_ + " 2>/dev/null").c_str());
  }
  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  std::string error_;
};

TEST(FileDeviceTest, BlockDeviceSizeAndExclusiveOpen) {
  TempDir dir;
  const std::string backing = dir.file("backing");
  ASSERT_TRUE(open_file_device(backing, create_options(8u << 20)));
  LoopDevice loop(backing);
  if (loop.path().empty()) GTEST_SKIP() << "no loop device available: " << loop.error();

  auto device = open_file_device(loop.path());
  ASSERT_TRUE(device) << device.error().to_string();
  EXPECT_TRUE((*device)->is_block_device());
  EXPECT_EQ((*device)->size(), 8u << 20);  // from BLKGETSIZE64
  const Bytes data = pattern(2 * kBlockSize, 6);
  ASSERT_TRUE((*device)->write(kBlockSize, data));
  ASSERT_TRUE((*device)->flush());
  EXPECT_EQ(read_back(**device, kBlockSize, data.size()), data);

  // Even without our lock, the kernel refuses a second exclusive opener.
  FileDeviceOptions unlocked;
  unlocked.lock = false;
  auto second = open_file_device(loop.path(), unlocked);
  EXPECT_EQ(error_of(second), EBUSY);
  device->reset();

  // "Creating" on a block device uses the device, up to its size.
  auto limited = open_file_device(loop.path(), create_options(4u << 20));
  ASSERT_TRUE(limited) << limited.error().to_string();
  EXPECT_EQ((*limited)->size(), 4u << 20);
  limited->reset();
  EXPECT_EQ(error_of(open_file_device(loop.path(), create_options(16u << 20))), EINVAL);
}

}  // namespace
}  // namespace ecfs::block
