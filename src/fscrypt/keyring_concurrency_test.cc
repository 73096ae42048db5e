// Keyring under concurrent use, as many FUSE threads use it: setups and
// releases racing with removal, re-adding and claims. Bounded iterations; a
// watchdog turns a deadlock into a failure instead of a hang.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "fscrypt/extent.h"
#include "fscrypt/keyring.h"
#include "fscrypt/keyring_for_test.h"
#include "fscrypt/master_key_secret.h"

namespace ecfs::fscrypt {
namespace {

using test_support::counting_nonce;
using test_support::probe;
using test_support::root;
using test_support::user;
using test_support::v2_context;
using test_support::v2_policy;
using test_support::xfstests_raw_key;

// Aborts the process if the test body has not finished within `limit`.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock lock(mutex_);
          if (!done_cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "keyring concurrency test: no progress, deadlock?\n");
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

// xorshift64: deterministic per-thread choices.
struct Random {
  uint64_t state;
  uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

constexpr uint32_t kOwnerUid = 1000;
constexpr uint32_t kOtherUid = 2000;
constexpr int kNonces = 8;

// Expected probe() outputs for per-file keys and per-extent keys.
struct Expected {
  std::map<int, Bytes> file;
  std::map<int, Bytes> extent;
};

Expected expected_probes(const KeyIdentifier& identifier) {
  auto secret = MasterKeySecret::create(xfstests_raw_key());
  Expected expected;
  for (int n = 0; n < kNonces; ++n) {
    auto key = setup_file_key(*secret, v2_context(identifier, counting_nonce(16 * n)), {});
    expected.file[n] = probe(*key->cipher);
    auto extent = setup_extent_key(
        *secret, *make_extent_context(v2_policy(identifier), counting_nonce(16 * n + 1)));
    expected.extent[n] = probe(*extent->cipher);
  }
  return expected;
}

struct FsCache {
  std::mutex mutex;
  std::map<const ExtentInfo*, ExtentInfoPtr> extents;
  std::map<const FileInfo*, FileInfoPtr> inodes;
  std::atomic<uint64_t> forgets{0};

