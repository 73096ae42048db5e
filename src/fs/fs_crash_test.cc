// Crash consistency of the filesystem: a random workload (files written,
// truncated, fallocated, hole-punched, zeroed, reflinked with
// copy_file_range, renamed, linked, unlinked while open; directories made
// and removed; symlinks; xattrs) runs on a RecordingDevice
// (block/recording_device.h), committing through fsync() and sync(); the
// model's state is recorded at every commit. Then, for crash points across
// the run (every flush, just after it, and points between), crash images
// are built with the unflushed writes dropped, kept, chosen at random and
// torn, and each must:
//  - pass Engine::check and check_filesystem as it is on the medium
//    (orphans of files unlinked while open are allowed there);
//  - mount with FileSystem::open (which deletes those orphans);
//  - hold exactly the state of the generation it opened as, which is the
//    last commit completed before the crash or the one in flight. So every
//    file fsynced before the crash has the contents of its last fsync, or
//    of a later commit;
//  - accept a new file and a commit, and be clean again after the mount's
//    orphan cleanup and unmount.
//
// ECFS_CRASH_STEPS sets the workload length (default 250 operations),
// ECFS_CRASH_SEED its seed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <functional>
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

using testing::kRootCaller;
using testing::must;

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 10) : fallback;
}

// One inode of the model. Contents are shared between snapshots until
// changed (copy on write), so recording a state at every commit is cheap.
struct Inode {
  uint32_t mode = 0;
  std::shared_ptr<const std::string> data = std::make_shared<const std::string>();
  std::string target;
  std::map<std::string, std::string> xattrs;
  std::map<std::string, uint64_t> entries;  // directories
  uint64_t parent = 0;                      // directories
  uint32_t names = 0;                       // non-directories
  bool open = false;                        // held open by the workload
};
using State = std::map<uint64_t, Inode>;  // inode number -> inode

bool is_dir(const Inode& inode) { return S_ISDIR(inode.mode); }

uint32_t nlink_of(const State& state, const Inode& inode) {
  if (!is_dir(inode)) return inode.names;
  uint32_t subdirs = 0;
  for (const auto& [name, ino] : inode.entries) subdirs += is_dir(state.at(ino)) ? 1 : 0;
  return 2 + subdirs;
}

// The run: states at each commit and where in the op log each ended.
struct CrashRun {
  std::map<uint64_t, State> states;        // generation -> state at its commit
  std::map<uint64_t, size_t> commit_ends;  // generation -> op count after it
  // Per fsync: the file, the generation that made it durable.
  std::vector<std::pair<uint64_t, uint64_t>> fsyncs;
};

class CrashWorkload {
 public:
  CrashWorkload(uint64_t seed, block::RecordingDevice& recorder, CrashRun& run)
      : rng_(seed), recorder_(recorder), run_(run) {
    MountOptions options;
    options.commit_interval = std::chrono::hours(1);  // commits only where recorded
    // Freed space is discarded after each commit: recorded as writes of
    // zeros that a crash may keep or lose, so that every crash state shows
    // no discard ever reaches committed data.
    options.discard = true;
    fs_ = must(FileSystem::open(recorder_, options), "mount");
    Inode root;
    root.mode = S_IFDIR | 0755;
    root.parent = kRootDirIno;
    state_[kRootDirIno] = root;
    record_commit();
  }

  void run(uint64_t steps) {
    for (uint64_t step = 0; step < steps && !::testing::Test::HasFailure(); ++step) {
      one_step();
    }
    // Unmounting commits (and deletes the orphans of files still open).
    for (auto& [ino, inode] : state_) {
      if (inode.open) fs_->release(ino);
      inode.open = false;
    }
    must(fs_->close(), "close");
    std::erase_if(state_, [&](const auto& entry) { return nlink_of(state_, entry.second) == 0; });
    record_commit();  // the engine outlives close(): its last commit
    fs_.reset();
  }

 private:
  uint64_t pick(uint64_t n) { return rng_() % n; }
  bool chance(uint64_t one_in) { return pick(one_in) == 0; }

