// A randomized model-based test of the namespace: random mkdir, mknod,
// symlink, link, unlink, rmdir, rename (plain, RENAME_NOREPLACE,
// RENAME_EXCHANGE; over existing targets; directories across parents),
// setxattr / removexattr, small writes and truncates, lookups and forgets,
// run against an in-memory model of the tree. Every call's result (errno
// included) must be what the model predicts; periodically the filesystem is
// synced and remounted, and then the whole tree, walked with readdir,
// lookup, getattr, read, readlink and the xattr calls, must equal the model,
// and the filesystem and engine checks must be clean.
//
// The model stands in for the kernel too: operations the VFS refuses before
// a FUSE filesystem sees them (a directory moved into itself, a target that
// is an ancestor of the source, names in a removed directory, user xattrs
// on special files) are not sent, as they never would be.
//
// ECFS_NAMESPACE_OPS sets the number of operations (default 4000),
// ECFS_NAMESPACE_SEED the seed (default: a fixed one; the seed is printed).
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "block/memory_device.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"

namespace ecfs::fs {
namespace {

using testing::error_of;
using testing::kRootCaller;
using testing::must;

template <typename T>
std::string error_text(const Result<T>& result) {
  return result ? "ok" : result.error().to_string();
}

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoull(text, nullptr, 10) : fallback;
}

// "EEXIST", ... ("0" for success): short enough to count outcomes by.
std::string errno_text(int value) {
  if (value == 0) return "0";
  const char* name = strerrorname_np(value);
  return name ? name : std::to_string(value);
}

// One inode of the model.
struct Node {
  uint32_t mode = 0;
  std::map<std::string, uint64_t> entries;  // directories: name -> inode
  uint64_t parent = 0;                      // directories
  bool removed = false;                     // directories: rmdir'ed (or replaced)
  uint32_t names = 0;                       // others: how many names
  std::string target;                       // symlinks
  std::string data;                         // regular files
  std::map<std::string, std::string> xattrs;
  uint64_t lookups = 0;  // kernel references the test holds
};

class NamespaceModel {
 public:
  explicit NamespaceModel(uint64_t seed) : rng_(seed) {
    testing::make_filesystem(device_);
    mount();
    Node root;
    root.mode = S_IFDIR | 0755;
    root.parent = kRootDirIno;
    nodes_[kRootDirIno] = root;
  }
  ~NamespaceModel() {
    if (fs_) (void)fs_->close();
  }

  void run(uint64_t operations) {
    uint64_t next_remount = 100 + pick(300);
    for (uint64_t op = 0; op < operations; ++op) {
      step_ = op;
      one_operation();
      if (::testing::Test::HasFatalFailure() || failures() > 20) return;
      if (pick(60) == 0) must(fs_->sync(), "sync");
      if (pick(150) == 0) verify_tree("walk before remount");
      if (op == next_remount) {
        remount_and_verify();
        next_remount = op + 100 + pick(300);
      }
    }
    remount_and_verify();
    std::printf(
        "namespace model: %llu operations, %llu remounts, %zu inodes at the end, outcomes: %s\n",
        static_cast<unsigned long long>(operations), static_cast<unsigned long long>(remounts_),
        nodes_.size(), outcome_summary().c_str());
  }

 private:
  uint64_t pick(uint64_t n) { return rng_() % n; }
  bool chance(uint64_t one_in) { return pick(one_in) == 0; }
  int failures() const {
    return ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
  }

  void mount() {
    MountOptions options;
    options.commit_interval = std::chrono::hours(1);  // commits only when the test asks
    fs_ = must(FileSystem::open(device_, options), "mount");
  }

  // ---- model queries ----

