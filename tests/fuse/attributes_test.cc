// Attributes through a real mount: extended attributes, POSIX ACLs
// (setfacl / getfacl) enforced by the kernel against an unprivileged user,
// plain permission checks, chmod / chown / utimensat with nanoseconds, and
// statfs.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

using AttributesTest = FuseTest;

std::string get_xattr(const std::string& file, const char* name) {
  char buffer[65536];
  const ssize_t n = getxattr(file.c_str(), name, buffer, sizeof(buffer));
  return n < 0 ? std::string("<errno ") + std::to_string(errno) + ">" : std::string(buffer, n);
}

std::vector<std::string> list_xattrs(const std::string& file) {
  char buffer[65536];
  const ssize_t n = listxattr(file.c_str(), buffer, sizeof(buffer));
  std::vector<std::string> names;
  for (ssize_t i = 0; i < n;) {
    names.emplace_back(buffer + i);
    i += static_cast<ssize_t>(names.back().size()) + 1;
  }
  return names;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Values up to the VFS's limit (XATTR_SIZE_MAX, 64 KiB), as ext4 with
// ea_inode and XFS take them, kept across a remount; one byte more is
// E2BIG, which the kernel answers itself.
TEST_F(AttributesTest, ExtendedAttributeValuesUpTo64KiB) {
  const std::string file = path("x");
  ASSERT_TRUE(write_file(file, "data"));
  const std::string max = pattern(65536, 21);
  const std::string mid = pattern(30000, 22);
  ASSERT_EQ(setxattr(file.c_str(), "user.max", max.data(), max.size(), 0), 0)
      << std::strerror(errno);
  ASSERT_EQ(setxattr(file.c_str(), "user.mid", mid.data(), mid.size(), 0), 0);
  EXPECT_EQ(getxattr(file.c_str(), "user.max", nullptr, 0), 65536);
  EXPECT_EQ(get_xattr(file, "user.max"), max);
  const std::string over(65537, 'o');
  EXPECT_EQ(errno_of(setxattr(file.c_str(), "user.over", over.data(), over.size(), 0)), E2BIG);
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(get_xattr(file, "user.max"), max);
  EXPECT_EQ(get_xattr(file, "user.mid"), mid);
  ASSERT_EQ(setxattr(file.c_str(), "user.max", "small", 5, XATTR_REPLACE), 0);
  EXPECT_EQ(get_xattr(file, "user.max"), "small");
  ASSERT_EQ(removexattr(file.c_str(), "user.mid"), 0);
}

TEST_F(AttributesTest, ExtendedAttributes) {
  const std::string file = path("x");
  ASSERT_TRUE(write_file(file, "data"));

  ASSERT_EQ(setxattr(file.c_str(), "user.color", "blue", 4, 0), 0) << std::strerror(errno);
  EXPECT_EQ(get_xattr(file, "user.color"), "blue");
  // Size probe, then a buffer too small.
  EXPECT_EQ(getxattr(file.c_str(), "user.color", nullptr, 0), 4);
  char small[2];
  EXPECT_EQ(errno_of(getxattr(file.c_str(), "user.color", small, sizeof(small))), ERANGE);
  EXPECT_EQ(errno_of(getxattr(file.c_str(), "user.absent", nullptr, 0)), ENODATA);

  // XATTR_CREATE / XATTR_REPLACE.
  EXPECT_EQ(errno_of(setxattr(file.c_str(), "user.color", "red", 3, XATTR_CREATE)), EEXIST);
  EXPECT_EQ(errno_of(setxattr(file.c_str(), "user.absent", "x", 1, XATTR_REPLACE)), ENODATA);
  ASSERT_EQ(setxattr(file.c_str(), "user.color", "red", 3, XATTR_REPLACE), 0);
  EXPECT_EQ(get_xattr(file, "user.color"), "red");

  // Empty and large values; the trusted namespace (root only).
  ASSERT_EQ(setxattr(file.c_str(), "user.empty", "", 0, 0), 0);
  EXPECT_EQ(get_xattr(file, "user.empty"), "");
  const std::string large = pattern(4000, 11);
  ASSERT_EQ(setxattr(file.c_str(), "user.large", large.data(), large.size(), 0), 0);
  EXPECT_EQ(get_xattr(file, "user.large"), large);
  ASSERT_EQ(setxattr(file.c_str(), "trusted.secret", "t", 1, 0), 0) << std::strerror(errno);
  EXPECT_EQ(get_xattr(file, "trusted.secret"), "t");

  const auto names = list_xattrs(file);
  EXPECT_TRUE(contains(names, "user.color"));
  EXPECT_TRUE(contains(names, "user.empty"));
  EXPECT_TRUE(contains(names, "user.large"));
  EXPECT_TRUE(contains(names, "trusted.secret"));
  const ssize_t list_size = listxattr(file.c_str(), nullptr, 0);
  size_t expected_size = 0;
  for (const std::string& name : names) expected_size += name.size() + 1;
  EXPECT_EQ(list_size, static_cast<ssize_t>(expected_size));
  char tiny[4];
  EXPECT_EQ(errno_of(listxattr(file.c_str(), tiny, sizeof(tiny))), ERANGE);

  // An unprivileged user sees user.* names but not trusted.* ones (as
  // ext4 and btrfs list them: trusted_xattr_list needs CAP_SYS_ADMIN).
  EXPECT_EQ(errno_as_nobody([&] {
              const auto seen = list_xattrs(file);
              if (!contains(seen, "user.large")) return ENOENT;
              if (contains(seen, "trusted.secret")) return EEXIST;
              return 0;
            }),
            0);
  EXPECT_EQ(errno_as_nobody(
                [&] { return errno_of(getxattr(file.c_str(), "trusted.secret", nullptr, 0)); }),
            ENODATA);

  ASSERT_EQ(removexattr(file.c_str(), "user.color"), 0);
  EXPECT_EQ(errno_of(getxattr(file.c_str(), "user.color", nullptr, 0)), ENODATA);
  EXPECT_EQ(errno_of(removexattr(file.c_str(), "user.color")), ENODATA);
  EXPECT_EQ(errno_of(setxattr(file.c_str(), "bogus.name", "x", 1, 0)), EOPNOTSUPP);

  // Directories carry xattrs too.
  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0);
  ASSERT_EQ(setxattr(path("d").c_str(), "user.dir", "yes", 3, 0), 0);

  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(get_xattr(file, "user.large"), large);
  EXPECT_EQ(get_xattr(file, "trusted.secret"), "t");
  EXPECT_EQ(get_xattr(path("d"), "user.dir"), "yes");
  EXPECT_FALSE(contains(list_xattrs(file), "user.color"));
}

