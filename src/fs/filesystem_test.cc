#include "fs/filesystem.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/sysmacros.h>

#include <map>
#include <set>
#include <string>

#include "block/memory_device.h"
#include "fs/fs_check.h"
#include "fs/fs_test_util.h"
#include "fs/posix_acl.h"
#include "store/engine.h"

namespace ecfs::fs {
namespace {

#define ASSERT_OK(expr)                                                      \
  do {                                                                       \
    auto assert_ok_result_ = (expr);                                         \
    ASSERT_TRUE(assert_ok_result_) << assert_ok_result_.error().to_string(); \
  } while (0)

using testing::error_of;
using testing::must;

constexpr Caller kRoot{0, 0, 022};
constexpr Caller kUser{1000, 1000, 022};

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(store::mkfs(device_, {}));
    {
      auto engine = must(store::Engine::open(device_));
      ASSERT_OK(format_filesystem(*engine, kRoot));
    }
    mount();
  }
  void TearDown() override {
    if (fs_) ASSERT_OK(fs_->close());
  }

  void mount(MountOptions options = {}) { fs_ = must(FileSystem::open(device_, options)); }
  void remount() {
    ASSERT_OK(fs_->close());
    fs_.reset();
    mount();
  }
  // Both checks on the committed image: the engine's and the filesystem's.
  void expect_fsck_clean() {
    ASSERT_OK(fs_->close());
    fs_.reset();
    testing::expect_full_check_clean(device_);
    mount();
  }
  uint64_t create(uint64_t dir, const std::string& name, uint32_t mode = S_IFREG | 0644) {
    return must(fs_->mknod(dir, name, mode, 0, kRoot)).ino;
  }
  std::string read_all(uint64_t ino) {
    const uint64_t size = must(fs_->getattr(ino)).size;
    Bytes out(size);
    EXPECT_EQ(must(fs_->read(ino, 0, out)), size);
    return std::string(out.begin(), out.end());
  }
  void write(uint64_t ino, uint64_t offset, const std::string& data) {
    EXPECT_EQ(must(fs_->write(ino, offset, as_bytes(data))), data.size());
  }
  std::map<std::string, uint64_t> list(uint64_t dir) {
    std::map<std::string, uint64_t> names;
    EXPECT_TRUE(fs_->readdir(dir, 0, [&](const DirListEntry& e) {
      EXPECT_TRUE(names.emplace(e.name, e.ino).second) << "twice: " << e.name;
      return true;
    }));
    return names;
  }

  block::MemoryDevice device_{256ull << 20};
  std::unique_ptr<FileSystem> fs_;
};

TEST_F(FileSystemTest, RootDirectoryExists) {
  Attributes root = must(fs_->getattr(kRootDirIno));
  EXPECT_TRUE(S_ISDIR(root.mode));
  EXPECT_EQ(root.mode & 07777, 0755u);
  EXPECT_EQ(root.nlink, 2u);
  EXPECT_EQ(list(kRootDirIno),
            (std::map<std::string, uint64_t>{{".", kRootDirIno}, {"..", kRootDirIno}}));
}

TEST_F(FileSystemTest, OpenRefusesAnImageWithoutFilesystem) {
  block::MemoryDevice bare(64ull << 20);
  ASSERT_OK(store::mkfs(bare, {}));
  auto fs = FileSystem::open(bare);
  ASSERT_FALSE(fs);
  EXPECT_EQ(fs.error().errno_value(), EINVAL);
  EXPECT_NE(fs.error().message().find("no root directory"), std::string::npos);
}

TEST_F(FileSystemTest, CreateLookupAndReadBack) {
  const uint64_t ino = create(kRootDirIno, "hello");
  write(ino, 0, "hello, world");
  EXPECT_EQ(read_all(ino), "hello, world");
  Attributes found = must(fs_->lookup(kRootDirIno, "hello"));
  EXPECT_EQ(found.ino, ino);
  EXPECT_EQ(found.size, 12u);
  EXPECT_EQ(found.mode, S_IFREG | 0644u);
  EXPECT_EQ(error_of(fs_->lookup(kRootDirIno, "absent")), ENOENT);
  EXPECT_EQ(error_of(fs_->mknod(kRootDirIno, "hello", S_IFREG | 0644, 0, kRoot)), EEXIST);
  remount();
  found = must(fs_->lookup(kRootDirIno, "hello"));
  EXPECT_EQ(found.ino, ino);
  EXPECT_EQ(read_all(ino), "hello, world");
  expect_fsck_clean();
}

TEST_F(FileSystemTest, UmaskAndOwnership) {
  Attributes file = must(fs_->mknod(kRootDirIno, "f", S_IFREG | 0666, 0, kUser));
  EXPECT_EQ(file.mode & 07777, 0644u);
  EXPECT_EQ(file.uid, 1000u);
  EXPECT_EQ(file.gid, 1000u);
  // A set-group-ID directory gives its group to new entries and its SGID
  // bit to new subdirectories.
  Attributes dir = must(fs_->mkdir(kRootDirIno, "shared", 0775, kRoot));
  ASSERT_OK(fs_->setattr(dir.ino, {.mode = 02775u, .gid = 50u}));
  Attributes sub = must(fs_->mkdir(dir.ino, "sub", 0755, kUser));
  EXPECT_EQ(sub.gid, 50u);
  EXPECT_TRUE(sub.mode & S_ISGID);
  Attributes inner = must(fs_->mknod(dir.ino, "inner", S_IFREG | 0644, 0, kUser));
  EXPECT_EQ(inner.gid, 50u);
  EXPECT_FALSE(inner.mode & S_ISGID);
}

