// A source tree of the size of a kernel tree through a real mount: a tar of
// what the machine has (/usr/include, /usr/lib/python3*, /usr/share) is
// unpacked into the mount and into a host directory, compared with `diff -r`
// and a walk of both trees (types, permission bits, sizes, link targets,
// hard link counts), then unmounted, checked with fsck, remounted and
// compared again.
//
// The default size is bounded to keep the test within a few minutes on a
// small machine (it prints what it took); ECFS_TREE_FILES and ECFS_TREE_MB
// raise or lower the bounds.
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

namespace stdfs = std::filesystem;

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::strtoull(value, nullptr, 0) : fallback;
}

struct TreeList {
  std::vector<std::string> entries;  // relative to "/", directories before their contents
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t bytes = 0;
};

// Regular files (up to 256 KiB each, so that the byte bound leaves room for many), directories and
// symlinks under `roots`, until `max_files` entries or `max_bytes` of file data.
TreeList collect_tree(const std::vector<std::string>& roots, uint64_t max_files,
                      uint64_t max_bytes) {
  TreeList list;
  // A root inside another (/usr/share/doc in /usr/share) is walked once, first.
  std::set<std::string> seen_roots;
  std::set<std::string> all_roots(roots.begin(), roots.end());
  for (const std::string& root : roots) {
    std::error_code error;
    if (!stdfs::is_directory(root, error) || !seen_roots.insert(root).second) continue;
    list.entries.push_back(root.substr(1));
    ++list.directories;
    for (stdfs::recursive_directory_iterator
             it(root, stdfs::directory_options::skip_permission_denied, error),
         end;
         it != end; it.increment(error)) {
      if (error) break;
      if (list.entries.size() >= max_files || list.bytes >= max_bytes) return list;
      struct stat st;
      if (lstat(it->path().c_str(), &st) != 0) continue;
      const std::string relative = it->path().string().substr(1);
      if (S_ISDIR(st.st_mode) && all_roots.count(it->path().string())) {
        it.disable_recursion_pending();  // walked already as a root of its own
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        list.entries.push_back(relative);
        ++list.directories;
      } else if (S_ISLNK(st.st_mode)) {
        list.entries.push_back(relative);
        ++list.symlinks;
      } else if (S_ISREG(st.st_mode) && st.st_size <= (256 << 10) &&
                 access(it->path().c_str(), R_OK) == 0) {
        list.entries.push_back(relative);
        ++list.files;
        list.bytes += static_cast<uint64_t>(st.st_size);
      }
    }
  }
  return list;
}

// What a walk of a tree sees of each entry, keyed by relative path.
using Shape = std::map<std::string, std::tuple<uint32_t, uint64_t, uint64_t, std::string>>;
Shape shape_of(const std::string& root) {
  Shape shape;
  std::error_code error;
  for (stdfs::recursive_directory_iterator it(root, error), end; it != end; it.increment(error)) {
    if (error) break;
    struct stat st;
    if (lstat(it->path().c_str(), &st) != 0) continue;
    std::string target;
    if (S_ISLNK(st.st_mode)) target = stdfs::read_symlink(it->path(), error).string();
    // Directory sizes differ between filesystems; nlink of directories too.
    const bool dir = S_ISDIR(st.st_mode);
    shape[it->path().string().substr(root.size())] = {
        st.st_mode, dir ? 0 : static_cast<uint64_t>(st.st_size), dir ? 0 : st.st_nlink, target};
  }
  return shape;
}

std::string seconds_since(std::chrono::steady_clock::time_point start) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return text;
}

