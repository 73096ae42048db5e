// Per-extent fscrypt in the filesystem: policies, encrypted names and
// symlinks (checked against the fscrypt core, which the kernel judges),
// per-extent contents (checked by decrypting the raw device bytes), keys
// and the no-key view.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <map>
#include <random>
#include <set>
#include <string>

#include "block/memory_device.h"
#include "fs/fs_internal.h"
#include "fs/fs_test_util.h"
#include "fs/key_history.h"
#include "fs/tree_contents.h"
#include "fscrypt/contents.h"
#include "fscrypt/extent.h"
#include "fscrypt/fname.h"
#include "fscrypt/hkdf.h"
#include "fscrypt/keysetup.h"
#include "fscrypt/nokey_name.h"
#include "fscrypt/symlink.h"
#include "store/tree_ids.h"

namespace ecfs::fs {
namespace {

using testing::error_of;
using testing::must;

constexpr Caller kRoot{0, 0, 022};
constexpr fscrypt::Caller kKeyRoot{0, true};
constexpr fscrypt::Caller kKeyUser{1000, false};

Bytes master_key(uint8_t seed) {
  Bytes key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed * 31 + i * 7);
  return key;
}

std::string pattern(size_t size, char seed) {
  std::string out(size, 0);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>(seed + (i * 13 + i / 4096) % 61);
  return out;
}

class EncryptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::make_filesystem(device_);
    mount();
    key_ = add(master_key(1));
  }
  void TearDown() override {
    if (fs_) must(fs_->close());
  }
  void mount() { fs_ = must(FileSystem::open(device_)); }
  void remount() {
    must(fs_->close());
    fs_.reset();
    mount();
  }
  // Keys live per mount: add the test's key again.
  void remount_with_key() {
    remount();
    EXPECT_EQ(add(master_key(1)), key_);
  }
  fscrypt::KeyIdentifier add(const Bytes& raw, const fscrypt::Caller& caller = kKeyRoot) {
    auto change = must(fs_->add_key(caller, fscrypt::KeySpecifier::from_identifier({}), raw));
    fscrypt::KeyIdentifier identifier{};
    std::copy(change.key.bytes().begin(), change.key.bytes().end(), identifier.begin());
    return identifier;
  }
  KeyChange remove(const fscrypt::KeyIdentifier& key, const fscrypt::Caller& caller = kKeyRoot) {
    return must(fs_->remove_key(caller, fscrypt::KeySpecifier::from_identifier(key), false));
  }
  fscrypt::KeyStatus status(const fscrypt::KeyIdentifier& key) {
    return fs_->key_status(kKeyRoot, fscrypt::KeySpecifier::from_identifier(key)).status;
  }
  static fscrypt::Policy policy_for(const fscrypt::KeyIdentifier& key,
                                    uint8_t flags = fscrypt::kPolicyFlagsPad32,
                                    uint8_t contents = fscrypt::kModeAes256Xts,
                                    uint8_t filenames = fscrypt::kModeAes256Cts) {
    fscrypt::PolicyV2 policy;
    policy.contents_mode = contents;
    policy.filenames_mode = filenames;
    policy.flags = flags;
    policy.master_key_identifier = key;
    return policy;
  }
  uint64_t encrypted_dir(uint64_t parent, const std::string& name) {
    const uint64_t dir = must(fs_->mkdir(parent, name, 0755, kRoot)).ino;
    must(fs_->set_policy(dir, policy_for(key_), kKeyRoot));
    return dir;
  }
  uint64_t create(uint64_t dir, const std::string& name) {
    return must(fs_->mknod(dir, name, S_IFREG | 0644, 0, kRoot)).ino;
  }
  void write(uint64_t ino, uint64_t offset, const std::string& data) {
    ASSERT_EQ(must(fs_->write(ino, offset, as_bytes(data))), data.size());
  }
  std::string read_all(uint64_t ino) {
    const uint64_t size = must(fs_->getattr(ino)).size;
    Bytes out(size);
    EXPECT_EQ(must(fs_->read(ino, 0, out)), size);
    return std::string(out.begin(), out.end());
  }
  std::map<std::string, uint64_t> list(uint64_t dir) {
    std::map<std::string, uint64_t> names;
    EXPECT_TRUE(fs_->readdir(dir, 0, [&](const DirListEntry& e) {
      if (e.name != "." && e.name != "..") names.emplace(e.name, e.ino);
      return true;
    }));
    return names;
  }
  // The committed filesystem tree's contents (names, extents, contexts).
  TreeContents committed_contents() {
    must(fs_->sync());
    auto tree = must(fs_->engine_for_test().committed_tree(store::kFsTreeId));
    return must(read_tree_contents(tree));
  }
  fscrypt::Context context_of(const TreeContents& contents, uint64_t ino) {
    const auto& inode = contents.inodes.at(ino);
    EXPECT_TRUE(inode.fscrypt_context.has_value()) << ino;
    return must(fscrypt::parse_context(*inode.fscrypt_context));
  }
  // The bytes on the device of an extent item's referenced range.
  Bytes raw_bytes(const FileExtentItem& extent) {
    Bytes out(extent.length);
    must(device_.read(extent.disk_bytenr + extent.extent_offset, out));
    return out;
  }
  // Decrypts an extent item's referenced range with the fscrypt core alone.
  std::string decrypt_extent(const Bytes& raw_master, const FileExtentItem& extent) {
    auto context = must(fscrypt::parse_extent_context(extent.context));
    auto hkdf = must(fscrypt::FscryptHkdf::create(raw_master));
    auto key = must(fscrypt::derive_extent_key(hkdf, context));
    auto cipher = must(fscrypt::prepare_key(context.contents_mode, key.span()));
    Bytes raw = raw_bytes(extent);
    Bytes plain(raw.size());
    must(fscrypt::decrypt_data_units(*cipher, fscrypt::IvParams::default_scheme(), 4096,
                                     extent.extent_offset / 4096, raw, plain));
    return std::string(plain.begin(), plain.end());
  }

  block::MemoryDevice device_{256ull << 20};
  std::unique_ptr<FileSystem> fs_;
  fscrypt::KeyIdentifier key_{};
};