TEST_F(FileSystemTest, NameRules) {
  EXPECT_EQ(error_of(fs_->mknod(kRootDirIno, std::string(256, 'a'), S_IFREG | 0644, 0, kRoot)),
            ENAMETOOLONG);
  EXPECT_TRUE(fs_->mknod(kRootDirIno, std::string(255, 'a'), S_IFREG | 0644, 0, kRoot));
  const uint64_t file = create(kRootDirIno, "file");
  EXPECT_EQ(error_of(fs_->mknod(file, "x", S_IFREG | 0644, 0, kRoot)), ENOTDIR);
  EXPECT_EQ(error_of(fs_->lookup(file, "x")), ENOTDIR);
}

TEST_F(FileSystemTest, DirectoriesCountLinksAndRefuseRemovalWhenFull) {
  Attributes a = must(fs_->mkdir(kRootDirIno, "a", 0755, kRoot));
  Attributes b = must(fs_->mkdir(a.ino, "b", 0755, kRoot));
  EXPECT_EQ(must(fs_->getattr(kRootDirIno)).nlink, 3u);
  EXPECT_EQ(must(fs_->getattr(a.ino)).nlink, 3u);
  EXPECT_EQ(must(fs_->lookup(b.ino, "..")).ino, a.ino);
  EXPECT_EQ(error_of(fs_->rmdir(kRootDirIno, "a")), ENOTEMPTY);
  EXPECT_EQ(error_of(fs_->unlink(kRootDirIno, "a")), EISDIR);
  create(a.ino, "file");
  EXPECT_EQ(error_of(fs_->rmdir(a.ino, "file")), ENOTDIR);
  ASSERT_OK(fs_->unlink(a.ino, "file"));
  ASSERT_OK(fs_->rmdir(a.ino, "b"));
  ASSERT_OK(fs_->rmdir(kRootDirIno, "a"));
  EXPECT_EQ(must(fs_->getattr(kRootDirIno)).nlink, 2u);
  EXPECT_EQ(list(kRootDirIno).size(), 2u);
  // A removed directory cannot gain entries (its inode lives while
  // referenced).
  EXPECT_EQ(error_of(fs_->mknod(a.ino, "late", S_IFREG | 0644, 0, kRoot)), ENOENT);
  expect_fsck_clean();
}

TEST_F(FileSystemTest, ReaddirListsManyEntriesOnceWithResumableCookies) {
  std::set<std::string> created;
  for (int i = 0; i < 3000; ++i) {
    const std::string name = "entry-" + std::to_string(i * 7919 % 100003);
    create(kRootDirIno, name);
    created.insert(name);
  }
  ASSERT_OK(fs_->unlink(kRootDirIno, "entry-0"));
  created.erase("entry-0");
  // Read in batches of 100, resuming from the last cookie, as getdents does.
  std::set<std::string> seen;
  uint64_t cookie = 0;
  for (;;) {
    int batch = 0;
    uint64_t last = cookie;
    ASSERT_OK(fs_->readdir(kRootDirIno, cookie, [&](const DirListEntry& e) {
      if (batch == 100) return false;
      ++batch;
      if (e.name != "." && e.name != "..") {
        EXPECT_TRUE(seen.insert(e.name).second) << e.name;
      }
      last = e.cookie;
      return true;
    }));
    if (batch == 0) break;
    cookie = last;
  }
  EXPECT_EQ(seen, created);
  remount();
  EXPECT_EQ(list(kRootDirIno).size(), created.size() + 2);
}

// readdir_plus hands out what lookup would for every entry the caller
// takes, and a lookup reference with it; "." and "..", and an entry the
// caller turns away (the reply is full), carry none.
TEST_F(FileSystemTest, ReaddirPlusCountsAReferenceForEveryEntryTaken) {
  Attributes dir = must(fs_->mkdir(kRootDirIno, "d", 0755, kRoot));
  const uint64_t first = create(dir.ino, "first");
  const uint64_t second = create(dir.ino, "second");
  write(second, 0, "twelve bytes");
  const uint64_t third = create(dir.ino, "third");
  const uint64_t before_first = fs_->lookup_count(first);
  const uint64_t before_third = fs_->lookup_count(third);
  const uint64_t dir_before = fs_->lookup_count(dir.ino);

  // The callback runs under the filesystem's lock: it only records.
  std::vector<std::string> names;
  std::map<std::string, Attributes> listed;
  uint64_t resume = 0;
  ASSERT_OK(fs_->readdir_plus(dir.ino, 0, [&](const DirListEntry& e, const Attributes* attr) {
    if (e.name == "third") return false;  // full: "third" waits for the next call
    names.push_back(e.name);
    resume = e.cookie;
    EXPECT_EQ(attr == nullptr, e.name == "." || e.name == "..") << e.name;
    if (attr != nullptr) {
      EXPECT_EQ(attr->ino, e.ino);
      listed[e.name] = *attr;
    }
    return true;
  }));
  for (const auto& [name, attr] : listed) {
    const Attributes expected = must(fs_->getattr(attr.ino));
    EXPECT_EQ(attr.mode, expected.mode) << name;
    EXPECT_EQ(attr.size, expected.size) << name;
    EXPECT_EQ(attr.nlink, expected.nlink) << name;
  }
  EXPECT_EQ(listed.at("second").size, 12u);
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "first", "second"}));
  EXPECT_EQ(fs_->lookup_count(first), before_first + 1);
  EXPECT_EQ(fs_->lookup_count(third), before_third);
  EXPECT_EQ(fs_->lookup_count(dir.ino), dir_before);

  names.clear();
  ASSERT_OK(fs_->readdir_plus(dir.ino, resume, [&](const DirListEntry& e, const Attributes*) {
    names.push_back(e.name);
    return true;
  }));
  EXPECT_EQ(names, (std::vector<std::string>{"third"}));
  EXPECT_EQ(fs_->lookup_count(third), before_third + 1);
  EXPECT_EQ(error_of(fs_->readdir_plus(first, 0, [](auto&, auto*) { return true; })), ENOTDIR);
}

