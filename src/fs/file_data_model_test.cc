// Randomized model-based test of FileData: several files, random writes,
// truncates, punches, zero ranges, preallocations, copies, flushes, commits
// and remounts, each file checked against a plain byte vector.
//
// ECFS_FILE_DATA_OPS sets the number of operations per configuration
// (default 1500, a few seconds in total); ECFS_FILE_DATA_SEED the seed
// (default fixed; "random" draws one and prints it).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "fs/file_data.h"
#include "fs/file_data_test_util.h"

namespace ecfs::fs {
namespace {

constexpr uint64_t kSector = store::kSectorSize;
constexpr uint64_t kFirstIno = 300;
constexpr int kFiles = 4;
constexpr uint64_t kSpan = 1 << 20;  // most offsets fall below this

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::strtoull(value, nullptr, 0) : fallback;
}

uint64_t test_seed() {
  const char* value = std::getenv("ECFS_FILE_DATA_SEED");
  if (value && std::string(value) == "random") return std::random_device{}();
  return env_number("ECFS_FILE_DATA_SEED", 20260512);
}

class FileDataModelTest : public testing::FileDataTest,
                          public ::testing::WithParamInterface<uint64_t> {
 protected:
  using Model = std::map<uint64_t, Bytes>;

  uint64_t random(uint64_t bound) { return bound == 0 ? 0 : rng_() % bound; }
  bool chance(int percent) { return random(100) < static_cast<uint64_t>(percent); }

  uint64_t pick_offset(uint64_t size) {
    switch (random(6)) {
      case 0:
        return random(kSpan);
      case 1:
        return random(kSpan / kSector) * kSector;
      case 2:
        return size;
      case 3:
        return size + random(3 * kSector) - std::min<uint64_t>(size, random(2 * kSector));
      case 4:
        return std::max<uint64_t>(random(kSpan / kSector) * kSector, 3) - 3 + random(7);
      default:
        return random(3);
    }
  }
  uint64_t pick_length() {
    switch (random(4)) {
      case 0:
        return 1 + random(100);
      case 1:
        return 1 + random(20000);
      case 2:
        return (1 + random(40)) * kSector;
      default:
        return 1 + random(300000);
    }
  }
  uint64_t pick_ino() { return kFirstIno + random(kFiles); }

  void apply_delta(uint64_t ino, const Result<int64_t>& delta) {
    ASSERT_TRUE(delta) << delta.error().to_string();
    files_[ino].nbytes += *delta;
    ASSERT_GE(files_[ino].nbytes, 0);
  }

  void check_read(uint64_t ino, uint64_t offset, uint64_t length) {
    const Bytes& model = model_[ino];
    const Bytes got = read(ino, offset, length);
    const uint64_t expected_size =
        offset >= model.size() ? 0 : std::min(length, model.size() - offset);
    ASSERT_EQ(got.size(), expected_size) << "ino " << ino << " offset " << offset;
    for (uint64_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], model[offset + i]) << "ino " << ino << " byte " << offset + i;
    }
  }
  void check_all() {
    for (const auto& [ino, model] : model_) {
      ASSERT_EQ(files_[ino].size, model.size());
      ASSERT_NO_FATAL_FAILURE(check_read(ino, 0, model.size()));
    }
  }
  bool zeros(const Bytes& model, uint64_t from, uint64_t to) {
    return std::all_of(model.begin() + from, model.begin() + to, [](uint8_t b) { return b == 0; });
  }
  // Every hole SEEK_HOLE / SEEK_DATA report reads as zeros; data is found.
  void check_seek(uint64_t ino, uint64_t offset) {
    const Bytes& model = model_[ino];
    const uint64_t size = model.size();
    if (offset >= size) {
      EXPECT_EQ(data_->seek(ino, size, offset, SEEK_DATA).error().errno_value(), ENXIO);
      EXPECT_EQ(data_->seek(ino, size, offset, SEEK_HOLE).error().errno_value(), ENXIO);
      return;
    }
    auto next_data = [&](uint64_t from) -> uint64_t {
      auto found = data_->seek(ino, size, from, SEEK_DATA);
      if (!found) {
        EXPECT_EQ(found.error().errno_value(), ENXIO);
        return size;
      }
      EXPECT_GE(*found, from);
      EXPECT_LT(*found, size);
      return *found;
    };
    const uint64_t data = next_data(offset);
    ASSERT_TRUE(zeros(model, offset, data)) << "ino " << ino << " hole [" << offset << ", " << data;
    auto hole = data_->seek(ino, size, offset, SEEK_HOLE);
    ASSERT_TRUE(hole) << hole.error().to_string();
    ASSERT_GE(*hole, offset);
    ASSERT_LE(*hole, size);
    if (model[offset] != 0) {
      EXPECT_EQ(data, offset);
      EXPECT_GT(*hole, offset);
    }
    if (*hole < size) {
      const uint64_t after = next_data(*hole);
      ASSERT_TRUE(zeros(model, *hole, after))
          << "ino " << ino << " hole [" << *hole << ", " << after;
    }
  }
  void check_nbytes_after_flush() {
    for (const auto& [ino, model] : model_) {
      EXPECT_EQ(static_cast<uint64_t>(files_[ino].nbytes), allocated_by_items(ino))
          << "ino " << ino;
    }
    EXPECT_EQ(data_->dirty_bytes(), 0u);
  }

  void do_write() {
    const uint64_t ino = pick_ino();
    Bytes& model = model_[ino];
    const uint64_t offset = pick_offset(model.size());
    const uint64_t length = pick_length();
    const Bytes bytes = chance(10) ? Bytes(length, 0) : testing::pattern(rng_(), length);
    trace("write " + range(ino, offset, length) + " size " + std::to_string(model.size()));
    ASSERT_NO_FATAL_FAILURE(write(ino, offset, bytes));
    if (model.size() < offset + length) model.resize(offset + length, 0);
    std::copy(bytes.begin(), bytes.end(), model.begin() + offset);
  }
  void do_truncate() {
    const uint64_t ino = pick_ino();
    const uint64_t size = chance(20) ? 0 : pick_offset(model_[ino].size());
    trace("truncate " + std::to_string(ino) + " " + std::to_string(model_[ino].size()) + " -> " +
          std::to_string(size));
    ASSERT_NO_FATAL_FAILURE(truncate(ino, size));
    model_[ino].resize(size, 0);
  }
  // The fallocate(2) modes, with the size change the FileSystem makes.
  enum class Fallocate { kPunch, kZero, kPreallocate };
  void do_fallocate(Fallocate mode) {
    static constexpr const char* kNames[] = {"punch", "zero", "prealloc"};
    const uint64_t ino = pick_ino();
    Bytes& model = model_[ino];
    const uint64_t offset = pick_offset(model.size());
    const uint64_t length = pick_length();
    const bool keep_size = mode == Fallocate::kPunch || chance(50);
    trace(std::string(kNames[static_cast<int>(mode)]) + " " + range(ino, offset, length) +
          " size " + std::to_string(model.size()) + (keep_size ? " keep" : ""));
    Result<int64_t> delta =
        mode == Fallocate::kPunch  ? data_->punch_hole(ino, model.size(), offset, length)
        : mode == Fallocate::kZero ? data_->zero_range(ino, model.size(), offset, length)
                                   : data_->preallocate(ino, offset, length);
    ASSERT_NO_FATAL_FAILURE(apply_delta(ino, delta));
    if (!keep_size && model.size() < offset + length) model.resize(offset + length, 0);
    if (mode != Fallocate::kPreallocate && offset < model.size()) {
      std::fill(model.begin() + offset,
                model.begin() + std::min<uint64_t>(model.size(), offset + length), 0);
    }
    files_[ino].size = model.size();
  }
  void do_copy_range() {
    const uint64_t src = pick_ino();
    const uint64_t dst = chance(20) ? src : pick_ino();
    const Bytes source = model_[src];
    if (source.empty()) return;
    const uint64_t src_offset = chance(30) ? 0 : random(source.size());
    const uint64_t length =
        std::min<uint64_t>(chance(30) ? source.size() : pick_length(), source.size() - src_offset);
    uint64_t dst_offset = pick_offset(model_[dst].size());
    if (chance(60)) dst_offset = dst_offset / kSector * kSector + src_offset % kSector;
    trace("copy " + range(src, src_offset, length) + " size " + std::to_string(source.size()) +
          " to " + range(dst, dst_offset, length) + " size " + std::to_string(model_[dst].size()));
    auto delta = data_->copy_range(src, source.size(), src_offset, dst, model_[dst].size(),
                                   dst_offset, length);
    if (src == dst && src_offset < dst_offset + length && dst_offset < src_offset + length) {
      ASSERT_FALSE(delta);
      EXPECT_EQ(delta.error().errno_value(), EINVAL);
      return;
    }
    ASSERT_NO_FATAL_FAILURE(apply_delta(dst, delta));
    Bytes& model = model_[dst];
    if (model.size() < dst_offset + length) model.resize(dst_offset + length, 0);
    std::copy(source.begin() + src_offset, source.begin() + src_offset + length,
              model.begin() + dst_offset);
    files_[dst].size = model.size();
  }
  void do_remove() {
    const uint64_t ino = pick_ino();
    trace("remove " + std::to_string(ino));
    ASSERT_TRUE(data_->remove_all(ino));
    model_[ino].clear();
    files_[ino] = {};
  }

  // ECFS_FILE_DATA_TRACE=1 prints every change (to replay a failure).
  void trace(const std::string& what) {
    if (trace_) std::fprintf(stderr, "%s\n", what.c_str());
  }
  static std::string range(uint64_t ino, uint64_t offset, uint64_t length) {
    return std::to_string(ino) + " [" + std::to_string(offset) + ", +" + std::to_string(length) +
           ")";
  }

  std::mt19937_64 rng_;
  Model model_;
  bool trace_ = env_number("ECFS_FILE_DATA_TRACE", 0) != 0;
};

