// ecfs through mount(8), umount(8) and fstab, as an administrator uses it:
// `mount -t fuse.ecfs`, `mount -T FSTAB DIR`, `mount -o remount,ro DIR`.
// mount(8) runs /sbin/mount.fuse.ecfs (and, to remount a fuseblk mount,
// /sbin/mount.fuseblk.ecfs); each test runs in a private mount namespace
// where a tmpfs over /usr/sbin holds just those two links to the binary
// under test, so nothing of the machine's /sbin is used or changed.
#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

// Shared by every script: its operands, the helper links, and checks that
// print what went wrong.
constexpr const char* kPreamble = R"sh(
set -u
IMG=$1 MNT=$2 ECFS=$3 SCRATCH=$4
fail() { echo "FAILED: $*"; exit 1; }
mount -t tmpfs ecfs-helpers /usr/sbin || fail "cannot put a tmpfs over /usr/sbin"
ln -s "$ECFS" /usr/sbin/mount.fuse.ecfs
ln -s "$ECFS" /usr/sbin/mount.fuseblk.ecfs
options() { findmnt -n -o OPTIONS --mountpoint "$MNT"; }
has_option() { [[ ",$(options)," == *",$1,"* ]]; }
# The daemon serving $MNT (the background process `ecfs mount` starts).
daemon_pid() { pgrep -f -- "mount $IMG $MNT --foreground"; }
kill_daemon() {
  local pid; pid=$(daemon_pid) || fail "no daemon found for $MNT"
  kill -9 $pid
  while kill -0 $pid 2>/dev/null; do sleep 0.05; done
  umount -l "$MNT"
}
finish() { if mountpoint -q "$MNT"; then umount "$MNT" || umount -l "$MNT"; fi; }
trap finish EXIT
)sh";

class Mount8Test : public FuseTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(FuseTest::SetUp());
    if (geteuid() != 0) GTEST_SKIP() << "mount(8) helpers run as root";
    ASSERT_NO_FATAL_FAILURE(unmount());
  }

  // Runs `script` after the preamble in a private mount namespace ($5...
  // are `extra`); fails the test with the script's output unless it exits 0.
  void run_script(const std::string& script, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {"/usr/bin/unshare",
                                     "--mount",
                                     "--propagation",
                                     "private",
                                     "/bin/bash",
                                     "-c",
                                     std::string(kPreamble) + script,
                                     "bash",
                                     image_,
                                     mountpoint_,
                                     ECFS_BINARY,
                                     scratch_.path()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const Outcome run = cli_test::run_program(argv, scratch_.path(), {}, 300);
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    // The namespace went with the script; its mounts with it.
    ASSERT_TRUE(wait_until([&] { return image_unlocked(image_); }, 60s));
    expect_fsck_clean();
  }
};

TEST_F(Mount8Test, FstabDefaultsGiveSuidAndDevAsForAnyFilesystem) {
  run_script(R"sh(
echo "$IMG $MNT fuse.ecfs defaults 0 0" > "$SCRATCH/fstab"
mount -T "$SCRATCH/fstab" "$MNT" || fail "mount from fstab"
has_option nosuid && fail "fstab's defaults gave nosuid: $(options)"
has_option nodev && fail "fstab's defaults gave nodev: $(options)"
mknod "$MNT/null" c 1 3 || fail "mknod"
echo x > "$MNT/null" || fail "a device node did not open on a dev mount"
# A set-user-ID copy of id(1) run by nobody: its effective uid is root.
cp /usr/bin/id "$MNT/id" && chmod 4755 "$MNT/id" || fail "installing a set-user-ID binary"
euid=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$MNT/id" -u)
[ "$euid" = 0 ] || fail "a set-user-ID binary ran with euid $euid on a suid mount"
umount "$MNT" || fail "umount"

echo "$IMG $MNT fuse.ecfs nosuid,nodev,noexec,noatime 0 0" > "$SCRATCH/fstab"
mount -T "$SCRATCH/fstab" "$MNT" || fail "mount from fstab with nosuid,nodev"
for option in nosuid nodev noexec noatime; do
  has_option $option || fail "fstab's $option did not take effect: $(options)"
done
echo x 2>/dev/null > "$MNT/null" && fail "a device node opened on a nodev mount"
umount "$MNT" || fail "umount"
)sh");
}

