#include "fuse/session.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include "base/log.h"
#include "fuse/backing_device.h"
#include "fuse/channel_io.h"
#include "fuse/libfuse.h"

extern char** environ;

namespace ecfs::fuse {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

// libfuse's option parser splits -o lists at commas and takes a backslash
// as an escape (lib/fuse_opt.c), so an image path may contain either.
std::string escape_option_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == ',' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string mount_option_list(const SessionOptions& options) {
  // default_permissions always: the filesystem checks only what the kernel
  // leaves to filesystems (fs/filesystem.h "Permissions").
  std::string list = "default_permissions,subtype=ecfs";
  if (options.block_device.empty()) {
    list += ",fsname=" + escape_option_value(options.fsname);
  } else {
    // The kernel opens the source as a block device (get_tree_bdev); the
    // block size only has to lie between the device's sector and a page.
    list += ",blkdev,blksize=4096,fsname=" + escape_option_value(options.block_device);
  }
  if (options.read_only) list += ",ro";
  if (options.allow_other) list += ",allow_other";
  for (const std::string& option : options.kernel_options) list += "," + option;
  return list;
}

// Runs fusermount3 with `arguments` and waits for it; true if it succeeded.
bool run_fusermount(std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), "fusermount3");
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, "fusermount3", nullptr, nullptr, argv.data(), environ) != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Unmounts while the loop still serves, so the kernel can write back its
// dirty pages through us first; lazily if the mount is busy.
void unmount_from_inside(const std::string& mountpoint) {
  if (geteuid() == 0) {
    if (umount2(mountpoint.c_str(), 0) == 0) return;
    if (errno == EBUSY) {
      fuse_log(FUSE_LOG_NOTICE, "ecfs: %s is busy; detaching it (served until no longer used)\n",
               mountpoint.c_str());
      if (umount2(mountpoint.c_str(), MNT_DETACH) == 0) return;
    }
    fuse_log(FUSE_LOG_ERR, "ecfs: unmounting %s failed: %s\n", mountpoint.c_str(),
             std::strerror(errno));
    return;
  }
  if (run_fusermount({"-u", "-q", mountpoint})) return;
  if (!run_fusermount({"-u", "-z", "-q", mountpoint})) {
    fuse_log(FUSE_LOG_ERR, "ecfs: fusermount3 could not unmount %s\n", mountpoint.c_str());
  }
}

// The thread that receives SIGINT / SIGTERM / SIGHUP (blocked everywhere,
// read from a signalfd) and turns the first into an unmount.
class StopSignalWatcher {
 public:
  StopSignalWatcher(fs::FileSystem& filesystem, std::string mountpoint)
      : filesystem_(filesystem), mountpoint_(std::move(mountpoint)) {}
  ~StopSignalWatcher() { stop(); }
  StopSignalWatcher(const StopSignalWatcher&) = delete;
  StopSignalWatcher& operator=(const StopSignalWatcher&) = delete;

  Status start() {
    const sigset_t signals = stop_signals();
    signal_fd_ = signalfd(-1, &signals, SFD_CLOEXEC);
    if (signal_fd_ < 0) return fail(errno, std::string("signalfd: ") + std::strerror(errno));
    wake_fd_ = eventfd(0, EFD_CLOEXEC);
    if (wake_fd_ < 0) return fail(errno, std::string("eventfd: ") + std::strerror(errno));
    thread_ = std::thread([this] { watch(); });
    return ok();
  }