class AclTest : public FuseTest {
 protected:
  void SetUp() override {
    ECFS_SKIP_WITHOUT_FUSE();
    for (const char* tool : {"setfacl", "getfacl"}) {
      if (!kernel_test::program_available(tool)) GTEST_SKIP() << tool << " not installed (acl)";
    }
    FuseTest::SetUp();
  }

  kernel_test::ProcessResult setfacl(const std::vector<std::string>& arguments) {
    std::vector<std::string> argv = {"setfacl"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return kernel_test::run_process(argv);
  }
  std::string getfacl(const std::vector<std::string>& arguments) {
    std::vector<std::string> argv = {"getfacl", "--omit-header", "--numeric"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return kernel_test::run_process(argv).out;
  }
};

TEST_F(AclTest, AccessAclsAreEnforcedForOtherUsers) {
  const std::string open_file = path("open");  // 0644: nobody may read
  ASSERT_TRUE(write_file(open_file, "public", O_TRUNC, 0644));
  ASSERT_EQ(chmod(open_file.c_str(), 0644), 0);
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(open_file, O_RDONLY); }), 0);
  // A named-user entry with no rights shuts nobody out despite "other".
  auto set = setfacl({"-m", "u:65534:---", open_file});
  ASSERT_TRUE(set.succeeded()) << set.err;
  EXPECT_NE(getfacl({open_file}).find("user:65534:---"), std::string::npos) << getfacl({open_file});
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(open_file, O_RDONLY); }), EACCES);

  const std::string closed_file = path("closed");  // 0600: nobody may not
  ASSERT_TRUE(write_file(closed_file, "private", O_TRUNC, 0600));
  ASSERT_EQ(chmod(closed_file.c_str(), 0600), 0);
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(closed_file, O_RDONLY); }), EACCES);
  set = setfacl({"-m", "u:65534:r", closed_file});
  ASSERT_TRUE(set.succeeded()) << set.err;
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(closed_file, O_RDONLY); }), 0);
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(closed_file, O_WRONLY); }), EACCES);
  // The group bits of the mode show the ACL mask (POSIX.1e).
  EXPECT_EQ(stat_of(closed_file).st_mode & 07777, 0640u);

  // chmod rewrites the mask: group bits 0 take nobody's read right away.
  ASSERT_EQ(chmod(closed_file.c_str(), 0600), 0);
  EXPECT_NE(getfacl({closed_file}).find("mask::---"), std::string::npos) << getfacl({closed_file});
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(closed_file, O_RDONLY); }), EACCES);
  ASSERT_EQ(chmod(closed_file.c_str(), 0640), 0);
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(closed_file, O_RDONLY); }), 0);

  // Removing the ACL restores plain mode bits.
  set = setfacl({"-b", closed_file});
  ASSERT_TRUE(set.succeeded()) << set.err;
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(closed_file, O_RDONLY); }), EACCES);
  EXPECT_EQ(getfacl({closed_file}).find("user:65534"), std::string::npos);

  // ACLs persist.
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_NE(getfacl({open_file}).find("user:65534:---"), std::string::npos);
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(open_file, O_RDONLY); }), EACCES);
}

