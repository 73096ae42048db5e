// Concurrency through a real mount. Each workload runs in a forked child
// process with its threads, under a deadline: a deadlock in the daemon (or
// the kernel side of FUSE) fails the test with a message instead of hanging
// it. The parent then verifies what the workload left, remounts (fsck runs
// in between) and verifies again.
//  - Eight writers fill disjoint regions of one file with pwrite while
//    readers verify every writer's finished part.
//  - Eight threads create, write, read, truncate, rename (also over their
//    own files) and unlink files in their own directory and a shared one.
//  - Readers list a directory and stat / read its entries while writers
//    create and unlink in it: the only error allowed is ENOENT for an entry
//    removed in between; no name twice in one listing; every file that
//    stays put is listed every time.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "fsx_model.h"
#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

constexpr auto kDeadline = std::chrono::seconds(180);

struct ChildOutcome {
  bool finished = false;  // exited by itself before the deadline
  std::string report;     // what the workload returned (empty = no failure)
};

// Runs `workload` in a forked child (its threads live there) and returns
// what it reports through a pipe; kills the child when `deadline` passes.
ChildOutcome run_with_deadline(const std::function<std::string()>& workload,
                               std::chrono::seconds deadline) {
  ChildOutcome outcome;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    outcome.report = "pipe2 failed";
    return outcome;
  }
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    outcome.report = "fork failed";
    return outcome;
  }
  if (pid == 0) {
    close(pipe_fds[0]);
    std::string report = workload();
    if (report.empty()) report = "OK";
    size_t done = 0;
    while (done < report.size()) {
      const ssize_t n = write(pipe_fds[1], report.data() + done, report.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(pipe_fds[1]);
  const auto end = std::chrono::steady_clock::now() + deadline;
  std::string received;
  bool eof = false;
  while (!eof) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd ready = {pipe_fds[0], POLLIN, 0};
    const int polled = poll(&ready, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (polled < 0 && errno != EINTR) break;
    if (polled <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n <= 0) {
      eof = true;
    } else {
      received.append(buffer, static_cast<size_t>(n));
    }
  }
  close(pipe_fds[0]);
  int status = 0;
  if (!eof) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    outcome.report = "the workload did not finish within " + std::to_string(deadline.count()) +
                     " s (deadlock or hang?); partial report: " + received;
    return outcome;
  }
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || received.empty()) {
    outcome.report = "the workload process died (status " + std::to_string(status) + ")";
    return outcome;
  }
  outcome.finished = true;
  outcome.report = received == "OK" ? "" : received;
  return outcome;
}

// Thread-safe collection of failure messages (the first few kept).
class Failures {
 public:
  void add(const std::string& message) {
    std::lock_guard lock(mutex_);
    if (++count_ <= 20) text_ += message + "\n";
  }
  bool any() const { return count_ > 0; }
  std::string text() const {
    std::lock_guard lock(mutex_);
    return count_ > 20 ? text_ + "(" + std::to_string(count_ - 20) + " more)\n" : text_;
  }

 private:
  mutable std::mutex mutex_;
  std::atomic<uint64_t> count_{0};
  std::string text_;
};

// The byte every writer puts at offset `offset` of the shared file.
char byte_at(uint64_t offset) {
  uint64_t x = (offset / 8) * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<char>(x >> (8 * (offset % 8)));
}
std::string bytes_at(uint64_t offset, uint64_t length) {
  std::string out(length, '\0');
  for (uint64_t i = 0; i < length; ++i) out[i] = byte_at(offset + i);
  return out;
}

// The guard itself: a workload that hangs is killed and reported.
TEST(DeadlineRunnerTest, AHangingWorkloadFailsInsteadOfHanging) {
  const auto start = std::chrono::steady_clock::now();
  const ChildOutcome hung = run_with_deadline(
      []() -> std::string {
        pause();
        return "";
      },
      std::chrono::seconds(1));
  EXPECT_FALSE(hung.finished);
  EXPECT_NE(hung.report.find("did not finish"), std::string::npos) << hung.report;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  const ChildOutcome failed =
      run_with_deadline([] { return std::string("broken"); }, std::chrono::seconds(30));
  EXPECT_TRUE(failed.finished);
  EXPECT_EQ(failed.report, "broken");
  const ChildOutcome passed =
      run_with_deadline([] { return std::string(); }, std::chrono::seconds(30));
  EXPECT_TRUE(passed.finished);
  EXPECT_EQ(passed.report, "");
}

