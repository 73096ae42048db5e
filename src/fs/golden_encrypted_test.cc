// The committed image of an encrypted filesystem of format version 1
// (tests/golden/format-v1-encrypted.img.gz, docs/FORMAT.md "Golden
// images"): today's code must unlock it with the master key it was made
// with and read back every name, file, reflink and symlink; without the key
// it must show the no-key view. The image is made by the filesystem
// interface itself: `ECFS_WRITE_GOLDEN=DIR build/bin/fs_tests
// --gtest_filter='GoldenEncrypted*'` writes a new one into DIR. (Nonces are
// random, so every new image differs byte for byte; what must not change is
// that old images still read.)
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "block/gzip_image.h"
#include "block/memory_device.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "fscrypt/policy.h"

namespace ecfs::fs {
namespace {

using testing::error_of;
using testing::must;

constexpr const char* kImageName = "format-v1-encrypted.img.gz";
constexpr uint64_t kDeviceSize = 16ull << 20;
constexpr Caller kOwner{1000, 1000, 022};
constexpr fscrypt::Caller kKeyRoot{0, true};

// The master key the image was made with: bytes 0x40, 0x41, ... 0x7f.
Bytes master_key() {
  Bytes key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(0x40 + i);
  return key;
}

std::string content(size_t size, char tag) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>(tag + (i * 7 + i / 4096) % 53);
  return out;
}

const std::string kLongName = std::string(200, 'n') + ".txt";  // a no-key name is abbreviated

fscrypt::KeyIdentifier add_key(FileSystem& fs) {
  const KeyChange change = must(
      fs.add_key(kKeyRoot, fscrypt::KeySpecifier::from_identifier({}), master_key()), "add_key");
  fscrypt::KeyIdentifier identifier{};
  std::copy(change.key.bytes().begin(), change.key.bytes().end(), identifier.begin());
  return identifier;
}

// Builds the golden encrypted filesystem on `device`: a plain file, and
// under "vault" (AES-256-XTS / AES-256-CTS, 32-byte padding) nested
// directories, a file rewritten in the middle after a commit (three extents,
// three nonces), a reflinked copy whose source then changes, a long name
// and a symlink.
void build(block::MemoryDevice& device) {
  store::MkfsOptions mkfs;
  mkfs.node_size = 4096;
  mkfs.label = "golden-encrypted";
  mkfs.populate = [](store::Engine& engine) { return add_root_directory(engine, kOwner); };
  ASSERT_TRUE(store::mkfs(device, mkfs));
  auto fs = must(FileSystem::open(device), "open");
  const fscrypt::KeyIdentifier id = add_key(*fs);
  const uint64_t plain = must(fs->mknod(kRootDirIno, "plain.txt", S_IFREG | 0644, 0, kOwner)).ino;
  must(fs->write(plain, 0, as_bytes(std::string("not encrypted\n"))));
  const uint64_t vault = must(fs->mkdir(kRootDirIno, "vault", 0755, kOwner)).ino;
  fscrypt::PolicyV2 policy;
  policy.flags = fscrypt::kPolicyFlagsPad32;
  policy.master_key_identifier = id;
  must(fs->set_policy(vault, policy, kKeyRoot), "set_policy");
  const uint64_t docs = must(fs->mkdir(vault, "docs", 0755, kOwner)).ino;
  const uint64_t note = must(fs->mknod(docs, "note.txt", S_IFREG | 0644, 0, kOwner)).ino;
  must(fs->write(note, 0, as_bytes(std::string("a secret note\n"))));
  const uint64_t big = must(fs->mknod(docs, "big.bin", S_IFREG | 0600, 0, kOwner)).ino;
  must(fs->write(big, 0, as_bytes(content(40000, 'A'))));
  const uint64_t copy = must(fs->mknod(vault, "copy.bin", S_IFREG | 0600, 0, kOwner)).ino;
  must(fs->sync());
  must(fs->copy_file_range(big, 0, copy, 0, 40000));
  must(fs->write(big, 16384, as_bytes(std::string(8192, 'Z'))));
  const uint64_t named = must(fs->mknod(vault, kLongName, S_IFREG | 0644, 0, kOwner)).ino;
  must(fs->write(named, 0, as_bytes(std::string("long name\n"))));
  must(fs->symlink(vault, "to-note", "docs/note.txt", kOwner));
  ASSERT_TRUE(fs->close());
}

uint64_t lookup(FileSystem& fs, uint64_t dir, const std::string& name) {
  auto found = fs.lookup(dir, name);
  EXPECT_TRUE(found) << name << ": " << (found ? "" : found.error().to_string());
  return found ? found->ino : 0;
}

std::string read_file(FileSystem& fs, uint64_t ino) {
  must(fs.open(ino, O_RDONLY), "open");
  const uint64_t size = must(fs.getattr(ino)).size;
  Bytes out(size);
  EXPECT_EQ(must(fs.read(ino, 0, out)), size);
  fs.release(ino);
  return std::string(out.begin(), out.end());
}

std::map<std::string, uint8_t> list(FileSystem& fs, uint64_t dir) {
  std::map<std::string, uint8_t> names;
  EXPECT_TRUE(fs.readdir(dir, 0, [&](const DirListEntry& e) {
    names[e.name] = e.type;
    return true;
  }));
  return names;
}

// With the key: every name and byte as written.
void expect_unlocked_contents(FileSystem& fs) {
  EXPECT_EQ(read_file(fs, lookup(fs, kRootDirIno, "plain.txt")), "not encrypted\n");
  const uint64_t vault = lookup(fs, kRootDirIno, "vault");
  EXPECT_TRUE(must(fs.getattr(vault)).encrypted);
  EXPECT_EQ(list(fs, vault), (std::map<std::string, uint8_t>{{".", DT_DIR},
                                                             {"..", DT_DIR},
                                                             {"docs", DT_DIR},
                                                             {"copy.bin", DT_REG},
                                                             {kLongName, DT_REG},
                                                             {"to-note", DT_LNK}}));
  const uint64_t docs = lookup(fs, vault, "docs");
  EXPECT_EQ(read_file(fs, lookup(fs, docs, "note.txt")), "a secret note\n");
  std::string big = content(40000, 'A');
  const std::string original = big;
  big.replace(16384, 8192, std::string(8192, 'Z'));
  EXPECT_EQ(read_file(fs, lookup(fs, docs, "big.bin")), big);
  EXPECT_EQ(read_file(fs, lookup(fs, vault, "copy.bin")), original);
  EXPECT_EQ(read_file(fs, lookup(fs, vault, kLongName)), "long name\n");
  EXPECT_EQ(must(fs.readlink(lookup(fs, vault, "to-note"))), "docs/note.txt");
}

// Without the key: the same number of entries under no-key names, which
// look up; contents cannot be opened.
void expect_locked_view(FileSystem& fs) {
  const uint64_t vault = lookup(fs, kRootDirIno, "vault");
  const auto names = list(fs, vault);
  EXPECT_EQ(names.size(), 6u);
  for (const auto& [name, type] : names) {
    EXPECT_FALSE(name == "docs" || name == "copy.bin" || name == kLongName) << name;
    if (name == "." || name == "..") continue;
    const uint64_t ino = lookup(fs, vault, name);
    if (type == DT_REG) {
      EXPECT_EQ(error_of(fs.open(ino, O_RDONLY)), ENOKEY) << name;
    }
  }
  EXPECT_EQ(error_of(fs.lookup(vault, "docs")), ENOENT);
}

void expect_image(block::MemoryDevice& device) {
  testing::expect_full_check_clean(device);
  {
    auto fs = must(FileSystem::open(device, {.read_only = true}), "open read-only");
    expect_locked_view(*fs);
    add_key(*fs);
    expect_unlocked_contents(*fs);
  }
  // Still writable by today's code: a new file in the vault, and the
  // reflink's source deleted; clean afterwards.
  {
    auto fs = must(FileSystem::open(device), "open");
    add_key(*fs);
    const uint64_t vault = lookup(*fs, kRootDirIno, "vault");
    const uint64_t added = must(fs->mknod(vault, "added", S_IFREG | 0644, 0, kOwner)).ino;
    must(fs->write(added, 0, as_bytes(std::string("new"))));
    const uint64_t docs = lookup(*fs, vault, "docs");
    ASSERT_TRUE(fs->unlink(docs, "big.bin"));
    EXPECT_EQ(read_file(*fs, lookup(*fs, vault, "copy.bin")), content(40000, 'A'));
    ASSERT_TRUE(fs->close());
  }
  testing::expect_full_check_clean(device);
}

TEST(GoldenEncryptedTest, CommittedImageUnlocksWithItsKey) {
  const std::string path = block::testing::golden_image_path(kImageName);
  auto device = block::testing::read_gzip_image(path);
  ASSERT_TRUE(device) << device.error().to_string()
                      << " (regenerate with ECFS_WRITE_GOLDEN, see docs/FORMAT.md)";
  ASSERT_EQ(device->size(), kDeviceSize);
  expect_image(*device);
}

// The builder gives what the check above expects; with ECFS_WRITE_GOLDEN=DIR
// it also writes the image there (before the check changes it).
TEST(GoldenEncryptedWriter, BuilderMatchesTheExpectations) {
  block::MemoryDevice device(kDeviceSize, "golden encrypted filesystem");
  ASSERT_NO_FATAL_FAILURE(build(device));
  ASSERT_NO_FATAL_FAILURE(block::testing::write_golden_image_if_asked(device, kImageName));
  expect_image(device);
}

}  // namespace
}  // namespace ecfs::fs