// docs/mounting.md's fstab line, with this test's image and mount point:
// `mount -a` against a scratch fstab mounts it and leaves a noauto line
// alone.
TEST_F(Mount8Test, MountAllMountsTheDocumentedFstabLine) {
  const std::string docs =
      cli_test::read_whole_file(std::string(ECFS_SOURCE_DIR) + "/docs/mounting.md");
  const size_t at = docs.find("/srv/ecfs.img    /mnt/secure   fuse.ecfs");
  ASSERT_NE(at, std::string::npos) << "docs/mounting.md lost its fstab line";
  const std::string line = docs.substr(at, docs.find('\n', at) - at);
  run_script(R"sh(
LINE=$5
second="$SCRATCH/second"
mkdir -p "$second"
{
  echo "$LINE" | sed -e "s|/srv/ecfs.img|$IMG|" -e "s|/mnt/secure|$MNT|"
  echo "$IMG $second fuse.ecfs noauto 0 0"
} > "$SCRATCH/fstab"
mount -a -T "$SCRATCH/fstab" || fail "mount -a"
mountpoint -q "$MNT" || fail "the fstab line was not mounted"
mountpoint -q "$second" && fail "a noauto line was mounted"
has_option noatime || fail "the line's noatime did not take effect: $(options)"
echo data > "$MNT/file" || fail "writing"
umount "$MNT" || fail "umount"
)sh",
             {line});
}

// docs/mounting.md's fstab line that unlocks a directory at mount time,
// with this test's image, mount point and a key file: after `mount -a` the
// directory's files read.
TEST_F(Mount8Test, MountAllUnlocksTheDocumentedDirectory) {
  const std::string docs =
      cli_test::read_whole_file(std::string(ECFS_SOURCE_DIR) + "/docs/mounting.md");
  const size_t at = docs.find("/srv/ecfs.img    /mnt/secure   fuse.ecfs  noatime,unlock=");
  ASSERT_NE(at, std::string::npos) << "docs/mounting.md lost its unlocking fstab line";
  const std::string line = docs.substr(at, docs.find('\n', at) - at);
  const std::string key = scratch_.file("private.key");
  ASSERT_TRUE(write_file(key, std::string(32, '\x5a'), O_TRUNC, 0600));
  ASSERT_NO_FATAL_FAILURE(mount());
  ASSERT_EQ(mkdir(path("private").c_str(), 0755), 0);
  const Outcome encrypted = ecfs({"encrypt", path("private"), "--key-file", key, "--no-recovery"});
  ASSERT_EQ(encrypted.exit_status, 0) << encrypted.describe();
  ASSERT_TRUE(write_file(path("private/file"), "unlocked at mount"));
  ASSERT_NO_FATAL_FAILURE(unmount());
  run_script(R"sh(
LINE=$5 KEY=$6
echo "$LINE" | sed -e "s|/srv/ecfs.img|$IMG|" -e "s|/mnt/secure|$MNT|" \
  -e "s|/etc/ecfs/private.key|$KEY|" > "$SCRATCH/fstab"
mount -a -T "$SCRATCH/fstab" || fail "mount -a"
mountpoint -q "$MNT" || fail "the fstab line was not mounted"
[[ $(cat "$MNT/private/file") == "unlocked at mount" ]] || fail "the directory is not unlocked"
umount "$MNT" || fail "umount"
)sh",
             {line, key});
}

// docs/mounting.md's mount unit is one systemd accepts (systemd-analyze
// verify works without systemd running; systemd-mount needs it).
TEST_F(Mount8Test, TheDocumentedMountUnitVerifies) {
  if (access("/usr/bin/systemd-analyze", X_OK) != 0) GTEST_SKIP() << "systemd-analyze is missing";
  const std::string docs =
      cli_test::read_whole_file(std::string(ECFS_SOURCE_DIR) + "/docs/mounting.md");
  const size_t start = docs.find("# /etc/systemd/system/mnt-secure.mount\n");
  ASSERT_NE(start, std::string::npos) << "docs/mounting.md lost its mount unit";
  const size_t body = docs.find('\n', start) + 1;
  const std::string unit = docs.substr(body, docs.find("```", body) - body);
  const std::string dir = scratch_.file("units");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_TRUE(write_file(dir + "/mnt-secure.mount", unit));
  const Outcome verified = cli_test::run_program(
      {"/usr/bin/systemd-analyze", "verify", "--man=no", dir + "/mnt-secure.mount"},
      scratch_.path());
  EXPECT_EQ(verified.exit_status, 0) << verified.describe() << unit;
}