  Inode& at(uint64_t ino) { return state_.at(ino); }
  std::vector<uint64_t> where(const std::function<bool(const Inode&)>& wanted) const {
    std::vector<uint64_t> out;
    for (const auto& [ino, inode] : state_) {
      if (nlink_of(state_, inode) > 0 && wanted(inode)) out.push_back(ino);
    }
    return out;
  }
  uint64_t any_of(const std::vector<uint64_t>& inos) { return inos[pick(inos.size())]; }
  uint64_t random_dir() {
    return any_of(where([](const Inode& i) { return is_dir(i); }));
  }
  std::string fresh_name() { return "n" + std::to_string(next_name_++); }

  // The generation fsync/sync/close left committed, and the state it holds.
  void record_generation_now() {
    const uint64_t generation = committed_generation_;
    if (run_.states.contains(generation)) {
      EXPECT_EQ(run_.commit_ends.at(generation), recorder_.op_count())
          << "generation " << generation << " changed without a commit";
    }
    run_.commit_ends[generation] = recorder_.op_count();
    State reachable;
    for (const auto& [ino, inode] : state_) {
      if (nlink_of(state_, inode) > 0) reachable[ino] = inode;
    }
    run_.states[generation] = std::move(reachable);
  }
  void record_commit() {
    committed_generation_ = fs_->engine_for_test().committed_generation();
    record_generation_now();
  }

  void drop_entry(uint64_t dir, const std::string& name) {
    const uint64_t ino = at(dir).entries.at(name);
    at(dir).entries.erase(name);
    Inode& inode = at(ino);
    if (!is_dir(inode)) --inode.names;
    if (is_dir(inode) || (inode.names == 0 && !inode.open)) state_.erase(ino);
  }
  void add_entry(uint64_t dir, const std::string& name, uint64_t ino) {
    at(dir).entries[name] = ino;
    Inode& inode = at(ino);
    if (is_dir(inode)) {
      inode.parent = dir;
    } else {
      ++inode.names;
    }
  }
  // One name of a linked inode: (directory, name).
  std::pair<uint64_t, std::string> a_name_of(uint64_t ino) const {
    for (const auto& [dir_ino, dir] : state_) {
      for (const auto& [name, child] : dir.entries) {
        if (child == ino) return {dir_ino, name};
      }
    }
    ADD_FAILURE() << "inode " << ino << " has no name in the model";
    return {kRootDirIno, ""};
  }
  bool inside(uint64_t ancestor, uint64_t dir) const {
    for (uint64_t ino = dir;; ino = state_.at(ino).parent) {
      if (ino == ancestor) return true;
      if (ino == kRootDirIno) return false;
    }
  }
  // The kernel gives back the reference each new entry carries.
  void forget(const Attributes& attr) { fs_->forget(attr.ino, 1); }
  // A new inode `made` named `name` in `dir`.
  void created(uint64_t dir, const std::string& name, const Attributes& made,
               const std::string& target = {}) {
    Inode inode;
    inode.mode = made.mode;
    inode.target = target;
    state_[made.ino] = inode;
    add_entry(dir, name, made.ino);
    forget(made);
  }