  static bool is_dir(const Node& node) { return S_ISDIR(node.mode); }
  uint32_t nlink(const Node& node) const {
    if (!is_dir(node)) return node.names;
    if (node.removed) return 0;
    uint32_t subdirs = 0;
    for (const auto& [name, ino] : node.entries) subdirs += is_dir(nodes_.at(ino)) ? 1 : 0;
    return 2 + subdirs;
  }
  uint64_t dir_size(const Node& node) const {
    uint64_t size = 0;
    for (const auto& [name, ino] : node.entries) size += 2 * name.size();
    return size;
  }
  uint64_t size_of(const Node& node) const {
    if (is_dir(node)) return dir_size(node);
    if (S_ISLNK(node.mode)) return node.target.size();
    return node.data.size();
  }
  // True when `ancestor` is `dir` or one of its ancestors.
  bool contains(uint64_t ancestor, uint64_t dir) const {
    for (uint64_t at = dir;; at = nodes_.at(at).parent) {
      if (at == ancestor) return true;
      if (at == kRootDirIno) return false;
    }
  }
  std::vector<uint64_t> inodes_where(const std::function<bool(const Node&)>& wanted) const {
    std::vector<uint64_t> out;
    for (const auto& [ino, node] : nodes_) {
      if (wanted(node)) out.push_back(ino);
    }
    return out;
  }
  uint64_t any_of(const std::vector<uint64_t>& inos) { return inos[pick(inos.size())]; }

  // A directory to work in: a live one, rarely a removed one still held.
  uint64_t random_dir() {
    if (chance(25)) {
      auto removed = inodes_where([](const Node& n) { return is_dir(n) && n.removed; });
      if (!removed.empty()) return any_of(removed);
    }
    return any_of(inodes_where([](const Node& n) { return is_dir(n) && !n.removed; }));
  }
  // A name from a small pool, so that names collide often; with
  // `too_long`, now and then one over NAME_MAX (the kernel refuses such
  // names itself before most calls, so only some operations get them).
  std::string random_name(bool too_long = false) {
    if (too_long && chance(150)) return std::string(256, 'L');
    static const char* const kNames[] = {"a", "b", "c", "d", "e", "f", "dir", "file", "x"};
    return kNames[pick(std::size(kNames))];
  }
  // Usually a name that exists in `dir` (when it has any), else any name.
  std::string name_in(uint64_t dir) {
    const Node& node = nodes_.at(dir);
    if (!node.entries.empty() && !chance(4)) {
      auto it = node.entries.begin();
      std::advance(it, pick(node.entries.size()));
      return it->first;
    }
    return random_name();
  }
  std::optional<uint64_t> entry(uint64_t dir, const std::string& name) const {
    const Node& node = nodes_.at(dir);
    auto it = node.entries.find(name);
    if (it == node.entries.end()) return std::nullopt;
    return it->second;
  }

  // ---- model changes ----

  void held(uint64_t ino) { ++nodes_.at(ino).lookups; }
  // An inode without names and references is gone.
  void maybe_drop(uint64_t ino) {
    const Node& node = nodes_.at(ino);
    if (nlink(node) == 0 && node.lookups == 0) nodes_.erase(ino);
  }
  void drop_name(uint64_t dir, const std::string& name) {
    const uint64_t ino = nodes_.at(dir).entries.at(name);
    nodes_.at(dir).entries.erase(name);
    Node& node = nodes_.at(ino);
    if (is_dir(node)) {
      node.removed = true;
    } else {
      --node.names;
    }
    maybe_drop(ino);
  }
  void add_name(uint64_t dir, const std::string& name, uint64_t ino) {
    nodes_.at(dir).entries[name] = ino;
    Node& node = nodes_.at(ino);
    if (is_dir(node)) {
      node.parent = dir;
    } else {
      ++node.names;
    }
  }

  // ---- checking results ----

  template <typename T>
  bool expect(const Result<T>& result, int expected, const std::string& what) {
    ++outcomes_[what.substr(0, what.find(' ')) + ":" + errno_text(expected)];
    const int actual = error_of(result);
    EXPECT_EQ(errno_text(actual), errno_text(expected))
        << "step " << step_ << ": " << what
        << (result ? std::string() : ": " + result.error().to_string());
    return actual == 0 && expected == 0;
  }

  std::string describe(uint64_t dir, const std::string& name) const {
    return std::to_string(dir) + "/" + (name.size() > 20 ? name.substr(0, 20) + "..." : name);
  }