TEST_F(EncryptionTest, PolicySetGetAndRefusals) {
  const uint64_t dir = must(fs_->mkdir(kRootDirIno, "d", 0755, kRoot)).ino;
  EXPECT_EQ(error_of(fs_->get_policy(dir)), ENODATA);
  // Only plain v2 policies: DIRECT_KEY and IV_INO_LBLK tie ciphertext to
  // inodes, v1 to the legacy KDF.
  EXPECT_EQ(error_of(fs_->set_policy(dir, policy_for(key_, 0x02 | 0x04), kKeyRoot)), EINVAL);
  EXPECT_EQ(error_of(fs_->set_policy(dir, policy_for(key_, 0x02 | 0x08), kKeyRoot)), EINVAL);
  EXPECT_EQ(error_of(fs_->set_policy(dir, policy_for(key_, 0x02 | 0x10), kKeyRoot)), EINVAL);
  fscrypt::PolicyV1 v1;
  EXPECT_EQ(error_of(fs_->set_policy(dir, v1, kKeyRoot)), EINVAL);
  // Someone else's directory, and a key the caller has not added.
  EXPECT_EQ(error_of(fs_->set_policy(dir, policy_for(key_), kKeyUser)), EACCES);
  must(fs_->setattr(dir, {.uid = 1000u}));
  EXPECT_EQ(error_of(fs_->set_policy(dir, policy_for(key_), kKeyUser)), ENOKEY);
  // Not a directory; not empty.
  const uint64_t file = create(kRootDirIno, "f");
  EXPECT_EQ(error_of(fs_->set_policy(file, policy_for(key_), kKeyRoot)), ENOTDIR);
  const uint64_t full = must(fs_->mkdir(kRootDirIno, "full", 0755, kRoot)).ino;
  create(full, "x");
  EXPECT_EQ(error_of(fs_->set_policy(full, policy_for(key_), kKeyRoot)), ENOTEMPTY);

  must(fs_->set_policy(
      dir, policy_for(key_, 0x01, fscrypt::kModeAes128Cbc, fscrypt::kModeAes128Cts), kKeyRoot));
  EXPECT_TRUE(fscrypt::policies_equal(
      must(fs_->get_policy(dir)),
      policy_for(key_, 0x01, fscrypt::kModeAes128Cbc, fscrypt::kModeAes128Cts)));
  EXPECT_TRUE(must(fs_->getattr(dir)).encrypted);
  // The same policy again is fine; another one is EEXIST.
  must(fs_->set_policy(
      dir, policy_for(key_, 0x01, fscrypt::kModeAes128Cbc, fscrypt::kModeAes128Cts), kKeyRoot));
  EXPECT_EQ(error_of(fs_->set_policy(dir, policy_for(key_), kKeyRoot)), EEXIST);
  remount();
  EXPECT_TRUE(fscrypt::policies_equal(
      must(fs_->get_policy(dir)),
      policy_for(key_, 0x01, fscrypt::kModeAes128Cbc, fscrypt::kModeAes128Cts)));
}

TEST_F(EncryptionTest, ChildrenInheritThePolicyWithFreshNonces) {
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const uint64_t file = create(dir, "file");
  const uint64_t sub = must(fs_->mkdir(dir, "sub", 0755, kRoot)).ino;
  const uint64_t link = must(fs_->symlink(dir, "link", "target", kRoot)).ino;
  const uint64_t fifo = must(fs_->mknod(dir, "fifo", S_IFIFO | 0644, 0, kRoot)).ino;
  const TreeContents contents = committed_contents();
  std::set<fscrypt::Nonce> nonces;
  for (uint64_t ino : {dir, file, sub, link}) {
    const fscrypt::Context context = context_of(contents, ino);
    EXPECT_TRUE(fscrypt::policies_equal(context.policy, policy_for(key_)));
    EXPECT_TRUE(nonces.insert(context.nonce).second) << "nonce reused by inode " << ino;
    EXPECT_TRUE(contents.inodes.at(ino).item->flags & kInodeFlagEncrypted);
  }
  // Special files get an encrypted name but no context (fscrypt encrypts
  // only regular files, directories and symlinks).
  EXPECT_FALSE(contents.inodes.at(fifo).fscrypt_context.has_value());
  EXPECT_EQ(error_of(fs_->get_policy(fifo)), ENODATA);
  must(fs_->close());
  fs_.reset();
  const auto check = testing::full_check(device_);
  EXPECT_TRUE(check.clean()) << check.problems();
}

TEST_F(EncryptionTest, NamesAndSymlinkTargetsAreStoredAsTheKernelEncryptsThem) {
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const std::string long_name(200, 'n');
  create(dir, "hello.txt");
  create(dir, long_name);
  const uint64_t link = must(fs_->symlink(dir, "ln", "/some/where/over", kRoot)).ino;
  const TreeContents contents = committed_contents();

  // The directory's filenames key: HKDF(master, context 2 "per-file key",
  // dir nonce), AES-256-CTS, IV 0 for v2 policies (fname.c).
  const Bytes raw = master_key(1);
  auto hkdf = must(fscrypt::FscryptHkdf::create(raw));
  const fscrypt::ModeInfo* cts = must(fscrypt::mode_by_number(fscrypt::kModeAes256Cts));
  auto encrypt = [&](uint64_t ino, const std::string& name) {
    auto key = must(fscrypt::derive_per_file_key(hkdf, context_of(contents, ino).nonce, *cts));
    auto cipher = must(fscrypt::prepare_key(*cts, key.span()));
    return must(fscrypt::encrypt_name(*cipher, fscrypt::IvParams::default_scheme(), name, 32));
  };
  std::set<Bytes> stored;
  for (const auto& [index, entry] : contents.inodes.at(dir).index_entries) {
    stored.insert(entry.name);
  }
  const std::set<Bytes> expected{encrypt(dir, "hello.txt"), encrypt(dir, long_name),
                                 encrypt(dir, "ln")};
  EXPECT_EQ(stored, expected);
  // Lookup goes by the hash of the ciphertext.
  for (const Bytes& name : stored) {
    EXPECT_TRUE(contents.inodes.at(dir).hashed_entries.contains(name_hash(name)));
  }
  // The symlink record: the target encrypted with the symlink's own key.
  const auto& targets = contents.inodes.at(link).symlink_targets;
  ASSERT_EQ(targets.size(), 1u);
  auto link_key = must(fscrypt::derive_per_file_key(hkdf, context_of(contents, link).nonce, *cts));
  auto link_cipher = must(fscrypt::prepare_key(*cts, link_key.span()));
  EXPECT_EQ(must(fscrypt::decrypt_symlink(*link_cipher, fscrypt::IvParams::default_scheme(),
                                          targets.begin()->second)),
            "/some/where/over");
  EXPECT_EQ(must(fs_->readlink(link)), "/some/where/over");
  EXPECT_EQ(must(fs_->getattr(link)).size, std::string("/some/where/over").size());
  EXPECT_EQ(list(dir).size(), 3u);
  EXPECT_TRUE(list(dir).contains(long_name));
  // An encrypted record is 3 bytes longer than its target: 4094 bytes no
  // longer fit in a 4096-byte record (fscrypt_prepare_symlink).
  EXPECT_EQ(error_of(fs_->symlink(dir, "far", std::string(4094, 't'), kRoot)), ENAMETOOLONG);
}