  void one_step() {
    const auto files = where([](const Inode& i) { return S_ISREG(i.mode); });
    switch (pick(18)) {
      case 0:
      case 1: {
        const uint64_t dir = random_dir();
        const std::string name = fresh_name();
        created(dir, name, must(fs_->mknod(dir, name, S_IFREG | 0644, 0, kRootCaller), "mknod"));
        return;
      }
      case 2: {
        const uint64_t dir = random_dir();
        const std::string name = fresh_name();
        created(dir, name, must(fs_->mkdir(dir, name, 0755, kRootCaller), "mkdir"));
        return;
      }
      case 3:
      case 4:
      case 5: {
        if (files.empty()) return;
        const uint64_t ino = any_of(files);
        Inode& inode = at(ino);
        const uint64_t offset = chance(3) ? inode.data->size() : pick(200000);
        std::string bytes(1 + pick(chance(4) ? 70000 : 5000), '\0');
        const char fill = static_cast<char>('a' + pick(26));
        for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(fill + i % 7);
        EXPECT_EQ(must(fs_->write(ino, offset, as_bytes(bytes)), "write"), bytes.size());
        auto data = std::make_shared<std::string>(*inode.data);
        if (data->size() < offset + bytes.size()) data->resize(offset + bytes.size(), '\0');
        std::copy(bytes.begin(), bytes.end(), data->begin() + static_cast<ptrdiff_t>(offset));
        inode.data = std::move(data);
        return;
      }
      case 6: {
        if (files.empty()) return;
        const uint64_t ino = any_of(files);
        Inode& inode = at(ino);
        const uint64_t size = pick(inode.data->size() + 10000);
        must(fs_->setattr(ino, {.size = size}), "truncate");
        auto data = std::make_shared<std::string>(*inode.data);
        data->resize(size, '\0');
        inode.data = std::move(data);
        return;
      }
      case 7: {
        // Rename a file or directory to a fresh name, or a file over a file.
        auto sources = where([](const Inode&) { return true; });
        std::erase(sources, kRootDirIno);
        if (sources.empty()) return;
        const uint64_t ino = any_of(sources);
        const auto [from_dir, from] = a_name_of(ino);
        const uint64_t to_dir = random_dir();
        if (is_dir(at(ino)) && inside(ino, to_dir)) return;
        std::string to = fresh_name();
        if (!is_dir(at(ino)) && !at(to_dir).entries.empty() && chance(2)) {
          const auto& [name, victim] = *at(to_dir).entries.begin();
          if (!is_dir(at(victim)) && victim != ino) to = name;
        }
        must(fs_->rename(from_dir, from, to_dir, to, 0), "rename");
        if (at(to_dir).entries.contains(to)) drop_entry(to_dir, to);
        at(from_dir).entries.erase(from);
        if (!is_dir(at(ino))) --at(ino).names;
        add_entry(to_dir, to, ino);
        return;
      }
      case 8: {
        // Unlink a name; now and then of a file held open, which then lives
        // on as an orphan (committed with an ORPHAN item) until released.
        if (files.empty()) return;
        const uint64_t ino = any_of(files);
        if (!at(ino).open && chance(3)) {
          must(fs_->open(ino, O_RDWR), "open");
          at(ino).open = true;
        }
        const auto [dir, name] = a_name_of(ino);
        must(fs_->unlink(dir, name), "unlink");
        drop_entry(dir, name);
        return;
      }
      case 9: {
        auto empty = where([](const Inode& i) { return is_dir(i) && i.entries.empty(); });
        std::erase(empty, kRootDirIno);
        if (empty.empty()) return;
        const auto [parent, name] = a_name_of(any_of(empty));
        must(fs_->rmdir(parent, name), "rmdir");
        drop_entry(parent, name);
        return;
      }
      case 10: {
        if (files.empty()) return;
        const uint64_t ino = any_of(files);
        const uint64_t dir = random_dir();
        const std::string name = fresh_name();
        forget(must(fs_->link(ino, dir, name), "link"));
        add_entry(dir, name, ino);
        return;
      }
      case 11: {
        const uint64_t dir = random_dir();
        const std::string name = fresh_name();
        const std::string target = "to/" + std::to_string(pick(1000000));
        created(dir, name, must(fs_->symlink(dir, name, target, kRootCaller), "symlink"), target);
        return;
      }
      case 12: {
        auto targets = where([](const Inode& i) { return S_ISREG(i.mode) || is_dir(i); });
        const uint64_t ino = any_of(targets);
        const std::string name = "user.k" + std::to_string(pick(3));
        const std::string value(pick(200), static_cast<char>('A' + pick(26)));
        must(fs_->setxattr(ino, name, as_bytes(value), 0), "setxattr");
        at(ino).xattrs[name] = value;
        return;
      }
      case 13: {
        // Release a file held open: an unlinked one goes (not yet on disk).
        std::vector<uint64_t> held;
        for (const auto& [ino, inode] : state_) {
          if (inode.open) held.push_back(ino);
        }
        if (held.empty()) return;
        const uint64_t ino = any_of(held);
        fs_->release(ino);
        at(ino).open = false;
        if (at(ino).names == 0) state_.erase(ino);
        return;
      }
      case 16:
        return change_space();
      case 17: {
        // copy_file_range between two files (a reflink of whole sectors).
        if (files.empty()) return;
        const uint64_t in = any_of(files), out = any_of(files);
        const std::string& source = *at(in).data;
        if (source.empty()) return;
        const uint64_t sector = store::kSectorSize;
        const uint64_t offset_in =
            chance(2) ? pick(source.size()) / sector * sector : pick(source.size());
        const uint64_t offset_out = chance(2) ? offset_in : pick(100000);
        const uint64_t length = std::min<uint64_t>(1 + pick(60000), source.size() - offset_in);
        if (in == out && offset_in < offset_out + length && offset_out < offset_in + length) return;
        EXPECT_EQ(must(fs_->copy_file_range(in, offset_in, out, offset_out, length), "copy"),
                  length);
        auto data = std::make_shared<std::string>(*at(out).data);
        if (data->size() < offset_out + length) data->resize(offset_out + length, '\0');
        std::copy_n(source.begin() + static_cast<ptrdiff_t>(offset_in), length,
                    data->begin() + static_cast<ptrdiff_t>(offset_out));
        at(out).data = std::move(data);
        return;
      }
      case 14: {
        must(fs_->sync(), "sync");
        record_commit();
        return;
      }
      default: {
        if (files.empty()) return;
        const uint64_t ino = any_of(files);
        must(fs_->fsync(ino, chance(2)), "fsync");
        record_commit();
        run_.fsyncs.emplace_back(ino, committed_generation_);
        return;
      }
    }
  }

