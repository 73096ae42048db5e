// Names through a real mount: mkdir / rmdir, readdir of many entries across
// getdents batches, hard links, symlinks, special files, rename in all its
// forms (renameat2 flags included), and a `cp -a` of a tree checked with
// `diff -r`.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

int rename2(const std::string& from, const std::string& to, unsigned flags) {
  return static_cast<int>(
      syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags));
}

// Every name getdents64 returns for `dir`, read `buffer_size` bytes at a
// time, with how often each was seen; `batches` counts the calls.
std::map<std::string, int> list_with_getdents(const std::string& dir, size_t buffer_size,
                                              int* batches) {
  std::map<std::string, int> seen;
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return seen;
  std::vector<char> buffer(buffer_size);
  *batches = 0;
  for (;;) {
    const long n = syscall(SYS_getdents64, fd, buffer.data(), buffer.size());
    if (n <= 0) break;
    ++*batches;
    for (long offset = 0; offset < n;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buffer.data() + offset);
      ++seen[entry->d_name];
      offset += entry->d_reclen;
    }
  }
  close(fd);
  return seen;
}

using NamespaceTest = FuseTest;

TEST_F(NamespaceTest, MkdirAndRmdir) {
  const nlink_t root_links = stat_of(mountpoint_).st_nlink;
  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0);
  EXPECT_TRUE(S_ISDIR(stat_of(path("d")).st_mode));
  EXPECT_EQ(stat_of(path("d")).st_nlink, 2u);
  EXPECT_EQ(stat_of(mountpoint_).st_nlink, root_links + 1);
  EXPECT_EQ(errno_of(mkdir(path("d").c_str(), 0755)), EEXIST);
  EXPECT_EQ(errno_of(mkdir(path("missing/d").c_str(), 0755)), ENOENT);

  ASSERT_EQ(mkdir(path("d/sub").c_str(), 0700), 0);
  EXPECT_EQ(stat_of(path("d")).st_nlink, 3u);
  ASSERT_TRUE(write_file(path("d/file"), "x"));
  EXPECT_EQ(errno_of(rmdir(path("d").c_str())), ENOTEMPTY);
  EXPECT_EQ(errno_of(rmdir(path("d/file").c_str())), ENOTDIR);
  EXPECT_EQ(errno_of(unlink(path("d/sub").c_str())), EISDIR);
  EXPECT_EQ(errno_of(mkdir(path("d/file/x").c_str(), 0755)), ENOTDIR);
  EXPECT_EQ(errno_of(rmdir(path("d/nothing").c_str())), ENOENT);

  ASSERT_EQ(rmdir(path("d/sub").c_str()), 0);
  ASSERT_EQ(unlink(path("d/file").c_str()), 0);
  EXPECT_EQ(stat_of(path("d")).st_nlink, 2u);
  ASSERT_EQ(rmdir(path("d").c_str()), 0);
  struct stat st;
  EXPECT_EQ(errno_of(stat(path("d").c_str(), &st)), ENOENT);
  EXPECT_EQ(stat_of(mountpoint_).st_nlink, root_links);
}