  // The errno of making `name` in `dir` (mknod, mkdir, symlink, link).
  int create_errno(uint64_t dir, const std::string& name) const {
    if (name.size() > kMaxNameLength) return ENAMETOOLONG;
    if (nodes_.at(dir).removed) return ENOENT;
    if (entry(dir, name)) return EEXIST;
    return 0;
  }

  // ---- operations ----

  void one_operation() {
    switch (pick(23)) {
      case 0:
      case 1:
        return op_create();
      case 2:
      case 3:
        return op_mkdir();
      case 4:
        return op_symlink();
      case 5:
        return op_link();
      case 6:
      case 7:
      case 8:
        return op_unlink();
      case 9:
      case 10:
        return op_rmdir();
      case 11:
      case 12:
      case 13:
        return op_rename();
      case 14:
        return op_setxattr();
      case 15:
        return op_removexattr();
      case 16:
      case 17:
        return op_write();
      case 18:
        return op_truncate();
      case 19:
        return op_lookup();
      default:
        return op_forget();
    }
  }

  void after_create(const Result<Attributes>& made, uint32_t mode, uint64_t dir,
                    const std::string& name) {
    const uint64_t ino = made->ino;
    EXPECT_FALSE(nodes_.contains(ino)) << "step " << step_ << ": inode " << ino << " reused";
    EXPECT_EQ(made->mode, mode) << "step " << step_;
    Node node;
    node.mode = mode;
    nodes_[ino] = node;
    add_name(dir, name, ino);
    held(ino);
    EXPECT_EQ(made->nlink, nlink(nodes_.at(ino))) << "step " << step_;
  }

  void op_create() {
    const uint64_t dir = random_dir();
    const std::string name = random_name(true);
    static const uint32_t kTypes[] = {S_IFREG, S_IFREG, S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR};
    const uint32_t mode = kTypes[pick(std::size(kTypes))] | 0644;
    const uint64_t rdev = S_ISCHR(mode) ? makedev(1, 3) : 0;
    auto made = fs_->mknod(dir, name, mode, rdev, kRootCaller);
    if (expect(made, create_errno(dir, name), "mknod " + describe(dir, name))) {
      after_create(made, mode, dir, name);
    }
  }

  void op_mkdir() {
    const uint64_t dir = random_dir();
    const std::string name = random_name(true);
    auto made = fs_->mkdir(dir, name, 0755, kRootCaller);
    if (expect(made, create_errno(dir, name), "mkdir " + describe(dir, name))) {
      after_create(made, S_IFDIR | 0755, dir, name);
      nodes_.at(made->ino).parent = dir;
    }
  }

  void op_symlink() {
    const uint64_t dir = random_dir();
    const std::string name = random_name();
    const std::string target =
        "target-" + std::to_string(pick(100000)) + std::string(pick(60), 't');
    auto made = fs_->symlink(dir, name, target, kRootCaller);
    if (expect(made, create_errno(dir, name), "symlink " + describe(dir, name))) {
      after_create(made, S_IFLNK | 0777, dir, name);
      nodes_.at(made->ino).target = target;
    }
  }

  void op_link() {
    // Now and then a directory (EPERM: no hard links to directories).
    const bool of_dir = chance(20);
    auto sources = inodes_where([&](const Node& n) { return is_dir(n) == of_dir; });
    if (sources.empty()) return;
    const uint64_t source = any_of(sources);
    const uint64_t dir = random_dir();
    const std::string name = random_name(true);
    const Node& node = nodes_.at(source);
    const int name_errno = create_errno(dir, name);
    int expected = name_errno;
    if (is_dir(node) || node.names == 0) {
      // The VFS looks the new name up first (EEXIST, ENOENT in a removed
      // directory) and only then refuses a directory (EPERM) or an unlinked
      // file (ENOENT, vfs_link); send only what reaches the filesystem.
      if (name_errno != 0) return;
      expected = is_dir(node) ? EPERM : ENOENT;
    }
    auto linked = fs_->link(source, dir, name);
    if (expect(linked, expected, "link " + std::to_string(source) + " " + describe(dir, name))) {
      add_name(dir, name, source);
      held(source);
      EXPECT_EQ(linked->nlink, nlink(nodes_.at(source))) << "step " << step_;
    }
  }
  void op_unlink() {
    const uint64_t dir = random_dir();
    const std::string name = name_in(dir);
    auto target = entry(dir, name);
    int expected = 0;
    if (!target) {
      expected = ENOENT;
    } else if (is_dir(nodes_.at(*target))) {
      expected = EISDIR;
    }
    if (expect(fs_->unlink(dir, name), expected, "unlink " + describe(dir, name))) {
      drop_name(dir, name);
    }
  }