using ConcurrencyTest = FuseTest;

TEST_F(ConcurrencyTest, DisjointWritersOfOneFileWhileReadersVerify) {
  constexpr int kWriters = 8;
  constexpr int kReaders = 3;
  constexpr uint64_t kRegion = 6 * fsx::kMiB + 12345;  // unaligned region boundaries
  const std::string file = path("shared-file");
  ASSERT_TRUE(write_file(file, ""));
  const auto start = std::chrono::steady_clock::now();
  const ChildOutcome outcome = run_with_deadline(
      [&]() -> std::string {
        Failures failures;
        std::atomic<uint64_t> progress[kWriters];
        for (auto& p : progress) p = 0;
        std::atomic<int> writers_left{kWriters};
        const int shared_fd = open(file.c_str(), O_RDWR | O_CLOEXEC);
        if (shared_fd < 0) return "open: " + std::string(std::strerror(errno));
        std::vector<std::thread> threads;
        for (int t = 0; t < kWriters; ++t) {
          threads.emplace_back([&, t] {
            std::mt19937_64 rng(1000 + t);
            // Half the writers share one descriptor, half open their own.
            const int fd = t % 2 ? open(file.c_str(), O_RDWR | O_CLOEXEC) : shared_fd;
            if (fd < 0) {
              failures.add("writer open failed");
              --writers_left;
              return;
            }
            const uint64_t base = t * kRegion;
            uint64_t done = 0;
            while (done < kRegion && !failures.any()) {
              const uint64_t length = std::min<uint64_t>(kRegion - done, 1 + rng() % (256 << 10));
              if (!pwrite_all(fd, bytes_at(base + done, length), static_cast<off_t>(base + done))) {
                failures.add("writer " + std::to_string(t) + " pwrite: " + std::strerror(errno));
                break;
              }
              done += length;
              progress[t].store(done, std::memory_order_release);
              // Its own finished part reads back.
              const uint64_t check_offset = rng() % done;
              const uint64_t check_length = std::min<uint64_t>(done - check_offset, 200000);
              if (pread_string(fd, check_length, static_cast<off_t>(base + check_offset)) !=
                  bytes_at(base + check_offset, check_length)) {
                failures.add("writer " + std::to_string(t) + " reread mismatch at " +
                             std::to_string(base + check_offset));
              }
              if (rng() % 20 == 0 && fsync(fd) != 0) {
                failures.add("fsync: " + std::string(std::strerror(errno)));
              }
            }
            if (fd != shared_fd) close(fd);
            --writers_left;
          });
        }
        std::atomic<uint64_t> verified{0};
        for (int r = 0; r < kReaders; ++r) {
          threads.emplace_back([&, r] {
            std::mt19937_64 rng(2000 + r);
            const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
              failures.add("reader open failed");
              return;
            }
            while (writers_left.load() > 0 && !failures.any()) {
              const int t = static_cast<int>(rng() % kWriters);
              const uint64_t finished = progress[t].load(std::memory_order_acquire);
              if (finished == 0) continue;
              const uint64_t offset = t * kRegion + rng() % finished;
              const uint64_t length =
                  std::min<uint64_t>(t * kRegion + finished - offset, 1 + rng() % (512 << 10));
              const std::string got = pread_string(fd, length, static_cast<off_t>(offset));
              const std::string expected = bytes_at(offset, length);
              if (got != expected) {
                failures.add(
                    "reader " + std::to_string(r) + " of writer " + std::to_string(t) +
                    "'s finished part: " + fsx::describe_difference(expected, got, offset));
              }
              verified += got.size();
            }
            close(fd);
          });
        }
        for (std::thread& thread : threads) thread.join();
        if (fsync(shared_fd) != 0) failures.add("final fsync");
        if (close(shared_fd) != 0) failures.add("final close");
        std::printf("readers verified %llu bytes while the writers ran\n",
                    static_cast<unsigned long long>(verified.load()));
        std::fflush(stdout);
        return failures.text();
      },
      kDeadline);
  EXPECT_TRUE(outcome.finished) << outcome.report;
  ASSERT_EQ(outcome.report, "");
  const std::string expected = bytes_at(0, kWriters * kRegion);
  std::optional<std::string> contents = read_file(file);
  ASSERT_TRUE(contents.has_value());
  EXPECT_TRUE(*contents == expected) << fsx::describe_difference(expected, *contents, 0);
  ASSERT_NO_FATAL_FAILURE(remount());
  contents = read_file(file);
  ASSERT_TRUE(contents.has_value());
  EXPECT_TRUE(*contents == expected)
      << "after remount: " << fsx::describe_difference(expected, *contents, 0);
  std::printf("disjoint writers: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// Contents of a file from its recorded length and seed.
std::string file_contents(uint64_t length, uint64_t seed) {
  return pattern(length, static_cast<uint32_t>(seed));
}

TEST_F(ConcurrencyTest, ThreadsCreateRenameAndUnlinkInOwnAndSharedDirectories) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 250;
  ASSERT_EQ(mkdir(path("shared").c_str(), 0755), 0);
  const std::string manifest = scratch_.file("manifest");
  const auto start = std::chrono::steady_clock::now();
  const ChildOutcome outcome = run_with_deadline(
      [&]() -> std::string {
        Failures failures;
        std::mutex manifest_mutex;
        std::map<std::string, std::pair<uint64_t, uint64_t>> expected;  // path -> length, seed
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
          threads.emplace_back([&, t] {
            std::mt19937_64 rng(3000 + t);
            const std::string own = "own" + std::to_string(t);
            if (mkdir(path(own).c_str(), 0755) != 0) {
              failures.add("mkdir " + own + ": " + std::strerror(errno));
              return;
            }
            // This thread's files: relative path -> (length, seed).
            std::map<std::string, std::pair<uint64_t, uint64_t>> mine;
            auto check = [&](const std::string& name, const char* when) {
              const auto& [length, seed] = mine.at(name);
              const std::optional<std::string> got = read_file(path(name));
              if (!got) {
                failures.add(std::string(when) + ": cannot read " + name + ": " +
                             std::strerror(errno));
              } else if (*got != file_contents(length, seed)) {
                failures.add(std::string(when) + ": " + name + ": " +
                             fsx::describe_difference(file_contents(length, seed), *got, 0));
              }
            };
            for (int i = 0; i < kRounds && !failures.any(); ++i) {
              const uint64_t seed = static_cast<uint64_t>(t) * 100000 + i;
              const uint64_t length = rng() % 3 == 0 ? rng() % 300000 : rng() % 5000;
              const std::string name = own + "/n" + std::to_string(i);
              if (!write_file(path(name), file_contents(length, seed), O_TRUNC | O_EXCL)) {
                failures.add("create " + name + ": " + std::strerror(errno));
                break;
              }
              mine[name] = {length, seed};
              check(name, "after create");
              switch (rng() % 5) {
                case 0: {  // truncate down: a prefix of the same pattern
                  const uint64_t new_length = length ? rng() % length : 0;
                  if (truncate(path(name).c_str(), static_cast<off_t>(new_length)) != 0) {
                    failures.add("truncate " + name + ": " + std::strerror(errno));
                  }
                  mine[name].first = new_length;
                  check(name, "after truncate");
                  break;
                }
                case 1: {  // rename within its own directory
                  const std::string renamed = own + "/m" + std::to_string(i);
                  if (rename(path(name).c_str(), path(renamed).c_str()) != 0) {
                    failures.add("rename " + name + ": " + std::strerror(errno));
                    break;
                  }
                  mine[renamed] = mine[name];
                  mine.erase(name);
                  check(renamed, "after rename");
                  break;
                }
                default: {  // into the shared directory, sometimes over its own file there
                  std::string target = "shared/t" + std::to_string(t) + "-" + std::to_string(i);
                  if (i > 0 && rng() % 3 == 0) {
                    target = "shared/t" + std::to_string(t) + "-" + std::to_string(rng() % i);
                  }
                  if (rename(path(name).c_str(), path(target).c_str()) != 0) {
                    failures.add("rename " + name + " " + target + ": " + std::strerror(errno));
                    break;
                  }
                  mine[target] = mine[name];
                  mine.erase(name);
                  check(target, "after rename into shared");
                  break;
                }
              }
              if (rng() % 4 == 0 && !mine.empty()) {  // unlink one of its files
                auto victim = mine.begin();
                std::advance(victim, static_cast<long>(rng() % mine.size()));
                if (unlink(path(victim->first).c_str()) != 0) {
                  failures.add("unlink " + victim->first + ": " + std::strerror(errno));
                }
                struct stat st;
                if (lstat(path(victim->first).c_str(), &st) == 0 || errno != ENOENT) {
                  failures.add(victim->first + " still there after unlink");
                }
                mine.erase(victim);
              }
            }
            for (const auto& [name, entry] : mine) check(name, "at the end");
            std::lock_guard lock(manifest_mutex);
            expected.insert(mine.begin(), mine.end());
          });
        }
        for (std::thread& thread : threads) thread.join();
        std::ofstream out(manifest);
        for (const auto& [name, entry] : expected) {
          out << name << " " << entry.first << " " << entry.second << "\n";
        }
        return failures.text();
      },
      kDeadline);
  EXPECT_TRUE(outcome.finished) << outcome.report;
  ASSERT_EQ(outcome.report, "");
  std::map<std::string, std::pair<uint64_t, uint64_t>> expected;
  {
    std::ifstream in(manifest);
    std::string name;
    uint64_t length = 0, seed = 0;
    while (in >> name >> length >> seed) expected[name] = {length, seed};
  }
  ASSERT_FALSE(expected.empty());
  auto verify = [&](const char* when) {
    std::set<std::string> listed;
    for (const std::string dir :
         {"shared", "own0", "own1", "own2", "own3", "own4", "own5", "own6", "own7"}) {
      DIR* handle = opendir(path(dir).c_str());
      ASSERT_NE(handle, nullptr) << dir;
      while (const dirent* entry = readdir(handle)) {
        if (entry->d_name[0] != '.') listed.insert(dir + "/" + entry->d_name);
      }
      closedir(handle);
    }
    std::set<std::string> wanted;
    for (const auto& [name, entry] : expected) wanted.insert(name);
    EXPECT_EQ(listed, wanted) << when;
    for (const auto& [name, entry] : expected) {
      EXPECT_EQ(read_file(path(name)), file_contents(entry.first, entry.second))
          << when << ": " << name;
    }
  };
  ASSERT_NO_FATAL_FAILURE(verify("after the workload"));
  ASSERT_NO_FATAL_FAILURE(remount());
  ASSERT_NO_FATAL_FAILURE(verify("after remount"));
  std::printf("%zu files left by %d threads; %.1f s\n", expected.size(), kThreads,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// Contents of a busy-directory file, from its name.
std::string busy_contents(const std::string& name) {
  uint32_t seed = 0;
  for (char c : name) seed = seed * 131 + static_cast<uint8_t>(c);
  return pattern(100 + seed % 3000, seed);
}

TEST_F(ConcurrencyTest, ListingAndStatWhileCreatingAndUnlinking) {
  constexpr int kWriters = 4;
  constexpr int kReaders = 3;
  constexpr int kRounds = 1500;
  constexpr int kStable = 40;
  const std::string dir = path("busy");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  std::map<std::string, ino_t> stable;
  for (int i = 0; i < kStable; ++i) {
    const std::string name = "stable" + std::to_string(i);
    ASSERT_TRUE(write_file(dir + "/" + name, busy_contents(name)));
    stable[name] = stat_of(dir + "/" + name).st_ino;
  }
  const std::string manifest = scratch_.file("busy-manifest");
  const auto start = std::chrono::steady_clock::now();
  const ChildOutcome outcome = run_with_deadline(
      [&]() -> std::string {
        Failures failures;
        std::atomic<int> writers_left{kWriters};
        std::atomic<uint64_t> listings{0}, stats{0}, vanished{0};
        std::mutex manifest_mutex;
        std::set<std::string> survivors;
        std::vector<std::thread> threads;
        for (int t = 0; t < kWriters; ++t) {
          threads.emplace_back([&, t] {
            std::mt19937_64 rng(4000 + t);
            std::vector<std::string> mine;
            for (int i = 0; i < kRounds && !failures.any(); ++i) {
              const std::string name = "w" + std::to_string(t) + "-" + std::to_string(i);
              if (rng() % 8 == 0) {  // a directory now and then, removed again soon
                if (mkdir((dir + "/" + name).c_str(), 0755) != 0 ||
                    rmdir((dir + "/" + name).c_str()) != 0) {
                  failures.add("mkdir/rmdir " + name + ": " + std::strerror(errno));
                }
                continue;
              }
              if (!write_file(dir + "/" + name, busy_contents(name), O_EXCL)) {
                failures.add("create " + name + ": " + std::strerror(errno));
                continue;
              }
              mine.push_back(name);
              if (mine.size() > 5 || rng() % 3 == 0) {
                const size_t victim = rng() % mine.size();
                if (unlink((dir + "/" + mine[victim]).c_str()) != 0) {
                  failures.add("unlink " + mine[victim] + ": " + std::strerror(errno));
                }
                mine.erase(mine.begin() + static_cast<long>(victim));
              }
            }
            std::lock_guard lock(manifest_mutex);
            survivors.insert(mine.begin(), mine.end());
            --writers_left;
          });
        }
        for (int r = 0; r < kReaders; ++r) {
          threads.emplace_back([&] {
            while (writers_left.load() > 0 && !failures.any()) {
              DIR* handle = opendir(dir.c_str());
              if (handle == nullptr) {
                failures.add("opendir: " + std::string(std::strerror(errno)));
                return;
              }
              std::set<std::string> seen;
              for (;;) {
                errno = 0;
                const dirent* entry = readdir(handle);
                if (entry == nullptr) {
                  if (errno != 0) failures.add("readdir: " + std::string(std::strerror(errno)));
                  break;
                }
                const std::string name = entry->d_name;
                if (name == "." || name == "..") continue;
                if (!seen.insert(name).second) failures.add(name + " listed twice in one pass");
                struct stat st;
                if (lstat((dir + "/" + name).c_str(), &st) != 0) {
                  if (errno == ENOENT) {
                    ++vanished;
                  } else {
                    failures.add("lstat " + name + ": " + std::strerror(errno));
                  }
                  continue;
                }
                ++stats;
                if (st.st_ino != entry->d_ino) {
                  failures.add(name + ": d_ino " + std::to_string(entry->d_ino) + " but st_ino " +
                               std::to_string(st.st_ino));
                }
                if (S_ISREG(st.st_mode)) {
                  const int fd = open((dir + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
                  if (fd < 0) {
                    if (errno != ENOENT) {
                      failures.add("open " + name + ": " + std::strerror(errno));
                    }
                    continue;
                  }
                  const std::string got = pread_string(fd, 8192, 0);
                  close(fd);
                  // A file being created may still be empty or partly written.
                  const std::string want = busy_contents(name);
                  if (got.size() > want.size() || want.compare(0, got.size(), got) != 0) {
                    failures.add("contents of " + name + " are not (a prefix of) its own");
                  }
                }
              }
              closedir(handle);
              ++listings;
              for (const auto& [name, ino] : stable) {
                if (!seen.count(name)) failures.add(name + " (never touched) missing in a listing");
              }
            }
          });
        }
        for (std::thread& thread : threads) thread.join();
        std::ofstream out(manifest);
        for (const std::string& name : survivors) out << name << "\n";
        std::printf("%llu listings, %llu stats, %llu entries gone before their stat\n",
                    static_cast<unsigned long long>(listings.load()),
                    static_cast<unsigned long long>(stats.load()),
                    static_cast<unsigned long long>(vanished.load()));
        std::fflush(stdout);
        if (listings.load() == 0) failures.add("the readers never completed a listing");
        return failures.text();
      },
      kDeadline);
  EXPECT_TRUE(outcome.finished) << outcome.report;
  ASSERT_EQ(outcome.report, "");
  std::set<std::string> wanted;
  for (const auto& [name, ino] : stable) wanted.insert(name);
  {
    std::ifstream in(manifest);
    std::string name;
    while (in >> name) wanted.insert(name);
  }
  auto verify = [&](const char* when) {
    std::set<std::string> listed;
    DIR* handle = opendir(dir.c_str());
    ASSERT_NE(handle, nullptr);
    while (const dirent* entry = readdir(handle)) {
      if (entry->d_name[0] != '.') listed.insert(entry->d_name);
    }
    closedir(handle);
    EXPECT_EQ(listed, wanted) << when;
    for (const std::string& name : wanted) {
      EXPECT_EQ(read_file(dir + "/" + name), busy_contents(name)) << when << ": " << name;
    }
    for (const auto& [name, ino] : stable) EXPECT_EQ(stat_of(dir + "/" + name).st_ino, ino);
  };
  ASSERT_NO_FATAL_FAILURE(verify("after the workload"));
  ASSERT_NO_FATAL_FAILURE(remount());
  ASSERT_NO_FATAL_FAILURE(verify("after remount"));
  std::printf("busy directory: %zu entries at the end; %.1f s\n", wanted.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace
}  // namespace ecfs::fuse_test