  // fallocate: preallocation (growing the file or not), a punched hole, a
  // zeroed range.
  void change_space() {
    const auto files = where([](const Inode& i) { return S_ISREG(i.mode); });
    if (files.empty()) return;
    const uint64_t ino = any_of(files);
    Inode& inode = at(ino);
    const uint64_t size = inode.data->size();
    const uint64_t offset = pick(size + 20000);
    const uint64_t length = 1 + pick(40000);
    const int modes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
    const int mode = modes[pick(std::size(modes))];
    must(fs_->fallocate(ino, mode, offset, length), "fallocate");
    auto data = std::make_shared<std::string>(*inode.data);
    const bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
    if (!keep_size && data->size() < offset + length) data->resize(offset + length, '\0');
    if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
      const uint64_t end = std::min<uint64_t>(offset + length, data->size());
      if (offset < end) {
        std::fill(data->begin() + static_cast<ptrdiff_t>(offset),
                  data->begin() + static_cast<ptrdiff_t>(end), '\0');
      }
    }
    inode.data = std::move(data);
  }

  std::mt19937_64 rng_;
  block::RecordingDevice& recorder_;
  CrashRun& run_;
  std::unique_ptr<FileSystem> fs_;
  State state_;
  uint64_t committed_generation_ = 0;
  uint64_t next_name_ = 0;
};