TEST_F(NamespaceTest, ReaddirOfManyEntriesSeesEachOnceAcrossBatches) {
  constexpr int kEntries = 5000;
  const struct statvfs empty = fs_stats();
  const uint64_t inodes_before = empty.f_files - empty.f_ffree;
  ASSERT_EQ(mkdir(path("many").c_str(), 0755), 0);
  for (int i = 0; i < kEntries; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "entry-%05d", i);
    if (i % 10 == 0) {
      ASSERT_EQ(mkdir(path(std::string("many/") + name).c_str(), 0755), 0);
    } else {
      ASSERT_EQ(open_errno(path(std::string("many/") + name), O_WRONLY | O_CREAT), 0) << name;
    }
  }

  // Small buffers force many getdents calls, each continuing from the
  // cookie of the last entry the previous one returned.
  for (size_t buffer_size : {size_t{1024}, size_t{32768}}) {
    int batches = 0;
    const auto seen = list_with_getdents(path("many"), buffer_size, &batches);
    EXPECT_GT(batches, 1);
    EXPECT_EQ(seen.size(), static_cast<size_t>(kEntries + 2)) << "buffer " << buffer_size;
    EXPECT_EQ(seen.count("."), 1u);
    EXPECT_EQ(seen.count(".."), 1u);
    for (const auto& [name, count] : seen) EXPECT_EQ(count, 1) << name << " seen " << count << "x";
  }

  // The libc interface, with d_type and a stat of every entry (which the
  // kernel may serve from readdirplus).
  DIR* dir = opendir(path("many").c_str());
  ASSERT_NE(dir, nullptr);
  int directories = 0, files = 0;
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    const struct stat st = stat_of(path("many/" + name));
    if (entry->d_type == DT_DIR) {
      ++directories;
      EXPECT_TRUE(S_ISDIR(st.st_mode)) << name;
    } else {
      ++files;
      EXPECT_EQ(entry->d_type, DT_REG) << name;
      EXPECT_TRUE(S_ISREG(st.st_mode)) << name;
    }
    EXPECT_EQ(entry->d_ino, st.st_ino) << name;
  }
  closedir(dir);
  EXPECT_EQ(directories, kEntries / 10);
  EXPECT_EQ(files, kEntries - kEntries / 10);

  // Emptied again, the directory can go, and every inode is freed once
  // the kernel forgets it: the lookup references that lookup and
  // readdirplus handed out were counted exactly (one too many would keep
  // an unlinked inode as an orphan until unmount).
  for (int i = 0; i < kEntries; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "many/entry-%05d", i);
    if (i % 10 == 0) {
      ASSERT_EQ(rmdir(path(name).c_str()), 0) << name;
    } else {
      ASSERT_EQ(unlink(path(name).c_str()), 0) << name;
    }
  }
  int batches = 0;
  EXPECT_EQ(list_with_getdents(path("many"), 4096, &batches).size(), 2u);
  EXPECT_EQ(rmdir(path("many").c_str()), 0);
  const auto inodes_in_use = [&] {
    const struct statvfs st = fs_stats();
    return st.f_files - st.f_ffree;
  };
  EXPECT_TRUE(wait_until([&] { return inodes_in_use() == inodes_before; }, 20s))
      << inodes_in_use() << " inodes in use, " << inodes_before << " before";
}

// A listing whose entries are renamed away and back while it runs ends:
// each rename gives the name a new creation index, which a listing that
// followed every new index would meet again and again. The listing stops
// at the entries that existed when the directory was opened (as btrfs
// does); a rewind starts a listing that sees everything there is then.
TEST_F(NamespaceTest, ReaddirEndsWhileItsEntriesAreRenamedAwayAndBack) {
  constexpr int kEntries = 200;
  ASSERT_EQ(mkdir(path("moving").c_str(), 0755), 0);
  for (int i = 0; i < kEntries; ++i) {
    ASSERT_EQ(open_errno(path("moving/f" + std::to_string(i)), O_WRONLY | O_CREAT), 0);
  }
  const int fd = open(path("moving").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  // One getdents64 call of a few entries: their names, none at the end.
  std::vector<char> buffer(512);
  const auto next_names = [&]() -> std::optional<std::vector<std::string>> {
    const long n = syscall(SYS_getdents64, fd, buffer.data(), buffer.size());
    if (n < 0) return std::nullopt;
    std::vector<std::string> names;
    for (long offset = 0; offset < n;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buffer.data() + offset);
      offset += entry->d_reclen;
      names.emplace_back(entry->d_name);
    }
    return names;
  };
  std::map<std::string, int> seen;
  long listed = 0;
  for (;;) {
    const auto names = next_names();
    ASSERT_TRUE(names) << std::strerror(errno);
    if (names->empty()) break;
    for (const std::string& name : *names) {
      ++listed;
      ++seen[name];
      if (name == "." || name == "..") continue;
      const std::string from = path("moving/" + name);
      ASSERT_EQ(rename(from.c_str(), path("moving/away").c_str()), 0) << name;
      ASSERT_EQ(rename(path("moving/away").c_str(), from.c_str()), 0) << name;
    }
    ASSERT_LT(listed, 20 * kEntries) << "the listing does not end";
  }
  for (int i = 0; i < kEntries; ++i) {
    EXPECT_GE(seen["f" + std::to_string(i)], 1) << "f" << i << " was never listed";
  }
  EXPECT_EQ(seen.count("away"), 0u);
  // A name made after the opendir is not in this listing, but a rewind
  // starts one that has it.
  ASSERT_EQ(open_errno(path("moving/late"), O_WRONLY | O_CREAT), 0);
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  std::map<std::string, int> again;
  for (;;) {
    const auto names = next_names();
    ASSERT_TRUE(names) << std::strerror(errno);
    if (names->empty()) break;
    for (const std::string& name : *names) ++again[name];
  }
  close(fd);
  EXPECT_EQ(again.size(), static_cast<size_t>(kEntries + 3));
  EXPECT_EQ(again.count("late"), 1u);
}

