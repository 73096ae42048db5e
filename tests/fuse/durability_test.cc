// What sync(2), `ecfs sync` and unmount promise, checked as a user would
// meet them: data written without fsync, then sync, then the daemon killed
// (SIGKILL: nothing of its own shutdown runs) and the image mounted again.
// And an unmount followed at once by a mount of the same image.
//
// Root's mounts are fuseblk (over a loop device), where the kernel sends
// FUSE_SYNCFS at sync(2) and waits for FUSE_DESTROY at unmount; -o no_blkdev
// gives the plain fuse mount every other user gets, where `ecfs sync`
// commits and a mount waits for a daemon still finishing its unmount.
#include <fcntl.h>
#include <sys/mount.h>

#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

class DurabilityTest : public FuseTest {
 protected:
  // Kills a foreground daemon with SIGKILL, detaches its dead mount and
  // waits until the image is free again.
  void kill_daemon(pid_t daemon) {
    ASSERT_EQ(kill(daemon, SIGKILL), 0);
    ASSERT_EQ(waitpid(daemon, nullptr, 0), daemon);
    kernel_test::run_process({"fusermount3", "-u", "-z", mountpoint_});
    ASSERT_TRUE(wait_until([&] { return !is_mounted(mountpoint_); }, 10s));
    ASSERT_TRUE(wait_until([&] { return image_unlocked(image_); }, 10s));
  }

  // Writes `files` files of growing sizes (none fsynced) named by `round`.
  void write_unsynced(int round, int files) {
    for (int i = 0; i < files; ++i) {
      const std::string name = "r" + std::to_string(round) + "-" + std::to_string(i);
      ASSERT_TRUE(write_file(path(name), pattern((size_t{1} << (10 + 2 * i)) + 7, round * 10 + i)))
          << name;
    }
    ASSERT_EQ(mkdir(path("dir" + std::to_string(round)).c_str(), 0750), 0);
  }

  void expect_written(int round, int files) {
    for (int i = 0; i < files; ++i) {
      const std::string name = "r" + std::to_string(round) + "-" + std::to_string(i);
      EXPECT_EQ(read_file(path(name)), pattern((size_t{1} << (10 + 2 * i)) + 7, round * 10 + i))
          << name << " of round " << round << " is not what was written before the sync";
    }
    EXPECT_TRUE(S_ISDIR(stat_of(path("dir" + std::to_string(round))).st_mode));
  }

  // Round after round: write, make durable with `make_durable`, kill the
  // daemon, mount again and find everything of every round.
  void expect_durable_after_kill(const std::vector<std::string>& options,
                                 const std::function<void()>& make_durable) {
    ASSERT_NO_FATAL_FAILURE(unmount());
    constexpr int kRounds = 3;
    constexpr int kFiles = 6;  // up to 1 MiB each
    for (int round = 0; round < kRounds; ++round) {
      std::vector<std::string> daemon_options = options;
      // No periodic commit can save anything within the test.
      daemon_options.insert(daemon_options.end(), {"-o", "commit=3600"});
      pid_t daemon = 0;
      ASSERT_NO_FATAL_FAILURE(daemon = start_foreground_daemon(daemon_options));
      for (int earlier = 0; earlier < round; ++earlier) expect_written(earlier, kFiles);
      ASSERT_NO_FATAL_FAILURE(write_unsynced(round, kFiles));
      make_durable();
      ASSERT_NO_FATAL_FAILURE(kill_daemon(daemon));
      expect_fsck_clean();
    }
    ASSERT_NO_FATAL_FAILURE(mount(options));
    for (int round = 0; round < kRounds; ++round) expect_written(round, kFiles);
  }
};

TEST_F(DurabilityTest, RootMountsAreFuseblkOverALoopDeviceThatGoesWithTheUnmount) {
  EXPECT_EQ(mount_type(mountpoint_), "fuseblk.ecfs");
  const std::string loop = mount_source(mountpoint_);
  EXPECT_TRUE(loop.starts_with("/dev/loop")) << loop;
  EXPECT_EQ(mounted_image(mountpoint_), image_);
  ASSERT_NO_FATAL_FAILURE(unmount());
  // LO_FLAGS_AUTOCLEAR: the kernel detached the loop device with the mount.
  EXPECT_TRUE(wait_until(
      [&] {
        std::ifstream in("/sys/block/" + loop.substr(5) + "/loop/backing_file");
        std::string backing;
        return !std::getline(in, backing) || backing != image_;
      },
      10s))
      << loop << " still backs the image after the unmount";
  ASSERT_NO_FATAL_FAILURE(mount({"-o", "no_blkdev"}));
  EXPECT_EQ(mount_type(mountpoint_), "fuse.ecfs");
  EXPECT_EQ(mount_source(mountpoint_), image_);
}

TEST_F(DurabilityTest, SyncMakesEverythingWrittenBeforeItDurableOnARootMount) {
  ASSERT_NO_FATAL_FAILURE(expect_durable_after_kill({}, [] { sync(); }));
}