// Setting an access ACL clears set-group-ID when the caller is neither in
// the file's group nor holds CAP_FSETID, as chmod does (fs/posix_acl.c
// posix_acl_update_mode); the owner in the group, and root, keep it.
TEST_F(AclTest, SettingAnAclClearsSetGroupIdAsChmodDoes) {
  const auto make = [&](const std::string& name, gid_t group) {
    const std::string file = path(name);
    EXPECT_TRUE(write_file(file, "x", O_TRUNC, 0755));
    EXPECT_EQ(chown(file.c_str(), kNobodyUid, group), 0);
    EXPECT_EQ(chmod(file.c_str(), 02775), 0);
    return file;
  };
  const auto setfacl_as_nobody = [](const std::string& file) {
    return errno_as_nobody([&] {
      const std::string command = "setfacl -m u:1234:rw '" + file + "' 2>/dev/null";
      return std::system(command.c_str()) == 0 ? 0 : EPERM;
    });
  };
  const auto mode_of = [](const std::string& file) { return stat_of(file).st_mode & 07777; };

  // Owned by nobody, group root: nobody is not in it.
  const std::string foreign = make("foreign", 0);
  ASSERT_EQ(setfacl_as_nobody(foreign), 0);
  EXPECT_EQ(mode_of(foreign) & 02000, 0u) << std::oct << mode_of(foreign);
  EXPECT_NE(getfacl({foreign}).find("user:1234:rw-"), std::string::npos) << getfacl({foreign});
  // In its own group: kept.
  const std::string own = make("own", kNobodyGid);
  ASSERT_EQ(setfacl_as_nobody(own), 0);
  EXPECT_EQ(mode_of(own) & 02000, 02000u) << std::oct << mode_of(own);
  // Root (CAP_FSETID): kept.
  const std::string roots = make("roots", 0);
  ASSERT_TRUE(setfacl({"-m", "u:1234:rw", roots}).succeeded());
  EXPECT_EQ(mode_of(roots) & 02000, 02000u) << std::oct << mode_of(roots);
  // The same rule as chmod's, for comparison.
  const std::string chmodded = make("chmodded", 0);
  EXPECT_EQ(errno_as_nobody([&] { return errno_of(chmod(chmodded.c_str(), 02775)); }), 0);
  EXPECT_EQ(mode_of(chmodded) & 02000, 0u);
}