TEST_F(EncryptionTest, EveryExtentHasItsOwnNonceAndDecryptsWithTheCoreAlone) {
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const uint64_t file = create(dir, "data");
  const std::string first = pattern(3 << 20, 'a');
  write(file, 0, first);
  must(fs_->sync());
  // Overwrite the middle: a new extent with a new nonce, never the old key
  // and data unit numbers again.
  const std::string middle = pattern(100000, 'M');
  write(file, 1 << 20, middle);
  std::string expected = first;
  expected.replace(1 << 20, middle.size(), middle);
  const TreeContents contents = committed_contents();
  const auto& extents = contents.inodes.at(file).extents;
  ASSERT_GE(extents.size(), 3u);
  std::set<fscrypt::Nonce> nonces;
  for (const auto& [offset, extent] : extents) {
    ASSERT_EQ(extent.encryption, ExtentEncryption::kFscrypt);
    auto context = must(fscrypt::parse_extent_context(extent.context));
    EXPECT_EQ(context.master_key_identifier, key_);
    nonces.insert(context.nonce);
    const std::string plain = decrypt_extent(master_key(1), extent);
    EXPECT_EQ(plain, expected.substr(offset, extent.length)) << "extent at " << offset;
    // And the device holds no plaintext of it.
    const Bytes raw = raw_bytes(extent);
    EXPECT_NE(std::string(raw.begin(), raw.end()), plain);
  }
  // The head and tail pieces share the first extent (split, same nonce);
  // the overwrite has its own.
  EXPECT_EQ(nonces.size(), 2u);
  EXPECT_EQ(read_all(file), expected);
  remount_with_key();
  EXPECT_EQ(read_all(file), expected);
  must(fs_->close());
  fs_.reset();
  const auto check = testing::full_check(device_);
  EXPECT_TRUE(check.clean()) << check.problems();
}

TEST_F(EncryptionTest, NoNonceRepeatsOverALongRandomRun) {
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  std::mt19937_64 random(7);
  std::vector<uint64_t> files;
  for (int i = 0; i < 4; ++i) files.push_back(create(dir, "f" + std::to_string(i)));
  std::map<uint64_t, std::string> model;
  for (int step = 0; step < 300; ++step) {
    const uint64_t ino = files[random() % files.size()];
    std::string& content = model[ino];
    const uint64_t offset = random() % (256 << 10);
    const std::string data = pattern(1 + random() % 20000, static_cast<char>('a' + step % 26));
    write(ino, offset, data);
    if (content.size() < offset + data.size()) content.resize(offset + data.size(), '\0');
    content.replace(offset, data.size(), data);
    if (step % 25 == 0) must(fs_->sync());
    if (step % 60 == 0) {
      const uint64_t target = files[random() % files.size()];
      const uint64_t source = files[random() % files.size()];
      if (target != source && !model[source].empty()) {
        must(fs_->copy_file_range(source, 0, target, 0, model[source].size()));
        std::string& dst = model[target];
        if (dst.size() < model[source].size()) dst.resize(model[source].size(), '\0');
        dst.replace(0, model[source].size(), model[source]);
      }
    }
  }
  const TreeContents contents = committed_contents();
  // Each physical extent has one nonce, and no two extents share one.
  std::map<fscrypt::Nonce, uint64_t> extent_of_nonce;
  for (uint64_t ino : files) {
    for (const auto& [offset, extent] : contents.inodes.at(ino).extents) {
      auto context = must(fscrypt::parse_extent_context(extent.context));
      auto [it, fresh] = extent_of_nonce.emplace(context.nonce, extent.disk_bytenr);
      EXPECT_EQ(it->second, extent.disk_bytenr) << "a nonce used by two extents";
    }
    EXPECT_EQ(read_all(ino), model[ino]);
  }
  EXPECT_GT(extent_of_nonce.size(), 10u);
}

TEST_F(EncryptionTest, ReflinksShareExtentsThatStayReadableAfterTheSourceChanges) {
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const uint64_t source = create(dir, "source");
  const uint64_t copy = create(dir, "copy");
  const uint64_t other = create(dir, "other");
  const std::string data = pattern(1 << 20, 's');
  write(source, 0, data);
  ASSERT_EQ(must(fs_->copy_file_range(source, 0, copy, 0, data.size())), data.size());
  ASSERT_EQ(must(fs_->copy_file_range(source, 8192, other, 4096, 65536)), 65536u);
  TreeContents contents = committed_contents();
  // Shared: the same extent and context (numbering from the extent start).
  ASSERT_EQ(contents.inodes.at(copy).extents.size(), 1u);
  EXPECT_EQ(contents.inodes.at(copy).extents.begin()->second.disk_bytenr,
            contents.inodes.at(source).extents.begin()->second.disk_bytenr);
  EXPECT_EQ(contents.inodes.at(copy).extents.begin()->second.context,
            contents.inodes.at(source).extents.begin()->second.context);
  // The source overwritten, truncated, deleted: the copies read the same.
  write(source, 0, pattern(1 << 20, 'X'));
  must(fs_->setattr(source, {.size = 100}));
  must(fs_->unlink(dir, "source"));
  fs_->forget(source, 1);
  remount_with_key();
  EXPECT_EQ(read_all(copy), data);
  EXPECT_EQ(read_all(other).substr(4096), data.substr(8192, 65536));
  must(fs_->close());
  fs_.reset();
  const auto check = testing::full_check(device_);
  EXPECT_TRUE(check.clean()) << check.problems();
}