TEST_F(FileSystemTest, HardLinksAcrossDirectories) {
  Attributes d1 = must(fs_->mkdir(kRootDirIno, "d1", 0755, kRoot));
  Attributes d2 = must(fs_->mkdir(kRootDirIno, "d2", 0755, kRoot));
  const uint64_t file = create(d1.ino, "f");
  write(file, 0, "shared");
  Attributes linked = must(fs_->link(file, d2.ino, "g"));
  EXPECT_EQ(linked.nlink, 2u);
  EXPECT_EQ(error_of(fs_->link(d1.ino, d2.ino, "dirlink")), EPERM);
  EXPECT_EQ(error_of(fs_->link(file, d2.ino, "g")), EEXIST);
  ASSERT_OK(fs_->unlink(d1.ino, "f"));
  EXPECT_EQ(must(fs_->getattr(file)).nlink, 1u);
  remount();
  EXPECT_EQ(read_all(must(fs_->lookup(d2.ino, "g")).ino), "shared");
  expect_fsck_clean();
}

TEST_F(FileSystemTest, SymlinksAndSpecialFiles) {
  Attributes link = must(fs_->symlink(kRootDirIno, "ln", "../some/where", kRoot));
  EXPECT_TRUE(S_ISLNK(link.mode));
  EXPECT_EQ(link.size, 13u);
  EXPECT_EQ(must(fs_->readlink(link.ino)), "../some/where");
  EXPECT_EQ(error_of(fs_->readlink(kRootDirIno)), EINVAL);
  EXPECT_EQ(error_of(fs_->symlink(kRootDirIno, "long", std::string(4096, 'x'), kRoot)),
            ENAMETOOLONG);
  Attributes fifo = must(fs_->mknod(kRootDirIno, "fifo", S_IFIFO | 0600, 0, kRoot));
  Attributes dev = must(fs_->mknod(kRootDirIno, "dev", S_IFCHR | 0600, makedev(1, 3), kRoot));
  Attributes sock = must(fs_->mknod(kRootDirIno, "sock", S_IFSOCK | 0600, 0, kRoot));
  remount();
  EXPECT_EQ(must(fs_->readlink(link.ino)), "../some/where");
  EXPECT_TRUE(S_ISFIFO(must(fs_->getattr(fifo.ino)).mode));
  EXPECT_EQ(must(fs_->getattr(dev.ino)).rdev, makedev(1, 3));
  EXPECT_TRUE(S_ISSOCK(must(fs_->getattr(sock.ino)).mode));
  std::map<std::string, uint8_t> types;
  ASSERT_OK(fs_->readdir(kRootDirIno, 0, [&](const DirListEntry& e) {
    types[e.name] = e.type;
    return true;
  }));
  EXPECT_EQ(types["ln"], DT_LNK);
  EXPECT_EQ(types["fifo"], DT_FIFO);
  EXPECT_EQ(types["dev"], DT_CHR);
  EXPECT_EQ(types["sock"], DT_SOCK);
}

TEST_F(FileSystemTest, RenameMovesReplacesAndRefuses) {
  Attributes a = must(fs_->mkdir(kRootDirIno, "a", 0755, kRoot));
  Attributes b = must(fs_->mkdir(kRootDirIno, "b", 0755, kRoot));
  const uint64_t f = create(a.ino, "f");
  const uint64_t g = create(b.ino, "g");
  write(f, 0, "from f");
  // Over an existing file: the old target is gone.
  ASSERT_OK(fs_->rename(a.ino, "f", b.ino, "g", 0));
  EXPECT_EQ(must(fs_->lookup(b.ino, "g")).ino, f);
  EXPECT_EQ(error_of(fs_->lookup(a.ino, "f")), ENOENT);
  fs_->forget(g, 0);
  // Directories: moving one changes both parents' link counts.
  Attributes sub = must(fs_->mkdir(a.ino, "sub", 0755, kRoot));
  ASSERT_OK(fs_->rename(a.ino, "sub", b.ino, "sub", 0));
  EXPECT_EQ(must(fs_->getattr(a.ino)).nlink, 2u);
  EXPECT_EQ(must(fs_->getattr(b.ino)).nlink, 3u);
  EXPECT_EQ(must(fs_->lookup(sub.ino, "..")).ino, b.ino);
  // Type rules.
  create(a.ino, "file");
  EXPECT_EQ(error_of(fs_->rename(b.ino, "sub", a.ino, "file", 0)), ENOTDIR);
  EXPECT_EQ(error_of(fs_->rename(a.ino, "file", b.ino, "sub", 0)), EISDIR);
  must(fs_->mkdir(a.ino, "full", 0755, kRoot));
  create(must(fs_->lookup(a.ino, "full")).ino, "x");
  EXPECT_EQ(error_of(fs_->rename(b.ino, "sub", a.ino, "full", 0)), ENOTEMPTY);
  // RENAME_NOREPLACE and RENAME_EXCHANGE.
  EXPECT_EQ(error_of(fs_->rename(a.ino, "file", b.ino, "g", kRenameNoReplace)), EEXIST);
  ASSERT_OK(fs_->rename(a.ino, "file", a.ino, "file2", kRenameNoReplace));
  const uint64_t file2 = must(fs_->lookup(a.ino, "file2")).ino;
  ASSERT_OK(fs_->rename(a.ino, "file2", b.ino, "sub", kRenameExchange));
  EXPECT_EQ(must(fs_->lookup(a.ino, "file2")).ino, sub.ino);
  EXPECT_EQ(must(fs_->lookup(b.ino, "sub")).ino, file2);
  EXPECT_EQ(must(fs_->lookup(sub.ino, "..")).ino, a.ino);
  EXPECT_EQ(must(fs_->getattr(a.ino)).nlink, 4u);  // ".", "full", "file2" (sub)
  EXPECT_EQ(must(fs_->getattr(b.ino)).nlink, 2u);
  EXPECT_EQ(error_of(fs_->rename(a.ino, "nothing", b.ino, "sub", kRenameExchange)), ENOENT);
  EXPECT_EQ(error_of(fs_->rename(a.ino, "file2", b.ino, "nothing", kRenameExchange)), ENOENT);
  EXPECT_EQ(error_of(fs_->rename(a.ino, "file2", b.ino, "sub", 3)), EINVAL);
  // Two names of one inode: nothing happens.
  must(fs_->link(file2, b.ino, "other"));
  ASSERT_OK(fs_->rename(b.ino, "sub", b.ino, "other", 0));
  EXPECT_EQ(must(fs_->lookup(b.ino, "sub")).ino, file2);
  expect_fsck_clean();
}

