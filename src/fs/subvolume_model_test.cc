// Subvolumes against an in-memory model: random sequences of create,
// snapshot (read-write and read-only), write, delete and remount, each
// compared with the model after it; both checks (engine and every
// subvolume) at every remount. Then the same kind of workload on a
// RecordingDevice, and every crash state it can leave: each must check
// clean, mount (finishing deletions a crash interrupted) and hold the
// namespace of the last operation that completed before the crash or of
// the one in flight.
//
// ECFS_SUBVOLUME_SEED / ECFS_SUBVOLUME_STEPS change the workloads.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "block/memory_device.h"
#include "block/recording_device.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"

namespace ecfs::fs {
namespace {

using namespace std::chrono_literals;
using testing::kRootCaller;
using testing::must;

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 10) : fallback;
}

// The model: subvolumes at the top level by name, each a flat set of files.
struct ModelSubvolume {
  bool read_only = false;
  std::map<std::string, std::string> files;
  friend bool operator==(const ModelSubvolume&, const ModelSubvolume&) = default;
};
using Model = std::map<std::string, ModelSubvolume>;

std::string read_all(FileSystem& fs, uint64_t ino) {
  const uint64_t size = must(fs.getattr(ino)).size;
  Bytes out(size);
  EXPECT_EQ(must(fs.read(ino, 0, out)), size);
  return std::string(out.begin(), out.end());
}

// The namespace as the filesystem shows it, in the model's shape.
Model observe(FileSystem& fs) {
  Model seen;
  must(fs.readdir(kRootDirIno, 0, [&](const DirListEntry& entry) {
    if (entry.name == "." || entry.name == "..") return true;
    seen[entry.name];
    return true;
  }));
  for (auto& [name, subvolume] : seen) {
    const Attributes root = must(fs.lookup(kRootDirIno, name));
    subvolume.read_only = must(fs.subvolume_of(root.ino)).info.read_only();
    std::vector<std::string> names;
    must(fs.readdir(root.ino, 0, [&](const DirListEntry& entry) {
      if (entry.name != "." && entry.name != "..") names.push_back(entry.name);
      return true;
    }));
    for (const std::string& file : names) {
      const Attributes attributes = must(fs.lookup(root.ino, file));
      subvolume.files[file] = read_all(fs, attributes.ino);
      fs.forget(attributes.ino, 1);
    }
    fs.forget(root.ino, 1);
  }
  return seen;
}

// Random operations on subvolumes, applied to `fs` and the model.
class Workload {
 public:
  Workload(uint64_t seed, Model& model) : random_(seed), model_(model) {}

  // One operation; returns what it did, for failure messages.
  std::string step(FileSystem& fs) {
    const int choice = pick(100);
    if (model_.empty() || choice < 15) return create(fs);
    if (choice < 55) return write(fs);
    if (choice < 75) return snapshot(fs);
    if (choice < 90) return remove(fs);
    return rmdir_or_rename_file(fs);
  }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }
  std::string any_name() {
    auto it = model_.begin();
    std::advance(it, pick(static_cast<int>(model_.size())));
    return it->first;
  }
  std::string new_name() { return "s" + std::to_string(next_++); }
  uint64_t root_of(FileSystem& fs, const std::string& name) {
    const uint64_t ino = must(fs.lookup(kRootDirIno, name)).ino;
    fs.forget(ino, 1);
    return ino;
  }

  std::string create(FileSystem& fs) {
    const std::string name = new_name();
    must(fs.create_subvolume(kRootDirIno, name, kRootCaller));
    model_[name];
    return "create " + name;
  }

  std::string write(FileSystem& fs) {
    const std::string name = any_name();
    ModelSubvolume& subvolume = model_[name];
    const std::string file = "f" + std::to_string(pick(6));
    const std::string data(static_cast<size_t>(pick(3) == 0 ? 70000 : 1 + pick(9000)),
                           static_cast<char>('a' + pick(26)));
    const uint64_t root = root_of(fs, name);
    auto existing = fs.lookup(root, file);
    uint64_t ino = 0;
    if (existing) {
      ino = existing->ino;
    } else {
      auto made = fs.mknod(root, file, S_IFREG | 0644, 0, kRootCaller);
      if (subvolume.read_only) {
        EXPECT_EQ(testing::error_of(made), EROFS) << name;
        return "write into read-only " + name;
      }
      ino = must(std::move(made)).ino;
    }
    auto truncated = fs.setattr(ino, SetAttributes{.size = 0});
    if (subvolume.read_only) {
      EXPECT_EQ(testing::error_of(truncated), EROFS) << name;
      fs.forget(ino, 1);
      return "write into read-only " + name;
    }
    must(std::move(truncated));
    must(fs.write(ino, 0, as_bytes(data)));
    fs.forget(ino, 1);
    subvolume.files[file] = data;
    return "write " + name + "/" + file;
  }

  std::string snapshot(FileSystem& fs) {
    const std::string source = any_name();
    const std::string name = new_name();
    const bool read_only = pick(2) == 0;
    must(fs.snapshot(root_of(fs, source), kRootDirIno, name, read_only));
    ModelSubvolume copy = model_[source];
    copy.read_only = read_only;
    model_[name] = copy;
    return "snapshot " + source + " as " + name + (read_only ? " (ro)" : "");
  }

  std::string remove(FileSystem& fs) {
    const std::string name = any_name();
    must(fs.delete_subvolume(kRootDirIno, name));
    model_.erase(name);
    return "delete " + name;
  }

  std::string rmdir_or_rename_file(FileSystem& fs) {
    const std::string name = any_name();
    ModelSubvolume& subvolume = model_[name];
    if (subvolume.files.empty() && !subvolume.read_only) {
      must(fs.rmdir(kRootDirIno, name));
      model_.erase(name);
      return "rmdir " + name;
    }
    if (subvolume.files.empty() || subvolume.read_only) return "nothing";
    const std::string from = subvolume.files.begin()->first;
    const std::string to = "r" + std::to_string(next_++);
    const uint64_t root = root_of(fs, name);
    must(fs.rename(root, from, root, to, 0));
    subvolume.files[to] = subvolume.files[from];
    subvolume.files.erase(from);
    return "rename " + name + "/" + from;
  }

  std::mt19937_64 random_;
  Model& model_;
  int next_ = 0;
};

