// Keyring: key removal with infos still alive (INCOMPLETELY_REMOVED),
// completion, re-adding, cache eviction, extent infos and the removal hooks.
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <set>
#include <vector>

#include "crypto/aes_xts.h"
#include "fscrypt/extent.h"
#include "fscrypt/keyring.h"
#include "fscrypt/keyring_for_test.h"

namespace ecfs::fscrypt {
namespace {

using test_support::counting_nonce;
using test_support::probe;
using test_support::root;
using test_support::user;
using test_support::v2_context;
using test_support::v2_policy;
using test_support::xfstests_raw_key;

template <typename T>
int error_of(const Result<T>& result) {
  return result ? 0 : result.error().errno_value();
}

class KeyringRemovalTest : public ::testing::Test {
 protected:
  void SetUp() override { add(kOwner); }

  void add(const Caller& caller) {
    auto identifier = keyring_.add_v2_key(caller, xfstests_raw_key());
    ASSERT_TRUE(identifier.has_value());
    identifier_ = *identifier;
    spec_ = KeySpecifier::from_identifier(identifier_);
  }
  KeyStatus status() const { return keyring_.key_status(kOwner, spec_).status; }
  Result<FileInfoPtr> setup(uint8_t nonce_start, uint8_t flags = 0, uint64_t ino = 12) {
    return keyring_.setup_file_info(
        v2_context(identifier_, counting_nonce(nonce_start), kModeAes256Xts, kModeAes256Cts, flags),
        FileKind::kRegular, ino);
  }
  ExtentContext extent(uint8_t nonce_start) const {
    return *make_extent_context(v2_policy(identifier_), counting_nonce(nonce_start));
  }
  Result<ExtentInfoPtr> load(uint8_t nonce_start) {
    return keyring_.load_extent_info(extent(nonce_start), v2_policy(identifier_));
  }