  void stop() {
    if (thread_.joinable()) {
      const uint64_t one = 1;
      (void)!write(wake_fd_, &one, sizeof(one));
      thread_.join();
    }
    for (int* fd : {&signal_fd_, &wake_fd_}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

 private:
  void watch() {
    int received = 0;
    for (;;) {
      pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      signalfd_siginfo info;
      if (read(signal_fd_, &info, sizeof(info)) != static_cast<ssize_t>(sizeof(info))) continue;
      if (++received == 1) {
        fuse_log(FUSE_LOG_NOTICE, "ecfs: %s received, unmounting %s\n", strsignal(info.ssi_signo),
                 mountpoint_.c_str());
        unmount_from_inside(mountpoint_);
      } else {
        // The mount is still busy and the user insists: keep what reached
        // us and go; processes still inside see ENOTCONN.
        fuse_log(FUSE_LOG_WARNING, "ecfs: second signal, committing and exiting\n");
        (void)filesystem_.sync();
        _exit(1);
      }
    }
  }

  fs::FileSystem& filesystem_;
  std::string mountpoint_;
  int signal_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
};

void syslog_sink(fuse_log_level level, const char* format, va_list arguments) {
  // fuse_log_level mirrors syslog's priorities (fuse_log.h).
  vsyslog(static_cast<int>(level), format, arguments);
}

// Applies a backing-device setting `name`=`value` (0: keep the kernel's)
// through `set`. A failure is a warning when the option was given, and
// silent otherwise (a mount by a user may not write sysfs).
void apply_device_setting(const char* name, uint32_t value, bool required,
                          const std::function<Status()>& set) {
  if (value == 0) return;
  if (Status applied = set(); !applied && required) {
    fuse_log(FUSE_LOG_WARNING, "ecfs: %s=%u not applied: %s\n", name, value,
             applied.error().message().c_str());
  }
}

struct SessionDeleter {
  void operator()(fuse_session* session) const { fuse_session_destroy(session); }
};

}  // namespace

void block_stop_signals() {
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A reader that went away must not kill the daemon (libfuse writes
  // replies to /dev/fuse, fusermount3 talks over a socket).
  signal(SIGPIPE, SIG_IGN);
}

void log_to_syslog() {
  openlog("ecfs", LOG_PID, LOG_DAEMON);
  fuse_set_log_func(syslog_sink);
  log::use_syslog();
}

Status serve(fs::FileSystem& filesystem, const std::string& mountpoint,
             const SessionOptions& options, const std::function<void()>& on_mounted) {
  AdapterOptions adapter_options = options.adapter;
  adapter_options.max_readahead = options.read_ahead_kb * 1024;
  Adapter adapter(filesystem, adapter_options, options.on_closed);

  std::vector<std::string> arguments = {"ecfs", "-o", mount_option_list(options)};
  if (options.debug) arguments.emplace_back("-d");
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(arguments.size()), argv.data());
  std::unique_ptr<fuse_session, SessionDeleter> session(
      fuse_session_new(&args, &Adapter::operations(), sizeof(fuse_lowlevel_ops), &adapter));
  fuse_opt_free_args(&args);
  if (!session) return fail(EINVAL, "libfuse refused the mount options");
  adapter.set_session(session.get());
  // The session goes before the Adapter: it must not be named after that.
  struct ForgetSession {
    Adapter& adapter;
    ~ForgetSession() { adapter.set_session(nullptr); }
  } forget_session{adapter};

  if (fuse_session_mount(session.get(), mountpoint.c_str()) != 0) {
    // libfuse has printed the reason (fusermount3's or mount(2)'s).
    return fail(EIO, "mounting on " + mountpoint + " failed");
  }
  if (options.mount_flags) {
    if (Status changed = change_mount_flags(mountpoint, *options.mount_flags); !changed) {
      fuse_session_unmount(session.get());
      return changed;
    }
  }
  ChannelOptions channel_options;
  channel_options.io_uring = options.io_uring;
  channel_options.sync_filesystem = [&filesystem] { return filesystem.sync(); };
  if (Status hooked = install_channel_io(session.get(), channel_options); !hooked) {
    fuse_session_unmount(session.get());
    return hooked;
  }

  // The kernel sent INIT with the backing device's readahead when it
  // mounted; its reply (op_init) asks for read_ahead_kb, and the kernel keeps
  // the smaller of that and the device's value then. So the device's value
  // is raised now, before the reply.
  apply_device_setting("read_ahead_kb", options.read_ahead_kb, options.read_ahead_required,
                       [&] { return set_mount_read_ahead(mountpoint, options.read_ahead_kb); });
  apply_device_setting("dirty_ratio", options.dirty_ratio, options.dirty_ratio_required,
                       [&] { return set_mount_dirty_ratio(mountpoint, options.dirty_ratio); });

  StopSignalWatcher watcher(filesystem, mountpoint);
  if (Status started = watcher.start(); !started) {
    fuse_session_unmount(session.get());
    return started;
  }
  on_mounted();

  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(config, options.clone_fd ? 1 : 0);
  fuse_loop_cfg_set_max_threads(config, options.max_threads);
  fuse_loop_cfg_set_idle_threads(config, options.max_idle_threads);
  const int looped = fuse_session_loop_mt(session.get(), config);
  fuse_loop_cfg_destroy(config);
  stop_channel_io();
  watcher.stop();

  // Already unmounted in the usual case; after a loop error this detaches
  // the mount so nothing waits on a server that is gone.
  fuse_session_unmount(session.get());
  session.reset();  // destroy callback: closes the filesystem
  Status closed = adapter.close_filesystem();
  if (looped < 0) {
    return fail(-looped, std::string("serving requests failed: ") + std::strerror(-looped));
  }
  return closed;
}

}  // namespace ecfs::fuse
