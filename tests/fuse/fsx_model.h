// FsxModel: an fsx-style randomized model checker that drives files through
// a mounted filesystem with system calls and compares every read with an
// in-memory model (a byte string per inode).
//
// Operations: pwrite (1 B .. 1 MiB, unaligned, also past the end), pread of
// random ranges (every byte checked), ftruncate up and down, fallocate
// (PUNCH_HOLE | KEEP_SIZE, ZERO_RANGE [| KEEP_SIZE], preallocation with and
// without KEEP_SIZE), copy_file_range between files and within one file
// (non-overlapping), rename (also over another file of the model, and onto
// another name of the same inode, which POSIX makes a no-op), link and unlink
// of extra names (st_nlink, one st_ino and equal contents for all names),
// fsync, close and reopen, SEEK_DATA / SEEK_HOLE walks after fsync (every
// reported hole reads as zeros and holds only zeros in the model), and a
// full remount through a callback, after which every file and the root
// directory's listing are verified.
//
// With the kernel's write-back cache, FUSE_LSEEK reaches the filesystem
// without the kernel writing back first, so SEEK_* answers are checked only
// right after fsync of the file (the only descriptor that writes it).
//
// Failures are gtest assertions; run() stops at the first fatal one. The last
// operations are kept for the failure message (recent_operations()).
// Not thread-safe: one test thread drives it.
// Header-only: the test build compiles only tests/fuse/*_test.cc.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "file_io.h"

namespace ecfs::fuse_test::fsx {

inline constexpr uint64_t kMiB = 1 << 20;
inline constexpr uint64_t kSector = 4096;

// Where two byte strings first differ, for messages that do not dump MiBs.
inline std::string describe_difference(std::string_view expected, std::string_view actual,
                                       uint64_t base_offset) {
  std::ostringstream text;
  if (expected.size() != actual.size()) {
    text << "expected " << expected.size() << " bytes, got " << actual.size() << "; ";
  }
  const size_t common = std::min(expected.size(), actual.size());
  for (size_t i = 0; i < common; ++i) {
    if (expected[i] != actual[i]) {
      size_t end = i;
      while (end < common && expected[end] != actual[end]) ++end;
      text << "first difference at file offset " << base_offset + i << " (expected 0x" << std::hex
           << (static_cast<unsigned>(expected[i]) & 0xff) << ", got 0x"
           << (static_cast<unsigned>(actual[i]) & 0xff) << std::dec << "), differing run of "
           << end - i << " bytes";
      return text.str();
    }
  }
  return text.str();
}

struct FsxOptions {
  uint64_t seed = 1;
  uint64_t operations = 1000;
  int files = 4;                       // files kept alive (new ones replace removed ones)
  uint64_t max_file_size = 12 * kMiB;  // no operation reaches past this
  uint64_t max_io = kMiB;              // largest write / copy / read
  uint64_t remount_every = 250;        // operations between remounts; 0 = never
  std::function<void()> remount;       // unmount, (fsck), mount again
};

// What ran, for the test's log.
struct FsxCounts {
  std::map<std::string, uint64_t> by_operation;
  uint64_t bytes_written = 0;
  uint64_t bytes_verified = 0;
  uint64_t remounts = 0;
  std::string summary() const {
    std::ostringstream text;
    for (const auto& [name, count] : by_operation) text << name << "=" << count << " ";
    text << "written=" << bytes_written / kMiB << "MiB verified=" << bytes_verified / kMiB
         << "MiB remounts=" << remounts;
    return text.str();
  }
};

class FsxModel {
 public:
  FsxModel(std::string root, FsxOptions options)
      : root_(std::move(root)), options_(std::move(options)), rng_(options_.seed) {}
  ~FsxModel() { close_all(); }
  FsxModel(const FsxModel&) = delete;
  FsxModel& operator=(const FsxModel&) = delete;

  void run() {
    for (int i = 0; i < options_.files; ++i) {
      ASSERT_NO_FATAL_FAILURE(create_file());
    }
    for (uint64_t step = 0; step < options_.operations; ++step) {
      step_ = step;
      ASSERT_NO_FATAL_FAILURE(one_operation());
      if (::testing::Test::HasFailure()) return;  // non-fatal failures stop the run too
      if (options_.remount_every && (step + 1) % options_.remount_every == 0) {
        ASSERT_NO_FATAL_FAILURE(remount_and_verify());
      }
    }
    ASSERT_NO_FATAL_FAILURE(remount_and_verify());
  }

