// Helpers for the end-to-end tests of a real FUSE mount: a fixture that
// makes an image, mounts it with `ecfs mount` and unmounts it with
// fusermount3 (then checks the image with `ecfs fsck`), waits with
// deadlines, child processes running as another user, and file helpers.
// Header-only: the test build compiles only tests/fuse/*_test.cc.
//
// Every wait has a deadline, so a hung daemon fails a test instead of
// hanging the suite.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../cli/cli_test_util.h"
#include "../kernel/subprocess.h"

namespace ecfs::fuse_test {

using cli_test::Outcome;
using cli_test::ScratchDir;
using namespace std::chrono_literals;

// The unprivileged user for permission tests (nobody / nogroup on Debian).
inline constexpr uid_t kNobodyUid = 65534;
inline constexpr gid_t kNobodyGid = 65534;

// The fuse module's parameter for offering FUSE over io_uring (Linux 6.14+).
inline constexpr const char* kRingOfferParameter = "/sys/module/fuse/parameters/enable_uring";

// Its value ("Y" or "N"), or nothing where the kernel lacks it.
inline std::optional<std::string> ring_offer() {
  std::ifstream file(kRingOfferParameter);
  std::string value;
  if (!file || !std::getline(file, value)) return std::nullopt;
  return value;
}

// Why the FUSE tests cannot run on this machine, or "" when they can.
inline std::string missing_prerequisite() {
  if (geteuid() != 0) {
    return "needs root (mounts FUSE filesystems and runs children as uid 65534)";
  }
  struct stat st;
  if (stat("/dev/fuse", &st) != 0 || !S_ISCHR(st.st_mode)) {
    return "/dev/fuse is missing (no fuse kernel module, or a container without it)";
  }
  if (!kernel_test::program_available("fusermount3")) return "fusermount3 is not installed";
  // The io_uring/ run of the suite (tests/CMakeLists.txt) is for the ring.
  if (std::getenv("ECFS_TEST_RING_RUN") != nullptr && ring_offer() != "Y") {
    return std::string("the io_uring/ run needs the kernel to offer FUSE over io_uring (") +
           kRingOfferParameter + ", Linux 6.14+)";
  }
  return "";
}

#define ECFS_SKIP_WITHOUT_FUSE()                                                           \
  do {                                                                                     \
    if (const std::string why = ::ecfs::fuse_test::missing_prerequisite(); !why.empty()) { \
      GTEST_SKIP() << "FUSE end-to-end tests skipped: " << why;                            \
    }                                                                                      \
  } while (0)

// Whether `text` contains `part` (daemon logs, command output).
inline bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Polls `condition` every 10 ms until it holds or `timeout` passes.
inline bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

// Checks that the mount whose daemon was killed answers `path` with
// ENOTCONN within 10 s, and that nothing succeeded or waited before. Over
// FUSE over io_uring the kernel tears the dead daemon's ring down in the
// background; until it has, a request handed to one of its entries fails
// with ECANCELED, or ECONNABORTED while the entries are taken down.
inline void expect_dead_mount(const std::string& path) {
  std::vector<int> errors;
  const bool gone = wait_until(
      [&] {
        struct stat st;
        errors.push_back(stat(path.c_str(), &st) == 0 ? 0 : errno);
        return errors.back() == ENOTCONN;
      },
      std::chrono::seconds(10));
  EXPECT_TRUE(gone) << "the dead mount does not answer ENOTCONN: " << std::strerror(errors.back());
  for (const int error : errors) {
    EXPECT_TRUE(error == ENOTCONN || error == ECANCELED || error == ECONNABORTED)
        << "the dead mount answered " << (error == 0 ? "success" : std::strerror(error));
  }
}

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
inline std::string unescape_mountinfo(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      out.push_back(static_cast<char>(std::stoi(field.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

// The filesystem type of the mount at `mountpoint` ("fuse.ecfs"), or "" if
// nothing is mounted there.
inline std::string mount_type(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, result;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point;
    fields >> id >> parent >> device >> root >> point;
    if (unescape_mountinfo(point) != mountpoint) continue;
    std::string field;
    while (fields >> field && field != "-") {
    }
    fields >> result;  // the last mount there wins (over-mounts)
  }
  return result;
}

inline bool is_mounted(const std::string& mountpoint) { return !mount_type(mountpoint).empty(); }

// The source of the mount at `mountpoint` ("" if nothing is mounted there).
inline std::string mount_source(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, result;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point, field, type, source;
    fields >> id >> parent >> device >> root >> point;
    if (unescape_mountinfo(point) != mountpoint) continue;
    while (fields >> field && field != "-") {
    }
    fields >> type >> source;
    result = unescape_mountinfo(source);
  }
  return result;
}

// The image a mount serves: its source, or for a fuseblk mount (root's
// default) the file behind its loop device.
inline std::string mounted_image(const std::string& mountpoint) {
  const std::string source = mount_source(mountpoint);
  if (mount_type(mountpoint) != "fuseblk.ecfs" || !source.starts_with("/dev/loop")) return source;
  std::ifstream in("/sys/block/" + source.substr(5) + "/loop/backing_file");
  std::string backing;
  std::getline(in, backing);
  return backing;
}

// True once no process holds the image's lock (the daemon has exited).
inline bool image_unlocked(const std::string& image) {
  const int fd = open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool free = flock(fd, LOCK_EX | LOCK_NB) == 0;
  close(fd);
  return free;
}

// Runs `action` in a child process as uid/gid `uid`/`gid` without
// supplementary groups; returns the errno it reports (0 = success), or -1
// if the child could not run or missed the deadline. `capabilities` (a mask
// of 1 << CAP_*) stay effective across the uid change (PR_SET_KEEPCAPS,
// then capset(2)).
inline int errno_as_user(uid_t uid, gid_t gid, const std::function<int()>& action,
                         uint32_t capabilities = 0) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(pipe_fds[0]);
    int result = -1;
    bool ready = setgroups(0, nullptr) == 0 &&
                 (capabilities == 0 || prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0) &&
                 setgid(gid) == 0 && setuid(uid) == 0;
    if (ready && capabilities != 0) {
      __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct data[2] = {};
      data[0].effective = data[0].permitted = capabilities;
      ready = syscall(SYS_capset, &header, data) == 0;
    }
    if (ready) result = action();
    (void)!write(pipe_fds[1], &result, sizeof(result));
    _exit(0);
  }
  close(pipe_fds[1]);
  int result = -1;
  pollfd ready = {pipe_fds[0], POLLIN, 0};
  if (poll(&ready, 1, 30000) == 1 && read(pipe_fds[0], &result, sizeof(result)) != sizeof(result)) {
    result = -1;
  }
  close(pipe_fds[0]);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return result;
}

inline int errno_as_nobody(const std::function<int()>& action) {
  return errno_as_user(kNobodyUid, kNobodyGid, action);
}

// open + close as an errno (0 = it opened).
inline int open_errno(const std::string& path, int flags, mode_t mode = 0644) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

// The errno of a call that returned `result` (0 when it succeeded).
inline int errno_of(long result) { return result < 0 ? errno : 0; }

inline bool write_file(const std::string& path, const std::string& data, int flags = O_TRUNC,
                       mode_t mode = 0644) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, mode);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return close(fd) == 0;
}