TEST_P(FileDataModelTest, RandomOperationsMatchAModel) {
  options_.max_extent_size = GetParam();
  data_ = std::make_unique<FileData>(*engine_, store::kFsTreeId, options_);
  const uint64_t seed = test_seed();
  const uint64_t operations = env_number("ECFS_FILE_DATA_OPS", 1500);
  // Every file checked after every operation: for finding the first bad one.
  const bool paranoid = env_number("ECFS_FILE_DATA_PARANOID", 0) != 0;
  SCOPED_TRACE("ECFS_FILE_DATA_SEED=" + std::to_string(seed));
  rng_.seed(seed ^ GetParam());
  for (int i = 0; i < kFiles; ++i) model_[kFirstIno + i];
  for (uint64_t op = 0; op < operations; ++op) {
    SCOPED_TRACE("operation " + std::to_string(op));
    const uint64_t choice = random(100);
    if (choice < 30) {
      ASSERT_NO_FATAL_FAILURE(do_write());
    } else if (choice < 42) {
      const uint64_t ino = pick_ino();
      ASSERT_NO_FATAL_FAILURE(check_read(ino, pick_offset(model_[ino].size()), pick_length()));
    } else if (choice < 49) {
      ASSERT_NO_FATAL_FAILURE(do_truncate());
    } else if (choice < 56) {
      ASSERT_NO_FATAL_FAILURE(do_fallocate(Fallocate::kPunch));
    } else if (choice < 62) {
      ASSERT_NO_FATAL_FAILURE(do_fallocate(Fallocate::kZero));
    } else if (choice < 67) {
      ASSERT_NO_FATAL_FAILURE(do_fallocate(Fallocate::kPreallocate));
    } else if (choice < 78) {
      ASSERT_NO_FATAL_FAILURE(do_copy_range());
    } else if (choice < 84) {
      const uint64_t ino = pick_ino();
      ASSERT_NO_FATAL_FAILURE(check_seek(ino, pick_offset(model_[ino].size())));
    } else if (choice < 88) {
      ASSERT_TRUE(data_->flush(pick_ino()));
    } else if (choice < 91) {
      ASSERT_TRUE(data_->flush_all());
      ASSERT_NO_FATAL_FAILURE(check_nbytes_after_flush());
    } else if (choice < 96) {
      ASSERT_NO_FATAL_FAILURE(commit_and_check());
    } else if (choice < 99) {
      ASSERT_NO_FATAL_FAILURE(flush_commit_reopen());
      ASSERT_NO_FATAL_FAILURE(check_nbytes_after_flush());
      ASSERT_NO_FATAL_FAILURE(check_all());
    } else {
      ASSERT_NO_FATAL_FAILURE(do_remove());
    }
    if (paranoid) {
      ASSERT_NO_FATAL_FAILURE(check_all());
    }
  }
  ASSERT_NO_FATAL_FAILURE(check_all());
  ASSERT_NO_FATAL_FAILURE(flush_commit_reopen());
  ASSERT_NO_FATAL_FAILURE(check_nbytes_after_flush());
  ASSERT_NO_FATAL_FAILURE(check_all());
  // Deleting every file frees every data extent.
  for (const auto& [ino, model] : model_) ASSERT_TRUE(data_->remove_all(ino));
  ASSERT_NO_FATAL_FAILURE(commit_and_check());
  auto extent_tree = testing::value_or_die(engine_->committed_tree(store::kExtentTreeId));
  ASSERT_TRUE(extent_tree.for_each(
      store::Key::min(), store::Key::max(), [](const store::Key& key, ByteSpan) {
        EXPECT_NE(key.type, store::kExtentItemKey) << "data extent left at " << key.objectid;
        return true;
      }));
}

// Extents of three sectors (an odd size), 64 KiB and the 8 MiB default.
INSTANTIATE_TEST_SUITE_P(ExtentSizes, FileDataModelTest,
                         ::testing::Values(3 * kSector, 64 << 10, 8 << 20));

}  // namespace
}  // namespace ecfs::fs