TEST_F(NamespaceTest, MissingNamesAppearWhicheverWayTheyAreMade) {
  // A lookup of a missing name is cached by the kernel as a negative entry;
  // every way of making the name must still show it at once (and a removal
  // hide it again).
  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(path("source"), "source"));
  const std::vector<std::pair<std::string, std::function<int(const std::string&)>>> routes = {
      {"create", [](const std::string& p) { return write_file(p, "x") ? 0 : -1; }},
      {"mkdir", [](const std::string& p) { return mkdir(p.c_str(), 0755); }},
      {"symlink", [](const std::string& p) { return symlink("target", p.c_str()); }},
      {"fifo", [](const std::string& p) { return mkfifo(p.c_str(), 0644); }},
      {"link", [&](const std::string& p) { return link(path("source").c_str(), p.c_str()); }},
      {"rename",
       [&](const std::string& p) {
         if (!write_file(path("moving"), "m")) return -1;
         return rename(path("moving").c_str(), p.c_str());
       }},
  };
  for (const auto& [route, make] : routes) {
    SCOPED_TRACE(route);
    const std::string name = path("d/" + route);
    struct stat st;
    for (int attempt = 0; attempt < 2; ++attempt) {
      EXPECT_EQ(lstat(name.c_str(), &st), -1);
      EXPECT_EQ(errno, ENOENT);
    }
    ASSERT_EQ(make(name), 0) << std::strerror(errno);
    EXPECT_EQ(lstat(name.c_str(), &st), 0) << std::strerror(errno);
    // Made in another process too: the kernel is the same.
    EXPECT_EQ(errno_as_user(0, 0, [&] { return lstat(name.c_str(), &st) == 0 ? 0 : errno; }), 0);
    ASSERT_EQ(S_ISDIR(st.st_mode) ? rmdir(name.c_str()) : unlink(name.c_str()), 0);
    EXPECT_EQ(lstat(name.c_str(), &st), -1);
    EXPECT_EQ(errno, ENOENT);
  }
}