TEST_F(DurabilityTest, SyncfsOfAnyFileOnTheMountMakesItDurable) {
  ASSERT_NO_FATAL_FAILURE(expect_durable_after_kill({}, [this] {
    const int fd = open(path("dir0").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(syncfs(fd), 0) << std::strerror(errno);
    close(fd);
  }));
}

TEST_F(DurabilityTest, EcfsSyncMakesEverythingDurableOnAPlainFuseMount) {
  ASSERT_NO_FATAL_FAILURE(expect_durable_after_kill({"-o", "no_blkdev"}, [this] {
    const Outcome synced = ecfs({"sync", mountpoint_});
    EXPECT_EQ(synced.exit_status, 0) << synced.describe();
  }));
}

// fsync's kin commit too, on either kind of mount: fdatasync(2), writes to
// a file opened O_SYNC, and every write on a mount with -o sync.
TEST_F(DurabilityTest, FdatasyncOSyncAndSyncMountsCommit) {
  ASSERT_NO_FATAL_FAILURE(unmount());
  for (const std::string kind : {"blkdev", "no_blkdev"}) {
    SCOPED_TRACE(kind);
    const std::string data = pattern(300000, kind.size());
    pid_t daemon = 0;
    ASSERT_NO_FATAL_FAILURE(daemon = start_foreground_daemon({"-o", "commit=3600," + kind}));
    const int fd = open(path("fdatasync-" + kind).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(fdatasync(fd), 0);
    ASSERT_TRUE(write_file(path("osync-" + kind), data, O_TRUNC | O_SYNC));
    ASSERT_NO_FATAL_FAILURE(kill_daemon(daemon));
    close(fd);
    ASSERT_NO_FATAL_FAILURE(daemon = start_foreground_daemon({"-o", "commit=3600,sync," + kind}));
    ASSERT_TRUE(write_file(path("sync-mount-" + kind), data));
    ASSERT_NO_FATAL_FAILURE(kill_daemon(daemon));
    ASSERT_NO_FATAL_FAILURE(mount());
    for (const std::string name : {"fdatasync-", "osync-", "sync-mount-"}) {
      EXPECT_EQ(read_file(path(name + kind)), data) << name << kind;
    }
    ASSERT_NO_FATAL_FAILURE(unmount());
  }
}

TEST_F(DurabilityTest, EcfsSyncRefusesAPathOffAnEcfsMount) {
  const Outcome synced = ecfs({"sync", scratch_.path()});
  EXPECT_EQ(synced.exit_status, 1) << synced.describe();
  EXPECT_TRUE(has(synced.err, "not an ecfs mount")) << synced.err;
  const Outcome missing = ecfs({"sync", scratch_.file("nowhere")});
  EXPECT_EQ(missing.exit_status, 1) << missing.describe();
}

// On a fuseblk mount the unmount returns once the daemon has committed and
// let go of the image: it is free at once, and mounts again at once.
TEST_F(DurabilityTest, UmountOfARootMountReturnsWithTheImageCommittedAndFree) {
  const std::string data = pattern(64 << 20, 5);
  for (int round = 0; round < 10; ++round) {
    ASSERT_TRUE(write_file(path("big"), data));
    const auto unmounted = kernel_test::run_process({"umount", mountpoint_});
    ASSERT_TRUE(unmounted.succeeded()) << unmounted.err;
    mounted_ = false;
    EXPECT_TRUE(image_unlocked(image_)) << "round " << round << ": umount returned while the "
                                        << "daemon still held the image";
    ASSERT_NO_FATAL_FAILURE(mount());
  }
  EXPECT_EQ(read_file(path("big")), data);
}

// On a plain fuse mount the unmount returns before the daemon's last
// commit; a mount of the image right after it waits for that daemon.
TEST_F(DurabilityTest, MountRightAfterAPlainFuseUnmountWaitsForTheExitingDaemon) {
  ASSERT_NO_FATAL_FAILURE(remount({"-o", "no_blkdev"}));
  const std::string data = pattern(64 << 20, 6);
  for (int round = 0; round < 10; ++round) {
    ASSERT_TRUE(write_file(path("big"), data));
    ASSERT_NO_FATAL_FAILURE(unmount_path(mountpoint_));
    mounted_ = false;
    ASSERT_NO_FATAL_FAILURE(mount({"-o", "no_blkdev"})) << "round " << round;
  }
  EXPECT_EQ(read_file(path("big")), data);
  // A live mount is still refused, without waiting.
  const std::string other = scratch_.file("other");
  ASSERT_EQ(mkdir(other.c_str(), 0755), 0);
  const auto started = std::chrono::steady_clock::now();
  const Outcome second = ecfs({"mount", image_, other});
  EXPECT_EQ(second.exit_status, 1) << second.describe();
  EXPECT_TRUE(has(second.err, "mounted on " + mountpoint_)) << second.err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_FALSE(is_mounted(other));
}

// Deleted files give their space back to the host filesystem (holes
// punched in the image after the commit that frees it), so the image's
// allocated size shrinks; -o nodiscard keeps it.
TEST_F(DurabilityTest, DeletedFilesGiveTheirSpaceBackToTheHost) {
  const auto image_blocks = [&] {
    struct stat st {};
    EXPECT_EQ(stat(image_.c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  };
  constexpr uint64_t kFile = 32 << 20;
  for (const bool discard : {true, false}) {
    SCOPED_TRACE(discard ? "discard (the default)" : "nodiscard");
    if (!discard) {
      ASSERT_NO_FATAL_FAILURE(remount({"-o", "nodiscard"}));
    }
    ASSERT_TRUE(write_file(path("big"), pattern(kFile, 9)));
    ASSERT_EQ(ecfs({"sync", mountpoint_}).exit_status, 0);
    const uint64_t with_file = image_blocks();
    ASSERT_EQ(unlink(path("big").c_str()), 0);
    ASSERT_EQ(ecfs({"sync", mountpoint_}).exit_status, 0);
    const uint64_t after = image_blocks();
    if (discard) {
      EXPECT_LE(after + kFile - (4 << 20), with_file) << with_file << " -> " << after;
    } else {
      EXPECT_GE(after + (1 << 20), with_file) << with_file << " -> " << after;
    }
  }
}

}  // namespace
}  // namespace ecfs::fuse_test