  void op_rmdir() {
    const uint64_t dir = random_dir();
    std::string name = name_in(dir);
    // Mostly a subdirectory, when there is one.
    std::vector<std::string> subdirs;
    for (const auto& [entry_name, ino] : nodes_.at(dir).entries) {
      if (is_dir(nodes_.at(ino))) subdirs.push_back(entry_name);
    }
    if (!subdirs.empty() && !chance(3)) name = subdirs[pick(subdirs.size())];
    auto target = entry(dir, name);
    int expected = 0;
    if (!target) {
      expected = ENOENT;
    } else if (!is_dir(nodes_.at(*target))) {
      expected = ENOTDIR;
    } else if (!nodes_.at(*target).entries.empty()) {
      expected = ENOTEMPTY;
    }
    if (expect(fs_->rmdir(dir, name), expected, "rmdir " + describe(dir, name))) {
      drop_name(dir, name);
    }
  }

  void op_rename() {
    auto live_dirs = inodes_where([](const Node& n) { return is_dir(n) && !n.removed; });
    const uint64_t from_dir = any_of(live_dirs);
    const uint64_t to_dir = chance(2) ? from_dir : any_of(live_dirs);
    const std::string from = name_in(from_dir);
    const std::string to = chance(3) ? random_name(true) : name_in(to_dir);
    const uint32_t flags = chance(5) ? kRenameNoReplace : chance(4) ? kRenameExchange : 0;
    auto source = entry(from_dir, from);
    auto target = entry(to_dir, to);
    // What the VFS refuses before the filesystem sees it (lock_rename's
    // trap in do_renameat2): a directory moved under itself, or a target
    // that is an ancestor of the source.
    if (source && is_dir(nodes_.at(*source)) && contains(*source, to_dir)) return;
    if (target && is_dir(nodes_.at(*target)) && contains(*target, from_dir)) return;

    int expected = 0;
    if (to.size() > kMaxNameLength) {
      expected = ENAMETOOLONG;
    } else if (!source) {
      expected = ENOENT;
    } else if (flags == kRenameExchange) {
      if (!target) expected = ENOENT;
    } else if (target) {
      const bool source_dir = is_dir(nodes_.at(*source));
      const bool target_dir = is_dir(nodes_.at(*target));
      if (flags == kRenameNoReplace) {
        expected = EEXIST;
      } else if (*target == *source) {
        expected = 0;  // two names of one inode: nothing happens (rename(2))
      } else if (source_dir && !target_dir) {
        expected = ENOTDIR;
      } else if (!source_dir && target_dir) {
        expected = EISDIR;
      } else if (target_dir && !nodes_.at(*target).entries.empty()) {
        expected = ENOTEMPTY;
      }
    }
    const std::string what = std::string("rename") +
                             (flags == kRenameNoReplace  ? "(noreplace) "
                              : flags == kRenameExchange ? "(exchange) "
                                                         : " ") +
                             describe(from_dir, from) + " -> " + describe(to_dir, to);
    if (!expect(fs_->rename(from_dir, from, to_dir, to, flags), expected, what)) return;
    if (flags == kRenameExchange) {
      const uint64_t a = *source, b = *target;
      nodes_.at(from_dir).entries[from] = b;
      nodes_.at(to_dir).entries[to] = a;
      if (is_dir(nodes_.at(a))) nodes_.at(a).parent = to_dir;
      if (is_dir(nodes_.at(b))) nodes_.at(b).parent = from_dir;
      return;
    }
    if (target && *target == *source) return;
    if (target) drop_name(to_dir, to);
    nodes_.at(from_dir).entries.erase(from);
    Node& moved = nodes_.at(*source);
    if (!is_dir(moved)) --moved.names;
    add_name(to_dir, to, *source);
  }