TEST_F(FileSystemTest, RenameRefusesCyclesAndRemovedDirectories) {
  Attributes a = must(fs_->mkdir(kRootDirIno, "a", 0755, kRoot));
  Attributes b = must(fs_->mkdir(a.ino, "b", 0755, kRoot));
  Attributes c = must(fs_->mkdir(b.ino, "c", 0755, kRoot));
  EXPECT_EQ(error_of(fs_->rename(kRootDirIno, "a", c.ino, "a2", 0)), EINVAL);
  EXPECT_EQ(error_of(fs_->rename(kRootDirIno, "a", b.ino, "a2", 0)), EINVAL);
  EXPECT_EQ(error_of(fs_->rename(b.ino, "c", kRootDirIno, "a", kRenameExchange)), EINVAL);
  EXPECT_EQ(error_of(fs_->rename(kRootDirIno, "a", b.ino, "c", kRenameExchange)), EINVAL);
  Attributes gone = must(fs_->mkdir(kRootDirIno, "gone", 0755, kRoot));
  create(kRootDirIno, "f");
  ASSERT_OK(fs_->rmdir(kRootDirIno, "gone"));
  EXPECT_EQ(error_of(fs_->rename(kRootDirIno, "f", gone.ino, "g", 0)), ENOENT);
  expect_fsck_clean();
}

TEST_F(FileSystemTest, UnlinkedOpenFileLivesUntilReleasedAndForgotten) {
  const uint64_t ino = create(kRootDirIno, "tmp");
  write(ino, 0, std::string(100000, 'z'));
  ASSERT_OK(fs_->open(ino, O_RDWR));
  ASSERT_OK(fs_->unlink(kRootDirIno, "tmp"));
  EXPECT_EQ(must(fs_->getattr(ino)).nlink, 0u);
  EXPECT_EQ(read_all(ino), std::string(100000, 'z'));
  ASSERT_OK(fs_->sync());
  fs_->release(ino);
  EXPECT_TRUE(fs_->getattr(ino));  // the kernel still holds a lookup reference
  fs_->forget(ino, 1);
  EXPECT_EQ(error_of(fs_->getattr(ino)), ENOENT);
  expect_fsck_clean();
}

TEST_F(FileSystemTest, OrphansOfACrashAreDeletedAtTheNextMount) {
  const uint64_t ino = create(kRootDirIno, "tmp");
  write(ino, 0, std::string(50000, 'q'));
  ASSERT_OK(fs_->unlink(kRootDirIno, "tmp"));
  ASSERT_OK(fs_->sync());
  const uint64_t used = fs_->engine_for_test().space_usage().allocated_bytes();
  // Simulate a crash: the device as committed, the filesystem never closed.
  block::MemoryDevice crashed = device_;
  auto fs = must(FileSystem::open(crashed));
  EXPECT_EQ(error_of(fs->getattr(ino)), ENOENT);
  EXPECT_LT(fs->engine_for_test().space_usage().allocated_bytes(), used);
  ASSERT_OK(fs->close());
  auto engine = must(store::Engine::open(crashed));
  EXPECT_TRUE(must(engine->check()).clean());
}

TEST_F(FileSystemTest, SetattrChangesModeOwnerTimesAndSize) {
  const uint64_t ino = create(kRootDirIno, "f");
  write(ino, 0, "0123456789");
  Attributes after = must(fs_->setattr(ino, {.mode = 0600u,
                                             .uid = 7u,
                                             .gid = 8u,
                                             .size = 4u,
                                             .atime = Timestamp{1000, 123456789},
                                             .mtime = Timestamp{2000, 999999999}}));
  EXPECT_EQ(after.mode, S_IFREG | 0600u);
  EXPECT_EQ(after.uid, 7u);
  EXPECT_EQ(after.gid, 8u);
  EXPECT_EQ(after.size, 4u);
  EXPECT_EQ(after.atime, (Timestamp{1000, 123456789}));
  EXPECT_EQ(after.mtime, (Timestamp{2000, 999999999}));
  remount();
  after = must(fs_->getattr(ino));
  EXPECT_EQ(after.mtime, (Timestamp{2000, 999999999}));
  EXPECT_EQ(read_all(ino), "0123");
  ASSERT_OK(fs_->setattr(ino, {.size = 8u}));
  EXPECT_EQ(read_all(ino), std::string("0123\0\0\0\0", 8));
  EXPECT_EQ(error_of(fs_->setattr(kRootDirIno, {.size = 0u})), EISDIR);
}