TEST_F(NamespaceTest, HardLinksAcrossDirectories) {
  ASSERT_EQ(mkdir(path("a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(path("b").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(path("a/f"), "shared"));
  ASSERT_EQ(link(path("a/f").c_str(), path("b/g").c_str()), 0);
  ASSERT_EQ(link(path("a/f").c_str(), path("a/h").c_str()), 0);
  const struct stat f = stat_of(path("a/f"));
  const struct stat g = stat_of(path("b/g"));
  EXPECT_EQ(f.st_ino, g.st_ino);
  EXPECT_EQ(f.st_nlink, 3u);
  EXPECT_EQ(g.st_nlink, 3u);

  ASSERT_TRUE(write_file(path("b/g"), "changed through g"));
  EXPECT_EQ(read_file(path("a/f")), "changed through g");

  EXPECT_EQ(errno_of(link(path("a/f").c_str(), path("b/g").c_str())), EEXIST);
  EXPECT_EQ(errno_of(link(path("a").c_str(), path("b/dirlink").c_str())), EPERM);
  EXPECT_EQ(errno_of(link(path("a/missing").c_str(), path("b/x").c_str())), ENOENT);

  ASSERT_EQ(unlink(path("a/f").c_str()), 0);
  EXPECT_EQ(stat_of(path("b/g")).st_nlink, 2u);
  ASSERT_EQ(unlink(path("a/h").c_str()), 0);
  EXPECT_EQ(stat_of(path("b/g")).st_nlink, 1u);
  EXPECT_EQ(read_file(path("b/g")), "changed through g");

  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(stat_of(path("b/g")).st_nlink, 1u);
  EXPECT_EQ(read_file(path("b/g")), "changed through g");
}

TEST_F(NamespaceTest, SymlinksAndReadlink) {
  ASSERT_TRUE(write_file(path("target"), "through the link"));
  ASSERT_EQ(symlink("target", path("rel").c_str()), 0);
  ASSERT_EQ(symlink("/nonexistent/absolute/target", path("dangling").c_str()), 0);
  const std::string long_target(1000, 'x');
  ASSERT_EQ(symlink(long_target.c_str(), path("long").c_str()), 0);

  char buffer[4096];
  ssize_t n = readlink(path("rel").c_str(), buffer, sizeof(buffer));
  EXPECT_EQ(std::string(buffer, n > 0 ? n : 0), "target");
  n = readlink(path("long").c_str(), buffer, sizeof(buffer));
  EXPECT_EQ(std::string(buffer, n > 0 ? n : 0), long_target);

  const struct stat link_stat = stat_of(path("rel"));
  EXPECT_TRUE(S_ISLNK(link_stat.st_mode));
  EXPECT_EQ(link_stat.st_size, 6);
  EXPECT_EQ(read_file(path("rel")), "through the link");
  EXPECT_EQ(open_errno(path("dangling"), O_RDONLY), ENOENT);
  EXPECT_EQ(errno_of(readlink(path("target").c_str(), buffer, sizeof(buffer))), EINVAL);
  EXPECT_EQ(errno_of(symlink("x", path("rel").c_str())), EEXIST);

  ASSERT_NO_FATAL_FAILURE(remount());
  n = readlink(path("dangling").c_str(), buffer, sizeof(buffer));
  EXPECT_EQ(std::string(buffer, n > 0 ? n : 0), "/nonexistent/absolute/target");
  EXPECT_EQ(read_file(path("rel")), "through the link");
}

TEST_F(NamespaceTest, SpecialFiles) {
  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0644), 0);
  EXPECT_TRUE(S_ISFIFO(stat_of(path("fifo")).st_mode));
  {
    // The pipe itself is the kernel's: it works on the mount.
    const int fd = open(path("fifo").c_str(), O_RDWR | O_NONBLOCK);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "pipe", 4), 4);
    char got[4];
    ASSERT_EQ(read(fd, got, 4), 4);
    EXPECT_EQ(std::string(got, 4), "pipe");
    close(fd);
  }

  ASSERT_EQ(mknod(path("socket").c_str(), S_IFSOCK | 0644, 0), 0);
  EXPECT_TRUE(S_ISSOCK(stat_of(path("socket")).st_mode));
  {
    // bind(2) makes a socket inode through mknod too.
    const int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(sock, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string socket_path = path("bound");
    ASSERT_LT(socket_path.size(), sizeof(address.sun_path));
    std::strcpy(address.sun_path, socket_path.c_str());
    EXPECT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0)
        << std::strerror(errno);
    close(sock);
    EXPECT_TRUE(S_ISSOCK(stat_of(socket_path).st_mode));
  }

  // Device nodes (root only; the mount is nodev, so they are not opened).
  ASSERT_EQ(mknod(path("null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(mknod(path("loop").c_str(), S_IFBLK | 0600, makedev(7, 0)), 0);
  struct stat st = stat_of(path("null"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  st = stat_of(path("loop"));
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 0));
  EXPECT_EQ(errno_of(mknod(path("fifo").c_str(), S_IFIFO | 0644, 0)), EEXIST);

  ASSERT_NO_FATAL_FAILURE(remount());
  st = stat_of(path("null"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  const mode_t process_umask = umask(0);
  umask(process_umask);
  EXPECT_EQ(st.st_mode & 07777, 0666u & ~process_umask);
  EXPECT_TRUE(S_ISFIFO(stat_of(path("fifo")).st_mode));
  EXPECT_TRUE(S_ISSOCK(stat_of(path("socket")).st_mode));
}

TEST_F(NamespaceTest, RenameOverExistingFilesAndDirectories) {
  ASSERT_TRUE(write_file(path("a"), "A"));
  ASSERT_TRUE(write_file(path("b"), "B"));
  const ino_t a_ino = stat_of(path("a")).st_ino;
  ASSERT_EQ(rename(path("a").c_str(), path("b").c_str()), 0);
  EXPECT_EQ(read_file(path("b")), "A");
  EXPECT_EQ(stat_of(path("b")).st_ino, a_ino);
  EXPECT_EQ(open_errno(path("a"), O_RDONLY), ENOENT);

  // Across directories.
  ASSERT_EQ(mkdir(path("d1").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(path("d2").c_str(), 0755), 0);
  ASSERT_EQ(rename(path("b").c_str(), path("d1/moved").c_str()), 0);
  EXPECT_EQ(read_file(path("d1/moved")), "A");

  // A directory over an empty directory; its ".." follows it.
  ASSERT_EQ(mkdir(path("d1/sub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(path("d2/empty").c_str(), 0755), 0);
  const nlink_t d1_links = stat_of(path("d1")).st_nlink;
  ASSERT_EQ(rename(path("d1/sub").c_str(), path("d2/empty").c_str()), 0);
  EXPECT_EQ(stat_of(path("d1")).st_nlink, d1_links - 1);
  EXPECT_EQ(stat_of(path("d2/empty/..")).st_ino, stat_of(path("d2")).st_ino);

  // Refusals.
  ASSERT_EQ(mkdir(path("full").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(path("full/x"), "x"));
  EXPECT_EQ(errno_of(rename(path("d2/empty").c_str(), path("full").c_str())), ENOTEMPTY);
  EXPECT_EQ(errno_of(rename(path("d2").c_str(), path("d1/moved").c_str())), ENOTDIR);
  EXPECT_EQ(errno_of(rename(path("d1/moved").c_str(), path("d2").c_str())), EISDIR);
  EXPECT_EQ(errno_of(rename(path("d2").c_str(), path("d2/empty/inside").c_str())), EINVAL);
  EXPECT_EQ(errno_of(rename(path("nothing").c_str(), path("x").c_str())), ENOENT);

  // Renaming one hard link onto another of the same inode does nothing.
  ASSERT_EQ(link(path("d1/moved").c_str(), path("d1/alias").c_str()), 0);
  ASSERT_EQ(rename(path("d1/moved").c_str(), path("d1/alias").c_str()), 0);
  EXPECT_EQ(read_file(path("d1/moved")), "A");
  EXPECT_EQ(read_file(path("d1/alias")), "A");

  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(path("d1/moved")), "A");
  EXPECT_TRUE(S_ISDIR(stat_of(path("d2/empty")).st_mode));
  EXPECT_EQ(stat_of(path("d1")).st_nlink, d1_links - 1);
}

TEST_F(NamespaceTest, RenameNoReplaceAndExchange) {
  ASSERT_TRUE(write_file(path("file"), "F"));
  ASSERT_TRUE(write_file(path("other"), "O"));
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(path("dir/inner"), "I"));

  EXPECT_EQ(errno_of(rename2(path("file"), path("other"), RENAME_NOREPLACE)), EEXIST);
  EXPECT_EQ(read_file(path("other")), "O");
  ASSERT_EQ(rename2(path("file"), path("fresh"), RENAME_NOREPLACE), 0);
  EXPECT_EQ(read_file(path("fresh")), "F");

  // Exchange a file and a directory.
  const ino_t file_ino = stat_of(path("fresh")).st_ino;
  const ino_t dir_ino = stat_of(path("dir")).st_ino;
  ASSERT_EQ(rename2(path("fresh"), path("dir"), RENAME_EXCHANGE), 0) << std::strerror(errno);
  EXPECT_EQ(stat_of(path("dir")).st_ino, file_ino);
  EXPECT_EQ(stat_of(path("fresh")).st_ino, dir_ino);
  EXPECT_EQ(read_file(path("dir")), "F");
  EXPECT_EQ(read_file(path("fresh/inner")), "I");

  // Exchange across directories, and with a missing name.
  ASSERT_EQ(rename2(path("other"), path("fresh/inner"), RENAME_EXCHANGE), 0);
  EXPECT_EQ(read_file(path("other")), "I");
  EXPECT_EQ(read_file(path("fresh/inner")), "O");
  EXPECT_EQ(errno_of(rename2(path("other"), path("absent"), RENAME_EXCHANGE)), ENOENT);
  EXPECT_EQ(errno_of(rename2(path("other"), path("x"), RENAME_EXCHANGE | RENAME_NOREPLACE)),
            EINVAL);

  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(path("dir")), "F");
  EXPECT_EQ(read_file(path("fresh/inner")), "O");
  EXPECT_EQ(read_file(path("other")), "I");
}

TEST_F(NamespaceTest, CpArchiveOfATreeMatchesDiff) {
  for (const char* tool : {"cp", "diff"}) {
    if (!kernel_test::program_available(tool)) GTEST_SKIP() << tool << " not installed";
  }
  // A tree on the host: nested directories, files of many sizes, a
  // symlink, a hard link, an empty file, odd permissions.
  const std::string source = scratch_.file("source");
  ASSERT_EQ(mkdir(source.c_str(), 0755), 0);
  for (int d = 0; d < 5; ++d) {
    const std::string dir = source + "/dir" + std::to_string(d);
    ASSERT_EQ(mkdir(dir.c_str(), 0700 + d), 0);
    ASSERT_EQ(mkdir((dir + "/nested").c_str(), 0755), 0);
    for (int f = 0; f < 20; ++f) {
      const size_t size = static_cast<size_t>((f * 7919 + d * 104729) % 300000);
      ASSERT_TRUE(write_file(dir + "/file" + std::to_string(f),
                             pattern(size, static_cast<uint32_t>(d * 100 + f))));
    }
    ASSERT_TRUE(write_file(dir + "/nested/deep", pattern(12345, d)));
  }
  ASSERT_TRUE(write_file(source + "/empty", ""));
  ASSERT_EQ(symlink("dir0/file3", (source + "/link").c_str()), 0);
  ASSERT_EQ(link((source + "/dir1/file1").c_str(), (source + "/hardlink").c_str()), 0);
  ASSERT_EQ(chmod((source + "/dir2/file2").c_str(), 04751), 0);

  const auto copied = kernel_test::run_process({"cp", "-a", source, path("copy")});
  ASSERT_TRUE(copied.succeeded()) << copied.err;
  const auto compared = kernel_test::run_process({"diff", "-r", source, path("copy")});
  EXPECT_TRUE(compared.succeeded()) << compared.out << compared.err;
  // cp -a keeps modes, times, symlinks and hard links.
  const struct stat original = stat_of(source + "/dir2/file2");
  const struct stat copy = stat_of(path("copy/dir2/file2"));
  EXPECT_EQ(copy.st_mode, original.st_mode);
  EXPECT_EQ(copy.st_mtim.tv_sec, original.st_mtim.tv_sec);
  EXPECT_EQ(copy.st_mtim.tv_nsec, original.st_mtim.tv_nsec);
  EXPECT_EQ(stat_of(path("copy/dir3")).st_mode, stat_of(source + "/dir3").st_mode);
  EXPECT_TRUE(S_ISLNK(stat_of(path("copy/link")).st_mode));
  EXPECT_EQ(stat_of(path("copy/hardlink")).st_ino, stat_of(path("copy/dir1/file1")).st_ino);

  ASSERT_NO_FATAL_FAILURE(remount());
  const auto again = kernel_test::run_process({"diff", "-r", source, path("copy")});
  EXPECT_TRUE(again.succeeded()) << again.out << again.err;
}

}  // namespace
}  // namespace ecfs::fuse_test