TEST_F(EncryptionTest, CopiesBetweenPoliciesAreReencrypted) {
  const uint64_t secret = encrypted_dir(kRootDirIno, "secret");
  const fscrypt::KeyIdentifier second = add(master_key(2));
  const uint64_t other = must(fs_->mkdir(kRootDirIno, "other", 0755, kRoot)).ino;
  must(fs_->set_policy(other, policy_for(second), kKeyRoot));
  const uint64_t plain_file = create(kRootDirIno, "plain");
  const uint64_t a = create(secret, "a");
  const uint64_t b = create(other, "b");
  const uint64_t c = create(secret, "c");
  const std::string data = pattern(300000, 'p');
  write(plain_file, 0, data);
  must(fs_->copy_file_range(plain_file, 0, a, 0, data.size()));
  must(fs_->copy_file_range(a, 0, b, 0, data.size()));
  must(fs_->copy_file_range(b, 0, c, 0, data.size()));
  const TreeContents contents = committed_contents();
  std::set<uint64_t> extents;
  for (uint64_t ino : {plain_file, a, b, c}) {
    for (const auto& [offset, extent] : contents.inodes.at(ino).extents) {
      EXPECT_TRUE(extents.insert(extent.disk_bytenr).second) << "shared across policies";
      const bool encrypted = extent.encryption == ExtentEncryption::kFscrypt;
      EXPECT_EQ(encrypted, ino != plain_file);
      if (encrypted) {
        const auto context = must(fscrypt::parse_extent_context(extent.context));
        EXPECT_EQ(context.master_key_identifier, ino == b ? second : key_);
      }
    }
    EXPECT_EQ(read_all(ino), data);
  }
}

TEST_F(EncryptionTest, RenameAndLinkIntoAnEncryptedDirectoryNeedItsPolicy) {
  const uint64_t secret = encrypted_dir(kRootDirIno, "secret");
  const uint64_t plain = create(kRootDirIno, "plain");
  const uint64_t plain_dir = must(fs_->mkdir(kRootDirIno, "pd", 0755, kRoot)).ino;
  EXPECT_EQ(error_of(fs_->rename(kRootDirIno, "plain", secret, "x", 0)), EXDEV);
  EXPECT_EQ(error_of(fs_->rename(kRootDirIno, "pd", secret, "x", 0)), EXDEV);
  EXPECT_EQ(error_of(fs_->link(plain, secret, "x")), EXDEV);
  // Out of an encrypted directory is allowed (the target is unencrypted).
  create(secret, "inside");
  must(fs_->rename(secret, "inside", plain_dir, "moved", 0));
  // Exchange checks both directions.
  create(secret, "s");
  EXPECT_EQ(error_of(fs_->rename(secret, "s", kRootDirIno, "plain", kRenameExchange)), EXDEV);
  // Within the policy everything works.
  const uint64_t sub = must(fs_->mkdir(secret, "sub", 0755, kRoot)).ino;
  must(fs_->rename(secret, "s", sub, "s2", 0));
  must(fs_->link(must(fs_->lookup(sub, "s2")).ino, secret, "hard"));
  EXPECT_EQ(list(secret).size(), 2u);
  must(fs_->close());
  fs_.reset();
  const auto check = testing::full_check(device_);
  EXPECT_TRUE(check.clean()) << check.problems();
}

TEST_F(EncryptionTest, WithoutTheKeyNamesAreNoKeyNamesAndContentsAreLocked) {
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const std::string long_name(240, 'L');
  const uint64_t file = create(dir, "file.txt");
  write(file, 0, "contents");
  const uint64_t lname = create(dir, long_name);
  const uint64_t sub = must(fs_->mkdir(dir, "sub", 0755, kRoot)).ino;
  const uint64_t link = must(fs_->symlink(dir, "ln", "target/path", kRoot)).ino;
  create(dir, "doomed");
  for (uint64_t ino : {file, lname, sub, link}) fs_->forget(ino, 1);
  must(fs_->sync());

  const KeyChange removed = remove(key_);
  EXPECT_EQ(removed.removal_status_flags, 0u);
  EXPECT_EQ(status(key_), fscrypt::KeyStatus::kAbsent);

  const auto names = list(dir);
  ASSERT_EQ(names.size(), 5u);
  for (const auto& [name, ino] : names) {
    EXPECT_NE(name, "file.txt");
    EXPECT_NE(name, long_name);
    // Every listed no-key name decodes and looks up its inode.
    EXPECT_TRUE(fscrypt::NokeyName::decode(name)) << name;
    const Attributes attr = must(fs_->lookup(dir, name));
    EXPECT_EQ(attr.ino, ino);
    fs_->forget(ino, 1);
  }
  EXPECT_EQ(error_of(fs_->lookup(dir, "file.txt")), ENOENT);
  // The kernel's refusals without the key.
  EXPECT_EQ(error_of(fs_->open(file, O_RDONLY)), ENOKEY);
  EXPECT_EQ(error_of(fs_->mknod(dir, "new", S_IFREG | 0644, 0, kRoot)), ENOKEY);
  EXPECT_EQ(error_of(fs_->mkdir(dir, "newdir", 0755, kRoot)), ENOKEY);
  EXPECT_EQ(error_of(fs_->setattr(file, {.size = 0})), ENOKEY);
  const std::string nokey_file = [&] {
    for (const auto& [name, ino] : names) {
      if (ino == file) return name;
    }
    return std::string();
  }();
  EXPECT_EQ(error_of(fs_->rename(dir, nokey_file, dir, "x", 0)), ENOKEY);
  EXPECT_EQ(error_of(fs_->link(file, dir, "x")), ENOKEY);
  // A symlink reads as its encoded ciphertext; stat works.
  const std::string encoded = must(fs_->readlink(link));
  EXPECT_NE(encoded, "target/path");
  EXPECT_TRUE(fscrypt::NokeyName::decode(encoded));
  EXPECT_EQ(must(fs_->getattr(file)).size, 8u);
  // Unlink and rmdir by no-key name work, also of an abbreviated name.
  for (const auto& [name, ino] : names) {
    if (ino == lname) must(fs_->unlink(dir, name));
    if (ino == sub) must(fs_->rmdir(dir, name));
  }
  EXPECT_EQ(list(dir).size(), 3u);

  // With the key again everything reads back, by its real name only.
  EXPECT_EQ(add(master_key(1)), key_);
  const auto again = list(dir);
  EXPECT_EQ(again.size(), 3u);
  EXPECT_TRUE(again.contains("file.txt"));
  EXPECT_TRUE(again.contains("ln"));
  EXPECT_TRUE(again.contains("doomed"));
  EXPECT_EQ(error_of(fs_->lookup(dir, nokey_file)), ENOENT);
  must(fs_->open(file, O_RDONLY));
  EXPECT_EQ(read_all(file), "contents");
  fs_->release(file);
  EXPECT_EQ(must(fs_->readlink(link)), "target/path");
  remount();  // keys are per mount
  EXPECT_EQ(error_of(fs_->open(file, O_RDONLY)), ENOKEY);
  must(fs_->close());
  fs_.reset();
  const auto check = testing::full_check(device_);
  EXPECT_TRUE(check.clean()) << check.problems();
}