  static constexpr Caller kOwner{.uid = 1000, .is_privileged = false};
  Keyring keyring_;
  KeyIdentifier identifier_{};
  KeySpecifier spec_ = KeySpecifier::from_identifier({});
};

// --- Incompletely removed ---

TEST_F(KeyringRemovalTest, HeldFileInfoLeavesTheKeyIncompletelyRemovedUntilReleased) {
  auto info = setup(0);
  ASSERT_TRUE(info.has_value());
  const Bytes before = probe((*info)->cipher());

  auto flags = keyring_.remove_key(kOwner, spec_);
  ASSERT_TRUE(flags.has_value());
  EXPECT_EQ(*flags, kKeyRemovalStatusFlagFilesBusy);
  const KeyStatusReport report = keyring_.key_status(kOwner, spec_);
  EXPECT_EQ(report.status, KeyStatus::kIncompletelyRemoved);
  EXPECT_EQ(report.status_flags, 0u);
  EXPECT_EQ(report.user_count, 0u);

  // New setups fail; the held info keeps working.
  EXPECT_EQ(error_of(setup(0x10)), ENOKEY);
  EXPECT_EQ(error_of(load(0x20)), ENOKEY);
  EXPECT_EQ(probe((*info)->cipher()), before);

  // Retrying is allowed to anyone (no claims remain) and still busy.
  flags = keyring_.remove_key(user(4242), spec_);
  ASSERT_TRUE(flags.has_value());
  EXPECT_EQ(*flags, kKeyRemovalStatusFlagFilesBusy);

  // Releasing the last info finishes the removal by itself.
  info->reset();
  EXPECT_EQ(status(), KeyStatus::kAbsent);
  EXPECT_EQ(error_of(keyring_.remove_key(kOwner, spec_)), ENOKEY);
}

TEST_F(KeyringRemovalTest, HeldExtentInfoLeavesTheKeyIncompletelyRemoved) {
  auto held = load(0x20);
  ASSERT_TRUE(held.has_value()) << held.error().to_string();
  const Bytes before = probe((*held)->cipher());

  auto flags = keyring_.remove_key(kOwner, spec_);
  ASSERT_TRUE(flags.has_value());
  EXPECT_EQ(*flags, kKeyRemovalStatusFlagFilesBusy);
  EXPECT_EQ(status(), KeyStatus::kIncompletelyRemoved);
  EXPECT_EQ(error_of(load(0x20)), ENOKEY);  // even the same extent: a new setup
  EXPECT_EQ(probe((*held)->cipher()), before);

  held->reset();
  EXPECT_EQ(status(), KeyStatus::kAbsent);
}

TEST_F(KeyringRemovalTest, TheKeyringsOwnExtentCacheDoesNotKeepTheKeyBusy) {
  auto extent_info = load(0x20);
  ASSERT_TRUE(extent_info.has_value());
  std::weak_ptr<const ExtentInfo> watch = *extent_info;
  extent_info->reset();
  ASSERT_FALSE(watch.expired());  // alive in the keyring's cache only

  EXPECT_EQ(*keyring_.remove_key(kOwner, spec_), 0u);
  EXPECT_TRUE(watch.expired());  // evicted with its key
  EXPECT_EQ(status(), KeyStatus::kAbsent);
}

TEST_F(KeyringRemovalTest, OpenFilesCanStillLoadAndCreateExtentsWhileRemoved) {
  auto file = setup(0);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE(keyring_.remove_key(kOwner, spec_).has_value());
  ASSERT_EQ(status(), KeyStatus::kIncompletelyRemoved);

  // The series keeps mk_secret while infos live: the file's own writeback.
  auto existing = keyring_.load_extent_info(extent(0x30), **file);
  ASSERT_TRUE(existing.has_value()) << existing.error().to_string();
  auto fresh = keyring_.new_extent_info(**file);
  ASSERT_TRUE(fresh.has_value()) << fresh.error().to_string();
  EXPECT_EQ((*fresh)->context().master_key_identifier, identifier_);

  file->reset();
  EXPECT_EQ(status(), KeyStatus::kIncompletelyRemoved);  // extents still held
  existing->reset();
  fresh->reset();
  EXPECT_EQ(status(), KeyStatus::kAbsent);
}

// --- Re-adding ---

TEST_F(KeyringRemovalTest, ReAddingAnIncompletelyRemovedKeyMakesItUsableAgain) {
  auto held = setup(0, kPolicyFlagIvInoLblk64);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(keyring_.stats().mode_keys, 1u);
  ASSERT_EQ(*keyring_.remove_key(kOwner, spec_), kKeyRemovalStatusFlagFilesBusy);

  add(user(2000));
  const KeyStatusReport report = keyring_.key_status(user(2000), spec_);
  EXPECT_EQ(report.status, KeyStatus::kPresent);
  EXPECT_EQ(report.user_count, 1u);
  EXPECT_EQ(report.status_flags, kKeyStatusFlagAddedBySelf);

  // The per-mode key was evicted at removal: a new setup derives it again,
  // and gets a new prepared key with the same bytes.
  auto again = setup(0x10, kPolicyFlagIvInoLblk64);
  ASSERT_TRUE(again.has_value()) << again.error().to_string();
  EXPECT_EQ(keyring_.stats().mode_keys, 2u);
  EXPECT_NE(&(*again)->cipher(), &(*held)->cipher());
  EXPECT_EQ(probe((*again)->cipher()), probe((*held)->cipher()));

  // The old info now belongs to a present key: releasing it removes nothing.
  held->reset();
  EXPECT_EQ(status(), KeyStatus::kPresent);
}

TEST_F(KeyringRemovalTest, ReAddingAfterFullRemovalDerivesEverythingAgain) {
  ASSERT_TRUE(setup(0, kPolicyFlagIvInoLblk32).has_value());
  auto extent_info = load(0x20);
  ASSERT_TRUE(extent_info.has_value());
  const ExtentInfo* first_extent = extent_info->get();
  extent_info->reset();  // only the keyring's cache holds it now
  EXPECT_EQ(keyring_.stats().extent_keys, 1u);
  ASSERT_EQ(load(0x20)->get(), first_extent);  // a cache hit
  EXPECT_EQ(keyring_.stats().extent_keys, 1u);

  ASSERT_EQ(*keyring_.remove_key(kOwner, spec_), 0u);
  EXPECT_EQ(status(), KeyStatus::kAbsent);
  add(kOwner);

  ASSERT_TRUE(setup(0x10, kPolicyFlagIvInoLblk32).has_value());
  ASSERT_TRUE(load(0x20).has_value());
  const KeyringStats stats = keyring_.stats();
  EXPECT_EQ(stats.mode_keys, 2u);
  EXPECT_EQ(stats.inode_hash_keys, 2u);
  EXPECT_EQ(stats.extent_keys, 2u);
}

// --- Extent infos ---

TEST_F(KeyringRemovalTest, ExtentInfosAreSharedWhileHeld) {
  auto first = load(0x20);
  auto second = load(0x20);
  auto other = load(0x21);
  ASSERT_TRUE(first.has_value()) << first.error().to_string();
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(first->get(), second->get());
  EXPECT_NE(first->get(), other->get());
  EXPECT_EQ(keyring_.stats().extent_keys, 2u);
  EXPECT_EQ((*first)->iv_params().scheme, IvScheme::kDefault);
  EXPECT_EQ((*first)->master_key(), spec_);

  // Loading through the inode finds the same info.
  auto file = setup(0);
  ASSERT_TRUE(file.has_value());
  auto via_inode = keyring_.load_extent_info(extent(0x20), **file);
  ASSERT_TRUE(via_inode.has_value());
  EXPECT_EQ(via_inode->get(), first->get());
  EXPECT_EQ(keyring_.stats().extent_keys, 2u);
}

TEST_F(KeyringRemovalTest, ExtentKeyMatchesTheContext9Vector) {
  auto info = load(0x00);
  ASSERT_TRUE(info.has_value());
  // HKDF-SHA512(master = 01..40, info = "fscrypt\0" 09 || nonce 00..0f), 64
  // bytes; its first 16 bytes are fscrypt-format.md §3.3's a8c26f60...
  auto raw = from_hex(
      "a8c26f6033618f12cb6107c62d18d50e2b35239dc6e7351e238894be44d523e1"
      "86f908b107f42992cb3d964fda4ed7e280584a1e41c945c059f77b13461e84b4");
  auto expected = crypto::make_aes_xts(*raw);
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(probe((*info)->cipher()), probe(**expected));
}

TEST_F(KeyringRemovalTest, ExtentContextsMustMatchTheInodePolicy) {
  const PolicyV2 policy = v2_policy(identifier_);
  ExtentContext wrong_mode = extent(0x20);
  wrong_mode.contents_mode = kModeAes128Cbc;
  EXPECT_EQ(error_of(keyring_.load_extent_info(wrong_mode, policy)), EINVAL);
  ExtentContext wrong_key = extent(0x20);
  wrong_key.master_key_identifier[3] ^= 0x80;
  EXPECT_EQ(error_of(keyring_.load_extent_info(wrong_key, policy)), EINVAL);
  EXPECT_EQ(error_of(keyring_.load_extent_info(
                extent(0x20),
                v2_policy(identifier_, kModeAes256Xts, kModeAes256Cts, kPolicyFlagIvInoLblk64))),
            EINVAL);
  PolicyV1 v1;
  EXPECT_EQ(error_of(keyring_.load_extent_info(extent(0x20), v1)), EINVAL);
  EXPECT_EQ(keyring_.stats().extent_keys, 0u);

  // A policy naming an absent key: ENOKEY.
  KeyIdentifier missing = identifier_;
  missing[0] ^= 1;
  ExtentContext absent = extent(0x20);
  absent.master_key_identifier = missing;
  EXPECT_EQ(error_of(keyring_.load_extent_info(absent, v2_policy(missing))), ENOKEY);
}

TEST(KeyringExtentCache, WithoutACacheAReleasedExtentIsDerivedAgain) {
  Keyring keyring(KeyringOptions{.fs_uuid = {}, .extent_cache_capacity = 0});
  auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  const PolicyV2 policy = v2_policy(*identifier);
  const ExtentContext context = *make_extent_context(policy, counting_nonce(0x20));
  ASSERT_TRUE(keyring.load_extent_info(context, policy).has_value());  // released at once
  ASSERT_TRUE(keyring.load_extent_info(context, policy).has_value());
  EXPECT_EQ(keyring.stats().extent_keys, 2u);
}

TEST(KeyringExtentCache, TheCacheKeepsOnlyTheMostRecentlyUsed) {
  Keyring keyring(KeyringOptions{.fs_uuid = {}, .extent_cache_capacity = 2});
  auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  const PolicyV2 policy = v2_policy(*identifier);
  auto load = [&](uint8_t n) {
    return keyring.load_extent_info(*make_extent_context(policy, counting_nonce(n)), policy);
  };
  ASSERT_TRUE(load(1) && load(2));  // derivations 1, 2
  ASSERT_TRUE(load(1));             // hit; 1 is now most recent
  ASSERT_TRUE(load(3));             // derivation 3; evicts 2
  ASSERT_TRUE(load(1));             // hit
  EXPECT_EQ(keyring.stats().extent_keys, 3u);
  ASSERT_TRUE(load(2));  // evicted before: derivation 4
  EXPECT_EQ(keyring.stats().extent_keys, 4u);
}

// --- Hooks ---

// A stand-in for the filesystem's caches of infos.
struct FakeFilesystem {
  std::mutex mutex;
  std::map<const ExtentInfo*, ExtentInfoPtr> extents;
  std::map<const FileInfo*, FileInfoPtr> inodes;
  std::vector<const ExtentInfo*> forgotten;
  std::vector<const FileInfo*> evicted;
  int syncs = 0;
  std::vector<KeyStatus> status_at_sync;
  std::vector<std::string> events;