  // Closes every descriptor (before the final unmount).
  void close_all() {
    for (auto& [id, inode] : inodes_) close_fd(inode);
  }

  // The last operations, oldest first.
  std::string recent_operations() const {
    std::string out;
    for (const std::string& line : log_) out += "  " + line + "\n";
    return out;
  }
  const FsxCounts& counts() const { return counts_; }

 private:
  struct Inode {
    std::string data;
    std::set<std::string> names;
    int fd = -1;
  };

  uint64_t random(uint64_t bound) { return bound == 0 ? 0 : rng_() % bound; }
  bool chance(int percent) { return random(100) < static_cast<uint64_t>(percent); }

  void note(const std::string& what) {
    ++counts_.by_operation[what.substr(0, what.find(' '))];
    log_.push_back("#" + std::to_string(step_) + " " + what);
    if (log_.size() > 40) log_.pop_front();
  }

  std::string path(const std::string& name) const { return root_ + "/" + name; }

  uint64_t pick_id() {
    auto it = inodes_.begin();
    std::advance(it, static_cast<long>(random(inodes_.size())));
    return it->first;
  }
  std::string pick_name() {
    auto it = names_.begin();
    std::advance(it, static_cast<long>(random(names_.size())));
    return it->first;
  }

  uint64_t pick_length(uint64_t limit) {
    uint64_t length = 0;
    switch (random(5)) {
      case 0:
        length = 1 + random(100);
        break;
      case 1:
        length = 1 + random(20000);
        break;
      case 2:
        length = (1 + random(64)) * kSector;
        break;
      case 3:
        length = options_.max_io - random(3);
        break;
      default:
        length = 1 + random(options_.max_io);
        break;
    }
    return std::clamp<uint64_t>(length, 1, std::min(limit, options_.max_io));
  }
  // Offsets: anywhere, sector aligned, at or near the end, past the end.
  uint64_t pick_offset(uint64_t size) {
    const uint64_t span = options_.max_file_size - options_.max_io;
    uint64_t offset = 0;
    switch (random(6)) {
      case 0:
        offset = random(span);
        break;
      case 1:
        offset = random(span / kSector) * kSector;
        break;
      case 2:
        offset = size;
        break;
      case 3:
        offset = size + random(3 * kSector) - std::min<uint64_t>(size, random(2 * kSector));
        break;
      case 4:
        offset = size + random(2 * kMiB);  // past the end: a hole in between
        break;
      default:
        offset = random(size + 1);
        break;
    }
    return std::min(offset, span);
  }