TEST_F(AclTest, DefaultAclsAreInheritedByNewFilesAndDirectories) {
  const std::string dir = path("shared");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  auto set = setfacl({"-d", "-m", "u:65534:rwx", dir});
  ASSERT_TRUE(set.succeeded()) << set.err;
  set = setfacl({"-m", "u:65534:rwx", dir});
  ASSERT_TRUE(set.succeeded()) << set.err;

  // Created by root with the test's umask: the default ACL, not the umask,
  // decides (POSIX.1e; the kernel leaves this to the filesystem with
  // FUSE_CAP_POSIX_ACL + FUSE_CAP_DONT_MASK).
  const mode_t old_umask = umask(077);
  const bool created = write_file(dir + "/file", "inherited", O_TRUNC, 0666);
  const int made_dir = mkdir((dir + "/sub").c_str(), 0777);
  umask(old_umask);
  ASSERT_TRUE(created);
  ASSERT_EQ(made_dir, 0);

  const std::string file_acl = getfacl({dir + "/file"});
  EXPECT_NE(file_acl.find("user:65534:rwx"), std::string::npos) << file_acl;
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(dir + "/file", O_WRONLY); }), 0) << file_acl;
  // The subdirectory inherits the default ACL as its own default too.
  const std::string sub_default = getfacl({"-d", dir + "/sub"});
  EXPECT_NE(sub_default.find("user:65534:rwx"), std::string::npos) << sub_default;
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(dir + "/sub/by-nobody", O_WRONLY | O_CREAT); }),
            0);
  EXPECT_EQ(stat_of(dir + "/sub/by-nobody").st_uid, kNobodyUid);
}

TEST_F(AttributesTest, PermissionsAreEnforcedForOtherUsers) {
  ASSERT_TRUE(write_file(path("private"), "p", O_TRUNC, 0600));
  ASSERT_TRUE(write_file(path("readable"), "r", O_TRUNC, 0604));
  ASSERT_EQ(chmod(path("private").c_str(), 0600), 0);
  ASSERT_EQ(chmod(path("readable").c_str(), 0604), 0);
  ASSERT_EQ(mkdir(path("closed").c_str(), 0700), 0);
  ASSERT_TRUE(write_file(path("closed/inside"), "i", O_TRUNC, 0644));
  ASSERT_EQ(mkdir(path("tmp").c_str(), 01777), 0);
  ASSERT_EQ(chmod(path("tmp").c_str(), 01777), 0);
  ASSERT_TRUE(write_file(path("tmp/roots"), "mine", O_TRUNC, 0666));
  ASSERT_EQ(chmod(path("tmp/roots").c_str(), 0666), 0);

  EXPECT_EQ(errno_as_nobody([&] { return open_errno(path("private"), O_RDONLY); }), EACCES);
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(path("readable"), O_RDONLY); }), 0);
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(path("readable"), O_WRONLY); }), EACCES);
  EXPECT_EQ(errno_as_nobody([&] {
              struct stat st;
              return errno_of(stat(path("closed/inside").c_str(), &st));
            }),
            EACCES);
  // The root directory (0755, root's) does not let nobody create.
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(path("new"), O_WRONLY | O_CREAT); }), EACCES);
  EXPECT_EQ(errno_as_nobody([&] { return errno_of(chmod(path("readable").c_str(), 0777)); }),
            EPERM);
  EXPECT_EQ(
      errno_as_nobody([&] { return errno_of(chown(path("readable").c_str(), kNobodyUid, -1)); }),
      EPERM);
  EXPECT_EQ(errno_as_nobody([&] { return errno_of(unlink(path("readable").c_str())); }), EACCES);

  // Sticky directory: nobody may create there, and may not remove root's file.
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(path("tmp/theirs"), O_WRONLY | O_CREAT); }), 0);
  const struct stat theirs = stat_of(path("tmp/theirs"));
  EXPECT_EQ(theirs.st_uid, kNobodyUid);
  EXPECT_EQ(theirs.st_gid, kNobodyGid);
  EXPECT_EQ(errno_as_nobody([&] { return errno_of(unlink(path("tmp/roots").c_str())); }), EPERM);
  EXPECT_EQ(errno_as_nobody([&] {
              return errno_of(rename(path("tmp/roots").c_str(), path("tmp/stolen").c_str()));
            }),
            EPERM);
  EXPECT_EQ(errno_as_nobody([&] { return errno_of(unlink(path("tmp/theirs").c_str())); }), 0);

  // A write by someone else clears set-user-ID (the kernel's
  // file_remove_privs sends the new mode).
  ASSERT_TRUE(write_file(path("setuid"), "x", O_TRUNC, 0777));
  ASSERT_EQ(chmod(path("setuid").c_str(), 04777), 0);
  EXPECT_EQ(errno_as_nobody([&] {
              const int fd = open(path("setuid").c_str(), O_WRONLY);
              if (fd < 0) return errno;
              const int result = write(fd, "y", 1) == 1 ? 0 : errno;
              close(fd);
              return result;
            }),
            0);
  EXPECT_EQ(stat_of(path("setuid")).st_mode & 07777, 0777u);
}