  // An inode the kernel could name: live ones, and unlinked ones still held.
  uint64_t random_inode() {
    return any_of(inodes_where([](const Node&) { return true; }));
  }

  void op_setxattr() {
    const uint64_t ino = random_inode();
    Node& node = nodes_.at(ino);
    // user.* only on regular files and directories (the VFS's
    // xattr_permission refuses the rest).
    const bool user_allowed = S_ISREG(node.mode) || is_dir(node);
    static const char* const kNames[] = {"user.one", "user.two", "trusted.three", "trusted.four"};
    const std::string name = kNames[user_allowed ? pick(4) : 2 + pick(2)];
    const std::string value(pick(100), static_cast<char>('a' + pick(26)));
    const int flags = chance(3) ? kXattrCreate : chance(2) ? kXattrReplace : 0;
    const bool exists = node.xattrs.contains(name);
    int expected = 0;
    if ((flags & kXattrCreate) && exists) expected = EEXIST;
    if ((flags & kXattrReplace) && !exists) expected = ENODATA;
    if (expect(fs_->setxattr(ino, name, as_bytes(value), flags), expected,
               "setxattr " + std::to_string(ino) + " " + name)) {
      node.xattrs[name] = value;
    }
  }

  void op_removexattr() {
    const uint64_t ino = random_inode();
    Node& node = nodes_.at(ino);
    std::string name = "trusted.three";
    if (!node.xattrs.empty() && !chance(3)) {
      auto it = node.xattrs.begin();
      std::advance(it, pick(node.xattrs.size()));
      name = it->first;
    }
    const int expected = node.xattrs.contains(name) ? 0 : ENODATA;
    if (expect(fs_->removexattr(ino, name), expected,
               "removexattr " + std::to_string(ino) + " " + name)) {
      node.xattrs.erase(name);
    }
  }

  uint64_t random_file() {
    auto files = inodes_where([](const Node& n) { return S_ISREG(n.mode); });
    return files.empty() ? 0 : any_of(files);
  }

  void op_write() {
    const uint64_t ino = random_file();
    if (ino == 0) return op_create();
    Node& node = nodes_.at(ino);
    const uint64_t offset = pick(3) == 0 ? node.data.size() : pick(20000);
    std::string data(1 + pick(3000), '\0');
    for (char& c : data) c = static_cast<char>('A' + pick(50));
    auto written = fs_->write(ino, offset, as_bytes(data));
    if (expect(written, 0, "write " + std::to_string(ino))) {
      EXPECT_EQ(*written, data.size());
      if (node.data.size() < offset + data.size()) node.data.resize(offset + data.size(), '\0');
      std::copy(data.begin(), data.end(), node.data.begin() + static_cast<ptrdiff_t>(offset));
    }
    if (chance(4)) check_contents(ino, "after write");
  }

  void op_truncate() {
    const uint64_t ino = random_file();
    if (ino == 0) return op_create();
    Node& node = nodes_.at(ino);
    const uint64_t size = pick(2) ? pick(node.data.size() + 1) : pick(25000);
    auto changed = fs_->setattr(ino, {.size = size});
    if (expect(changed, 0, "truncate " + std::to_string(ino))) {
      node.data.resize(size, '\0');
      EXPECT_EQ(changed->size, size);
    }
    if (chance(4)) check_contents(ino, "after truncate");
  }

  void op_lookup() {
    const uint64_t dir = random_dir();
    const std::string name = chance(3) ? random_name(true) : name_in(dir);
    auto target = entry(dir, name);
    int expected = target ? 0 : ENOENT;
    if (name.size() > kMaxNameLength) expected = ENAMETOOLONG;
    auto found = fs_->lookup(dir, name);
    if (expect(found, expected, "lookup " + describe(dir, name))) {
      EXPECT_EQ(found->ino, *target) << "step " << step_;
      const Node& node = nodes_.at(*target);
      EXPECT_EQ(found->mode, node.mode) << "step " << step_;
      EXPECT_EQ(found->nlink, nlink(node)) << "step " << step_ << " inode " << *target;
      EXPECT_EQ(found->size, size_of(node)) << "step " << step_ << " inode " << *target;
      held(*target);
    }
  }