TEST_F(EncryptionTest, RemovalWithOpenFilesIsIncompleteUntilTheyClose) {
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const uint64_t file = create(dir, "open");
  must(fs_->open(file, O_RDWR));
  write(file, 0, "before");
  const KeyChange removed = remove(key_);
  EXPECT_EQ(removed.removal_status_flags, fscrypt::kKeyRemovalStatusFlagFilesBusy);
  EXPECT_EQ(status(key_), fscrypt::KeyStatus::kIncompletelyRemoved);
  // The open file keeps working: written, flushed under its key, read.
  write(file, 6, " after");
  must(fs_->sync());
  EXPECT_EQ(read_all(file), "before after");
  // New names need the key.
  EXPECT_EQ(error_of(fs_->mknod(dir, "new", S_IFREG | 0644, 0, kRoot)), ENOKEY);
  // Closing keeps the key incompletely removed (the kernel keeps the inode
  // cached); a later removal finishes it.
  fs_->release(file);
  EXPECT_EQ(status(key_), fscrypt::KeyStatus::kIncompletelyRemoved);
  EXPECT_EQ(remove(key_).removal_status_flags, 0u);
  EXPECT_EQ(status(key_), fscrypt::KeyStatus::kAbsent);
  EXPECT_EQ(error_of(fs_->open(file, O_RDONLY)), ENOKEY);
  add(master_key(1));
  must(fs_->open(file, O_RDONLY));
  EXPECT_EQ(read_all(file), "before after");
  fs_->release(file);
}

TEST_F(EncryptionTest, UserClaimsFollowTheKernel) {
  // A second user adds the same key: removing one claim leaves it present.
  add(master_key(1), kKeyUser);
  EXPECT_EQ(fs_->key_status(kKeyUser, fscrypt::KeySpecifier::from_identifier(key_)).user_count, 2u);
  const KeyChange first = remove(key_, kKeyUser);
  EXPECT_EQ(first.removal_status_flags, fscrypt::kKeyRemovalStatusFlagOtherUsers);
  EXPECT_EQ(status(key_), fscrypt::KeyStatus::kPresent);
  EXPECT_EQ(
      error_of(fs_->remove_key(kKeyUser, fscrypt::KeySpecifier::from_identifier(key_), false)),
      ENOKEY);
  remove(key_);
  EXPECT_EQ(status(key_), fscrypt::KeyStatus::kAbsent);
  EXPECT_EQ(
      error_of(fs_->remove_key(kKeyRoot, fscrypt::KeySpecifier::from_identifier(key_), false)),
      ENOKEY);
}

TEST_F(EncryptionTest, DirtyDataIsWrittenBeforeTheKeyGoes) {
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const uint64_t file = create(dir, "f");
  must(fs_->open(file, O_RDWR));
  write(file, 0, pattern(50000, 'd'));
  fs_->release(file);
  remove(key_);  // not synced before: the removal writes it out first
  EXPECT_EQ(status(key_), fscrypt::KeyStatus::kAbsent);
  remount();
  add(master_key(1));
  must(fs_->open(file, O_RDONLY));
  EXPECT_EQ(read_all(file), pattern(50000, 'd'));
  fs_->release(file);
}

}  // namespace
}  // namespace ecfs::fs

namespace ecfs::fs {
namespace {

// key usage counts every data extent once per master key, reflinks and
// snapshots included, unencrypted data not, and needs no key.
TEST_F(EncryptionTest, KeyUsageCountsEachExtentOnceWithoutAKey) {
  const fscrypt::KeyIdentifier second = add(master_key(2));
  const uint64_t a = encrypted_dir(kRootDirIno, "a");
  const uint64_t b = must(fs_->mkdir(kRootDirIno, "b", 0755, kRoot)).ino;
  must(fs_->set_policy(b, policy_for(second), kKeyRoot));
  const uint64_t big = create(a, "big");
  write(big, 0, pattern(64 * 1024, 'x'));
  write(create(b, "small"), 0, pattern(8 * 1024, 'y'));
  write(create(kRootDirIno, "plain"), 0, pattern(16 * 1024, 'z'));
  // A reflink of the big file, and a snapshot of a subvolume holding an
  // encrypted file: both share extents, which count once.
  const uint64_t copy = create(a, "copy");
  must(fs_->copy_file_range(big, 0, copy, 0, 64 * 1024));
  const uint64_t sub = must(fs_->create_subvolume(kRootDirIno, "sub", kRoot));
  (void)sub;
  const uint64_t sub_root = must(fs_->lookup(kRootDirIno, "sub")).ino;
  const uint64_t inner = encrypted_dir(sub_root, "inner");
  write(create(inner, "f"), 0, pattern(4096, 'w'));
  must(fs_->snapshot(sub_root, kRootDirIno, "snap", true));

  const auto usage = must(fs_->key_usage());
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage.at(key_), (KeyUsage{2, 64 * 1024 + 4096}));
  EXPECT_EQ(usage.at(second), (KeyUsage{1, 8 * 1024}));