// Who clears set-user-ID and set-group-ID, and when, as on Linux (fs/attr.c
// setattr_should_drop_suidgid, fs/inode.c file_remove_privs): a write or
// truncate by a caller without CAP_FSETID clears set-user-ID, and
// set-group-ID when the file is group-executable or the caller is not in
// its group; root keeps them; a
// chown clears set-user-ID whoever does it. The server does this itself
// (FUSE_HANDLE_KILLPRIV_V2), so these are the server's rules seen from
// outside. File capabilities (security.capability) go at a write, also
// root's, but one set after data was written and still cached stays.
TEST_F(AttributesTest, WritesTruncatesAndChownsClearSetIdBitsAsLinuxDoes) {
  const auto make = [&](const std::string& name, mode_t mode) {
    const std::string file = path(name);
    EXPECT_TRUE(write_file(file, "data", O_TRUNC, 0777));
    EXPECT_EQ(chmod(file.c_str(), mode), 0);
    return file;
  };
  const auto write_as_nobody = [](const std::string& file, int flags) {
    return errno_as_nobody([&] {
      const int fd = open(file.c_str(), O_WRONLY | flags);
      if (fd < 0) return errno;
      const int result = write(fd, "more", 4) == 4 ? 0 : errno;
      close(fd);
      return result;
    });
  };
  const auto mode_of = [](const std::string& file) { return stat_of(file).st_mode & 07777; };

  const std::string both = make("both", 06777);
  EXPECT_EQ(write_as_nobody(both, O_APPEND), 0);
  EXPECT_EQ(mode_of(both), 0777u);
  EXPECT_EQ(read_file(both), "datamore");

  // Set-group-ID without group execute stays when the writer is in the
  // file's group, and goes when not (fs/attr.c setattr_should_drop_sgid).
  const std::string lock_marker = make("lock_marker", 02766);
  ASSERT_EQ(chown(lock_marker.c_str(), 0, kNobodyGid), 0);
  ASSERT_EQ(chmod(lock_marker.c_str(), 02766), 0);
  EXPECT_EQ(write_as_nobody(lock_marker, 0), 0);
  EXPECT_EQ(mode_of(lock_marker), 02766u);
  const std::string others_marker = make("others_marker", 02766);
  EXPECT_EQ(write_as_nobody(others_marker, 0), 0);
  EXPECT_EQ(mode_of(others_marker), 0766u);

  const std::string truncated = make("truncated", 04777);
  EXPECT_EQ(errno_as_nobody([&] { return errno_of(truncate(truncated.c_str(), 1)); }), 0);
  EXPECT_EQ(mode_of(truncated), 0777u);
  EXPECT_EQ(stat_of(truncated).st_size, 1);

  const std::string reopened = make("reopened", 04777);
  EXPECT_EQ(errno_as_nobody([&] { return open_errno(reopened, O_WRONLY | O_TRUNC); }), 0);
  EXPECT_EQ(mode_of(reopened), 0777u);

  // fallocate and copy_file_range (a reflink here) change data too.
  const std::string allocated = make("allocated", 04777);
  EXPECT_EQ(errno_as_nobody([&] {
              const int fd = open(allocated.c_str(), O_WRONLY);
              if (fd < 0) return errno;
              const int result = errno_of(fallocate(fd, 0, 0, 8192));
              close(fd);
              return result;
            }),
            0);
  EXPECT_EQ(mode_of(allocated), 0777u);
  const std::string copied = make("copied", 04777);
  const std::string source = make("source", 0644);
  EXPECT_EQ(errno_as_nobody([&] {
              const int in = open(source.c_str(), O_RDONLY);
              const int out = open(copied.c_str(), O_WRONLY);
              const int result = in < 0 || out < 0
                                     ? errno
                                     : errno_of(copy_file_range(in, nullptr, out, nullptr, 4, 0));
              close(in);
              close(out);
              return result;
            }),
            0);
  EXPECT_EQ(mode_of(copied), 0777u);

  const std::string roots = make("roots", 06777);
  ASSERT_TRUE(write_file(roots, "root writes", O_APPEND));
  ASSERT_EQ(truncate(roots.c_str(), 2), 0);
  {
    const int fd = open(roots.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fallocate(fd, 0, 0, 8192), 0);
    close(fd);
  }
  EXPECT_EQ(mode_of(roots), 06777u);

  const std::string chowned = make("chowned", 06755);
  ASSERT_EQ(chown(chowned.c_str(), kNobodyUid, kNobodyGid), 0);
  EXPECT_EQ(mode_of(chowned), 0755u);
  const std::string chowned_marker = make("chowned_marker", 06744);
  ASSERT_EQ(chown(chowned_marker.c_str(), kNobodyUid, kNobodyGid), 0);
  EXPECT_EQ(mode_of(chowned_marker), 02744u);
  // A directory keeps its bits (set-group-ID is inheritance there).
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  ASSERT_EQ(chmod(path("dir").c_str(), 02755), 0);
  ASSERT_EQ(chown(path("dir").c_str(), kNobodyUid, kNobodyGid), 0);
  EXPECT_EQ(mode_of(path("dir")), 02755u);

  // A valid version-2 capability set (linux/capability.h
  // vfs_cap_data: magic | effective, then permitted and inheritable words):
  // CAP_NET_RAW permitted and effective.
  const uint32_t capability[5] = {0x02000001, 1u << 13, 0, 0, 0};
  const std::string capable = make("capable", 0755);
  ASSERT_EQ(setxattr(capable.c_str(), "security.capability", capability, sizeof(capability), 0), 0);
  EXPECT_EQ(get_xattr(capable, "security.capability").size(), sizeof(capability));
  ASSERT_TRUE(write_file(capable, "x", O_APPEND));
  EXPECT_EQ(get_xattr(capable, "security.capability"), "<errno " + std::to_string(ENODATA) + ">");

  // Written (and still cached), then given capabilities, then flushed: the
  // write-back of the earlier data must not take them away.
  const std::string installed = path("installed");
  const int fd = open(installed.c_str(), O_WRONLY | O_CREAT, 0755);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "binary", 6), 6);
  ASSERT_EQ(fsetxattr(fd, "security.capability", capability, sizeof(capability), 0), 0);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  EXPECT_EQ(get_xattr(installed, "security.capability").size(), sizeof(capability));
  EXPECT_EQ(read_file(installed), "binary");
}