TEST(SubvolumeModelTest, RandomSequencesMatchTheModelAndCheckClean) {
  const uint64_t seed = env_number("ECFS_SUBVOLUME_SEED", 17);
  const uint64_t steps = env_number("ECFS_SUBVOLUME_STEPS", 300);
  block::MemoryDevice device(512ull << 20);
  testing::make_filesystem(device);
  auto fs = must(FileSystem::open(device));
  Model model;
  Workload workload(seed, model);
  std::mt19937_64 remounts(seed + 1);
  for (uint64_t i = 0; i < steps; ++i) {
    const std::string what = "step " + std::to_string(i) + ": " + workload.step(*fs);
    ASSERT_FALSE(::testing::Test::HasFailure()) << what;
    if (i % 7 == 6) {
      ASSERT_EQ(observe(*fs), model) << what;
    }
    if (remounts() % 25 == 0) {
      // Deletions finish in the background, or at the next mount.
      if (remounts() % 2 == 0) {
        ASSERT_TRUE(fs->wait_for_deletions());
      }
      ASSERT_TRUE(fs->close());
      fs.reset();
      const testing::FullCheck check = testing::full_check(device);
      ASSERT_TRUE(check.clean()) << what << ":\n" << check.problems();
      fs = must(FileSystem::open(device));
      ASSERT_EQ(observe(*fs), model) << what << " (after remount)";
    }
  }
  ASSERT_TRUE(fs->wait_for_deletions());
  ASSERT_EQ(must(fs->list_subvolumes()).size(), model.size() + 1);
  ASSERT_TRUE(fs->close());
  testing::expect_full_check_clean(device);
}

// Every crash state of a subvolume workload: consistent, and the namespace
// of the last completed operation or of the one in flight.
TEST(SubvolumeCrashTest, EveryCrashStateIsAnOperationBoundary) {
  const uint64_t seed = env_number("ECFS_SUBVOLUME_SEED", 23);
  const uint64_t steps = env_number("ECFS_SUBVOLUME_STEPS", 300) / 6;
  block::MemoryDevice base(128ull << 20);
  testing::make_filesystem(base);
  block::RecordingDevice recorder(base);
  std::vector<Model> states{Model{}};
  std::vector<size_t> ends{0};
  {
    MountOptions options;
    options.commit_interval = 1h;  // commits come from the operations only
    auto fs = must(FileSystem::open(recorder, options));
    Model model;
    Workload workload(seed, model);
    for (uint64_t i = 0; i < steps; ++i) {
      const std::string what = workload.step(*fs);
      ASSERT_TRUE(fs->sync()) << what;
      // The cleaner's drops commit too, and a step is several calls (a
      // write is mknod, truncate, write): a drop still running when the next
      // step begins could commit half of it. Each step's drops end with it.
      ASSERT_TRUE(fs->wait_for_deletions()) << what;
      ASSERT_FALSE(::testing::Test::HasFailure()) << what;
      states.push_back(model);
      ends.push_back(recorder.op_count());
    }
    ASSERT_TRUE(fs->wait_for_deletions());
    ASSERT_TRUE(fs->close());
  }
  std::set<size_t> points{recorder.op_count()};
  for (size_t flush : recorder.flush_points()) {
    points.insert(flush);
    points.insert(flush + 1);
  }
  size_t checked = 0;
  for (size_t point : points) {
    for (block::CrashMode mode :
         {block::CrashMode::kDropAllUnflushed, block::CrashMode::kRandomSubsetWithTears}) {
      auto image = recorder.crash_image(point, mode, point);
      ASSERT_TRUE(image) << image.error().to_string();
      const std::string what = "crash at op " + std::to_string(point);
      const testing::FullCheck before = testing::full_check(*image);
      ASSERT_TRUE(before.clean()) << what << ":\n" << before.problems();
      size_t done = 0;
      while (done + 1 < ends.size() && ends[done + 1] <= point) ++done;
      {
        auto fs = FileSystem::open(*image);
        ASSERT_TRUE(fs) << what << ": " << fs.error().to_string();
        const Model seen = observe(**fs);
        const bool at_boundary =
            seen == states[done] || (done + 1 < states.size() && seen == states[done + 1]);
        ASSERT_TRUE(at_boundary) << what << ": not the state after operation " << done
                                 << " or the next";
        ASSERT_TRUE((*fs)->wait_for_deletions()) << what;
        ASSERT_TRUE((*fs)->close()) << what;
      }
      const testing::FullCheck after = testing::full_check(*image);
      ASSERT_TRUE(after.clean()) << what << " (after mount):\n" << after.problems();
      ++checked;
    }
  }
  std::printf("subvolume crash test: %zu crash states at %zu points, %zu operations\n", checked,
              points.size(), states.size() - 1);
  EXPECT_GE(points.size(), steps);
}

}  // namespace
}  // namespace ecfs::fs
