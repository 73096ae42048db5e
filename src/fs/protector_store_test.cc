// The protector tree through the FileSystem: records survive a remount,
// the ownership and possession rules, the last-protector guard, listing in
// order, fsck of the tree and the compat bit.
#include "fs/protector_store.h"

#include <gtest/gtest.h>

#include "block/memory_device.h"
#include "crypto/random.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "fscrypt/protector_wrap.h"
#include "store/superblock.h"

namespace ecfs::fs {
namespace {

using testing::must;

constexpr crypto::Argon2Params kCheap{1, 64, 1};
constexpr fscrypt::Caller kAlice{1000, false};
constexpr fscrypt::Caller kBob{1001, false};
constexpr fscrypt::Caller kAdmin{0, true};

ByteSpan text(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

#define ASSERT_OK(expr)                                                      \
  do {                                                                       \
    auto assert_ok_result_ = (expr);                                         \
    ASSERT_TRUE(assert_ok_result_) << assert_ok_result_.error().to_string(); \
  } while (0)

class ProtectorStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::make_filesystem(device_);
    fs_ = must(FileSystem::open(device_, MountOptions{}));
  }
  void TearDown() override {
    if (fs_) ASSERT_OK(fs_->close());
  }
  void remount() {
    ASSERT_OK(fs_->close());
    fs_ = must(FileSystem::open(device_, MountOptions{}));
  }
  fscrypt::NewProtector make_protector(const fscrypt::Caller& owner, std::string_view secret) {
    return must(fscrypt::create_protector(fscrypt::ProtectorKind::kPassphrase, text(secret), kCheap,
                                          owner.uid, "test", 0));
  }
  // A new master key, added to the keyring by `caller`.
  crypto::SecretBytes add_master_key(const fscrypt::Caller& caller) {
    crypto::SecretBytes key(fscrypt::kMasterKeySize);
    EXPECT_TRUE(crypto::random_bytes(key.mutable_span()));
    must(fs_->add_key(caller, fscrypt::KeySpecifier::from_identifier({}), key.span()));
    return key;
  }
  std::vector<ProtectorItem> list() {
    std::vector<ProtectorItem> items;
    std::optional<ProtectorItem> at;
    while (auto next = must(fs_->next_protector_item(at))) {
      items.push_back(*next);
      at = next;
    }
    return items;
  }
  int error_of(Status status) { return status ? 0 : status.error().errno_value(); }

  block::MemoryDevice device_{64ull << 20};
  std::unique_ptr<FileSystem> fs_;
};

TEST_F(ProtectorStoreTest, RecordsAreKeptWithTheImageAndUnwrapAfterARemount) {
  fscrypt::NewProtector alice = make_protector(kAlice, "alice's passphrase");
  const crypto::SecretBytes master = add_master_key(kAlice);
  const auto wrapped = must(fscrypt::wrap_master_key(alice.record.id, alice.protector_key, master));
  ASSERT_OK(fs_->put_protector(kAlice, alice.record));
  ASSERT_OK(fs_->put_wrapped_key(kAlice, wrapped));
  remount();
  EXPECT_NE(fs_->engine_for_test().superblock().compat_flags & store::kCompatProtectors, 0u);
  const std::vector<ProtectorItem> items = list();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].kind, ProtectorItemKind::kProtector);
  EXPECT_EQ(items[1].kind, ProtectorItemKind::kWrappedKey);
  EXPECT_EQ(items[1].key_identifier, wrapped.key_identifier);
  const auto record = must(fscrypt::decode_protector(items[0].protector, items[0].record));
  const auto stored_key = must(fscrypt::decode_wrapped_key(items[1].protector, items[1].record));
  const auto key = must(fscrypt::open_protector(record, text("alice's passphrase")));
  EXPECT_TRUE(must(fscrypt::unwrap_master_key(stored_key, key)).equals(master.span()));
  ASSERT_OK(fs_->close());
  fs_.reset();
  testing::expect_full_check_clean(device_);
}

TEST_F(ProtectorStoreTest, OnlyOwnersChangeProtectorsAndOnlyHoldersFileKeys) {
  fscrypt::NewProtector alice = make_protector(kAlice, "a");
  // Nobody makes a protector in another's name (but an administrator).
  EXPECT_EQ(error_of(fs_->put_protector(kBob, alice.record)), EPERM);
  ASSERT_OK(fs_->put_protector(kAlice, alice.record));
  // Bob cannot replace or remove it.
  const auto rewrapped =
      must(fscrypt::rewrap_protector(alice.record, alice.protector_key, text("b"), kCheap));
  EXPECT_EQ(error_of(fs_->put_protector(kBob, rewrapped)), EPERM);
  EXPECT_EQ(error_of(fs_->remove_protector(kBob, alice.record.id, true)), EPERM);
  // A key is filed only by someone who holds it.
  const crypto::SecretBytes bobs_key = add_master_key(kBob);
  const auto wrapped =
      must(fscrypt::wrap_master_key(alice.record.id, alice.protector_key, bobs_key));
  EXPECT_EQ(error_of(fs_->put_wrapped_key(kAlice, wrapped)), ENOKEY);
  EXPECT_EQ(error_of(fs_->put_wrapped_key(kBob, wrapped)), EPERM);  // not Bob's protector
  must(fs_->add_key(kAlice, fscrypt::KeySpecifier::from_identifier({}), bobs_key.span()));
  ASSERT_OK(fs_->put_wrapped_key(kAlice, wrapped));
  // The owner may change the passphrase, not the kind or the owner.
  ASSERT_OK(fs_->put_protector(kAlice, rewrapped));
  auto other_kind = rewrapped;
  other_kind.kind = fscrypt::ProtectorKind::kRecoveryPassphrase;
  EXPECT_EQ(error_of(fs_->put_protector(kAlice, other_kind)), EINVAL);
  auto other_owner = rewrapped;
  other_owner.owner_uid = kBob.uid;
  EXPECT_EQ(error_of(fs_->put_protector(kAdmin, other_owner)), EPERM);
  // An administrator may remove it.
  ASSERT_OK(fs_->remove_protector(kAdmin, alice.record.id, true));
  EXPECT_TRUE(list().empty());
}