// When the server clears set-user-ID or set-group-ID itself (a write,
// fallocate, punch hole or zero range by a caller without CAP_FSETID), the
// kernel's cached mode must go at once: a statx that asks for the mode
// alone (as `stat -c %A` does), by the writer or right after, shows the
// cleared bits. (One that asks for the block count too is sent to the
// daemon anyway, as the kernel does not keep that under the write-back
// cache.)
TEST_F(AttributesTest, SetIdBitsClearedByTheServerShowAtOnce) {
  struct Case {
    const char* name;
    std::function<int(int fd)> change;
  };
  const std::vector<Case> cases = {
      {"write", [](int fd) { return pwrite(fd, "more", 4, 0) == 4 ? 0 : errno; }},
      {"fallocate", [](int fd) { return errno_of(fallocate(fd, 0, 0, 65536)); }},
      {"punch",
       [](int fd) {
         return errno_of(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
       }},
      {"zero", [](int fd) { return errno_of(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096)); }},
  };
  // Set-user-ID always goes; set-group-ID of a file that is not
  // group-executable goes only when the writer is not in the file's group
  // (fs/attr.c setattr_should_drop_sgid).
  struct Group {
    const char* name;
    gid_t gid;
    uint32_t mode_after;
  };
  const std::vector<Group> groups = {{"root's group", 0, 0666},
                                     {"the writer's group", kNobodyGid, 02666}};
  for (const Case& c : cases) {
    for (const Group& g : groups) {
      const std::string file = path(std::string(c.name) + "-" + std::to_string(g.gid));
      ASSERT_TRUE(write_file(file, std::string(8192, 'd'), O_TRUNC, 0666));
      ASSERT_EQ(chown(file.c_str(), 0, g.gid), 0);
      ASSERT_EQ(chmod(file.c_str(), 06666), 0);
      ASSERT_EQ(stat_of(file).st_mode & 07777, 06666u);
      // The child reports the mode its fstat saw, marked so that no errno
      // can be mistaken for it.
      constexpr int kModeMark = 0x100000;
      EXPECT_EQ(errno_as_nobody([&] {
                  const int fd = open(file.c_str(), O_RDWR);
                  if (fd < 0) return errno;
                  int result = c.change(fd);
                  struct statx st;
                  if (result == 0) {
                    result = errno_of(statx(fd, "", AT_EMPTY_PATH, STATX_MODE, &st));
                  }
                  close(fd);
                  return result == 0 ? static_cast<int>(kModeMark | (st.stx_mode & 07777)) : result;
                }),
                static_cast<int>(kModeMark | g.mode_after))
          << c.name << " in " << g.name << ": the writer's statx shows another mode (or an errno)";
      struct statx st;
      ASSERT_EQ(statx(AT_FDCWD, file.c_str(), 0, STATX_MODE, &st), 0);
      EXPECT_EQ(st.stx_mode & 07777, g.mode_after) << c.name << " in " << g.name;
    }
  }
}