// A directory for the archive and the host copy: in /dev/shm when it has
// room (deleting 60k files from a disk mounted with `discard` takes minutes),
// else in `fallback`. Removed with its contents.
class HostDir {
 public:
  HostDir(const std::string& fallback, uint64_t bytes_needed) {
    struct statvfs st;
    if (statvfs("/dev/shm", &st) == 0 && st.f_bavail * st.f_frsize > 3 * bytes_needed) {
      std::string pattern = "/dev/shm/ecfs-tree-XXXXXX";
      if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
    }
    if (path_.empty()) {
      path_ = fallback + "/host-side";
      mkdir(path_.c_str(), 0700);
    }
  }
  ~HostDir() {
    std::error_code ignored;
    stdfs::remove_all(path_, ignored);
  }
  HostDir(const HostDir&) = delete;
  HostDir& operator=(const HostDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

using TreeCopyTest = FuseTest;

TEST_F(TreeCopyTest, UntarOfALargeTreeMatchesTheHostCopyBeforeAndAfterRemount) {
  for (const char* tool : {"tar", "diff"}) {
    if (!kernel_test::program_available(tool)) GTEST_SKIP() << tool << " is not installed";
  }
  const uint64_t max_files = env_number("ECFS_TREE_FILES", 60000);
  const uint64_t max_bytes = env_number("ECFS_TREE_MB", 400) << 20;
  std::vector<std::string> roots = {"/usr/include"};
  std::error_code error;
  for (const auto& entry : stdfs::directory_iterator("/usr/lib", error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("python3", 0) == 0 && entry.is_directory()) roots.push_back(entry.path());
  }
  roots.push_back("/usr/share/doc");
  roots.push_back("/usr/share");  // the rest of it (doc is skipped as a repeated root)
  auto start = std::chrono::steady_clock::now();
  TreeList list = collect_tree(roots, max_files, max_bytes);
  std::printf("collecting the list: %s\n", seconds_since(start).c_str());
  std::printf(
      "source tree: %zu entries (%llu files, %llu directories, %llu symlinks, %llu MiB)"
      " from /usr/include, /usr/lib/python3*, /usr/share; limits %llu entries, %llu MiB\n",
      list.entries.size(), static_cast<unsigned long long>(list.files),
      static_cast<unsigned long long>(list.directories),
      static_cast<unsigned long long>(list.symlinks),
      static_cast<unsigned long long>(list.bytes >> 20), static_cast<unsigned long long>(max_files),
      static_cast<unsigned long long>(max_bytes >> 20));
  if (list.entries.size() < max_files && list.bytes < max_bytes) {
    std::printf("note: the machine has less than the limits; using all of it\n");
  }
  ASSERT_GT(list.files, 1000u) << "too little on this machine to make a tree";

  // A bigger image than the fixture's 1 GiB.
  ASSERT_NO_FATAL_FAILURE(unmount());
  ASSERT_EQ(unlink(image_.c_str()), 0);
  const Outcome made = ecfs({"mkfs", image_, "--size", "4G", "--quiet"});
  ASSERT_EQ(made.exit_status, 0) << made.describe();
  ASSERT_NO_FATAL_FAILURE(mount());

  const HostDir host_dir(scratch_.path(), 2 * list.bytes + (64 << 20));
  const std::string list_file = host_dir.file("list");
  {
    std::ofstream out(list_file);
    for (const std::string& entry : list.entries) out << entry << "\n";
  }
  const std::string archive = host_dir.file("tree.tar");
  auto packed = kernel_test::run_process({"tar", "-C", "/", "-cf", archive, "--no-recursion",
                                          "--verbatim-files-from", "-T", list_file});
  ASSERT_TRUE(packed.succeeded()) << packed.err;
  std::printf("tar -c: %s\n", seconds_since(start).c_str());

  const std::string host = host_dir.file("host");
  const std::string mounted = path("tree");
  ASSERT_EQ(mkdir(host.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(mounted.c_str(), 0755), 0);
  start = std::chrono::steady_clock::now();
  auto host_untar = kernel_test::run_process({"tar", "-C", host, "-xf", archive});
  ASSERT_TRUE(host_untar.succeeded()) << host_untar.err;
  std::printf("tar -x into the host directory: %s\n", seconds_since(start).c_str());
  start = std::chrono::steady_clock::now();
  auto mount_untar = kernel_test::run_process({"tar", "-C", mounted, "-xf", archive});
  ASSERT_TRUE(mount_untar.succeeded()) << mount_untar.err;
  std::printf("tar -x into the mount: %s\n", seconds_since(start).c_str());

  start = std::chrono::steady_clock::now();
  const Shape host_shape = shape_of(host);
  std::printf("walk of the host tree: %s\n", seconds_since(start).c_str());
  auto compare = [&](const char* when) {
    auto start_diff = std::chrono::steady_clock::now();
    auto diff = kernel_test::run_process({"diff", "-r", "--no-dereference", host, mounted});
    EXPECT_EQ(diff.exit_status, 0) << when << ": diff -r:\n"
                                   << diff.out.substr(0, 4000) << diff.err.substr(0, 2000);
    std::printf("diff -r %s: %s\n", when, seconds_since(start_diff).c_str());
    const auto start_walk = std::chrono::steady_clock::now();
    const Shape mounted_shape = shape_of(mounted);
    std::printf("walk of the mounted tree %s: %s\n", when, seconds_since(start_walk).c_str());
    EXPECT_EQ(mounted_shape.size(), host_shape.size()) << when;
    int reported = 0;
    for (const auto& [name, expected] : host_shape) {
      auto it = mounted_shape.find(name);
      if (it == mounted_shape.end()) {
        ADD_FAILURE() << when << ": " << name << " missing";
      } else if (it->second != expected) {
        ADD_FAILURE() << when << ": " << name << " differs: mode " << std::oct
                      << std::get<0>(it->second) << " vs " << std::get<0>(expected) << std::dec
                      << ", size " << std::get<1>(it->second) << " vs " << std::get<1>(expected)
                      << ", nlink " << std::get<2>(it->second) << " vs " << std::get<2>(expected)
                      << ", target '" << std::get<3>(it->second) << "' vs '"
                      << std::get<3>(expected) << "'";
      } else {
        continue;
      }
      if (++reported > 20) break;
    }
  };
  ASSERT_NO_FATAL_FAILURE(compare("after untar"));
  start = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(remount());  // unmount, fsck, mount
  std::printf("unmount + fsck + mount: %s\n", seconds_since(start).c_str());
  ASSERT_NO_FATAL_FAILURE(compare("after remount"));
}

}  // namespace
}  // namespace ecfs::fuse_test