TEST_F(FileSystemTest, Xattrs) {
  const uint64_t ino = create(kRootDirIno, "f");
  ASSERT_OK(fs_->setxattr(ino, "user.a", as_bytes("1"), 0));
  ASSERT_OK(fs_->setxattr(ino, "trusted.b", as_bytes("two"), 0));
  ASSERT_OK(fs_->setxattr(ino, "security.c", {}, 0));
  EXPECT_EQ(error_of(fs_->setxattr(ino, "user.a", as_bytes("x"), kXattrCreate)), EEXIST);
  EXPECT_EQ(error_of(fs_->setxattr(ino, "user.z", as_bytes("x"), kXattrReplace)), ENODATA);
  EXPECT_EQ(error_of(fs_->setxattr(ino, "os2.a", as_bytes("x"), 0)), EOPNOTSUPP);
  EXPECT_EQ(error_of(fs_->setxattr(ino, "user.big", Bytes(65537), 0)), E2BIG);
  ASSERT_OK(fs_->setxattr(ino, "user.a", as_bytes("replaced"), kXattrReplace));
  remount();
  Bytes a = must(fs_->getxattr(ino, "user.a"));
  EXPECT_EQ(std::string(a.begin(), a.end()), "replaced");
  EXPECT_TRUE(must(fs_->getxattr(ino, "security.c")).empty());
  std::string names = must(fs_->listxattr(ino));
  std::set<std::string> listed;
  for (size_t pos = 0; pos < names.size();) {
    const size_t end = names.find('\0', pos);
    listed.insert(names.substr(pos, end - pos));
    pos = end + 1;
  }
  EXPECT_EQ(listed, (std::set<std::string>{"user.a", "trusted.b", "security.c"}));
  ASSERT_OK(fs_->removexattr(ino, "user.a"));
  EXPECT_EQ(error_of(fs_->getxattr(ino, "user.a")), ENODATA);
  EXPECT_EQ(error_of(fs_->removexattr(ino, "user.a")), ENODATA);
  // Deleting the file deletes its xattrs with it (fsck sees no stray item).
  ASSERT_OK(fs_->unlink(kRootDirIno, "f"));
  fs_->forget(ino, 1);
  expect_fsck_clean();
}

Bytes acl_bytes(std::vector<AclEntry> entries) { return encode_posix_acl({std::move(entries)}); }

TEST_F(FileSystemTest, AccessAclSetsModeAndChmodUpdatesAcl) {
  const uint64_t ino = create(kRootDirIno, "f");
  // u::rw-, u:1000:r--, g::r--, m::rw-, o::---
  Bytes acl = acl_bytes({{kAclUserObj, 6, 0},
                         {kAclUser, 4, 1000},
                         {kAclGroupObj, 4, 0},
                         {kAclMask, 6, 0},
                         {kAclOther, 0, 0}});
  ASSERT_OK(fs_->setxattr(ino, "system.posix_acl_access", acl, 0));
  EXPECT_EQ(must(fs_->getattr(ino)).mode & 0777, 0660u);  // group bits show the mask
  ASSERT_OK(fs_->setattr(ino, {.mode = 0640u}));
  PosixAcl stored = must(decode_posix_acl(must(fs_->getxattr(ino, "system.posix_acl_access"))));
  EXPECT_EQ(stored.entries[3], (AclEntry{kAclMask, 4, UINT32_MAX}));
  // An ACL the mode expresses fully is not kept.
  ASSERT_OK(fs_->setxattr(ino, "system.posix_acl_access",
                          acl_bytes({{kAclUserObj, 7, 0}, {kAclGroupObj, 5, 0}, {kAclOther, 1, 0}}),
                          0));
  EXPECT_EQ(must(fs_->getattr(ino)).mode & 0777, 0751u);
  EXPECT_EQ(error_of(fs_->getxattr(ino, "system.posix_acl_access")), ENODATA);
  // Malformed ACLs are refused.
  EXPECT_EQ(error_of(fs_->setxattr(ino, "system.posix_acl_access",
                                   acl_bytes({{kAclUserObj, 7, 0}, {kAclUser, 4, 5}}), 0)),
            EINVAL);
  EXPECT_EQ(error_of(fs_->setxattr(
                ino, "system.posix_acl_default",
                acl_bytes({{kAclUserObj, 7, 0}, {kAclGroupObj, 5, 0}, {kAclOther, 1, 0}}), 0)),
            EACCES);
}

TEST_F(FileSystemTest, DefaultAclIsInheritedInsteadOfTheUmask) {
  Attributes dir = must(fs_->mkdir(kRootDirIno, "d", 0755, kRoot));
  Bytes def = acl_bytes({{kAclUserObj, 7, 0},
                         {kAclUser, 7, 1000},
                         {kAclGroupObj, 5, 0},
                         {kAclMask, 7, 0},
                         {kAclOther, 0, 0}});
  ASSERT_OK(fs_->setxattr(dir.ino, "system.posix_acl_default", def, 0));
  Attributes file = must(fs_->mknod(dir.ino, "f", S_IFREG | 0666, 0, kRoot));
  // Mode 0666 limited by the ACL: owner rw-, group class (mask) rw-, other ---.
  EXPECT_EQ(file.mode & 0777, 0660u);
  PosixAcl access =
      must(decode_posix_acl(must(fs_->getxattr(file.ino, "system.posix_acl_access"))));
  EXPECT_EQ(access.entries[1], (AclEntry{kAclUser, 7, 1000}));
  EXPECT_EQ(access.entries[3], (AclEntry{kAclMask, 6, UINT32_MAX}));
  Attributes sub = must(fs_->mkdir(dir.ino, "sub", 0777, kRoot));
  EXPECT_EQ(
      must(decode_posix_acl(must(fs_->getxattr(sub.ino, "system.posix_acl_default")))).entries,
      must(decode_posix_acl(def)).entries);
  EXPECT_EQ(sub.mode & 0777, 0770u);
}