// The mounted filesystem holds exactly `state`: the tree from the root,
// every inode's type, link count, size, contents, target and xattrs.
void expect_state(FileSystem& fs, const State& state, const std::string& what) {
  std::set<uint64_t> reached;
  std::vector<uint64_t> pending{kRootDirIno};
  while (!pending.empty()) {
    const uint64_t dir = pending.back();
    pending.pop_back();
    reached.insert(dir);
    std::map<std::string, uint64_t> listed;
    auto listing = fs.readdir(dir, 0, [&](const DirListEntry& e) {
      if (e.name != "." && e.name != "..") listed[e.name] = e.ino;
      return true;
    });
    ASSERT_TRUE(listing) << what << ": readdir " << dir << ": " << listing.error().to_string();
    ASSERT_EQ(listed, state.at(dir).entries) << what << ": directory " << dir;
    for (const auto& [name, ino] : listed) {
      if (!reached.insert(ino).second) continue;
      const Inode& inode = state.at(ino);
      if (is_dir(inode)) pending.push_back(ino);
    }
  }
  for (uint64_t ino : reached) {
    const Inode& inode = state.at(ino);
    const std::string where = what + ": inode " + std::to_string(ino);
    auto attr = fs.getattr(ino);
    ASSERT_TRUE(attr) << where << ": " << attr.error().to_string();
    EXPECT_EQ(attr->mode, inode.mode) << where;
    EXPECT_EQ(attr->nlink, nlink_of(state, inode)) << where;
    if (S_ISREG(inode.mode)) {
      ASSERT_EQ(attr->size, inode.data->size()) << where;
      Bytes contents(inode.data->size());
      auto read = fs.read(ino, 0, contents);
      ASSERT_TRUE(read) << where << ": " << read.error().to_string();
      EXPECT_EQ(*read, contents.size()) << where;
      const Bytes expected(inode.data->begin(), inode.data->end());
      auto [differs, wanted] = std::mismatch(contents.begin(), contents.end(), expected.begin());
      if (differs != contents.end()) {
        const size_t at = static_cast<size_t>(differs - contents.begin());
        size_t end = at;
        while (end < contents.size() && contents[end] != expected[end]) ++end;
        ADD_FAILURE() << where << ": contents differ from byte " << at << " to " << end << " of "
                      << contents.size() << " (read " << int(*differs) << ", expected "
                      << int(*wanted) << ")";
      }
    }
    if (S_ISLNK(inode.mode)) {
      auto target = fs.readlink(ino);
      EXPECT_EQ(target.value_or("(unreadable)"), inode.target) << where;
    }
    for (const auto& [name, value] : inode.xattrs) {
      auto stored = fs.getxattr(ino, name);
      EXPECT_EQ(stored.value_or(Bytes{'?'}), Bytes(value.begin(), value.end()))
          << where << " xattr " << name;
    }
  }
  EXPECT_EQ(reached.size(), state.size()) << what << ": inodes reached from the root";
}

struct CrashStats {
  size_t states = 0;
  size_t points = 0;
  size_t orphans_seen = 0;
  size_t fsyncs_verified = 0;
  std::map<uint64_t, size_t> generations;
};

void check_crash_image(block::MemoryDevice& image, const CrashRun& run, size_t point,
                       const std::string& what, CrashStats& stats) {
  uint64_t durable = 0;
  for (const auto& [generation, end] : run.commit_ends) {
    if (end <= point) durable = std::max(durable, generation);
  }
  // The image as the crash left it: consistent, orphans allowed.
  const testing::FullCheck before = testing::full_check(image);
  EXPECT_TRUE(before.clean()) << what << ":\n" << before.problems();
  stats.orphans_seen += before.filesystem.orphans;
  uint64_t generation = 0;
  {
    store::OpenOptions options;
    options.read_only = true;
    generation = must(store::Engine::open(image, options))->committed_generation();
  }
  EXPECT_TRUE(generation == durable || generation == durable + 1)
      << what << ": generation " << generation << ", durable " << durable;
  auto state = run.states.find(generation);
  ASSERT_NE(state, run.states.end()) << what << ": generation " << generation;
  ++stats.generations[generation];
  for (const auto& [ino, fsync_generation] : run.fsyncs) {
    if (fsync_generation <= generation && run.commit_ends.at(fsync_generation) <= point) {
      ++stats.fsyncs_verified;  // covered by the state comparison below
    }
  }

  auto fs = FileSystem::open(image);
  ASSERT_TRUE(fs) << what << ": mount: " << fs.error().to_string();
  expect_state(**fs, state->second, what + ", generation " + std::to_string(generation));
  // The recovered filesystem keeps working: space the lost transaction had
  // taken is reused, and the result is still consistent.
  {
    auto made = (*fs)->mknod(kRootDirIno, "after-crash", S_IFREG | 0644, 0, kRootCaller);
    ASSERT_TRUE(made) << what << ": " << made.error().to_string();
    const std::string data(50000, 'r');
    auto written = (*fs)->write(made->ino, 0, as_bytes(data));
    ASSERT_TRUE(written) << what << ": " << written.error().to_string();
    auto synced = (*fs)->fsync(made->ino, false);
    ASSERT_TRUE(synced) << what << ": " << synced.error().to_string();
  }
  auto closed = (*fs)->close();
  ASSERT_TRUE(closed) << what << ": unmount: " << closed.error().to_string();
  fs->reset();
  const testing::FullCheck after = testing::full_check(image);
  EXPECT_TRUE(after.clean()) << what << " (after mount and unmount):\n" << after.problems();
  EXPECT_EQ(after.filesystem.orphans, 0u) << what;
  ++stats.states;
}