// ctime never goes backwards, whoever stamps it: the kernel stamps a
// cached file's times itself (write-back cache) with its coarse clock, the
// daemon stamps what it changes (links, xattrs, directories), and both must
// read the same clock, or a later change can carry an earlier time.
TEST_F(AttributesTest, ChangeTimesNeverGoBackwards) {
  const std::string file = path("stamped");
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const auto ctime_of = [&] {
    struct stat st;
    EXPECT_EQ(fstat(fd, &st), 0);
    return std::pair<int64_t, int64_t>(st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  };
  auto last = ctime_of();
  const std::vector<std::pair<const char*, std::function<void()>>> changes = {
      {"write", [&] { ASSERT_EQ(pwrite(fd, "x", 1, 0), 1); }},
      {"link",
       [&] {
         ASSERT_EQ(link(file.c_str(), path("other").c_str()), 0);
         ASSERT_EQ(unlink(path("other").c_str()), 0);
       }},
      {"setxattr", [&] { ASSERT_EQ(fsetxattr(fd, "user.t", "1", 1, 0), 0); }},
      {"chmod", [&] { ASSERT_EQ(fchmod(fd, 0640), 0); }},
      {"truncate", [&] { ASSERT_EQ(ftruncate(fd, 0), 0); }},
  };
  for (int round = 0; round < 100; ++round) {
    for (const auto& [name, change] : changes) {
      change();
      const auto now = ctime_of();
      ASSERT_GE(now, last) << "round " << round << ": ctime went back at " << name << " ("
                           << last.first << "." << last.second << " -> " << now.first << "."
                           << now.second << ")";
      last = now;
    }
  }
  close(fd);
}

TEST_F(AttributesTest, ChmodChownAndUtimensatWithNanoseconds) {
  const std::string file = path("f");
  ASSERT_TRUE(write_file(file, "x"));
  const struct stat created = stat_of(file);

  ASSERT_EQ(chmod(file.c_str(), 0751), 0);
  EXPECT_EQ(stat_of(file).st_mode & 07777, 0751u);
  EXPECT_TRUE(S_ISREG(stat_of(file).st_mode));
  ASSERT_EQ(chmod(file.c_str(), 04755), 0);
  EXPECT_EQ(stat_of(file).st_mode & 07777, 04755u);

  ASSERT_EQ(chown(file.c_str(), 1234, 5678), 0);
  EXPECT_EQ(stat_of(file).st_uid, 1234u);
  EXPECT_EQ(stat_of(file).st_gid, 5678u);
  ASSERT_EQ(chown(file.c_str(), static_cast<uid_t>(-1), 42), 0);
  EXPECT_EQ(stat_of(file).st_uid, 1234u);
  EXPECT_EQ(stat_of(file).st_gid, 42u);
  // chown by root of a set-user-ID file clears the bit (the kernel does).
  EXPECT_EQ(stat_of(file).st_mode & 04000, 0u);
  const struct stat changed = stat_of(file);
  EXPECT_TRUE(changed.st_ctim.tv_sec > created.st_ctim.tv_sec ||
              (changed.st_ctim.tv_sec == created.st_ctim.tv_sec &&
               changed.st_ctim.tv_nsec >= created.st_ctim.tv_nsec));

  const struct timespec times[2] = {{1234567890, 123456789}, {1500000000, 987654321}};
  ASSERT_EQ(utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
  struct stat st = stat_of(file);
  EXPECT_EQ(st.st_atim.tv_sec, 1234567890);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);

  // UTIME_OMIT keeps one, UTIME_NOW takes the clock.
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  const struct timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_EQ(utimensat(AT_FDCWD, file.c_str(), omit_now, 0), 0);
  st = stat_of(file);
  EXPECT_EQ(st.st_atim.tv_sec, 1234567890);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_GE(st.st_mtim.tv_sec, now.tv_sec - 1);
  EXPECT_LE(st.st_mtim.tv_sec, now.tv_sec + 5);

  // Times on a directory and, without following, on a symlink.
  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, path("d").c_str(), times, 0), 0);
  ASSERT_EQ(symlink("f", path("l").c_str()), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, path("l").c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  EXPECT_EQ(stat_of(path("l")).st_mtim.tv_nsec, 987654321);

  ASSERT_EQ(utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
  ASSERT_NO_FATAL_FAILURE(remount());
  st = stat_of(file);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 42u);
  EXPECT_EQ(stat_of(path("d")).st_mtim.tv_nsec, 987654321);
}