TEST_F(FileSystemTest, FallocateSeekAndCopyFileRange) {
  const uint64_t ino = create(kRootDirIno, "f");
  ASSERT_OK(fs_->fallocate(ino, 0, 0, 1 << 20));
  EXPECT_EQ(must(fs_->getattr(ino)).size, 1u << 20);
  EXPECT_EQ(must(fs_->getattr(ino)).blocks, (1u << 20) / 512);
  ASSERT_OK(fs_->fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192));
  EXPECT_EQ(must(fs_->lseek(ino, 0, SEEK_HOLE)), 4096u);
  EXPECT_EQ(must(fs_->lseek(ino, 4096, SEEK_DATA)), 12288u);
  EXPECT_EQ(error_of(fs_->fallocate(ino, FALLOC_FL_PUNCH_HOLE, 0, 4096)), EOPNOTSUPP);
  EXPECT_EQ(error_of(fs_->lseek(ino, 1 << 20, SEEK_DATA)), ENXIO);
  ASSERT_OK(fs_->fallocate(ino, FALLOC_FL_KEEP_SIZE, 1 << 20, 4096));
  EXPECT_EQ(must(fs_->getattr(ino)).size, 1u << 20);

  const uint64_t src = create(kRootDirIno, "src");
  std::string content(300000, 'a');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
  write(src, 0, content);
  const uint64_t dst = create(kRootDirIno, "dst");
  EXPECT_EQ(must(fs_->copy_file_range(src, 0, dst, 0, 1 << 30)), content.size());
  EXPECT_EQ(read_all(dst), content);
  write(src, 5, "CHANGED");
  EXPECT_EQ(read_all(dst), content);
  EXPECT_EQ(must(fs_->copy_file_range(src, content.size(), dst, 0, 10)), 0u);
  remount();
  EXPECT_EQ(read_all(dst), content);
  expect_fsck_clean();
}

// Space, and inode numbers given out rather than counted (counting would
// make mount time grow with the number of files).
TEST_F(FileSystemTest, StatfsReportsSpaceAndInodeNumbers) {
  FsStats before = must(fs_->statfs());
  EXPECT_EQ(before.files, 1u);
  EXPECT_EQ(before.free_files, kMaxLocalIno - kRootDirIno);
  EXPECT_GT(before.total_blocks, 0u);
  EXPECT_LE(before.available_blocks, before.free_blocks);
  const uint64_t ino = create(kRootDirIno, "big");
  write(ino, 0, std::string(8 << 20, 'b'));
  ASSERT_OK(fs_->sync());
  FsStats after = must(fs_->statfs());
  EXPECT_EQ(after.files, 2u);
  EXPECT_LE(after.free_blocks + (8u << 20) / 4096, before.free_blocks);
}

TEST_F(FileSystemTest, FullDeviceGivesEnospcAndKeepsCommittedData) {
  const uint64_t keep = create(kRootDirIno, "keep");
  write(keep, 0, "committed");
  ASSERT_OK(fs_->sync());
  const uint64_t ino = create(kRootDirIno, "fill");
  const std::string chunk(1 << 20, 'f');
  int error = 0;
  for (uint64_t offset = 0; offset < (512ull << 20); offset += chunk.size()) {
    auto written = fs_->write(ino, offset, as_bytes(chunk));
    if (!written) {
      error = written.error().errno_value();
      break;
    }
  }
  EXPECT_EQ(error, ENOSPC);
  ASSERT_OK(fs_->sync());
  EXPECT_EQ(read_all(keep), "committed");
  ASSERT_OK(fs_->unlink(kRootDirIno, "fill"));
  fs_->forget(ino, 1);
  ASSERT_OK(fs_->sync());
  EXPECT_TRUE(fs_->write(keep, 0, as_bytes(chunk)));
  expect_fsck_clean();
}

// Space freed since the last commit is pinned until the next one; a write
// that needs it gets it through a commit, not ENOSPC (xfstests generic/213:
// remove a large file, allocate as much again at once).
TEST_F(FileSystemTest, SpaceFreedSinceTheLastCommitIsReclaimedBeforeEnospc) {
  const uint64_t free_at_start = fs_->engine_for_test().space_usage().free_bytes;
  const uint64_t most = free_at_start / 10 * 7;  // twice does not fit
  for (int round = 0; round < 3; ++round) {
    const uint64_t ino = create(kRootDirIno, "big");
    SCOPED_TRACE(round);
    ASSERT_OK(fs_->fallocate(ino, 0, 0, most));
    ASSERT_OK(fs_->sync());
    ASSERT_OK(fs_->unlink(kRootDirIno, "big"));
    fs_->forget(ino, 1);
  }
  // Buffered data too, without a sync in between.
  const std::string chunk(1 << 20, 'x');
  for (int round = 0; round < 2; ++round) {
    const uint64_t ino = create(kRootDirIno, "written");
    for (uint64_t offset = 0; offset < most; offset += chunk.size()) {
      ASSERT_TRUE(fs_->write(ino, offset, as_bytes(chunk)))
          << "round " << round << " at " << offset;
    }
    ASSERT_OK(fs_->unlink(kRootDirIno, "written"));
    fs_->forget(ino, 1);
  }
  expect_fsck_clean();
}