void check_every_crash_state(uint64_t seed, uint64_t steps, size_t between_flushes) {
  block::MemoryDevice base(96ull << 20);
  testing::make_filesystem(base);
  block::RecordingDevice recorder(base);
  CrashRun run;
  CrashWorkload(seed, recorder, run).run(steps);
  ASSERT_FALSE(::testing::Test::HasFailure());
  ASSERT_GE(run.states.size(), 8u) << "the workload committed too rarely";

  const size_t ops = recorder.op_count();
  std::set<size_t> points{ops};
  for (size_t flush : recorder.flush_points()) {
    points.insert(flush);      // the flush did not complete
    points.insert(flush + 1);  // it did, nothing after it was issued
  }
  const size_t stride = std::max<size_t>(1, ops / between_flushes);
  for (size_t point = 0; point < ops; point += stride) points.insert(point);

  CrashStats stats;
  stats.points = points.size();
  for (size_t point : points) {
    struct Variant {
      block::CrashMode mode;
      uint64_t seed;
    };
    std::vector<Variant> variants{{block::CrashMode::kDropAllUnflushed, 0}};
    if (!recorder.unflushed_writes(point).empty()) {
      variants.push_back({block::CrashMode::kKeepAllUnflushed, 0});
      variants.push_back({block::CrashMode::kRandomSubset, point});
      variants.push_back({block::CrashMode::kRandomSubsetWithTears, point + 1});
      variants.push_back({block::CrashMode::kRandomSubsetWithTears, point + 2});
    }
    for (const Variant& variant : variants) {
      auto image = recorder.crash_image(point, variant.mode, variant.seed);
      ASSERT_TRUE(image) << image.error().to_string();
      const std::string what = "seed " + std::to_string(seed) + ", crash at op " +
                               std::to_string(point) + " of " + std::to_string(ops) + ", mode " +
                               std::to_string(static_cast<int>(variant.mode)) + ", choice seed " +
                               std::to_string(variant.seed);
      check_crash_image(*image, run, point, what, stats);
      if (::testing::Test::HasFailure()) return;
    }
  }
  std::printf(
      "fs crash test (seed %llu): %zu crash states checked at %zu crash points; %zu ops, %zu "
      "commits, %zu fsyncs; %zu generations seen; %zu fsync checks; %zu orphans found on "
      "crashed media\n",
      static_cast<unsigned long long>(seed), stats.states, stats.points, ops, run.states.size() - 1,
      run.fsyncs.size(), stats.generations.size(), stats.fsyncs_verified, stats.orphans_seen);
  // Both outcomes of interrupted commits must have been seen: nearly every
  // generation shows up as some crash state.
  EXPECT_GE(stats.generations.size() + 1, run.states.size());
}

TEST(FsCrashTest, EveryCrashStateMountsAsACommittedState) {
  check_every_crash_state(env_number("ECFS_CRASH_SEED", 31), env_number("ECFS_CRASH_STEPS", 250),
                          150);
}

}  // namespace
}  // namespace ecfs::fs