  KeyRemovalHooks hooks(Keyring& keyring, Status sync_result = ok()) {
    KeyRemovalHooks hooks;
    hooks.sync = [this, &keyring, sync_result](const KeySpecifier& key) -> Status {
      std::lock_guard lock(mutex);
      ++syncs;
      events.push_back("sync");
      status_at_sync.push_back(keyring.key_status(root(), key).status);
      return sync_result;
    };
    hooks.evict_file_info = [this](const FileInfoPtr& info) {
      FileInfoPtr dropped;  // released outside our own lock
      std::lock_guard lock(mutex);
      evicted.push_back(info.get());
      events.push_back("evict");
      if (auto it = inodes.find(info.get()); it != inodes.end()) {
        dropped = std::move(it->second);
        inodes.erase(it);
      }
    };
    hooks.forget_extent_info = [this](const ExtentInfoPtr& info) {
      ExtentInfoPtr dropped;
      std::lock_guard lock(mutex);
      forgotten.push_back(info.get());
      events.push_back("forget");
      if (auto it = extents.find(info.get()); it != extents.end()) {
        dropped = std::move(it->second);
        extents.erase(it);
      }
    };
    return hooks;
  }
};

TEST_F(KeyringRemovalTest, ForgetIsCalledForEachExtentInfoAndRemovalCompletes) {
  FakeFilesystem fs;
  keyring_.set_removal_hooks(fs.hooks(keyring_));
  std::set<const ExtentInfo*> cached;
  for (uint8_t n : {0x20, 0x21, 0x22}) {
    auto info = load(n);
    ASSERT_TRUE(info.has_value());
    cached.insert(info->get());
    fs.extents.emplace(info->get(), *info);
  }
  auto inode = setup(0);
  ASSERT_TRUE(inode.has_value());
  fs.inodes.emplace(inode->get(), *inode);
  const FileInfo* inode_ptr = inode->get();
  inode->reset();

  auto flags = keyring_.remove_key(kOwner, spec_);
  ASSERT_TRUE(flags.has_value());
  EXPECT_EQ(*flags, 0u);  // everything was dropped by its owner
  EXPECT_EQ(status(), KeyStatus::kAbsent);
  EXPECT_EQ(fs.syncs, 1);
  // Still present while syncing, so dirty data can get new extents.
  EXPECT_EQ(fs.status_at_sync, std::vector<KeyStatus>{KeyStatus::kPresent});
  EXPECT_EQ(std::set<const ExtentInfo*>(fs.forgotten.begin(), fs.forgotten.end()), cached);
  EXPECT_EQ(fs.forgotten.size(), 3u);
  EXPECT_EQ(fs.evicted, std::vector<const FileInfo*>{inode_ptr});
  ASSERT_FALSE(fs.events.empty());
  EXPECT_EQ(fs.events.front(), "sync");
  EXPECT_EQ(fs.events[1], "evict");
}

TEST_F(KeyringRemovalTest, InfosTheOwnerKeepsAreReportedBusy) {
  FakeFilesystem fs;
  keyring_.set_removal_hooks(fs.hooks(keyring_));
  auto kept = load(0x20);  // held by the "open file", not by fs caches
  auto cached = load(0x21);
  ASSERT_TRUE(kept && cached);
  fs.extents.emplace(cached->get(), *cached);
  cached->reset();

  EXPECT_EQ(*keyring_.remove_key(kOwner, spec_), kKeyRemovalStatusFlagFilesBusy);
  EXPECT_EQ(fs.forgotten.size(), 2u);  // both offered; one let go
  EXPECT_TRUE(fs.extents.empty());
  // Retrying offers the remaining one again.
  EXPECT_EQ(*keyring_.remove_key(kOwner, spec_), kKeyRemovalStatusFlagFilesBusy);
  EXPECT_EQ(fs.forgotten.size(), 3u);
  // The retry syncs again (try_to_lock_encrypted_files does every time).
  EXPECT_EQ(fs.status_at_sync,
            (std::vector<KeyStatus>{KeyStatus::kPresent, KeyStatus::kIncompletelyRemoved}));
  EXPECT_EQ(fs.forgotten.back(), kept->get());
  kept->reset();
  EXPECT_EQ(status(), KeyStatus::kAbsent);
}

TEST_F(KeyringRemovalTest, NoSyncWhenNothingUsesTheKey) {
  FakeFilesystem fs;
  keyring_.set_removal_hooks(fs.hooks(keyring_));
  EXPECT_EQ(*keyring_.remove_key(kOwner, spec_), 0u);
  EXPECT_EQ(fs.syncs, 0);
  EXPECT_TRUE(fs.events.empty());
}

TEST_F(KeyringRemovalTest, ASyncErrorIsReturnedButTheKeyIsStillRemoved) {
  FakeFilesystem fs;
  keyring_.set_removal_hooks(fs.hooks(keyring_, fail(EIO, "disk on fire")));
  auto inode = setup(0);
  ASSERT_TRUE(inode.has_value());
  fs.inodes.emplace(inode->get(), *inode);
  inode->reset();
  EXPECT_EQ(error_of(keyring_.remove_key(kOwner, spec_)), EIO);
  EXPECT_EQ(status(), KeyStatus::kAbsent);
}

TEST_F(KeyringRemovalTest, ClaimingTheKeyAgainDuringTheSyncKeepsIt) {
  auto held = setup(0);
  ASSERT_TRUE(held.has_value());
  KeyRemovalHooks hooks;
  hooks.sync = [this](const KeySpecifier&) -> Status {
    EXPECT_TRUE(keyring_.add_v2_key(user(2000), xfstests_raw_key()).has_value());
    return ok();
  };
  keyring_.set_removal_hooks(hooks);
  EXPECT_EQ(*keyring_.remove_key(kOwner, spec_), kKeyRemovalStatusFlagOtherUsers);
  const KeyStatusReport report = keyring_.key_status(user(2000), spec_);
  EXPECT_EQ(report.status, KeyStatus::kPresent);
  EXPECT_EQ(report.user_count, 1u);
  EXPECT_TRUE(setup(0x10).has_value());
}

TEST_F(KeyringRemovalTest, WritebackDuringTheSyncCanCreateExtents) {
  auto file = setup(0);
  ASSERT_TRUE(file.has_value());
  ExtentInfoPtr written;
  KeyRemovalHooks hooks;
  hooks.sync = [&](const KeySpecifier&) -> Status {
    auto info = keyring_.new_extent_info(**file);
    if (!info) return std::unexpected(info.error());
    written = *info;
    return ok();
  };
  keyring_.set_removal_hooks(hooks);
  EXPECT_EQ(*keyring_.remove_key(kOwner, spec_), kKeyRemovalStatusFlagFilesBusy);
  ASSERT_NE(written, nullptr);
  file->reset();
  written.reset();
  EXPECT_EQ(status(), KeyStatus::kAbsent);
}

// --- Lifetime ---

TEST(KeyringLifetime, InfosOutliveTheKeyring) {
  FileInfoPtr file;
  ExtentInfoPtr extent;
  Bytes before;
  {
    Keyring keyring;
    auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
    ASSERT_TRUE(identifier.has_value());
    file =
        *keyring.setup_file_info(v2_context(*identifier, counting_nonce(0)), FileKind::kRegular, 3);
    const PolicyV2 policy = v2_policy(*identifier);
    extent = *keyring.load_extent_info(*make_extent_context(policy, counting_nonce(9)), policy);
    before = probe(extent->cipher());
  }
  EXPECT_EQ(probe(extent->cipher()), before);
  EXPECT_EQ(file->inode_number(), 3u);
  // Released after the keyring: must not touch it (ASan would notice).
  file.reset();
  extent.reset();
}

}  // namespace
}  // namespace ecfs::fscrypt