inline std::optional<std::string> read_file(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string data;
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

// Deterministic bytes that differ at every offset and between seeds.
inline std::string pattern(size_t size, uint32_t seed = 1) {
  std::string out(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out[i] = static_cast<char>(x);
  }
  return out;
}

inline struct stat stat_of(const std::string& path) {
  struct stat st;
  std::memset(&st, 0, sizeof(st));
  lstat(path.c_str(), &st);
  return st;
}

// A fresh image (ecfs mkfs --size 1G) mounted with `ecfs mount` for each
// test, unmounted with fusermount3 -u in TearDown and checked with fsck.
class FuseTest : public ::testing::Test {
 protected:
  ~FuseTest() override {
    // After a failed assertion: never leave a mount behind, or ScratchDir
    // would delete through it.
    if (!mountpoint_.empty() && is_mounted(mountpoint_)) {
      kernel_test::run_process({"fusermount3", "-u", "-z", mountpoint_});
    }
  }

  void SetUp() override {
    ECFS_SKIP_WITHOUT_FUSE();
    ASSERT_FALSE(scratch_.path().empty());
    // mkdtemp made it 0700; the permission tests' other user must get in.
    ASSERT_EQ(chmod(scratch_.path().c_str(), 0755), 0);
    image_ = scratch_.file("image");
    mountpoint_ = scratch_.file("mnt");
    ASSERT_EQ(mkdir(mountpoint_.c_str(), 0755), 0);
    const Outcome made = ecfs({"mkfs", image_, "--size", "1G", "--quiet"});
    ASSERT_EQ(made.exit_status, 0) << made.describe();
    ASSERT_NO_FATAL_FAILURE(mount());
  }

  void TearDown() override {
    if (!mounted_) return;
    ASSERT_NO_FATAL_FAILURE(unmount());
    expect_fsck_clean();
  }

  // Runs the ecfs binary with `arguments`.
  Outcome ecfs(const std::vector<std::string>& arguments, int timeout_seconds = 120) {
    std::vector<std::string> argv = {ECFS_BINARY};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return cli_test::run_program(argv, scratch_.path(), {}, timeout_seconds);
  }

  // `ecfs ARGS...` as uid/gid `uid` (no supplementary groups) with `input`
  // on standard input. The output files are opened before the switch of
  // user, so the child needs no write access to the scratch directory.
  Outcome ecfs_as(uid_t uid, const std::vector<std::string>& args, const std::string& input = {}) {
    std::vector<std::string> argv = {ECFS_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string in_path = scratch_.file(".as-in"), out_path = scratch_.file(".as-out"),
                      err_path = scratch_.file(".as-err");
    EXPECT_TRUE(write_file(in_path, input, O_TRUNC, 0600));
    const int in = open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    std::vector<char*> c_argv;
    for (std::string& arg : argv) c_argv.push_back(arg.data());
    c_argv.push_back(nullptr);
    Outcome run;
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(in, STDIN_FILENO);
      dup2(out, STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) _exit(126);
      execv(c_argv[0], c_argv.data());
      _exit(127);
    }
    close(in);
    close(out);
    close(err);
    if (pid < 0) return run;
    cli_test::wait_for_program(pid, 60, run);
    run.out = cli_test::read_whole_file(out_path);
    run.err = cli_test::read_whole_file(err_path);
    return run;
  }

  // `ecfs mount IMAGE MNT [extra]`; waits for the mount to show.
  void mount(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> arguments = {"mount", image_, mountpoint_};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    const Outcome mounted = ecfs(arguments, 60);
    ASSERT_EQ(mounted.exit_status, 0) << mounted.describe();
    ASSERT_TRUE(wait_until([&] { return is_mounted(mountpoint_); }, 10s))
        << "ecfs mount exited 0 but " << mountpoint_ << " is not in /proc/self/mountinfo";
    mounted_ = true;
  }

  // fusermount3 -u, then waits for the mount to go and for the daemon to
  // release the image (it commits first).
  void unmount() {
    ASSERT_NO_FATAL_FAILURE(unmount_path(mountpoint_));
    mounted_ = false;
    ASSERT_TRUE(wait_until([&] { return image_unlocked(image_); }, 60s))
        << "the ecfs daemon still holds " << image_ << " 60 s after the unmount";
  }

  static void unmount_path(const std::string& mountpoint) {
    kernel_test::ProcessResult unmounted;
    // EBUSY right after a child touched the mount is transient: retry.
    const bool done = wait_until(
        [&] {
          unmounted = kernel_test::run_process({"fusermount3", "-u", mountpoint});
          return unmounted.succeeded();
        },
        10s);
    ASSERT_TRUE(done) << "fusermount3 -u " << mountpoint << ": " << unmounted.err;
    ASSERT_TRUE(wait_until([&] { return !is_mounted(mountpoint); }, 10s));
  }

  // `ecfs mount -f [OPTIONS] IMAGE MNT` as a child this test can signal or
  // kill (output to `log`, /dev/null by default); returns its pid once the
  // mount shows.
  pid_t start_foreground_daemon(const std::vector<std::string>& options = {},
                                const std::string& log = "/dev/null") {
    std::vector<std::string> arguments = {ECFS_BINARY, "mount", "-f"};
    arguments.insert(arguments.end(), options.begin(), options.end());
    arguments.push_back(image_);
    arguments.push_back(mountpoint_);
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    const pid_t daemon = fork();
    EXPECT_GE(daemon, 0);
    if (daemon == 0) {
      const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      execv(ECFS_BINARY, argv.data());
      _exit(127);
    }
    EXPECT_TRUE(wait_until([&] { return is_mounted(mountpoint_); }, std::chrono::seconds(20)))
        << "ecfs mount -f did not mount " << mountpoint_;
    return daemon;
  }

  void remount(const std::vector<std::string>& extra = {}) {
    ASSERT_NO_FATAL_FAILURE(unmount());
    expect_fsck_clean();
    ASSERT_NO_FATAL_FAILURE(mount(extra));
  }

  void expect_fsck_clean() {
    const Outcome checked = ecfs({"fsck", image_});
    EXPECT_EQ(checked.exit_status, 0) << checked.describe();
  }

  std::string path(const std::string& name) const { return mountpoint_ + "/" + name; }

  struct statvfs fs_stats() const {
    struct statvfs st;
    std::memset(&st, 0, sizeof(st));
    EXPECT_EQ(statvfs(mountpoint_.c_str(), &st), 0) << std::strerror(errno);
    return st;
  }

  ScratchDir scratch_;
  std::string image_;
  std::string mountpoint_;
  bool mounted_ = false;
};

}  // namespace ecfs::fuse_test