  // Without any key, after a remount, the same.
  remove(key_);
  remove(second);
  remount();
  EXPECT_EQ(must(fs_->key_usage()), usage);
}

// ---- key rotation (fs/key_history.h) ----

TEST_F(EncryptionTest, RekeyMovesNamesAndNewWritesToTheNewKeyWhileOldExtentsStay) {
  const fscrypt::KeyIdentifier second = add(master_key(2));
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const uint64_t file = create(dir, "file");
  const uint64_t sub = must(fs_->mkdir(dir, "sub", 0755, kRoot)).ino;
  const uint64_t inner = create(sub, "inner");
  const uint64_t link = must(fs_->symlink(dir, "ln", "some/target", kRoot)).ino;
  const std::string old_data = pattern(64 * 1024, 'o');
  write(file, 0, old_data);
  write(inner, 0, "inner data");
  const TreeContents before = committed_contents();

  RekeyReport report = must(fs_->rekey_directory(dir, second, kKeyRoot));
  EXPECT_EQ(report.names, 3u);   // file, sub, ln
  EXPECT_EQ(report.inodes, 3u);  // the directory, file and ln (sub takes its own call)
  report = must(fs_->rekey_directory(sub, second, kKeyRoot));
  EXPECT_EQ(report.names, 1u);
  EXPECT_EQ(report.inodes, 2u);
  // Again: nothing left to do.
  report = must(fs_->rekey_directory(dir, second, kKeyRoot));
  EXPECT_EQ(report.names + report.inodes, 0u);

  // New writes go under the new key; the old extent keeps its own.
  const std::string new_data = pattern(8192, 'n');
  write(file, old_data.size(), new_data);
  const TreeContents after = committed_contents();
  for (uint64_t ino : {dir, file, sub, inner, link}) {
    const fscrypt::Context context = context_of(after, ino);
    EXPECT_EQ(policy_key(context.policy), second) << ino;
    EXPECT_NE(context.nonce, context_of(before, ino).nonce) << ino;
  }
  const auto& file_items = after.inodes.at(file);
  ASSERT_TRUE(file_items.key_history.has_value());
  EXPECT_EQ(must(decode_key_history(*file_items.key_history)),
            std::vector<fscrypt::KeyIdentifier>{key_});
  std::set<fscrypt::KeyIdentifier> extent_keys;
  for (const auto& [offset, extent] : file_items.extents) {
    const auto context = must(fscrypt::parse_extent_context(extent.context));
    extent_keys.insert(context.master_key_identifier);
    EXPECT_EQ(decrypt_extent(context.master_key_identifier == key_ ? master_key(1) : master_key(2),
                             extent),
              (offset == 0 ? old_data : new_data).substr(0, extent.length));
  }
  EXPECT_EQ(extent_keys, (std::set<fscrypt::KeyIdentifier>{key_, second}));
  // Names are stored as the kernel would encrypt them under the new key.
  for (const auto& [index, entry] : after.inodes.at(dir).index_entries) {
    EXPECT_NE(entry.name, before.inodes.at(dir).index_entries.at(index).name);
  }
  EXPECT_NE(after.inodes.at(link).symlink_targets.at(0),
            before.inodes.at(link).symlink_targets.at(0));
  EXPECT_TRUE(fs_->engine_for_test().superblock().incompat_flags & store::kIncompatKeyRotation);

  // With both keys everything reads, across a remount.
  remount_with_key();
  EXPECT_EQ(add(master_key(2)), second);
  EXPECT_EQ(list(dir).size(), 3u);
  EXPECT_EQ(must(fs_->lookup(sub, "inner")).ino, inner);
  EXPECT_EQ(must(fs_->readlink(link)), "some/target");
  EXPECT_EQ(read_all(file), old_data + new_data);
  // Without the old key: names, targets and new data read; old data ENOKEY.
  remove(key_);
  EXPECT_EQ(list(dir).size(), 3u);
  EXPECT_EQ(must(fs_->readlink(link)), "some/target");
  must(fs_->open(file, O_RDONLY));
  Bytes tail(new_data.size());
  EXPECT_EQ(must(fs_->read(file, old_data.size(), tail)), new_data.size());
  EXPECT_EQ(std::string(tail.begin(), tail.end()), new_data);
  Bytes head(4096);
  EXPECT_EQ(error_of(fs_->read(file, 0, head)), ENOKEY);
  fs_->release(file);
  must(fs_->close());
  fs_.reset();
  const auto check = testing::full_check(device_);
  EXPECT_TRUE(check.clean()) << check.problems();
}

TEST_F(EncryptionTest, RekeyRefusesWithoutChangingAnything) {
  const fscrypt::KeyIdentifier second = add(master_key(2));
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  write(create(dir, "f"), 0, "data");
  const uint64_t plain = must(fs_->mkdir(kRootDirIno, "plain", 0755, kRoot)).ino;
  const uint64_t plain_file = create(kRootDirIno, "pf");
  const fscrypt::KeyIdentifier absent = [&] {
    fscrypt::KeyIdentifier id = second;
    id[0] ^= 1;
    return id;
  }();
  EXPECT_EQ(error_of(fs_->rekey_directory(dir, absent, kKeyRoot)), ENOKEY);
  EXPECT_EQ(error_of(fs_->rekey_directory(dir, second, kKeyUser)), EACCES);
  EXPECT_EQ(error_of(fs_->rekey_directory(plain, second, kKeyRoot)), ENODATA);
  EXPECT_EQ(error_of(fs_->rekey_directory(plain_file, second, kKeyRoot)), ENOTDIR);
  const TreeContents before = committed_contents();
  // Without the directory's current key its names cannot be re-encrypted.
  remove(key_);
  EXPECT_EQ(error_of(fs_->rekey_directory(dir, second, kKeyRoot)), ENOKEY);
  const TreeContents after = committed_contents();
  EXPECT_EQ(after.inodes.at(dir).fscrypt_context, before.inodes.at(dir).fscrypt_context);
  EXPECT_FALSE(fs_->engine_for_test().superblock().incompat_flags & store::kIncompatKeyRotation);
}

TEST_F(EncryptionTest, MidRotationMovesAndReflinksFollowTheKeySets) {
  const fscrypt::KeyIdentifier second = add(master_key(2));
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const uint64_t sub = must(fs_->mkdir(dir, "sub", 0755, kRoot)).ino;
  const uint64_t waiting = create(sub, "waiting");  // under the old key until sub is moved
  const std::string data = pattern(40960, 'r');
  write(waiting, 0, data);
  const uint64_t rotated = create(dir, "rotated");
  write(rotated, 0, data);
  must(fs_->rekey_directory(dir, second, kKeyRoot));
  // A file the rotation has not reached may still enter a directory it has.
  must(fs_->rename(sub, "waiting", dir, "moved", 0));
  // An old-key file's extents may be shared into a rotated file (its keys
  // include the old one); not into a file made after the rotation (its only
  // key is the new one), nor the other way round.
  const uint64_t old_file = create(sub, "old");
  const uint64_t fresh = create(dir, "fresh");
  must(fs_->copy_file_range(waiting, 0, rotated, data.size(), data.size()));
  must(fs_->copy_file_range(waiting, 0, fresh, 0, data.size()));
  must(fs_->copy_file_range(rotated, 0, old_file, 0, data.size()));
  const TreeContents contents = committed_contents();
  const auto extent_at = [&](uint64_t ino, uint64_t offset) {
    return contents.inodes.at(ino).extents.at(offset).disk_bytenr;
  };
  EXPECT_EQ(extent_at(rotated, data.size()), extent_at(waiting, 0));
  EXPECT_NE(extent_at(fresh, 0), extent_at(waiting, 0));
  EXPECT_NE(extent_at(old_file, 0), extent_at(rotated, 0));
  // A rotated directory takes no file of a third key.
  const fscrypt::KeyIdentifier third = add(master_key(3));
  const uint64_t other = must(fs_->mkdir(kRootDirIno, "other", 0755, kRoot)).ino;
  must(fs_->set_policy(other, policy_for(third), kKeyRoot));
  create(other, "stranger");
  EXPECT_EQ(error_of(fs_->rename(other, "stranger", dir, "stranger", 0)), EXDEV);
  // The rotation finishes: the moved file goes too.
  must(fs_->rekey_directory(dir, second, kKeyRoot));
  must(fs_->rekey_directory(sub, second, kKeyRoot));
  for (uint64_t ino : {waiting, fresh, old_file}) EXPECT_EQ(read_all(ino), data);
  EXPECT_EQ(read_all(rotated), data + data);
  must(fs_->close());
  fs_.reset();
  const auto check = testing::full_check(device_);
  EXPECT_TRUE(check.clean()) << check.problems();
}

TEST_F(EncryptionTest, RekeyContentsReencryptsOldExtentsOnceAndKeepsThemShared) {
  const fscrypt::KeyIdentifier second = add(master_key(2));
  const uint64_t dir = encrypted_dir(kRootDirIno, "secret");
  const uint64_t file = create(dir, "file");
  const uint64_t copy = create(dir, "copy");
  const std::string data = pattern(3 * 4096 * 4, 'c');
  write(file, 0, data.substr(0, 4096 * 4));
  must(fs_->sync());
  write(file, 4096 * 4, data.substr(4096 * 4));  // a second extent
  must(fs_->sync());
  must(fs_->copy_file_range(file, 0, copy, 0, data.size()));  // both shared
  must(fs_->fallocate(file, 0, data.size(), 8192));           // a prealloc extent
  write(file, 4096, pattern(4096, 'x'));                      // a piece rewritten
  std::string expected = data;
  expected.replace(4096, 4096, pattern(4096, 'x'));
  must(fs_->rekey_directory(dir, second, kKeyRoot));
  const auto old_extents = [&](uint64_t ino) {
    std::set<uint64_t> out;
    const TreeContents contents = committed_contents();
    for (const auto& [offset, extent] : contents.inodes.at(ino).extents) {
      if (must(fscrypt::parse_extent_context(extent.context)).master_key_identifier == key_)
        out.insert(extent.disk_bytenr);
    }
    return out;
  };
  // The two data extents and the prealloc one (the rewritten piece was
  // still buffered: it is written under the new key).
  ASSERT_EQ(old_extents(file).size(), 3u);

  // One extent per call at most with a tiny budget.
  RekeyContentsReport total;
  for (int calls = 0;; ++calls) {
    ASSERT_LT(calls, 10);
    const RekeyContentsReport step = must(fs_->rekey_contents(file, 1, kKeyRoot));
    EXPECT_LE(step.extents, 1u);
    total.bytes += step.bytes;
    total.extents += step.extents;
    if (step.done) break;
  }
  EXPECT_EQ(total.extents, 3u);
  EXPECT_EQ(total.bytes, 4096 * 4 + 4096 * 8 + 8192u);
  RekeyContentsReport copied;
  do {
    const RekeyContentsReport step = must(fs_->rekey_contents(copy, 1 << 20, kKeyRoot));
    copied.extents += step.extents;
    copied.shared += step.shared;
    copied.done = step.done;
  } while (!copied.done);
  EXPECT_EQ(copied.extents, 0u);  // the copy follows the file's new extents
  EXPECT_EQ(copied.shared, 2u);
  EXPECT_TRUE(old_extents(file).empty());
  EXPECT_TRUE(old_extents(copy).empty());
  const TreeContents after = committed_contents();
  EXPECT_FALSE(after.inodes.at(file).key_history.has_value());
  EXPECT_FALSE(after.inodes.at(copy).key_history.has_value());
  std::set<uint64_t> file_extents, copy_extents;
  std::set<fscrypt::Nonce> nonces;
  for (const auto& [offset, extent] : after.inodes.at(file).extents) {
    file_extents.insert(extent.disk_bytenr);
    nonces.insert(must(fscrypt::parse_extent_context(extent.context)).nonce);
  }
  for (const auto& [offset, extent] : after.inodes.at(copy).extents) {
    copy_extents.insert(extent.disk_bytenr);
  }
  EXPECT_TRUE(std::includes(file_extents.begin(), file_extents.end(), copy_extents.begin(),
                            copy_extents.end()));
  EXPECT_EQ(nonces.size(), file_extents.size());  // every new extent its own nonce and key
  // The old key protects nothing any more; without it the files read whole.
  const auto usage = must(fs_->key_usage());
  EXPECT_FALSE(usage.contains(key_));
  EXPECT_EQ(usage.at(second).extents, file_extents.size());
  remove(key_);
  EXPECT_EQ(read_all(file).substr(0, expected.size()), expected);
  EXPECT_EQ(read_all(copy), data);
  must(fs_->close());
  fs_.reset();
  const auto check = testing::full_check(device_);
  EXPECT_TRUE(check.clean()) << check.problems();
}

// Two trees sharing an extent, rotated to two different keys in one mount:
// each gets its own copy under its own key (the copy made for one is not
// the other's). And an extent split by FALLOC_FL_ZERO_RANGE into regular
// and prealloc items: the regular ones keep their data.
TEST_F(EncryptionTest, RekeyContentsKeepsEachCopyUnderItsOwnKey) {
  const fscrypt::KeyIdentifier second = add(master_key(2));
  const fscrypt::KeyIdentifier third = add(master_key(3));
  const uint64_t x = encrypted_dir(kRootDirIno, "x");
  const uint64_t y = encrypted_dir(kRootDirIno, "y");
  const uint64_t a = create(x, "a");
  const uint64_t b = create(y, "b");
  const std::string data = pattern(64 * 1024, 's');
  write(a, 0, data);
  must(fs_->sync());
  must(fs_->copy_file_range(a, 0, b, 0, data.size()));
  // The start of a's extent becomes a prealloc item of the same extent,
  // at a lower offset than the regular item after it.
  must(fs_->fallocate(a, FALLOC_FL_ZERO_RANGE, 0, 16384));
  std::string zeroed = data;
  std::fill(zeroed.begin(), zeroed.begin() + 16384, '\0');
  must(fs_->sync());
  must(fs_->rekey_directory(x, second, kKeyRoot));
  must(fs_->rekey_directory(y, third, kKeyRoot));
  for (uint64_t file : {a, b}) {
    while (!must(fs_->rekey_contents(file, 1, kKeyRoot)).done) {
    }
  }
  const TreeContents contents = committed_contents();
  for (const auto& [file, key] : {std::pair{a, second}, std::pair{b, third}}) {
    for (const auto& [offset, extent] : contents.inodes.at(file).extents) {
      EXPECT_EQ(must(fscrypt::parse_extent_context(extent.context)).master_key_identifier, key)
          << file << " at " << offset;
    }
  }
  remove(key_);
  EXPECT_EQ(read_all(a), zeroed);
  EXPECT_EQ(read_all(b), data);
  must(fs_->close());
  fs_.reset();
  const auto check = testing::full_check(device_);
  EXPECT_TRUE(check.clean()) << check.problems();
}

// A directory's owner moves the directory and their own files; another
// user's file in it keeps its key (its owner decides), reported.
TEST_F(EncryptionTest, RekeyLeavesOtherUsersFilesAlone) {
  constexpr Caller kOwner{1000, 1000, 022};
  constexpr Caller kOther{2000, 2000, 022};
  const fscrypt::KeyIdentifier first = add(master_key(4), kKeyUser);
  const fscrypt::KeyIdentifier second = add(master_key(5), kKeyUser);
  const uint64_t dir = must(fs_->mkdir(kRootDirIno, "shared", 0777, kOwner)).ino;
  must(fs_->set_policy(dir, policy_for(first), kKeyUser));
  const uint64_t mine = must(fs_->mknod(dir, "mine", S_IFREG | 0644, 0, kOwner)).ino;
  const uint64_t theirs = must(fs_->mknod(dir, "theirs", S_IFREG | 0644, 0, kOther)).ino;
  const RekeyReport report = must(fs_->rekey_directory(dir, second, kKeyUser));
  EXPECT_EQ(report.inodes, 2u);
  EXPECT_EQ(report.not_owned, 1u);
  EXPECT_EQ(report.skipped, 0u);
  EXPECT_EQ(policy_key(must(fs_->get_policy(mine))), second);
  EXPECT_EQ(policy_key(must(fs_->get_policy(theirs))), first);
  // Its contents are the owner's to have re-encrypted too.
  EXPECT_EQ(error_of(fs_->rekey_contents(theirs, 1 << 20, kKeyUser)), EACCES);
}

TEST(KeyHistoryItem, EncodesDecodesAndRotates) {
  const fscrypt::KeyIdentifier a{1}, b{2}, c{3};
  const std::vector<fscrypt::KeyIdentifier> list{a, b};
  EXPECT_EQ(must(decode_key_history(encode_key_history(list))), list);
  EXPECT_EQ(encode_key_history(list).size(), 33u);
  EXPECT_EQ(error_of(decode_key_history(Bytes{})), EUCLEAN);
  EXPECT_EQ(error_of(decode_key_history(Bytes{0})), EUCLEAN);
  Bytes twice = encode_key_history(std::vector<fscrypt::KeyIdentifier>{a, a});
  EXPECT_EQ(error_of(decode_key_history(twice)), EUCLEAN);
  Bytes short_item = encode_key_history(list);
  short_item.pop_back();
  EXPECT_EQ(error_of(decode_key_history(short_item)), EUCLEAN);
  // a -> b -> c -> a: the key rotated back to leaves the list.
  auto history = must(rotated_history({}, a, b));
  EXPECT_EQ(history, std::vector<fscrypt::KeyIdentifier>{a});
  history = must(rotated_history(history, b, c));
  EXPECT_EQ(history, (std::vector<fscrypt::KeyIdentifier>{a, b}));
  history = must(rotated_history(history, c, a));
  EXPECT_EQ(history, (std::vector<fscrypt::KeyIdentifier>{b, c}));
  std::vector<fscrypt::KeyIdentifier> full;
  for (uint8_t i = 10; i < 10 + kMaxPreviousKeys; ++i) full.push_back({i});
  EXPECT_EQ(error_of(rotated_history(full, a, b)), EOVERFLOW);
}

}  // namespace
}  // namespace ecfs::fs