TEST_F(FileSystemTest, ReadOnlyMountReadsAndRefusesChanges) {
  const uint64_t ino = create(kRootDirIno, "f");
  write(ino, 0, "data");
  ASSERT_OK(fs_->close());
  fs_.reset();
  mount({.read_only = true});
  EXPECT_EQ(must(fs_->lookup(kRootDirIno, "f")).ino, ino);
  EXPECT_EQ(read_all(ino), "data");
  EXPECT_EQ(error_of(fs_->mknod(kRootDirIno, "g", S_IFREG | 0644, 0, kRoot)), EROFS);
  EXPECT_EQ(error_of(fs_->write(ino, 0, as_bytes("x"))), EROFS);
}

// A remount read-only commits what was written (a copy of the image taken
// right after it holds everything) and from then on writes nothing, not
// even at close.
TEST_F(FileSystemTest, RemountReadOnlyCommitsThenWritesNothing) {
  const uint64_t ino = create(kRootDirIno, "f");
  write(ino, 0, "written, never synced");
  must(fs_->mkdir(kRootDirIno, "dir", 0755, kRoot));
  ASSERT_OK(fs_->remount({.read_only = true}));
  const block::MemoryDevice at_remount = device_;

  EXPECT_EQ(error_of(fs_->mknod(kRootDirIno, "g", S_IFREG | 0644, 0, kRoot)), EROFS);
  EXPECT_EQ(error_of(fs_->write(ino, 0, as_bytes("x"))), EROFS);
  EXPECT_EQ(error_of(fs_->unlink(kRootDirIno, "f")), EROFS);
  EXPECT_EQ(read_all(ino), "written, never synced");
  ASSERT_OK(fs_->sync());
  ASSERT_OK(fs_->close());
  fs_.reset();
  EXPECT_TRUE(device_.same_contents(at_remount)) << "the image changed after remount,ro";

  block::MemoryDevice copy = at_remount;
  auto reopened = must(FileSystem::open(copy));
  EXPECT_EQ(must(reopened->lookup(kRootDirIno, "f")).size, 21u);
  EXPECT_TRUE(S_ISDIR(must(reopened->lookup(kRootDirIno, "dir")).mode));
  ASSERT_OK(reopened->close());
  mount();
}

TEST_F(FileSystemTest, RemountReadWriteAgainTakesChanges) {
  const uint64_t ino = create(kRootDirIno, "f");
  ASSERT_OK(fs_->remount({.read_only = true}));
  EXPECT_EQ(error_of(fs_->write(ino, 0, as_bytes("x"))), EROFS);
  ASSERT_OK(fs_->remount({.read_only = false}));
  write(ino, 0, "after");
  remount();
  EXPECT_EQ(read_all(ino), "after");
}

TEST_F(FileSystemTest, RemountReadWriteOfAReadOnlyOpenIsRefused) {
  ASSERT_OK(fs_->close());
  fs_.reset();
  mount({.read_only = true});
  EXPECT_EQ(error_of(fs_->remount({.read_only = false})), EROFS);
  EXPECT_EQ(error_of(fs_->mknod(kRootDirIno, "g", S_IFREG | 0644, 0, kRoot)), EROFS);
  ASSERT_OK(fs_->remount({.read_only = true}));
}

TEST_F(FileSystemTest, RemountChangesTheAtimeRuleOnly) {
  const uint64_t ino = create(kRootDirIno, "f");
  write(ino, 0, "data");
  // An access time later than the change times: relatime leaves it.
  const Timestamp later{.sec = must(fs_->getattr(ino)).ctime.sec + 3600, .nsec = 0};
  ASSERT_OK(fs_->setattr(ino, {.atime = later}));
  Bytes out(4);
  ASSERT_OK(fs_->read(ino, 0, out));
  EXPECT_EQ(must(fs_->getattr(ino)).atime.sec, later.sec);
  ASSERT_OK(fs_->remount({.atime = AtimeUpdates::kAlways}));
  ASSERT_OK(fs_->read(ino, 0, out));
  EXPECT_LT(must(fs_->getattr(ino)).atime.sec, later.sec) << "strictatime did not update";
  write(ino, 0, "more");  // still read-write
}