  void ensure_open(Inode& inode) {
    if (inode.fd >= 0) return;
    const std::string name = *inode.names.begin();
    inode.fd = open(path(name).c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(inode.fd, 0) << "open " << name << ": " << std::strerror(errno);
  }
  void close_fd(Inode& inode) {
    if (inode.fd < 0) return;
    const int result = close(inode.fd);
    inode.fd = -1;
    // close reports write-back errors (FUSE_FLUSH).
    EXPECT_EQ(result, 0) << "close: " << std::strerror(errno);
  }

  static void zero(std::string& data, uint64_t offset, uint64_t length) {
    if (offset >= data.size()) return;
    const uint64_t end = std::min<uint64_t>(data.size(), offset + length);
    std::fill(data.begin() + static_cast<long>(offset), data.begin() + static_cast<long>(end),
              '\0');
  }

  std::string random_bytes(uint64_t length) {
    std::string out(length, '\0');
    // A mix of compressible runs and noise, each write distinct.
    uint64_t x = rng_() | 1;
    size_t i = 0;
    while (i < length) {
      const size_t run = std::min<size_t>(length - i, 1 + random(8192));
      if (chance(15)) {
        std::fill_n(out.begin() + static_cast<long>(i), run, static_cast<char>(random(256)));
      } else {
        for (size_t j = i; j < i + run; ++j) {
          x ^= x << 13;
          x ^= x >> 7;
          x ^= x << 17;
          out[j] = static_cast<char>(x >> 24);
        }
      }
      i += run;
    }
    return out;
  }

  // Reads [offset, offset + length) through `fd` and compares with the model.
  void verify_range(const Inode& inode, uint64_t offset, uint64_t length, const char* when) {
    const std::string actual = pread_string(inode.fd, length, static_cast<off_t>(offset));
    const std::string expected =
        offset >= inode.data.size() ? std::string() : inode.data.substr(offset, length);
    counts_.bytes_verified += actual.size();
    ASSERT_TRUE(actual == expected)
        << when << ": read of " << *inode.names.begin() << " [" << offset << ", +" << length
        << ") (model size " << inode.data.size()
        << "): " << describe_difference(expected, actual, offset);
  }

  void verify_whole(const Inode& inode, const char* when) {
    struct stat st;
    ASSERT_EQ(fstat(inode.fd, &st), 0) << std::strerror(errno);
    ASSERT_EQ(static_cast<uint64_t>(st.st_size), inode.data.size())
        << when << ": size of " << *inode.names.begin();
    // In 1 MiB pieces: every byte of the file.
    for (uint64_t offset = 0; offset <= inode.data.size(); offset += kMiB) {
      ASSERT_NO_FATAL_FAILURE(verify_range(inode, offset, kMiB, when));
    }
  }

  // Every name: one inode, st_nlink = the number of names, same contents.
  void verify_names(const Inode& inode, bool read_each) {
    uint64_t ino = 0;
    for (const std::string& name : inode.names) {
      struct stat st;
      ASSERT_EQ(lstat(path(name).c_str(), &st), 0) << name << ": " << std::strerror(errno);
      ASSERT_TRUE(S_ISREG(st.st_mode)) << name;
      if (ino == 0) ino = st.st_ino;
      EXPECT_EQ(st.st_ino, ino) << name << " names another inode than " << *inode.names.begin();
      EXPECT_EQ(st.st_nlink, inode.names.size()) << "st_nlink of " << name;
      EXPECT_EQ(static_cast<uint64_t>(st.st_size), inode.data.size()) << "st_size of " << name;
      if (read_each && inode.names.size() > 1) {
        const int fd = open(path(name).c_str(), O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0) << name << ": " << std::strerror(errno);
        const std::string actual = pread_string(fd, inode.data.size() + 1, 0);
        close(fd);
        counts_.bytes_verified += actual.size();
        EXPECT_TRUE(actual == inode.data) << "contents through the name " << name << ": "
                                          << describe_difference(inode.data, actual, 0);
      }
    }
  }

  void create_file() {
    const std::string name = "f" + std::to_string(next_name_++);
    const uint64_t id = next_id_++;
    Inode& inode = inodes_[id];
    inode.names.insert(name);
    names_[name] = id;
    inode.fd = open(path(name).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ASSERT_GE(inode.fd, 0) << "create " << name << ": " << std::strerror(errno);
    note("create " + name);
  }

  // Removes `name` from the model; an inode without names goes away (its
  // descriptor, if open, still reads the last contents: checked, then closed).
  void drop_name(const std::string& name) {
    const uint64_t id = names_.at(name);
    names_.erase(name);
    Inode& inode = inodes_.at(id);
    inode.names.erase(name);
    if (!inode.names.empty()) return;
    if (inode.fd >= 0) {
      struct stat st;
      ASSERT_EQ(fstat(inode.fd, &st), 0);
      EXPECT_EQ(st.st_nlink, 0u) << "an unlinked open file";
      const std::string actual = pread_string(inode.fd, inode.data.size() + 1, 0);
      EXPECT_TRUE(actual == inode.data)
          << "unlinked open file: " << describe_difference(inode.data, actual, 0);
      close_fd(inode);
    }
    inodes_.erase(id);
  }

  void one_operation() {
    const uint64_t id = pick_id();
    Inode& inode = inodes_.at(id);
    ASSERT_NO_FATAL_FAILURE(ensure_open(inode));
    const std::string& name = *inode.names.begin();
    const uint64_t size = inode.data.size();
    const uint64_t dice = random(100);

    if (dice < 24) {  // write
      const uint64_t offset = pick_offset(size);
      const uint64_t length = pick_length(options_.max_file_size - offset);
      note("write " + name + " " + std::to_string(offset) + " +" + std::to_string(length));
      const std::string data = random_bytes(length);
      ASSERT_TRUE(pwrite_all(inode.fd, data, static_cast<off_t>(offset)))
          << "pwrite: " << std::strerror(errno);
      if (inode.data.size() < offset + length) inode.data.resize(offset + length, '\0');
      inode.data.replace(offset, length, data);
      counts_.bytes_written += length;
      if (chance(30)) {
        ASSERT_NO_FATAL_FAILURE(verify_range(inode, offset, length, "after write"));
      }
    } else if (dice < 44) {  // read
      const uint64_t offset = chance(80) ? random(size + 1) : size + random(3 * kSector);
      const uint64_t length = pick_length(UINT64_MAX);
      note("read " + name + " " + std::to_string(offset) + " +" + std::to_string(length));
      ASSERT_NO_FATAL_FAILURE(verify_range(inode, offset, length, "read"));
    } else if (dice < 50) {  // ftruncate up or down
      const uint64_t new_size =
          chance(50) ? random(size + 1) : std::min(options_.max_file_size, size + random(3 * kMiB));
      note("truncate " + name + " " + std::to_string(size) + " -> " + std::to_string(new_size));
      ASSERT_EQ(ftruncate(inode.fd, static_cast<off_t>(new_size)), 0) << std::strerror(errno);
      inode.data.resize(new_size, '\0');
    } else if (dice < 56) {  // punch a hole
      const uint64_t offset = chance(70) ? random(size + 1) : pick_offset(size);
      const uint64_t length = pick_length(options_.max_file_size - offset);
      note("punch " + name + " " + std::to_string(offset) + " +" + std::to_string(length));
      ASSERT_EQ(fallocate(inode.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          static_cast<off_t>(offset), static_cast<off_t>(length)),
                0)
          << std::strerror(errno);
      zero(inode.data, offset, length);
      if (chance(30)) {
        ASSERT_NO_FATAL_FAILURE(verify_range(inode, offset, length, "after punch"));
      }
    } else if (dice < 61) {  // zero a range
      const uint64_t offset = chance(70) ? random(size + 1) : pick_offset(size);
      const uint64_t length = pick_length(options_.max_file_size - offset);
      const bool keep_size = chance(50);
      note(std::string("zero_range") + (keep_size ? "+keep " : " ") + name + " " +
           std::to_string(offset) + " +" + std::to_string(length));
      ASSERT_EQ(fallocate(inode.fd, FALLOC_FL_ZERO_RANGE | (keep_size ? FALLOC_FL_KEEP_SIZE : 0),
                          static_cast<off_t>(offset), static_cast<off_t>(length)),
                0)
          << std::strerror(errno);
      zero(inode.data, offset, length);
      if (!keep_size && inode.data.size() < offset + length) inode.data.resize(offset + length);
    } else if (dice < 66) {  // preallocate
      const uint64_t offset = pick_offset(size);
      const uint64_t length = pick_length(options_.max_file_size - offset);
      const bool keep_size = chance(50);
      note(std::string("prealloc") + (keep_size ? "+keep " : " ") + name + " " +
           std::to_string(offset) + " +" + std::to_string(length));
      ASSERT_EQ(fallocate(inode.fd, keep_size ? FALLOC_FL_KEEP_SIZE : 0, static_cast<off_t>(offset),
                          static_cast<off_t>(length)),
                0)
          << std::strerror(errno);
      if (!keep_size && inode.data.size() < offset + length) inode.data.resize(offset + length);
      struct stat st;
      ASSERT_EQ(fstat(inode.fd, &st), 0);
      EXPECT_EQ(static_cast<uint64_t>(st.st_size), inode.data.size()) << "size after fallocate";
    } else if (dice < 74) {  // copy_file_range
      ASSERT_NO_FATAL_FAILURE(copy_range(id));
    } else if (dice < 78) {  // rename
      ASSERT_NO_FATAL_FAILURE(rename_name());
    } else if (dice < 82) {  // link
      const std::string link_name = "l" + std::to_string(next_name_++);
      note("link " + name + " " + link_name);
      ASSERT_EQ(link(path(name).c_str(), path(link_name).c_str()), 0) << std::strerror(errno);
      inode.names.insert(link_name);
      names_[link_name] = id;
      ASSERT_NO_FATAL_FAILURE(verify_names(inode, true));
    } else if (dice < 85) {  // unlink a name (more often an extra one)
      std::string victim = pick_name();
      if (chance(60)) {
        for (const auto& [candidate, owner] : names_) {
          if (inodes_.at(owner).names.size() > 1) victim = candidate;
        }
      }
      note("unlink " + victim);
      ASSERT_EQ(unlink(path(victim).c_str()), 0) << std::strerror(errno);
      const uint64_t owner = names_.at(victim);
      ASSERT_NO_FATAL_FAILURE(drop_name(victim));
      if (inodes_.count(owner)) {
        ASSERT_NO_FATAL_FAILURE(verify_names(inodes_.at(owner), false));
      }
    } else if (dice < 89) {  // fsync
      note("fsync " + name);
      ASSERT_EQ(chance(50) ? fsync(inode.fd) : fdatasync(inode.fd), 0) << std::strerror(errno);
    } else if (dice < 92) {  // close, later reopened
      note("close " + name);
      close_fd(inode);
    } else if (dice < 97) {  // SEEK_DATA / SEEK_HOLE after fsync
      note("seek " + name);
      ASSERT_EQ(fsync(inode.fd), 0) << std::strerror(errno);
      ASSERT_NO_FATAL_FAILURE(verify_seek(inode));
    } else {  // names and st_nlink
      note("stat " + name);
      ASSERT_NO_FATAL_FAILURE(verify_names(inode, true));
    }
    // Keep the number of files up.
    while (static_cast<int>(inodes_.size()) < options_.files) {
      ASSERT_NO_FATAL_FAILURE(create_file());
    }
    if (chance(1) && static_cast<int>(inodes_.size()) < options_.files + 2) {
      ASSERT_NO_FATAL_FAILURE(create_file());
    }
  }

  void copy_range(uint64_t source_id) {
    uint64_t target_id = pick_id();
    if (chance(25)) target_id = source_id;  // within one file
    Inode& source = inodes_.at(source_id);
    Inode& target = inodes_.at(target_id);
    ASSERT_NO_FATAL_FAILURE(ensure_open(target));
    const uint64_t source_size = source.data.size();
    // Offsets often sector aligned (the shared middle) or off by a little.
    auto offset_near = [&](uint64_t limit) {
      uint64_t offset = random(limit + 1);
      if (chance(50)) offset = offset / kSector * kSector;
      if (chance(30)) offset += random(7);
      return std::min(offset, options_.max_file_size - options_.max_io);
    };
    const uint64_t in = offset_near(source_size);
    uint64_t length = pick_length(UINT64_MAX);
    uint64_t out = offset_near(target.data.size() + kMiB);
    if (source_id == target_id) {
      // Non-overlapping: the kernel refuses overlapping ranges of one file.
      if (out < in + length && in < out + length) {
        out = in + length + random(2 * kSector);
        if (out + length > options_.max_file_size) {
          if (in < length) {
            note("copy skipped (no room)");
            return;
          }
          out = random(in - length + 1);
        }
      }
    }
    const uint64_t expected = in >= source_size ? 0 : std::min(length, source_size - in);
    note("copy " + *source.names.begin() + " " + std::to_string(in) + " -> " +
         *target.names.begin() + " " + std::to_string(out) + " +" + std::to_string(length) +
         " (expect " + std::to_string(expected) + ")");
    const std::string copied = expected ? source.data.substr(in, expected) : std::string();
    // Loop over short copies only up to the expected end: within one file
    // the copy itself may move the end of the source.
    uint64_t done = 0;
    do {
      loff_t in_offset = static_cast<loff_t>(in + done);
      loff_t out_offset = static_cast<loff_t>(out + done);
      const ssize_t n = copy_file_range(source.fd, &in_offset, target.fd, &out_offset,
                                        done == 0 ? length : expected - done, 0);
      ASSERT_GE(n, 0) << "copy_file_range: " << std::strerror(errno);
      if (n == 0) break;
      done += static_cast<uint64_t>(n);
    } while (done < expected);
    ASSERT_EQ(done, expected) << "bytes copied";
    if (expected > 0) {
      if (target.data.size() < out + expected) target.data.resize(out + expected, '\0');
      target.data.replace(out, expected, copied);
    }
    if (chance(40)) {
      ASSERT_NO_FATAL_FAILURE(verify_range(target, out, expected, "after copy"));
    }
  }

  void rename_name() {
    const std::string from = pick_name();
    std::string to;
    const int kind = static_cast<int>(random(3));
    if (kind == 0 || names_.size() < 2) {
      to = "r" + std::to_string(next_name_++);
    } else {
      do {
        to = pick_name();
      } while (to == from);
    }
    const uint64_t from_id = names_.at(from);
    note("rename " + from + " " + to +
         (names_.count(to) ? (names_.at(to) == from_id ? " (same inode)" : " (replacing)") : ""));
    ASSERT_EQ(rename(path(from).c_str(), path(to).c_str()), 0) << std::strerror(errno);
    if (names_.count(to) && names_.at(to) == from_id) {
      // rename(2): two links to one file: nothing happens, both names stay.
      ASSERT_NO_FATAL_FAILURE(verify_names(inodes_.at(from_id), false));
      return;
    }
    if (names_.count(to)) {
      ASSERT_NO_FATAL_FAILURE(drop_name(to));
    }
    Inode& inode = inodes_.at(from_id);
    inode.names.erase(from);
    names_.erase(from);
    inode.names.insert(to);
    names_[to] = from_id;
    struct stat st;
    EXPECT_EQ(lstat(path(from).c_str(), &st), -1) << from << " still exists after the rename";
    ASSERT_NO_FATAL_FAILURE(verify_names(inode, false));
  }

  // Walks the file with SEEK_DATA / SEEK_HOLE (the file was just fsynced).
  void verify_seek(const Inode& inode) {
    const uint64_t size = inode.data.size();
    uint64_t position = 0;
    while (position < size) {
      errno = 0;
      const off_t data = lseek(inode.fd, static_cast<off_t>(position), SEEK_DATA);
      uint64_t data_start = size;
      if (data < 0) {
        ASSERT_EQ(errno, ENXIO) << "SEEK_DATA from " << position << ": " << std::strerror(errno);
      } else {
        data_start = static_cast<uint64_t>(data);
        ASSERT_GE(data_start, position) << "SEEK_DATA went backwards";
        ASSERT_LT(data_start, size) << "SEEK_DATA from " << position << " past the end";
      }
      // [position, data_start) is a hole: zeros in the model and on reads.
      const std::string_view model =
          std::string_view(inode.data).substr(position, data_start - position);
      const size_t nonzero = model.find_first_not_of('\0');
      ASSERT_EQ(nonzero, std::string_view::npos)
          << "SEEK_DATA from " << position << " skipped data at offset " << position + nonzero
          << " (answer " << data_start << ", size " << size << ")";
      if (data_start - position <= 4 * kMiB) {
        const std::string hole =
            pread_string(inode.fd, data_start - position, static_cast<off_t>(position));
        ASSERT_EQ(hole.find_first_not_of('\0'), std::string::npos)
            << "a reported hole at " << position << " does not read as zeros";
      }
      if (data_start >= size) break;
      const off_t hole = lseek(inode.fd, static_cast<off_t>(data_start), SEEK_HOLE);
      ASSERT_GE(hole, 0) << "SEEK_HOLE from " << data_start << ": " << std::strerror(errno);
      ASSERT_GT(static_cast<uint64_t>(hole), data_start) << "SEEK_HOLE at data";
      ASSERT_LE(static_cast<uint64_t>(hole), size) << "SEEK_HOLE past the end";
      position = static_cast<uint64_t>(hole);
    }
    errno = 0;
    EXPECT_EQ(lseek(inode.fd, static_cast<off_t>(size), SEEK_DATA), -1);
    EXPECT_EQ(errno, ENXIO) << "SEEK_DATA at the end";
    if (size > 0) {
      EXPECT_EQ(lseek(inode.fd, static_cast<off_t>(size), SEEK_HOLE), -1);
    }
  }

  void remount_and_verify() {
    note("remount");
    close_all();
    ASSERT_TRUE(options_.remount) << "no remount callback";
    ASSERT_NO_FATAL_FAILURE(options_.remount());
    ++counts_.remounts;
    // The root directory holds exactly the model's names.
    std::set<std::string> listed;
    DIR* dir = opendir(root_.c_str());
    ASSERT_NE(dir, nullptr) << std::strerror(errno);
    while (const dirent* entry = readdir(dir)) {
      const std::string entry_name = entry->d_name;
      if (entry_name == "." || entry_name == "..") continue;
      EXPECT_TRUE(listed.insert(entry_name).second) << entry_name << " listed twice";
    }
    closedir(dir);
    std::set<std::string> expected;
    for (const auto& [entry_name, id] : names_) expected.insert(entry_name);
    EXPECT_EQ(listed, expected) << "directory listing after remount";
    for (auto& [id, inode] : inodes_) {
      ASSERT_NO_FATAL_FAILURE(ensure_open(inode));
      ASSERT_NO_FATAL_FAILURE(verify_whole(inode, "after remount"));
      ASSERT_NO_FATAL_FAILURE(verify_names(inode, false));
      ASSERT_NO_FATAL_FAILURE(verify_seek(inode));
    }
  }

  std::string root_;
  FsxOptions options_;
  std::mt19937_64 rng_;
  std::map<uint64_t, Inode> inodes_;       // model id -> inode
  std::map<std::string, uint64_t> names_;  // name in root_ -> model id
  uint64_t next_id_ = 1;
  uint64_t next_name_ = 0;
  uint64_t step_ = 0;
  std::deque<std::string> log_;
  FsxCounts counts_;
};

}  // namespace ecfs::fuse_test::fsx