  // The kernel drops the references of one inode it no longer caches.
  void op_forget() {
    auto referenced = inodes_where([](const Node& n) { return n.lookups > 0; });
    if (referenced.empty()) return;
    const uint64_t ino = any_of(referenced);
    Node& node = nodes_.at(ino);
    const uint64_t count = chance(2) ? node.lookups : 1 + pick(node.lookups);
    fs_->forget(ino, count);
    node.lookups -= count;
    const bool gone = nlink(node) == 0 && node.lookups == 0;
    maybe_drop(ino);
    ++outcomes_[gone ? "forget (deletes)" : "forget"];
    if (gone) {
      EXPECT_EQ(error_of(fs_->getattr(ino)), ENOENT) << "step " << step_ << " inode " << ino;
    }
  }

  // ---- whole-tree verification ----

  void check_contents(uint64_t ino, const std::string& when) {
    const Node& node = nodes_.at(ino);
    Bytes out(node.data.size() + 10);
    auto read = fs_->read(ino, 0, out);
    ASSERT_TRUE(read) << when << ": " << read.error().to_string();
    ASSERT_EQ(*read, node.data.size()) << "step " << step_ << " " << when << " inode " << ino;
    EXPECT_TRUE(std::equal(node.data.begin(), node.data.end(), out.begin()))
        << "step " << step_ << " " << when << ": contents of inode " << ino << " differ";
  }

  void check_attributes(uint64_t ino, const std::string& when) {
    const Node& node = nodes_.at(ino);
    auto attr = fs_->getattr(ino);
    ASSERT_TRUE(attr) << when << " inode " << ino << ": " << attr.error().to_string();
    const std::string what = when + ": inode " + std::to_string(ino);
    EXPECT_EQ(attr->mode, node.mode) << what;
    EXPECT_EQ(attr->nlink, nlink(node)) << what;
    EXPECT_EQ(attr->size, size_of(node)) << what;
    if (S_ISREG(node.mode)) check_contents(ino, when);
    if (S_ISLNK(node.mode)) {
      auto target = fs_->readlink(ino);
      EXPECT_EQ(target.value_or("(" + error_text(target) + ")"), node.target) << what;
    }
    for (const auto& [name, value] : node.xattrs) {
      auto stored = fs_->getxattr(ino, name);
      EXPECT_TRUE(stored) << what << " xattr " << name << ": " << error_text(stored);
      if (stored) {
        EXPECT_EQ(*stored, Bytes(value.begin(), value.end())) << what << " " << name;
      }
    }
    std::set<std::string> listed;
    auto list = fs_->listxattr(ino);
    EXPECT_TRUE(list) << what << ": " << error_text(list);
    const std::string names = list.value_or("");
    for (size_t at = 0; at < names.size();) {
      const size_t end = std::min(names.find('\0', at), names.size());
      listed.insert(names.substr(at, end - at));
      at = end + 1;
    }
    std::set<std::string> modelled;
    for (const auto& [name, value] : node.xattrs) modelled.insert(name);
    EXPECT_EQ(listed, modelled) << what;
  }