  KeyRemovalHooks hooks() {
    KeyRemovalHooks hooks;
    hooks.sync = [](const KeySpecifier&) -> Status { return ok(); };
    hooks.evict_file_info = [this](const FileInfoPtr& info) {
      FileInfoPtr dropped;
      std::lock_guard lock(mutex);
      if (auto it = inodes.find(info.get()); it != inodes.end()) {
        dropped = std::move(it->second);
        inodes.erase(it);
      }
    };
    hooks.forget_extent_info = [this](const ExtentInfoPtr& info) {
      forgets.fetch_add(1);
      ExtentInfoPtr dropped;
      std::lock_guard lock(mutex);
      if (auto it = extents.find(info.get()); it != extents.end()) {
        dropped = std::move(it->second);
        extents.erase(it);
      }
    };
    return hooks;
  }
  void clear() {
    std::map<const ExtentInfo*, ExtentInfoPtr> old_extents;
    std::map<const FileInfo*, FileInfoPtr> old_inodes;
    std::lock_guard lock(mutex);
    old_extents.swap(extents);
    old_inodes.swap(inodes);
  }
};

struct Tally {
  std::atomic<uint64_t> setup_attempts{0}, extent_attempts{0};
  std::atomic<uint64_t> setups_ok{0}, setups_enokey{0};
  std::atomic<uint64_t> extents_ok{0}, extents_enokey{0};
  std::atomic<uint64_t> new_extents_ok{0};
  std::atomic<uint64_t> adds{0}, removes{0}, busy{0};
  std::atomic<uint64_t> unexpected{0}, wrong_key{0};
};

TEST(KeyringConcurrency, SetupsAndReleasesRaceWithRemovalAndReAdding) {
  Watchdog watchdog(std::chrono::seconds(240));
  Keyring keyring(KeyringOptions{.fs_uuid = {}, .extent_cache_capacity = 4});
  FsCache fs;
  keyring.set_removal_hooks(fs.hooks());
  auto identifier = keyring.add_v2_key(user(kOwnerUid), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  const KeySpecifier spec = KeySpecifier::from_identifier(*identifier);
  const PolicyV2 policy = v2_policy(*identifier);
  const Expected expected = expected_probes(*identifier);
  auto secret = MasterKeySecret::create(xfstests_raw_key());

  constexpr int kWorkers = 4;
  constexpr int kWorkerOps = 15000;
  // The key threads cycle while workers run (at least kMinKeyCycles, at most
  // kMaxKeyCycles times), leaving the key removed for a moment each time.
  constexpr int kMinKeyCycles = 50;
  constexpr int kMaxKeyCycles = 5000;
  Tally tally;
  std::atomic<int> workers_running{kWorkers};
  std::atomic<uint64_t> key_cycles{0};
  auto keep_cycling = [&](int cycle) {
    return cycle < kMinKeyCycles || (workers_running.load() > 0 && cycle < kMaxKeyCycles);
  };

  auto worker = [&](int index) {
    Random random{0x9e3779b97f4a7c15ull * (index + 1)};
    std::vector<FileInfoPtr> files;
    std::vector<ExtentInfoPtr> extents;
    for (int op = 0; op < kWorkerOps; ++op) {
      const int n = static_cast<int>(random.below(kNonces));
      switch (random.below(6)) {
        case 0:
        case 1: {
          ++tally.setup_attempts;
          auto info = keyring.setup_file_info(v2_context(*identifier, counting_nonce(16 * n)),
                                              FileKind::kRegular, 100 + n);
          if (info) {
            ++tally.setups_ok;
            if (probe((*info)->cipher()) != expected.file.at(n)) ++tally.wrong_key;
            if (random.below(2) == 0) {
              std::lock_guard lock(fs.mutex);
              fs.inodes.emplace(info->get(), *info);
            } else {
              files.push_back(std::move(*info));
            }
          } else if (info.error().errno_value() == ENOKEY) {
            ++tally.setups_enokey;
          } else {
            ++tally.unexpected;
          }
          break;
        }
        case 2:
        case 3: {
          ++tally.extent_attempts;
          auto info = keyring.load_extent_info(
              *make_extent_context(policy, counting_nonce(16 * n + 1)), policy);
          if (info) {
            ++tally.extents_ok;
            if (probe((*info)->cipher()) != expected.extent.at(n)) ++tally.wrong_key;
            if (random.below(2) == 0) {
              std::lock_guard lock(fs.mutex);
              fs.extents.emplace(info->get(), *info);
            } else {
              extents.push_back(std::move(*info));
            }
          } else if (info.error().errno_value() == ENOKEY) {
            ++tally.extents_enokey;
          } else {
            ++tally.unexpected;
          }
          break;
        }
        case 4: {
          // Writeback of an open file: must work even while its key is
          // being removed.
          if (files.empty()) break;
          auto info = keyring.new_extent_info(*files[random.below(files.size())]);
          if (!info) {
            ++tally.unexpected;
            break;
          }
          ++tally.new_extents_ok;
          auto direct = setup_extent_key(*secret, (*info)->context());
          if (probe((*info)->cipher()) != probe(*direct->cipher)) ++tally.wrong_key;
          break;
        }
        case 5:
          // Close something.
          if (!files.empty()) files.erase(files.begin() + random.below(files.size()));
          if (!extents.empty()) extents.erase(extents.begin() + random.below(extents.size()));
          break;
      }
      if (files.size() > 4) files.erase(files.begin());
      if (extents.size() > 4) extents.erase(extents.begin());
    }
    files.clear();
    extents.clear();
    --workers_running;
  };

  // Removes and re-adds the owner's claim (the key itself goes whenever the
  // other user holds no claim at that moment).
  auto owner = [&] {
    for (int cycle = 0; keep_cycling(cycle); ++cycle) {
      ++key_cycles;
      auto flags = keyring.remove_key(user(kOwnerUid), spec);
      if (!flags) {
        ++tally.unexpected;
      } else {
        ++tally.removes;
        if (*flags & kKeyRemovalStatusFlagFilesBusy) ++tally.busy;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      if (keyring.add_v2_key(user(kOwnerUid), xfstests_raw_key())) {
        ++tally.adds;
      } else {
        ++tally.unexpected;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(150));
    }
  };
  // Adds and removes a second user's claim.
  auto other = [&] {
    for (int cycle = 0; keep_cycling(cycle); ++cycle) {
      ++key_cycles;
      if (keyring.add_v2_key(user(kOtherUid), xfstests_raw_key())) {
        ++tally.adds;
      } else {
        ++tally.unexpected;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      if (keyring.remove_key(user(kOtherUid), spec)) {
        ++tally.removes;
      } else {
        ++tally.unexpected;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(30));
    }
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < kWorkers; ++i) threads.emplace_back(worker, i);
  threads.emplace_back(owner);
  threads.emplace_back(other);
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(tally.unexpected.load(), 0u);
  EXPECT_EQ(tally.wrong_key.load(), 0u);
  // Every add and remove succeeded: none was lost to a race.
  EXPECT_EQ(tally.adds.load(), key_cycles.load());
  EXPECT_EQ(tally.removes.load(), key_cycles.load());
  // Every setup either succeeded or met a removed key (ENOKEY).
  EXPECT_EQ(tally.setups_ok.load() + tally.setups_enokey.load(), tally.setup_attempts.load());
  EXPECT_EQ(tally.extents_ok.load() + tally.extents_enokey.load(), tally.extent_attempts.load());
  EXPECT_GT(tally.setups_ok.load(), 0u);
  EXPECT_GT(tally.extents_ok.load(), 0u);
  EXPECT_GT(tally.setups_enokey.load() + tally.extents_enokey.load(), 0u)
      << "no setup ever met a removed key: the race was not exercised";

  // The owner's claim is the only one left. With every info released (the
  // workers' and the fs cache's), removal must complete at once: any lost
  // release would leave the key INCOMPLETELY_REMOVED here.
  fs.clear();
  EXPECT_EQ(keyring.key_status(user(kOwnerUid), spec).status, KeyStatus::kPresent);
  EXPECT_EQ(keyring.key_status(user(kOwnerUid), spec).user_count, 1u);
  auto flags = keyring.remove_key(user(kOwnerUid), spec);
  ASSERT_TRUE(flags.has_value());
  EXPECT_EQ(*flags, 0u);
  EXPECT_EQ(keyring.key_status(root(), spec).status, KeyStatus::kAbsent);
  std::printf(
      "key cycles %llu; setups %llu ok / %llu ENOKEY, extents %llu ok / %llu ENOKEY, new "
      "extents %llu, busy removals %llu, forgets %llu\n",
      static_cast<unsigned long long>(key_cycles.load()),
      static_cast<unsigned long long>(tally.setups_ok.load()),
      static_cast<unsigned long long>(tally.setups_enokey.load()),
      static_cast<unsigned long long>(tally.extents_ok.load()),
      static_cast<unsigned long long>(tally.extents_enokey.load()),
      static_cast<unsigned long long>(tally.new_extents_ok.load()),
      static_cast<unsigned long long>(tally.busy.load()),
      static_cast<unsigned long long>(fs.forgets.load()));
}

TEST(KeyringConcurrency, RacingFirstLoadsOfAnExtentGetOneInfo) {
  Watchdog watchdog(std::chrono::seconds(120));
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  const PolicyV2 policy = v2_policy(*identifier);

  constexpr int kThreads = 6;
  constexpr int kRounds = 40;
  std::vector<std::vector<ExtentInfoPtr>> results(kThreads, std::vector<ExtentInfoPtr>(kRounds));
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        start.arrive_and_wait();
        auto info = keyring.load_extent_info(
            *make_extent_context(policy, counting_nonce(static_cast<uint8_t>(round))), policy);
        if (info) results[t][round] = *info;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_NE(results[0][round], nullptr);
    for (int t = 1; t < kThreads; ++t) EXPECT_EQ(results[t][round], results[0][round]);
  }
  // A lost race derives and discards; never more than one per thread.
  EXPECT_GE(keyring.stats().extent_keys, static_cast<uint64_t>(kRounds));
  EXPECT_LE(keyring.stats().extent_keys, static_cast<uint64_t>(kRounds * kThreads));
}

TEST(KeyringConcurrency, RacingSetupsDeriveAPerModeKeyOnce) {
  Watchdog watchdog(std::chrono::seconds(120));
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());

  constexpr int kThreads = 8;
  std::vector<FileInfoPtr> infos(kThreads);
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      auto info = keyring.setup_file_info(
          v2_context(*identifier, counting_nonce(static_cast<uint8_t>(t)), kModeAes256Xts,
                     kModeAes256Cts, kPolicyFlagIvInoLblk64),
          FileKind::kRegular, 10 + t);
      if (info) infos[t] = *info;
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_NE(infos[t], nullptr);
    EXPECT_EQ(&infos[t]->cipher(), &infos[0]->cipher());
  }
  EXPECT_EQ(keyring.stats().mode_keys, 1u);
}

}  // namespace
}  // namespace ecfs::fscrypt