// Values up to the VFS's limit (64 KiB), past what a tree leaf holds, go
// out of line; replacing, removing and deleting the inode leave no part
// behind (the full check would name it), and the image gets the feature
// flag only once such a value exists.
TEST_F(FileSystemTest, XattrValuesUpToTheVfsLimit) {
  const uint64_t ino = create(kRootDirIno, "f");
  const auto pattern = [](size_t size, uint8_t seed) {
    Bytes value(size);
    for (size_t i = 0; i < size; ++i) value[i] = static_cast<uint8_t>(i * 7 + seed + i / 251);
    return value;
  };
  ASSERT_OK(fs_->setxattr(ino, "user.small", as_bytes("s"), 0));
  expect_fsck_clean();
  EXPECT_EQ(fs_->engine_for_test().superblock().incompat_flags, 0u) << "no large value yet";

  ASSERT_OK(fs_->setxattr(ino, "user.max", pattern(65536, 1), 0));
  ASSERT_OK(fs_->setxattr(ino, "user.mid", pattern(20000, 2), 0));
  EXPECT_EQ(must(fs_->getxattr(ino, "user.max")), pattern(65536, 1)) << "before a commit";
  expect_fsck_clean();
  EXPECT_EQ(fs_->engine_for_test().superblock().incompat_flags, store::kIncompatLargeXattrValues);
  EXPECT_EQ(must(fs_->getxattr(ino, "user.max")), pattern(65536, 1));
  EXPECT_EQ(must(fs_->getxattr(ino, "user.mid")), pattern(20000, 2));
  EXPECT_EQ(must(fs_->getxattr(ino, "user.small")), Bytes{'s'});
  EXPECT_EQ(must(fs_->listxattr(ino)).size(), std::string("user.small0user.max0user.mid0").size());

  // Large to small, small to large, large to large: the old parts go.
  ASSERT_OK(fs_->setxattr(ino, "user.max", as_bytes("now small"), kXattrReplace));
  ASSERT_OK(fs_->setxattr(ino, "user.small", pattern(40000, 3), kXattrReplace));
  ASSERT_OK(fs_->setxattr(ino, "user.mid", pattern(30000, 4), kXattrReplace));
  expect_fsck_clean();
  {
    const Bytes now_small = must(fs_->getxattr(ino, "user.max"));
    EXPECT_EQ(std::string(now_small.begin(), now_small.end()), "now small");
  }
  EXPECT_EQ(must(fs_->getxattr(ino, "user.small")), pattern(40000, 3));
  EXPECT_EQ(must(fs_->getxattr(ino, "user.mid")), pattern(30000, 4));
  ASSERT_OK(fs_->removexattr(ino, "user.mid"));
  EXPECT_EQ(error_of(fs_->getxattr(ino, "user.mid")), ENODATA);
  expect_fsck_clean();
  EXPECT_EQ(error_of(fs_->setxattr(ino, "user.big", Bytes(65537), 0)), E2BIG);

  // Deleting the inode deletes its parts.
  ASSERT_OK(fs_->unlink(kRootDirIno, "f"));
  fs_->forget(ino, 1);
  expect_fsck_clean();
}

// With the smallest node size a value takes many parts.
TEST(FileSystemSmallNodesTest, XattrValuesUpToTheVfsLimit) {
  block::MemoryDevice device(64ull << 20);
  store::MkfsOptions options;
  options.node_size = 4096;
  ASSERT_OK(store::mkfs(device, options));
  {
    auto engine = must(store::Engine::open(device));
    ASSERT_OK(format_filesystem(*engine, kRoot));
  }
  Bytes value(65536);
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<uint8_t>(i % 253);
  {
    auto fs = must(FileSystem::open(device));
    const uint64_t ino = must(fs->mknod(kRootDirIno, "f", S_IFREG | 0644, 0, kRoot)).ino;
    ASSERT_OK(fs->setxattr(ino, "user.max", value, 0));
    ASSERT_OK(fs->setxattr(ino, "security.also", value, 0));
    ASSERT_OK(fs->close());
  }
  testing::expect_full_check_clean(device);
  auto fs = must(FileSystem::open(device));
  const uint64_t ino = must(fs->lookup(kRootDirIno, "f")).ino;
  EXPECT_EQ(must(fs->getxattr(ino, "user.max")), value);
  EXPECT_EQ(must(fs->getxattr(ino, "security.also")), value);
  ASSERT_OK(fs->close());
}

// "." of any inode is the inode, with a lookup reference (how the kernel
// resolves a file handle); ".." of a directory its parent; a removed inode
// is ENOENT.
TEST_F(FileSystemTest, DotLooksUpAnyInodeByNumber) {
  const uint64_t dir = must(fs_->mkdir(kRootDirIno, "d", 0755, kRoot)).ino;
  const uint64_t file = create(dir, "f");
  EXPECT_EQ(must(fs_->lookup(file, ".")).ino, file);
  EXPECT_EQ(must(fs_->lookup(dir, ".")).ino, dir);
  EXPECT_EQ(must(fs_->lookup(dir, "..")).ino, kRootDirIno);
  EXPECT_EQ(error_of(fs_->lookup(file, "..")), ENOTDIR);
  fs_->forget(file, 2);
  ASSERT_OK(fs_->unlink(dir, "f"));
  EXPECT_EQ(error_of(fs_->lookup(file, ".")), ENOENT);
}

// Space freed by a commit goes back to the device (MountOptions::discard):
// after a file is deleted, its blocks read as zeros and the memory device
// holds fewer blocks; without the option nothing is discarded.
TEST_F(FileSystemTest, FreedSpaceIsDiscardedAfterTheCommit) {
  for (bool discard : {false, true}) {
    SCOPED_TRACE(discard ? "discard" : "nodiscard");
    ASSERT_OK(fs_->close());
    MountOptions options;
    options.discard = discard;
    mount(options);
    const uint64_t file = create(kRootDirIno, "big");
    write(file, 0, std::string(4 << 20, 'b'));
    ASSERT_OK(fs_->sync());
    const size_t blocks_with_file = device_.allocated_blocks();
    const uint64_t discards = device_.discard_count();
    ASSERT_OK(fs_->unlink(kRootDirIno, "big"));
    fs_->forget(file, 1);
    ASSERT_OK(fs_->sync());
    if (discard) {
      EXPECT_GT(device_.discard_count(), discards);
      EXPECT_LE(device_.allocated_blocks() + 1000, blocks_with_file);
    } else {
      EXPECT_EQ(device_.discard_count(), discards);
      EXPECT_GE(device_.allocated_blocks(), blocks_with_file);
    }
    expect_fsck_clean();
  }
}

TEST_F(FileSystemTest, CloseIsFinal) {
  ASSERT_OK(fs_->close());
  EXPECT_EQ(error_of(fs_->getattr(kRootDirIno)), ESHUTDOWN);
  ASSERT_OK(fs_->close());
  fs_.reset();
  mount();
}

}  // namespace
}  // namespace ecfs::fs