  // readdir / lookup / getattr over the tree from the root, against the
  // model; every inode of the model must be reached (or be held unlinked).
  void verify_tree(const std::string& when) {
    std::set<uint64_t> reached{kRootDirIno};
    std::vector<uint64_t> pending{kRootDirIno};
    while (!pending.empty() && !::testing::Test::HasFatalFailure()) {
      const uint64_t dir = pending.back();
      pending.pop_back();
      const Node& node = nodes_.at(dir);
      std::map<std::string, std::pair<uint64_t, uint8_t>> listed;
      ASSERT_TRUE(fs_->readdir(dir, 0, [&](const DirListEntry& e) {
        EXPECT_TRUE(listed.emplace(e.name, std::pair{e.ino, e.type}).second) << e.name;
        return true;
      }));
      const std::string where =
          when + ", step " + std::to_string(step_) + ", directory " + std::to_string(dir);
      EXPECT_EQ(listed["."].first, dir) << where;
      EXPECT_EQ(listed[".."].first, node.parent) << where;
      listed.erase(".");
      listed.erase("..");
      std::map<std::string, uint64_t> names;
      for (const auto& [name, at] : listed) names[name] = at.first;
      EXPECT_EQ(names, node.entries) << where;
      for (const auto& [name, ino] : node.entries) {
        auto it = listed.find(name);
        if (it != listed.end()) {
          EXPECT_EQ(it->second.second, dirent_type_of_mode(nodes_.at(ino).mode)) << where;
        }
        auto found = fs_->lookup(dir, name);
        ASSERT_TRUE(found) << where << " lookup " << name << ": " << found.error().to_string();
        EXPECT_EQ(found->ino, ino) << where << " " << name;
        fs_->forget(found->ino, 1);
        if (!reached.insert(ino).second) continue;
        check_attributes(ino, where);
        if (is_dir(nodes_.at(ino))) pending.push_back(ino);
      }
    }
    check_attributes(kRootDirIno, when);
    for (const auto& [ino, node] : nodes_) {
      if (reached.contains(ino)) continue;
      // Only unlinked inodes the kernel still references are off the tree.
      EXPECT_EQ(nlink(node), 0u) << when << ": inode " << ino << " not reached";
      EXPECT_GT(node.lookups, 0u) << when << ": inode " << ino;
      check_attributes(ino, when + " (unlinked, held)");
    }
  }

  void remount_and_verify() {
    ++remounts_;
    must(fs_->sync(), "sync");
    must(fs_->close(), "close");
    fs_.reset();
    // Unmounting ends every kernel reference: unlinked inodes go.
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      it->second.lookups = 0;
      it = nlink(it->second) == 0 ? nodes_.erase(it) : std::next(it);
    }
    const testing::FullCheck check = testing::full_check(device_);
    EXPECT_TRUE(check.clean()) << "after remount " << remounts_ << ", step " << step_ << "\n"
                               << check.problems();
    EXPECT_EQ(check.filesystem.inodes, nodes_.size());
    EXPECT_EQ(check.filesystem.orphans, 0u);
    EXPECT_TRUE(check.filesystem.warnings.empty()) << testing::joined(check.filesystem.warnings);
    mount();
    verify_tree("after remount " + std::to_string(remounts_));
  }

  std::string outcome_summary() const {
    // Grouped by operation: how often each errno was expected.
    std::string text;
    for (const auto& [key, count] : outcomes_) {
      text += (text.empty() ? "" : ", ") + key + "=" + std::to_string(count);
    }
    return text;
  }

  std::mt19937_64 rng_;
  block::MemoryDevice device_{256ull << 20};
  std::unique_ptr<FileSystem> fs_;
  std::map<uint64_t, Node> nodes_;
  std::map<std::string, uint64_t> outcomes_;
  uint64_t step_ = 0;
  uint64_t remounts_ = 0;
};

TEST(NamespaceModelTest, RandomOperationsMatchTheModel) {
  const uint64_t seed = env_number("ECFS_NAMESPACE_SEED", 20240611);
  const uint64_t operations = env_number("ECFS_NAMESPACE_OPS", 4000);
  std::printf("namespace model: seed %llu (ECFS_NAMESPACE_SEED)\n",
              static_cast<unsigned long long>(seed));
  NamespaceModel model(seed);
  model.run(operations);
}

// A second seed, so one default run covers more shapes.
TEST(NamespaceModelTest, RandomOperationsMatchTheModelSecondSeed) {
  const uint64_t seed = env_number("ECFS_NAMESPACE_SEED", 7) + 1;
  NamespaceModel model(seed);
  model.run(env_number("ECFS_NAMESPACE_OPS", 4000) / 2);
}

}  // namespace
}  // namespace ecfs::fs
