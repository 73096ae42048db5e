// File contents through a real mount: write / read / overwrite / append /
// O_TRUNC, truncate, sparse files and SEEK_DATA / SEEK_HOLE, fallocate
// modes, large and direct I/O, unlink of an open file, copy_file_range
// (reflink), and data surviving an unmount.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include <cstdlib>
#include <memory>
#include <thread>

#include "file_io.h"
#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

constexpr size_t kMiB = 1 << 20;

using FilesTest = FuseTest;

TEST_F(FilesTest, CreateWriteReadOverwriteAppendAndTruncateOnOpen) {
  const std::string file = path("file");
  ASSERT_TRUE(write_file(file, "hello world"));
  EXPECT_EQ(read_file(file), "hello world");
  EXPECT_EQ(stat_of(file).st_size, 11);

  {  // overwrite in the middle
    Fd fd(open(file.c_str(), O_WRONLY));
    ASSERT_GE(fd.get(), 0);
    ASSERT_TRUE(pwrite_all(fd.get(), "WORLD", 6));
  }
  EXPECT_EQ(read_file(file), "hello WORLD");

  ASSERT_TRUE(write_file(file, "!!", O_APPEND));
  EXPECT_EQ(read_file(file), "hello WORLD!!");

  // O_TRUNC on an existing file, then new contents.
  ASSERT_TRUE(write_file(file, "new", O_TRUNC));
  EXPECT_EQ(read_file(file), "new");
  EXPECT_EQ(stat_of(file).st_size, 3);

  EXPECT_EQ(open_errno(file, O_WRONLY | O_CREAT | O_EXCL), EEXIST);
  EXPECT_EQ(open_errno(path("missing"), O_RDONLY), ENOENT);
  EXPECT_EQ(open_errno(path("missing/child"), O_RDONLY | O_CREAT), ENOENT);
  EXPECT_EQ(open_errno(path(std::string(256, 'n')), O_WRONLY | O_CREAT), ENAMETOOLONG);
  EXPECT_EQ(open_errno(path(std::string(255, 'n')), O_WRONLY | O_CREAT), 0);

  // Several MiB in one write (the kernel splits it into 1 MiB requests)
  // and reads at unaligned offsets.
  const std::string big = pattern(3 * kMiB + 123, 7);
  ASSERT_TRUE(write_file(path("big"), big));
  EXPECT_EQ(read_file(path("big")), big);
  {
    Fd fd(open(path("big").c_str(), O_RDONLY));
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(pread_string(fd.get(), 10000, 1234567), big.substr(1234567, 10000));
    EXPECT_EQ(pread_string(fd.get(), 500, big.size() - 100), big.substr(big.size() - 100));
  }

  // And everything is really in the filesystem, not just the page cache.
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(file), "new");
  EXPECT_EQ(read_file(path("big")), big);
}

TEST_F(FilesTest, DirectIoMovesWholeMebibyteRequests) {
  // O_DIRECT bypasses the kernel's page cache, so reads and writes reach
  // the filesystem as they are (up to max_write / max_pages = 1 MiB).
  constexpr size_t kSize = 8 * kMiB;
  void* raw = nullptr;
  ASSERT_EQ(posix_memalign(&raw, 4096, kSize), 0);
  std::unique_ptr<char, decltype(&std::free)> buffer(static_cast<char*>(raw), &std::free);
  const std::string data = pattern(kSize, 3);
  std::memcpy(buffer.get(), data.data(), kSize);
  {
    Fd fd(open(path("direct").c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644));
    ASSERT_GE(fd.get(), 0) << std::strerror(errno);
    ASSERT_EQ(pwrite(fd.get(), buffer.get(), kSize, 0), static_cast<ssize_t>(kSize));
    std::memset(buffer.get(), 0, kSize);
    ASSERT_EQ(pread(fd.get(), buffer.get(), kSize, 0), static_cast<ssize_t>(kSize));
    EXPECT_EQ(std::memcmp(buffer.get(), data.data(), kSize), 0);
  }
  EXPECT_EQ(read_file(path("direct")), data);
}

