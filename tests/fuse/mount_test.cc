// `ecfs mount` itself: refusing a second mount of an image, clear errors
// for bad operands and options, the mount(8) helper form, read-only mounts,
// unmounting on SIGTERM, the readahead window, and ecfs's own ioctls
// (fuse/ioctl_abi.h).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <filesystem>
#include <thread>

#include "fuse/ioctl_abi.h"
#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

class MountTest : public FuseTest {
 protected:
  // Each of `options` makes `ecfs mount -o` fail with a usage error (exit
  // status 2) whose message names `named`, and mounts nothing.
  void expect_options_refused(std::initializer_list<const char*> options, const char* named) {
    const std::string other = scratch_.file("other");
    mkdir(other.c_str(), 0755);
    for (const char* bad : options) {
      const Outcome run = ecfs({"mount", "-o", bad, image_, other});
      EXPECT_EQ(run.exit_status, 2) << bad << "\n" << run.describe();
      EXPECT_TRUE(has(run.err, named)) << run.err;
      EXPECT_FALSE(is_mounted(other)) << bad;
    }
  }
};

TEST_F(MountTest, SecondMountOfTheSameImageIsRefused) {
  const std::string other = scratch_.file("other");
  ASSERT_EQ(mkdir(other.c_str(), 0755), 0);
  const Outcome second = ecfs({"mount", image_, other});
  EXPECT_EQ(second.exit_status, 1) << second.describe();
  EXPECT_TRUE(has(second.err, "image is in use")) << second.err;
  EXPECT_FALSE(is_mounted(other));
  // Also in the foreground, and read-only (a shared lock still conflicts).
  const Outcome foreground = ecfs({"mount", "-f", "-o", "ro", image_, other}, 30);
  EXPECT_EQ(foreground.exit_status, 1) << foreground.describe();
  EXPECT_TRUE(has(foreground.err, "image is in use")) << foreground.err;
  EXPECT_FALSE(is_mounted(other));
  // The first mount is unharmed.
  ASSERT_TRUE(write_file(path("still"), "works"));
  EXPECT_EQ(read_file(path("still")), "works");
}

// A user's habit: unmount, then check at once. The daemon may still be
// committing when fusermount3 returns; fsck waits for it rather than
// calling the image busy.
TEST_F(MountTest, FsckRightAfterUnmountWaitsForTheDaemon) {
  const std::string data(8 << 20, 'u');
  ASSERT_TRUE(write_file(path("big"), data));
  ASSERT_NO_FATAL_FAILURE(unmount_path(mountpoint_));
  mounted_ = false;
  const Outcome checked = ecfs({"fsck", image_});
  EXPECT_EQ(checked.exit_status, 0) << checked.describe();
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(read_file(path("big")), data);
}

TEST_F(MountTest, BadOperandsAndOptionsGiveClearErrors) {
  const std::string other = scratch_.file("other");
  ASSERT_EQ(mkdir(other.c_str(), 0755), 0);

  Outcome run = ecfs({"mount", scratch_.file("no-such-image"), other});
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_TRUE(has(run.err, "does not exist")) << run.err;

  const std::string zeros = scratch_.file("zeros");
  ASSERT_TRUE(write_file(zeros, std::string(1 << 20, '\0')));
  run = ecfs({"mount", zeros, other});
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_TRUE(has(run.err, "is not an ecfs image")) << run.err;

  run = ecfs({"mount", image_, scratch_.file("no-such-dir")});
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_TRUE(has(run.err, "mountpoint")) << run.err;
  EXPECT_TRUE(has(run.err, "does not exist")) << run.err;

  run = ecfs({"mount", image_, zeros});
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_TRUE(has(run.err, "is not a directory")) << run.err;

  run = ecfs({"mount", "-o", "rw,bogus", image_, other});
  EXPECT_EQ(run.exit_status, 2) << run.describe();
  EXPECT_TRUE(has(run.err, "unknown mount option 'bogus'")) << run.err;

  for (const char* commit : {"commit=soon", "commit=", "commit=-1", "commit=999999"}) {
    run = ecfs({"mount", "-o", commit, image_, other});
    EXPECT_EQ(run.exit_status, 2) << commit << "\n" << run.describe();
    EXPECT_TRUE(has(run.err, "commit=")) << run.err;
  }
  run = ecfs({"mount", image_});
  EXPECT_EQ(run.exit_status, 2) << run.describe();
  EXPECT_FALSE(is_mounted(other));
}