TEST_F(AttributesTest, StatfsNumbersAreSane) {
  const struct statvfs empty = fs_stats();
  EXPECT_EQ(empty.f_bsize, 4096u);
  EXPECT_EQ(empty.f_frsize, 4096u);
  const uint64_t total = static_cast<uint64_t>(empty.f_blocks) * empty.f_frsize;
  EXPECT_LE(total, 1ull << 30);
  EXPECT_GT(total, 900ull << 20);
  EXPECT_LE(empty.f_bfree, empty.f_blocks);
  EXPECT_LE(empty.f_bavail, empty.f_bfree);
  EXPECT_GT(empty.f_bfree, empty.f_blocks * 9 / 10);
  EXPECT_EQ(empty.f_namemax, 255u);
  EXPECT_GE(empty.f_files, empty.f_ffree);
  EXPECT_GT(empty.f_ffree, 0u);

  // 32 MiB of data, committed, is 32 MiB less free space (plus metadata).
  constexpr uint64_t kData = 32ull << 20;
  ASSERT_TRUE(write_file(path("fill"), pattern(kData, 12)));
  const int fd = open(path("fill").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  const struct statvfs full = fs_stats();
  const uint64_t used = (empty.f_bfree - full.f_bfree) * full.f_frsize;
  EXPECT_GE(used, kData);
  EXPECT_LE(used, kData + (4ull << 20));
  EXPECT_EQ(full.f_files - full.f_ffree, empty.f_files - empty.f_ffree + 1);

  // df reads the same numbers; the mount's source is the image (root
  // mounts fuseblk: the loop device over it).
  if (kernel_test::program_available("df")) {
    const auto df = kernel_test::run_process({"df", "-P", mountpoint_});
    ASSERT_TRUE(df.succeeded()) << df.err;
    EXPECT_NE(df.out.find(mount_source(mountpoint_)), std::string::npos) << df.out;
  }
  EXPECT_EQ(mounted_image(mountpoint_), image_);
  EXPECT_EQ(mount_type(mountpoint_), "fuseblk.ecfs");

  // Freed when deleted (after the commit that frees it).
  ASSERT_EQ(unlink(path("fill").c_str()), 0);
  sync();
  ASSERT_NO_FATAL_FAILURE(remount());
  const struct statvfs emptied = fs_stats();
  EXPECT_LE(empty.f_bfree - std::min(empty.f_bfree, emptied.f_bfree), 256u)
      << "32 MiB were not given back";
}

}  // namespace
}  // namespace ecfs::fuse_test