TEST_F(ProtectorStoreTest, TheLastProtectorOfAKeyIsRemovedOnlyByForce) {
  fscrypt::NewProtector first = make_protector(kAlice, "1");
  fscrypt::NewProtector second = make_protector(kAlice, "2");
  const crypto::SecretBytes master = add_master_key(kAlice);
  for (const auto* protector : {&first, &second}) {
    ASSERT_OK(fs_->put_protector(kAlice, protector->record));
    ASSERT_OK(fs_->put_wrapped_key(
        kAlice,
        must(fscrypt::wrap_master_key(protector->record.id, protector->protector_key, master))));
  }
  const auto identifier = must(fscrypt::compute_key_identifier(master.span()));
  // Two protectors: either may go.
  ASSERT_OK(fs_->remove_protector(kAlice, first.record.id, false));
  // The last one stays unless forced, whole or as the key's wrapping.
  EXPECT_EQ(error_of(fs_->remove_protector(kAlice, second.record.id, false)), EBUSY);
  EXPECT_EQ(error_of(fs_->remove_wrapped_key(kAlice, second.record.id, identifier, false)), EBUSY);
  EXPECT_EQ(error_of(fs_->remove_wrapped_key(kAlice, first.record.id, identifier, false)), ENOENT);
  ASSERT_OK(fs_->remove_wrapped_key(kAlice, second.record.id, identifier, true));
  // A protector that protects nothing goes without force.
  ASSERT_OK(fs_->remove_protector(kAlice, second.record.id, false));
  EXPECT_EQ(error_of(fs_->remove_protector(kAlice, second.record.id, false)), ENOENT);
  EXPECT_TRUE(list().empty());
}

TEST_F(ProtectorStoreTest, ListingWalksProtectorsThenTheirKeys) {
  std::vector<fscrypt::NewProtector> protectors;
  std::vector<crypto::SecretBytes> keys;
  for (int i = 0; i < 3; ++i) keys.push_back(add_master_key(kAlice));
  for (int i = 0; i < 4; ++i) {
    protectors.push_back(make_protector(kAlice, std::to_string(i)));
    ASSERT_OK(fs_->put_protector(kAlice, protectors.back().record));
    for (const auto& key : keys) {
      ASSERT_OK(fs_->put_wrapped_key(
          kAlice, must(fscrypt::wrap_master_key(protectors.back().record.id,
                                                protectors.back().protector_key, key))));
    }
  }
  const std::vector<ProtectorItem> items = list();
  ASSERT_EQ(items.size(), 4u * 4u);
  for (size_t i = 0; i < items.size(); i += 4) {
    EXPECT_EQ(items[i].kind, ProtectorItemKind::kProtector);
    for (size_t k = 1; k < 4; ++k) {
      EXPECT_EQ(items[i + k].kind, ProtectorItemKind::kWrappedKey);
      EXPECT_EQ(items[i + k].protector, items[i].protector);
    }
  }
}

// One user cannot fill everyone's image with protectors.
TEST_F(ProtectorStoreTest, AUserOwnsABoundedNumberOfProtectors) {
  for (size_t i = 0; i < kMaxProtectorsPerUser; ++i) {
    ASSERT_OK(fs_->put_protector(kAlice, make_protector(kAlice, "p").record));
  }
  EXPECT_EQ(error_of(fs_->put_protector(kAlice, make_protector(kAlice, "p").record)), EDQUOT);
  ASSERT_OK(fs_->put_protector(kBob, make_protector(kBob, "p").record));      // others still may
  ASSERT_OK(fs_->put_protector(kAdmin, make_protector(kAlice, "p").record));  // and root
}

TEST_F(ProtectorStoreTest, ReadOnlyMountsRefuseChanges) {
  fscrypt::NewProtector alice = make_protector(kAlice, "a");
  ASSERT_OK(fs_->close());
  MountOptions options;
  options.read_only = true;
  fs_ = must(FileSystem::open(device_, options));
  EXPECT_EQ(error_of(fs_->put_protector(kAlice, alice.record)), EROFS);
  EXPECT_TRUE(list().empty());
}

}  // namespace
}  // namespace ecfs::fs