// A setting of the mount's backing device (/sys/class/bdi/<dev>/`name`).
std::string backing_device_value(const std::string& mountpoint, const std::string& name) {
  struct stat st {};
  if (stat(mountpoint.c_str(), &st) != 0) return "stat failed";
  // A fuseblk mount's device number is its loop device's; its own backing
  // device has a suffix (fs/fuse/inode.c fuse_bdi_init).
  const std::string suffix = mount_type(mountpoint) == "fuseblk.ecfs" ? "-fuseblk" : "";
  const std::string path = "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                           std::to_string(minor(st.st_dev)) + suffix + "/" + name;
  const auto value = read_file(path);
  if (!value) return "cannot read " + path;
  return value->substr(0, value->find('\n'));
}

std::string read_ahead_kb_of(const std::string& mountpoint) {
  return backing_device_value(mountpoint, "read_ahead_kb");
}

TEST_F(MountTest, ReadAheadWindowIsSetAtMount) {
  // 1024 KiB by default instead of the kernel's 128 (fuse/backing_device.h).
  EXPECT_EQ(read_ahead_kb_of(mountpoint_), "1024");
  ASSERT_NO_FATAL_FAILURE(remount({"-o", "read_ahead_kb=256"}));
  EXPECT_EQ(read_ahead_kb_of(mountpoint_), "256");
  ASSERT_NO_FATAL_FAILURE(remount({"-o", "read_ahead_kb=0"}));
  EXPECT_EQ(read_ahead_kb_of(mountpoint_), "128");

  // A mount point whose name /proc/self/mountinfo escapes.
  ASSERT_NO_FATAL_FAILURE(unmount());
  const std::string spaced = scratch_.file("mount point with spaces");
  ASSERT_EQ(mkdir(spaced.c_str(), 0755), 0);
  const Outcome mounted = ecfs({"mount", image_, spaced}, 60);
  ASSERT_EQ(mounted.exit_status, 0) << mounted.describe();
  EXPECT_EQ(read_ahead_kb_of(spaced), "1024");
  ASSERT_NO_FATAL_FAILURE(unmount_path(spaced));
  ASSERT_NO_FATAL_FAILURE(mount());

  expect_options_refused(
      {"read_ahead_kb=", "read_ahead_kb=lots", "read_ahead_kb=-1", "read_ahead_kb=65537"},
      "read_ahead_kb=");
}

TEST_F(MountTest, DirtyPageShareIsSetAtMount) {
  // 20% of the system's dirty limit without the strict per-mount limit by
  // default, instead of the kernel's strict 1% (fuse/backing_device.h).
  EXPECT_EQ(backing_device_value(mountpoint_, "max_ratio"), "20");
  EXPECT_EQ(backing_device_value(mountpoint_, "strict_limit"), "0");
  ASSERT_NO_FATAL_FAILURE(remount({"-o", "dirty_ratio=50"}));
  EXPECT_EQ(backing_device_value(mountpoint_, "max_ratio"), "50");
  ASSERT_NO_FATAL_FAILURE(remount({"-o", "dirty_ratio=0"}));
  EXPECT_EQ(backing_device_value(mountpoint_, "max_ratio"), "1");
  EXPECT_EQ(backing_device_value(mountpoint_, "strict_limit"), "1");

  // Scattered small writes with the larger share: what was written and
  // synced reads back after a remount.
  ASSERT_NO_FATAL_FAILURE(remount({}));
  const std::string file = path("scattered");
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const std::string block = pattern(4096, 9);
  for (off_t i = 0; i < 4096; ++i) {
    const off_t offset = ((i * 7919) % 4096) * 8192;
    ASSERT_EQ(pwrite(fd, block.data(), block.size(), offset), 4096);
  }
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  ASSERT_NO_FATAL_FAILURE(remount({}));
  const std::optional<std::string> back = read_file(file);
  ASSERT_TRUE(back.has_value());
  for (off_t i = 0; i < 4096; ++i) {
    ASSERT_EQ(back->compare(static_cast<size_t>(i) * 8192, 4096, block), 0) << i;
  }

  expect_options_refused({"dirty_ratio=", "dirty_ratio=half", "dirty_ratio=101"}, "dirty_ratio=");
}