TEST_F(Mount8Test, RemountReadOnlyCommitsEverythingAndRemountReadWriteWrites) {
  run_script(R"sh(
head -c 3000000 /dev/urandom > "$SCRATCH/data"
for kind in blkdev no_blkdev; do
  # No periodic commit can save anything here.
  mount -t fuse.ecfs -o commit=3600,$kind "$IMG" "$MNT" || fail "$kind: mount"
  cp "$SCRATCH/data" "$MNT/data-$kind" && mkdir "$MNT/dir-$kind" || fail "$kind: writing"
  mount -o remount,ro "$MNT" 2> "$SCRATCH/remount.err" || fail "$kind: remount,ro"
  # mount(8) passes -o $kind again (from /run/mount/utab): no news, no note.
  [ -s "$SCRATCH/remount.err" ] && fail "$kind: remount,ro said: $(cat "$SCRATCH/remount.err")"
  has_option ro || fail "$kind: not read-only after remount,ro: $(options)"
  touch "$MNT/refused" 2>/dev/null && fail "$kind: a file was created after remount,ro"
  touch "$MNT/data-$kind" 2>/dev/null && fail "$kind: a file was changed after remount,ro"
  kill_daemon
  mount -t fuse.ecfs -o $kind "$IMG" "$MNT" || fail "$kind: mount after the kill"
  cmp "$SCRATCH/data" "$MNT/data-$kind" || fail "$kind: data written before remount,ro was lost"
  [ -d "$MNT/dir-$kind" ] || fail "$kind: a directory made before remount,ro was lost"
  mount -o remount,ro "$MNT" || fail "$kind: second remount,ro"
  mount -o remount,rw "$MNT" || fail "$kind: remount,rw"
  has_option rw || fail "$kind: not read-write after remount,rw: $(options)"
  echo after > "$MNT/after-$kind" || fail "$kind: no write after remount,rw"
  umount "$MNT" || fail "$kind: umount"
done
)sh");
}

TEST_F(Mount8Test, FstabRemountAppliesTheNewOptions) {
  run_script(R"sh(
echo "$IMG $MNT fuse.ecfs noatime,nosuid,commit=10 0 0" > "$SCRATCH/fstab"
mount -T "$SCRATCH/fstab" "$MNT" || fail "mount from fstab"
has_option noatime && has_option nosuid || fail "fstab options missing: $(options)"
echo "$IMG $MNT fuse.ecfs strictatime,nodev,no_writeback_cache 0 0" > "$SCRATCH/fstab"
mount -T "$SCRATCH/fstab" -o remount "$MNT" 2> "$SCRATCH/remount.err" ||
  fail "remount from fstab: $(cat "$SCRATCH/remount.err")"
grep -q "no_writeback_cache' takes effect only when mounting" "$SCRATCH/remount.err" ||
  fail "a mount-time option was dropped without a word: $(cat "$SCRATCH/remount.err")"
has_option noatime && fail "remount kept noatime: $(options)"
has_option relatime && fail "remount did not apply strictatime: $(options)"
has_option nosuid && fail "remount kept nosuid: $(options)"
has_option nodev || fail "remount did not apply nodev: $(options)"
umount "$MNT" || fail "umount"
)sh");
}

TEST_F(Mount8Test, RemountReadOnlyWithAFileOpenForWritingIsRefused) {
  run_script(R"sh(
mount -t fuse.ecfs "$IMG" "$MNT" || fail "mount"
exec 3> "$MNT/open"
mount -o remount,ro "$MNT" 2> "$SCRATCH/remount.err" && fail "remount,ro with a writer open"
grep -q "open for writing" "$SCRATCH/remount.err" ||
  fail "unclear refusal: $(cat "$SCRATCH/remount.err")"
echo still >&3 || fail "the open file stopped taking writes"
exec 3>&-
echo more > "$MNT/other" || fail "the mount stopped taking writes after the refusal"
umount "$MNT" || fail "umount"
)sh");
}

// A remount needs CAP_SYS_ADMIN, as mount(2)'s MS_REMOUNT does: uid 0
// without it changes neither the kernel's flags nor the daemon's state.
TEST_F(Mount8Test, RemountNeedsCapSysAdmin) {
  run_script(R"sh(
mount -t fuse.ecfs "$IMG" "$MNT" || fail "mount"
mount -o remount,ro "$MNT" || fail "remount,ro"
if out=$(setpriv --bounding-set=-sys_admin /usr/sbin/mount.fuse.ecfs "$IMG" "$MNT" \
         -o remount,rw 2>&1); then
  fail "a remount without CAP_SYS_ADMIN succeeded"
fi
[[ $out == *CAP_SYS_ADMIN* ]] || fail "unclear refusal: $out"
has_option ro || fail "the kernel's flags changed: $(options)"
touch "$MNT/refused" 2>/dev/null && fail "a write went through after the refused remount"
mount -o remount,rw "$MNT" || fail "remount,rw by root"
touch "$MNT/taken" || fail "no write after remount,rw"
umount "$MNT" || fail "umount"
)sh");
}

TEST_F(Mount8Test, UmountThenMountAtOnce) {
  run_script(R"sh(
for kind in blkdev no_blkdev; do
  for round in 1 2 3 4 5; do
    mount -t fuse.ecfs -o $kind "$IMG" "$MNT" || fail "$kind: mount in round $round"
    head -c 32000000 /dev/zero > "$MNT/file-$round" || fail "$kind: write in round $round"
    umount "$MNT" || fail "$kind: umount in round $round"
  done
done
)sh");
}

}  // namespace
}  // namespace ecfs::fuse_test