TEST_F(FilesTest, TruncateDownAndUp) {
  const std::string file = path("t");
  const std::string data = pattern(10000, 2);
  ASSERT_TRUE(write_file(file, data));

  ASSERT_EQ(truncate(file.c_str(), 5000), 0);
  EXPECT_EQ(stat_of(file).st_size, 5000);
  EXPECT_EQ(read_file(file), data.substr(0, 5000));

  ASSERT_EQ(truncate(file.c_str(), 20000), 0);
  EXPECT_EQ(stat_of(file).st_size, 20000);
  EXPECT_EQ(read_file(file), data.substr(0, 5000) + std::string(15000, '\0'));

  {
    Fd fd(open(file.c_str(), O_RDWR));
    ASSERT_GE(fd.get(), 0);
    ASSERT_EQ(ftruncate(fd.get(), 4097), 0);
    struct stat st;
    ASSERT_EQ(fstat(fd.get(), &st), 0);
    EXPECT_EQ(st.st_size, 4097);
    // Growing again exposes zeros, not the old bytes past 4097.
    ASSERT_EQ(ftruncate(fd.get(), 8192), 0);
    EXPECT_EQ(pread_string(fd.get(), 8192, 0), data.substr(0, 4097) + std::string(4095, '\0'));
  }
  EXPECT_EQ(truncate(file.c_str(), -1), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(truncate(mountpoint_.c_str(), 0), -1);
  EXPECT_EQ(errno, EISDIR);

  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(file), data.substr(0, 4097) + std::string(4095, '\0'));
}

TEST_F(FilesTest, SparseFilesSeekDataAndHoleAndBlocks) {
  const std::string file = path("sparse");
  {
    Fd fd(open(file.c_str(), O_RDWR | O_CREAT, 0644));
    ASSERT_GE(fd.get(), 0);
    ASSERT_TRUE(pwrite_all(fd.get(), "data", 1 * kMiB));
    ASSERT_TRUE(pwrite_all(fd.get(), "tail", 8 * kMiB));
  }
  // Closed without fsync: the kernel writes its cached pages back on close
  // (fs/fuse/file.c fuse_flush), so the filesystem's answer is current --
  // what `cp` relies on when it copies a file just written. (While a
  // writer still holds unflushed pages, FUSE_LSEEK cannot see them: the
  // kernel does not write back before asking; see the report.)
  {
    Fd fd(open(file.c_str(), O_RDONLY));
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(lseek(fd.get(), 0, SEEK_DATA), static_cast<off_t>(1 * kMiB));
    EXPECT_EQ(lseek(fd.get(), 1 * kMiB, SEEK_HOLE), static_cast<off_t>(1 * kMiB + 4096));
    EXPECT_EQ(lseek(fd.get(), 1 * kMiB + 4096, SEEK_DATA), static_cast<off_t>(8 * kMiB));
    EXPECT_EQ(lseek(fd.get(), 8 * kMiB, SEEK_HOLE), static_cast<off_t>(8 * kMiB + 4));
    EXPECT_EQ(lseek(fd.get(), 0, SEEK_HOLE), 0);
    errno = 0;
    EXPECT_EQ(lseek(fd.get(), 8 * kMiB + 4, SEEK_DATA), -1);
    EXPECT_EQ(errno, ENXIO);
    EXPECT_EQ(pread_string(fd.get(), 4, 1 * kMiB), "data");
    EXPECT_EQ(pread_string(fd.get(), 8, 1 * kMiB - 4), std::string(4, '\0') + "data");
  }
  {
    // With a writer open, after fsync.
    Fd fd(open(file.c_str(), O_RDWR));
    ASSERT_GE(fd.get(), 0);
    ASSERT_TRUE(pwrite_all(fd.get(), "middle", 4 * kMiB));
    ASSERT_EQ(fsync(fd.get()), 0);
    EXPECT_EQ(lseek(fd.get(), 1 * kMiB + 4096, SEEK_DATA), static_cast<off_t>(4 * kMiB));
    EXPECT_EQ(lseek(fd.get(), 4 * kMiB, SEEK_HOLE), static_cast<off_t>(4 * kMiB + 4096));
  }
  struct stat st = stat_of(file);
  EXPECT_EQ(st.st_size, static_cast<off_t>(8 * kMiB + 4));

  ASSERT_NO_FATAL_FAILURE(remount());
  st = stat_of(file);
  EXPECT_EQ(st.st_size, static_cast<off_t>(8 * kMiB + 4));
  // Three 4 KiB sectors hold data: 24 blocks of 512 bytes.
  EXPECT_EQ(st.st_blocks, 24);
  Fd fd(open(file.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_DATA), static_cast<off_t>(1 * kMiB));
  EXPECT_EQ(lseek(fd.get(), 1 * kMiB, SEEK_HOLE), static_cast<off_t>(1 * kMiB + 4096));
  EXPECT_EQ(pread_string(fd.get(), 6, 4 * kMiB), "middle");
  EXPECT_EQ(pread_string(fd.get(), 4, 8 * kMiB), "tail");
}