TEST_F(MountTest, WritesNeedNoCapabilityLookupPerCall) {
  // ecfs takes FUSE_HANDLE_KILLPRIV_V2 (fuse/channel_io.h), so the kernel
  // marks the mount SB_NOSEC: only a file's first write(2) asks for
  // security.capability, not every one (libfuse's request trace counts the
  // GETXATTRs). Without the flag each of these writes costs a GETXATTR.
  ASSERT_NO_FATAL_FAILURE(unmount());
  const std::string log = scratch_.file("trace.log");
  pid_t daemon = 0;
  ASSERT_NO_FATAL_FAILURE(daemon = start_foreground_daemon({"-o", "debug"}, log));
  mounted_ = true;
  const int fd = open(path("written").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  const std::string piece = pattern(4096, 21);
  constexpr int kWrites = 50;
  for (int i = 0; i < kWrites; ++i) ASSERT_EQ(write(fd, piece.data(), piece.size()), 4096);
  ASSERT_EQ(close(fd), 0);
  ASSERT_NO_FATAL_FAILURE(unmount());
  int status = -1;
  const bool exited = wait_until([&] { return waitpid(daemon, &status, WNOHANG) == daemon; }, 30s);
  if (!exited) kill(daemon, SIGKILL);
  ASSERT_TRUE(exited) << "ecfs mount -f -o debug did not exit after the unmount";

  const std::optional<std::string> trace = read_file(log);
  ASSERT_TRUE(trace.has_value());
  ASSERT_TRUE(has(*trace, "opcode: WRITE")) << "no request trace in " << log;
  int lookups = 0;
  for (size_t at = trace->find("opcode: GETXATTR"); at != std::string::npos;
       at = trace->find("opcode: GETXATTR", at + 1)) {
    ++lookups;
  }
  EXPECT_LE(lookups, 2) << "GETXATTR requests for " << kWrites << " write(2) calls";
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(stat_of(path("written")).st_size, kWrites * 4096);
}

TEST_F(MountTest, MountHelperFormWorks) {
  ASSERT_TRUE(write_file(path("before"), "written before"));
  ASSERT_NO_FATAL_FAILURE(unmount());
  // As mount(8) runs /sbin/mount.fuse.ecfs: a link to the binary.
  const std::string helper = scratch_.file("mount.fuse.ecfs");
  ASSERT_EQ(symlink(ECFS_BINARY, helper.c_str()), 0);

  // -f is mount(8)'s "fake": everything is checked, nothing mounted.
  Outcome run =
      cli_test::run_program({helper, image_, mountpoint_, "-f", "-o", "rw"}, scratch_.path());
  EXPECT_EQ(run.exit_status, 0) << run.describe();
  EXPECT_FALSE(is_mounted(mountpoint_));
  run = cli_test::run_program({helper, image_, mountpoint_, "-o", "rw,bogus"}, scratch_.path());
  EXPECT_EQ(run.exit_status, 2) << run.describe();

  run = cli_test::run_program(
      {helper, image_, mountpoint_, "-n", "-o", "rw,noatime,commit=3,defaults,x-systemd.auto"},
      scratch_.path(), {}, 60);
  ASSERT_EQ(run.exit_status, 0) << run.describe();
  ASSERT_TRUE(wait_until([&] { return is_mounted(mountpoint_); }, 10s));
  mounted_ = true;
  // Root mounts fuseblk (over a loop device), so that sync(2) commits.
  EXPECT_EQ(mount_type(mountpoint_), "fuseblk.ecfs");
  EXPECT_EQ(read_file(path("before")), "written before");
  ASSERT_TRUE(write_file(path("after"), "written through the helper mount"));
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(path("after")), "written through the helper mount");

  // mount.ecfs, the other name, with -s (sloppy: unknown options ignored).
  ASSERT_NO_FATAL_FAILURE(unmount());
  const std::string short_helper = scratch_.file("mount.ecfs");
  ASSERT_EQ(symlink(ECFS_BINARY, short_helper.c_str()), 0);
  run = cli_test::run_program({short_helper, "-s", image_, mountpoint_, "-o", "ro,whatever"},
                              scratch_.path(), {}, 60);
  ASSERT_EQ(run.exit_status, 0) << run.describe();
  ASSERT_TRUE(wait_until([&] { return is_mounted(mountpoint_); }, 10s));
  mounted_ = true;
  EXPECT_EQ(open_errno(path("ro"), O_WRONLY | O_CREAT), EROFS);
}