TEST_F(FilesTest, WithoutWritebackCacheSeekDataSeesUnflushedWrites) {
  ASSERT_NO_FATAL_FAILURE(remount({"-o", "no_writeback_cache"}));
  Fd fd(open(path("strict").c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_GE(fd.get(), 0);
  ASSERT_TRUE(pwrite_all(fd.get(), "data", 2 * kMiB));
  // No close, no fsync: every write already reached the filesystem.
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_DATA), static_cast<off_t>(2 * kMiB));
  EXPECT_EQ(lseek(fd.get(), 2 * kMiB, SEEK_HOLE), static_cast<off_t>(2 * kMiB + 4));
  struct stat st;
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_blocks, 8);
  EXPECT_EQ(pread_string(fd.get(), 4, 2 * kMiB), "data");
}

TEST_F(FilesTest, FallocateModes) {
  const std::string file = path("falloc");
  Fd fd(open(file.c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_GE(fd.get(), 0);

  // Default mode: allocates and grows the file; reads as zeros.
  ASSERT_EQ(fallocate(fd.get(), 0, 0, 1 * kMiB), 0) << std::strerror(errno);
  struct stat st;
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(1 * kMiB));
  EXPECT_GE(st.st_blocks, static_cast<blkcnt_t>(kMiB / 512));
  EXPECT_EQ(pread_string(fd.get(), 4096, 4096), std::string(4096, '\0'));
  // Preallocated space is data for SEEK_DATA (as on ext4 and btrfs).
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_DATA), 0);

  // KEEP_SIZE: allocates past the end without changing the size.
  ASSERT_EQ(fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 1 * kMiB, 1 * kMiB), 0);
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(1 * kMiB));
  EXPECT_GE(st.st_blocks, static_cast<blkcnt_t>(2 * kMiB / 512));

  // PUNCH_HOLE (with KEEP_SIZE, as required): zeros, space freed.
  const std::string data = pattern(1 * kMiB, 4);
  ASSERT_TRUE(pwrite_all(fd.get(), data, 0));
  ASSERT_EQ(fsync(fd.get()), 0);
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  const blkcnt_t before_punch = st.st_blocks;
  ASSERT_EQ(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 * 1024, 128 * 1024),
            0)
      << std::strerror(errno);
  std::string expected = data;
  expected.replace(64 * 1024, 128 * 1024, std::string(128 * 1024, '\0'));
  EXPECT_EQ(pread_string(fd.get(), 1 * kMiB, 0), expected);
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(1 * kMiB));
  EXPECT_EQ(st.st_blocks, before_punch - 128 * 1024 / 512);
  EXPECT_EQ(lseek(fd.get(), 64 * 1024, SEEK_HOLE), 64 * 1024);
  EXPECT_EQ(lseek(fd.get(), 64 * 1024, SEEK_DATA), 192 * 1024);
  // An unaligned punch zeroes partial sectors.
  ASSERT_EQ(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 300001, 5000), 0);
  expected.replace(300001, 5000, std::string(5000, '\0'));
  EXPECT_EQ(pread_string(fd.get(), 1 * kMiB, 0), expected);
  // PUNCH_HOLE without KEEP_SIZE is refused (fallocate(2)).
  EXPECT_EQ(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE, 0, 4096), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);

  // ZERO_RANGE: zeros, size unchanged inside the file...
  ASSERT_EQ(fallocate(fd.get(), FALLOC_FL_ZERO_RANGE, 500000, 10000), 0) << std::strerror(errno);
  expected.replace(500000, 10000, std::string(10000, '\0'));
  EXPECT_EQ(pread_string(fd.get(), 1 * kMiB, 0), expected);
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(1 * kMiB));
  // ...and growing it past the end without KEEP_SIZE.
  ASSERT_EQ(fallocate(fd.get(), FALLOC_FL_ZERO_RANGE, 1 * kMiB, 8192), 0);
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(1 * kMiB + 8192));

  // Modes ecfs does not implement.
  EXPECT_EQ(fallocate(fd.get(), FALLOC_FL_COLLAPSE_RANGE, 0, 4096), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  EXPECT_EQ(fallocate(fd.get(), 0, 0, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  close(fd.release());

  ASSERT_NO_FATAL_FAILURE(remount());
  expected += std::string(8192, '\0');
  EXPECT_EQ(read_file(file), expected);
}

TEST_F(FilesTest, UnlinkedOpenFileStaysReadableAndLeavesNoOrphan) {
  const std::string file = path("doomed");
  const std::string data = pattern(64 * 1024, 5);
  ASSERT_TRUE(write_file(path("keeper"), "kept"));
  const uint64_t inodes_before = fs_stats().f_files - fs_stats().f_ffree;
  Fd fd(open(file.c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_GE(fd.get(), 0);
  ASSERT_TRUE(pwrite_all(fd.get(), data, 0));
  ASSERT_EQ(fsync(fd.get()), 0);
  struct stat st;
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  const uint64_t doomed_ino = st.st_ino;

  ASSERT_EQ(unlink(file.c_str()), 0);
  EXPECT_EQ(open_errno(file, O_RDONLY), ENOENT);
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(pread_string(fd.get(), data.size(), 0), data);
  // Still writable, and the writes read back.
  ASSERT_TRUE(pwrite_all(fd.get(), "more", static_cast<off_t>(data.size())));
  ASSERT_EQ(fsync(fd.get()), 0);
  EXPECT_EQ(pread_string(fd.get(), 4, static_cast<off_t>(data.size())), "more");
  close(fd.release());

  ASSERT_NO_FATAL_FAILURE(unmount());
  expect_fsck_clean();
  // The unmounted image holds neither the inode nor an ORPHAN item.
  const Outcome dump = ecfs({"inspect", "--json", "--tree", "5", image_});
  ASSERT_EQ(dump.exit_status, 0) << dump.describe();
  const std::string query =
      "sum(1 for t in d['trees'] for n in t['nodes'] for i in n.get('items', []) "
      "if i['key']['objectid'] == " +
      std::to_string(doomed_ino) + " or i['key']['type'] == 48)";
  if (cli_test::python3_available()) {
    const Outcome left = cli_test::python_json(dump.out, query, scratch_.path());
    ASSERT_EQ(left.exit_status, 0) << left.describe();
    EXPECT_EQ(left.out, "0") << "items of the unlinked inode " << doomed_ino
                             << " or ORPHAN items remain after unmount";
  }
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(fs_stats().f_files - fs_stats().f_ffree, inodes_before);
  EXPECT_EQ(read_file(path("keeper")), "kept");
}

TEST_F(FilesTest, CopyFileRangeSharesExtentsAndCopiesAreIndependent) {
  constexpr size_t kSize = 8 * kMiB;
  const std::string data = pattern(kSize, 6);
  ASSERT_TRUE(write_file(path("source"), data));
  Fd source(open(path("source").c_str(), O_RDWR));
  Fd copy(open(path("copy").c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_GE(source.get(), 0);
  ASSERT_GE(copy.get(), 0);
  ASSERT_EQ(fsync(source.get()), 0);
  const struct statvfs before = fs_stats();

  loff_t in = 0, out = 0;
  size_t copied = 0;
  while (copied < kSize) {
    const ssize_t n = copy_file_range(source.get(), &in, copy.get(), &out, kSize - copied, 0);
    ASSERT_GT(n, 0) << std::strerror(errno);
    copied += static_cast<size_t>(n);
  }
  ASSERT_EQ(fsync(copy.get()), 0);
  EXPECT_EQ(pread_string(copy.get(), kSize, 0), data);

  // A reflink: the copy shares the source's extents, so the space used
  // grows by metadata only, far less than the 8 MiB of data.
  const struct statvfs after = fs_stats();
  const int64_t used_growth =
      (static_cast<int64_t>(before.f_bfree) - static_cast<int64_t>(after.f_bfree)) *
      static_cast<int64_t>(after.f_frsize);
  EXPECT_LT(used_growth, static_cast<int64_t>(kSize / 4))
      << "copy_file_range seems to have copied the data instead of sharing it";

  // Writes to either side stay on that side.
  ASSERT_TRUE(pwrite_all(copy.get(), "COPY", 0));
  ASSERT_TRUE(pwrite_all(source.get(), "SOURCE", 1 * kMiB));
  ASSERT_EQ(fsync(copy.get()), 0);
  ASSERT_EQ(fsync(source.get()), 0);
  std::string expected_source = data, expected_copy = data;
  expected_copy.replace(0, 4, "COPY");
  expected_source.replace(1 * kMiB, 6, "SOURCE");

  // Unaligned ranges (edges copied, the middle shared) and a range past
  // the end of the source (short copy).
  loff_t in2 = 100, out2 = 3 * kMiB + 7;
  ASSERT_EQ(copy_file_range(source.get(), &in2, copy.get(), &out2, 50000, 0), 50000);
  expected_copy.replace(3 * kMiB + 7, 50000, expected_source.substr(100, 50000));
  loff_t in3 = kSize - 10, out3 = 0;
  EXPECT_EQ(copy_file_range(source.get(), &in3, copy.get(), &out3, 1000, 0), 10);
  expected_copy.replace(0, 10, expected_source.substr(kSize - 10, 10));
  close(source.release());
  close(copy.release());

  EXPECT_EQ(read_file(path("source")), expected_source);
  EXPECT_EQ(read_file(path("copy")), expected_copy);
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(path("source")), expected_source);
  EXPECT_EQ(read_file(path("copy")), expected_copy);

  // Deleting the source leaves the copy whole.
  ASSERT_EQ(unlink(path("source").c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(path("copy")), expected_copy);
}

TEST_F(FilesTest, CpOfAJustWrittenFileCopiesItsData) {
  // cp goes sparse-aware (SEEK_DATA) when st_blocks looks small, which it
  // can while the kernel still caches the data: the copy must still be
  // whole. The kernel does not forward FICLONE to FUSE servers (DESIGN.md),
  // so --reflink=always fails, while --reflink=auto falls back to
  // copy_file_range (a reflink inside ecfs).
  if (!kernel_test::program_available("cp")) GTEST_SKIP() << "cp not installed";
  const std::string data = pattern(2 * kMiB, 8);
  ASSERT_TRUE(write_file(path("a"), data));
  ASSERT_EQ(truncate(path("a").c_str(), 6 * kMiB), 0);  // a hole at the end
  const std::string expected = data + std::string(4 * kMiB, '\0');
  const auto plain = kernel_test::run_process({"cp", path("a"), path("b")});
  ASSERT_TRUE(plain.succeeded()) << plain.err;
  EXPECT_EQ(read_file(path("b")), expected);
  const auto auto_reflink =
      kernel_test::run_process({"cp", "--reflink=auto", path("a"), path("c")});
  ASSERT_TRUE(auto_reflink.succeeded()) << auto_reflink.err;
  EXPECT_EQ(read_file(path("c")), expected);
  const auto always = kernel_test::run_process({"cp", "--reflink=always", path("a"), path("d")});
  EXPECT_FALSE(always.succeeded()) << "FICLONE through FUSE? " << always.out;
}

TEST_F(FilesTest, ConcurrentClientsSeeTheirOwnData) {
  // Several processes' worth of requests at once on the multi-threaded
  // session: each thread creates, writes, reads back, renames and removes
  // its own files in its own directory and in a shared one.
  constexpr int kThreads = 4;
  constexpr int kFilesPerThread = 60;
  ASSERT_EQ(mkdir(path("shared").c_str(), 0755), 0);
  std::vector<std::thread> threads;
  std::vector<std::string> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string own = path("t" + std::to_string(t));
      if (mkdir(own.c_str(), 0755) != 0) {
        failures[t] = "mkdir";
        return;
      }
      for (int i = 0; i < kFilesPerThread; ++i) {
        const std::string data = pattern(1000 + 997 * i, static_cast<uint32_t>(t * 1000 + i));
        const std::string name = own + "/f" + std::to_string(i);
        const std::string shared = path("shared/t" + std::to_string(t) + "-" + std::to_string(i));
        if (!write_file(name, data) || read_file(name) != data) {
          failures[t] = "write/read " + name;
          return;
        }
        if (rename(name.c_str(), shared.c_str()) != 0 || read_file(shared) != data) {
          failures[t] = "rename " + name;
          return;
        }
        if (i % 2 == 0 && unlink(shared.c_str()) != 0) {
          failures[t] = "unlink " + shared;
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
  DIR* dir = opendir(path("shared").c_str());
  ASSERT_NE(dir, nullptr);
  int entries = 0;
  while (const dirent* entry = readdir(dir)) entries += entry->d_name[0] != '.';
  closedir(dir);
  EXPECT_EQ(entries, kThreads * kFilesPerThread / 2);
  ASSERT_NO_FATAL_FAILURE(remount());
  for (int t = 0; t < kThreads; ++t) {
    const int i = 1;
    EXPECT_EQ(read_file(path("shared/t" + std::to_string(t) + "-1")),
              pattern(1000 + 997 * i, static_cast<uint32_t>(t * 1000 + i)));
  }
}

TEST_F(FilesTest, DataSurvivesUnmountAndRemount) {
  ASSERT_EQ(mkdir(path("dir").c_str(), 0750), 0);
  const std::string data = pattern(300000, 9);
  ASSERT_TRUE(write_file(path("dir/file"), data, O_TRUNC, 0640));
  ASSERT_EQ(symlink("dir/file", path("link").c_str()), 0);
  ASSERT_EQ(setxattr(path("dir/file").c_str(), "user.note", "value", 5, 0), 0);
  ASSERT_EQ(link(path("dir/file").c_str(), path("hard").c_str()), 0);
  const struct stat before = stat_of(path("dir/file"));

  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(path("dir/file")), data);
  EXPECT_EQ(read_file(path("link")), data);
  const struct stat after = stat_of(path("dir/file"));
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_mode, before.st_mode);
  EXPECT_EQ(after.st_nlink, 2u);
  EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  EXPECT_EQ(stat_of(path("dir")).st_mode & 07777, 0750u);
  char value[16] = {};
  EXPECT_EQ(getxattr(path("hard").c_str(), "user.note", value, sizeof(value)), 5);
  EXPECT_EQ(std::string(value), "value");
}

// fsync(2) of the file at `path`: 0, or the errno.
int sync_path(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY));
  if (fd.get() < 0) return errno;
  return fsync(fd.get()) == 0 ? 0 : errno;
}

TEST_F(FilesTest, AFullImageReportsEnospcAndKeepsWhatWasCommitted) {
  // A 64 MiB image, and 128 MiB written through the write-back cache: the
  // kernel accepts the writes into its page cache, so the error comes back
  // from write(2) once the cache is throttled, or from fsync / close (the
  // kernel keeps the writeback error), as on a local filesystem. Nothing
  // committed may suffer, the mount stays writable once space is freed, and
  // fsck stays clean.
  ASSERT_NO_FATAL_FAILURE(unmount());
  ASSERT_EQ(unlink(image_.c_str()), 0);
  const Outcome made = ecfs({"mkfs", image_, "--size", "64M", "--quiet"});
  ASSERT_EQ(made.exit_status, 0) << made.describe();
  ASSERT_NO_FATAL_FAILURE(mount());

  const std::string kept = pattern(kMiB, 20);
  ASSERT_TRUE(write_file(path("kept"), kept));
  ASSERT_EQ(sync_path(path("kept")), 0);

  int error = 0;
  {
    Fd fd(open(path("big").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    ASSERT_GE(fd.get(), 0);
    const std::string chunk = pattern(kMiB, 21);
    for (int i = 0; i < 128 && error == 0; ++i) {
      if (!pwrite_all(fd.get(), chunk, static_cast<uint64_t>(i) * kMiB)) error = errno;
    }
    if (error == 0 && fsync(fd.get()) != 0) error = errno;
    if (error == 0 && close(fd.release()) != 0) error = errno;
  }
  EXPECT_EQ(error, ENOSPC) << std::strerror(error);

  // Still mounted and answering; what was committed reads back.
  EXPECT_EQ(read_file(path("kept")), kept);
  // Freeing the space makes room again once the removal is committed. The
  // kernel releases a closed file in the background (FUSE's RELEASE is
  // asynchronous) and the inode goes only after that, so the space comes
  // back at the first commit after the release, not necessarily at the
  // unlink's.
  ASSERT_EQ(unlink(path("big").c_str()), 0);
  const std::string after = pattern(4 * kMiB, 22);
  EXPECT_TRUE(wait_until(
      [&] {
        if (sync_path(path("kept")) != 0) return false;
        const struct statvfs stats = fs_stats();
        return stats.f_bavail * stats.f_frsize >= 2 * after.size();
      },
      10s))
      << "the space of the removed file did not come back";
  ASSERT_TRUE(write_file(path("after"), after));
  ASSERT_EQ(sync_path(path("after")), 0);
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(path("kept")), kept);
  EXPECT_EQ(read_file(path("after")), after);
}

TEST_F(FilesTest, FsyncedDataSurvivesKillOfTheDaemon) {
  ASSERT_NO_FATAL_FAILURE(unmount());
  // A foreground daemon we can kill.
  pid_t daemon = 0;
  ASSERT_NO_FATAL_FAILURE(daemon = start_foreground_daemon());

  const std::string durable = pattern(200000, 10);
  {
    Fd fd(open(path("durable").c_str(), O_WRONLY | O_CREAT, 0644));
    ASSERT_GE(fd.get(), 0);
    ASSERT_TRUE(pwrite_all(fd.get(), durable, 0));
    ASSERT_EQ(fsync(fd.get()), 0);
  }
  ASSERT_EQ(mkdir(path("durable-dir").c_str(), 0755), 0);
  {
    // fsync of the directory makes the new name durable too.
    Fd dir(open(mountpoint_.c_str(), O_RDONLY | O_DIRECTORY));
    ASSERT_GE(dir.get(), 0);
    ASSERT_EQ(fsync(dir.get()), 0);
  }
  ASSERT_TRUE(write_file(path("maybe-lost"), "not synced"));

  ASSERT_EQ(kill(daemon, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(daemon, &status, 0), daemon);
  EXPECT_TRUE(WIFSIGNALED(status));
  // The dead mount answers ENOTCONN until it is detached.
  expect_dead_mount(path("durable"));
  const auto detached = kernel_test::run_process({"fusermount3", "-u", "-z", mountpoint_});
  ASSERT_TRUE(detached.succeeded()) << detached.err;
  ASSERT_TRUE(wait_until([&] { return !is_mounted(mountpoint_); }, 10s));
  ASSERT_TRUE(wait_until([&] { return image_unlocked(image_); }, 10s));

  expect_fsck_clean();
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(read_file(path("durable")), durable);
  EXPECT_TRUE(S_ISDIR(stat_of(path("durable-dir")).st_mode));
}

}  // namespace
}  // namespace ecfs::fuse_test