TEST_F(MountTest, ReadOnlyMount) {
  ASSERT_TRUE(write_file(path("file"), "content"));
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(remount({"-o", "ro"}));
  EXPECT_EQ(read_file(path("file")), "content");
  EXPECT_EQ(open_errno(path("file"), O_WRONLY), EROFS);
  EXPECT_EQ(open_errno(path("new"), O_WRONLY | O_CREAT), EROFS);
  EXPECT_EQ(errno_of(mkdir(path("dir2").c_str(), 0755)), EROFS);
  EXPECT_EQ(errno_of(unlink(path("file").c_str())), EROFS);
  EXPECT_EQ(errno_of(setxattr(path("file").c_str(), "user.x", "1", 1, 0)), EROFS);
  EXPECT_EQ(errno_of(chmod(path("file").c_str(), 0600)), EROFS);
  struct statvfs st = fs_stats();
  EXPECT_TRUE(st.f_flag & ST_RDONLY);
}

// The per-mount options of the mount at `mountpoint` (mountinfo field 6).
std::string mount_options(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, result;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point, options;
    fields >> id >> parent >> device >> root >> point >> options;
    if (unescape_mountinfo(point) == mountpoint) result = options;
  }
  return "," + result + ",";
}

TEST_F(MountTest, GenericMountFlagsReachTheKernel) {
  EXPECT_TRUE(has(mount_options(mountpoint_), ",nosuid,")) << mount_options(mountpoint_);
  EXPECT_TRUE(has(mount_options(mountpoint_), ",nodev,")) << mount_options(mountpoint_);
  // Later options win: noatime over relatime.
  ASSERT_NO_FATAL_FAILURE(remount({"-o", "noexec,dev,suid,relatime,noatime,nodiratime"}));
  const std::string options = mount_options(mountpoint_);
  EXPECT_TRUE(has(options, ",noexec,")) << options;
  EXPECT_TRUE(has(options, ",noatime,")) << options;
  EXPECT_TRUE(has(options, ",nodiratime,")) << options;
  EXPECT_FALSE(has(options, ",nodev,")) << options;
  EXPECT_FALSE(has(options, ",nosuid,")) << options;
  // A device node opens on a dev mount.
  ASSERT_EQ(mknod(path("null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_TRUE(write_file(path("null"), "into the void"));
}

TEST_F(MountTest, SigtermUnmountsAndCommits) {
  ASSERT_NO_FATAL_FAILURE(unmount());
  pid_t daemon = 0;
  ASSERT_NO_FATAL_FAILURE(daemon = start_foreground_daemon({"-o", "commit=3600"}));
  // Not synced, with a commit interval of an hour: only the clean shutdown
  // (kernel write-back, then the final commit) can save it.
  const std::string data = pattern(1 << 20, 13);
  ASSERT_TRUE(write_file(path("unsynced"), data));

  ASSERT_EQ(kill(daemon, SIGTERM), 0);
  int status = -1;
  const bool exited = wait_until([&] { return waitpid(daemon, &status, WNOHANG) == daemon; }, 30s);
  if (!exited) kill(daemon, SIGKILL);
  ASSERT_TRUE(exited) << "ecfs mount -f did not exit within 30 s of SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_FALSE(is_mounted(mountpoint_));

  expect_fsck_clean();
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(read_file(path("unsynced")), data);
}

TEST_F(MountTest, SigtermOnABusyMountDetachesAndServesUntilReleased) {
  ASSERT_NO_FATAL_FAILURE(unmount());
  pid_t daemon = 0;
  ASSERT_NO_FATAL_FAILURE(daemon = start_foreground_daemon());
  const int fd = open(path("held").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "before", 6), 6);

  ASSERT_EQ(kill(daemon, SIGTERM), 0);
  // Busy: detached from the tree (like umount -l), still served.
  ASSERT_TRUE(wait_until([&] { return !is_mounted(mountpoint_); }, 10s));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(waitpid(daemon, nullptr, WNOHANG), 0) << "the daemon left while a file was open";
  EXPECT_EQ(pwrite(fd, " after", 6, 6), 6);
  char back[12] = {};
  EXPECT_EQ(pread(fd, back, sizeof(back), 0), 12);
  EXPECT_EQ(std::string(back, 12), "before after");

  // Releasing the last use ends the mount: the daemon commits and exits.
  close(fd);
  int status = -1;
  const bool exited = wait_until([&] { return waitpid(daemon, &status, WNOHANG) == daemon; }, 30s);
  if (!exited) kill(daemon, SIGKILL);
  ASSERT_TRUE(exited) << "the daemon did not exit after the detached mount was released";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  expect_fsck_clean();
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(read_file(path("held")), "before after");
}

TEST_F(MountTest, BackgroundDaemonStopsOnSigint) {
  // The daemon of SetUp's mount: its command line names the image.
  pid_t daemon = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto cmdline = read_file(entry.path().string() + "/cmdline");
    if (cmdline && has(*cmdline, std::string("mount") + '\0' + image_ + '\0')) {
      daemon = static_cast<pid_t>(std::stol(name));
    }
  }
  ASSERT_GT(daemon, 0) << "no daemon serving " << image_;
  ASSERT_TRUE(write_file(path("file"), "before SIGINT"));
  ASSERT_EQ(kill(daemon, SIGINT), 0);
  ASSERT_TRUE(wait_until([&] { return !is_mounted(mountpoint_); }, 30s));
  ASSERT_TRUE(wait_until([&] { return image_unlocked(image_); }, 30s));
  mounted_ = false;
  expect_fsck_clean();
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(read_file(path("file")), "before SIGINT");
}

// ---- ioctls ------------------------------------------------------------

template <typename Arg>
int ioctl_errno(int fd, unsigned command, Arg& arg) {
  return ioctl(fd, command, &arg) == 0 ? 0 : errno;
}

TEST_F(MountTest, EcfsIoctlsValidateTheirVersionAndNumbers) {
  using namespace ecfs::fuse;
  ASSERT_TRUE(write_file(path("file"), "x"));
  for (const std::string& target : {mountpoint_, path("file")}) {
    SCOPED_TRACE(target);
    const int fd = open(target.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);

    AddKeyArg add{};
    add.version = kIoctlAbiVersion;
    add.key_spec.type = kKeySpecTypeIdentifier;
    add.raw_size = 64;
    RemoveKeyArg remove{};
    remove.version = kIoctlAbiVersion;
    KeyStatusArg status{};
    status.version = kIoctlAbiVersion;
    PolicyArg policy{};
    policy.version = kIoctlAbiVersion;

    // Forwarded by the kernel and answered by the filesystem: an unencrypted
    // inode has no policy; an empty key specifier or policy is invalid
    // (tests/fuse/encryption_test.cc covers the commands themselves).
    EXPECT_EQ(ioctl_errno(fd, ECFS_IOC_REMOVE_KEY, remove), EINVAL);
    EXPECT_EQ(ioctl_errno(fd, ECFS_IOC_KEY_STATUS, status), EINVAL);
    EXPECT_EQ(ioctl_errno(fd, ECFS_IOC_SET_POLICY, policy), EINVAL);
    EXPECT_EQ(ioctl_errno(fd, ECFS_IOC_GET_POLICY, policy), ENODATA);

    // Unknown ABI versions are EINVAL.
    add.version = 0;
    remove.version = 2;
    status.version = 0xffffffff;
    policy.version = 7;
    EXPECT_EQ(ioctl_errno(fd, ECFS_IOC_ADD_KEY, add), EINVAL);
    EXPECT_EQ(ioctl_errno(fd, ECFS_IOC_REMOVE_KEY, remove), EINVAL);
    EXPECT_EQ(ioctl_errno(fd, ECFS_IOC_KEY_STATUS, status), EINVAL);
    EXPECT_EQ(ioctl_errno(fd, ECFS_IOC_SET_POLICY, policy), EINVAL);
    EXPECT_EQ(ioctl_errno(fd, ECFS_IOC_GET_POLICY, policy), EINVAL);

    // Numbers that are not ecfs's: ENOTTY, like any filesystem. fscrypt's
    // own GET_POLICY_EX reaches the server too and is refused the same way.
    PolicyArg other{};
    other.version = kIoctlAbiVersion;
    EXPECT_EQ(ioctl_errno(fd, _IOWR('E', 0x7f, PolicyArg), other), ENOTTY);
    EXPECT_EQ(ioctl_errno(fd, _IOWR('E', 0x40, PolicyArg), other), ENOTTY);  // wrong size
    uint8_t policy_ex[9 + 24] = {};
    policy_ex[0] = 24;
    EXPECT_EQ(ioctl_errno(fd, FS_IOC_GET_ENCRYPTION_POLICY_EX, policy_ex), ENOTTY);
    close(fd);
  }
}

TEST(IoctlAbiTest, LayoutIsFixed) {
  using namespace ecfs::fuse;
  // The numbers encode direction, type, number and size (asm-generic/ioctl.h).
  EXPECT_EQ(_IOC_DIR(ECFS_IOC_ADD_KEY), static_cast<unsigned>(_IOC_READ | _IOC_WRITE));
  EXPECT_EQ(_IOC_TYPE(ECFS_IOC_ADD_KEY), 'E');
  EXPECT_EQ(_IOC_SIZE(ECFS_IOC_ADD_KEY), 152u);
  EXPECT_EQ(_IOC_SIZE(ECFS_IOC_REMOVE_KEY), 72u);
  EXPECT_EQ(_IOC_SIZE(ECFS_IOC_KEY_STATUS), 80u);
  EXPECT_EQ(_IOC_SIZE(ECFS_IOC_SET_POLICY), 56u);
  EXPECT_EQ(_IOC_SIZE(ECFS_IOC_GET_POLICY), 56u);
  EXPECT_EQ(_IOC_NR(ECFS_IOC_ADD_KEY), 0x40u);
  EXPECT_EQ(_IOC_NR(ECFS_IOC_GET_POLICY), 0x44u);
  EXPECT_EQ(ECFS_IOC_ADD_KEY, 0xc0984540u);
  // Field offsets that the fscrypt issue and outside tools rely on.
  EXPECT_EQ(offsetof(AddKeyArg, key_spec), 8u);
  EXPECT_EQ(offsetof(AddKeyArg, raw_size), 48u);
  EXPECT_EQ(offsetof(AddKeyArg, raw), 56u);
  EXPECT_EQ(offsetof(RemoveKeyArg, removal_status_flags), 48u);
  EXPECT_EQ(offsetof(KeyStatusArg, status), 48u);
  EXPECT_EQ(offsetof(KeyStatusArg, user_count), 56u);
  EXPECT_EQ(offsetof(PolicyArg, policy), 8u);
  EXPECT_GE(sizeof(PolicyArg::policy), kPolicyV2Bytes);
  EXPECT_EQ(sizeof(AddKeyArg::raw), kMaxRawKeyBytes);
  EXPECT_EQ(ioctl_argument_size(ECFS_IOC_SET_POLICY), sizeof(PolicyArg));
  EXPECT_EQ(ioctl_argument_size(FS_IOC_GET_ENCRYPTION_POLICY_EX), 0u);
}

}  // namespace
}  // namespace ecfs::fuse_test
