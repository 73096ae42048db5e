#!/usr/bin/env bash
# Runs xfstests' generic "quick" group against ecfs through its FUSE mount.
#
#   scripts/xfstests.sh [path/to/ecfs] [extra ./check arguments...]   (make xfstests)
#
# Needs root (mount(8), /dev/fuse, apt-get, /sbin/mount.fuse.ecfs).
# Environment (all optional):
#   XFSTESTS_SRC      the xfstests checkout; cloned here when it has none
#                     (default /var/tmp/ecfs-xfstests)
#   XFSTESTS_URL      where to clone it from (default https://github.com/kdave/xfstests)
#   XFSTESTS_WORK     images, mount points and config (default /var/tmp/ecfs-xfstests-work)
#   XFSTESTS_RESULTS  results of this run (default /var/tmp/ecfs-xfstests-results/DATE-TIME)
#   XFSTESTS_GROUP    the test group (default generic/quick; empty: only the
#                     tests named on the command line)
#   XFSTESTS_SIZE     size of the test and scratch filesystems (default 8G)
#   XFSTESTS_TEST_TIMEOUT  seconds one test may run before it is killed
#                     (default 1800; 0: never); xfstests has no timeout of its own
#   ECFS_MOUNT_OPTIONS  -o options of every mount (default no_blkdev where the
#                     binary knows it, see below)
# Examples:
#   scripts/xfstests.sh build/bin/ecfs
#   XFSTESTS_GROUP= scripts/xfstests.sh build/bin/ecfs generic/001 generic/013
#   scripts/xfstests.sh build/bin/ecfs -x aio       # exclude a group as well
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

ecfs_arg=${1:-build/bin/ecfs}
[[ $# -gt 0 ]] && shift
if [[ ! -x $ecfs_arg ]]; then
  echo "xfstests: no ecfs binary at '$ecfs_arg' (run 'make build' first)" >&2
  exit 1
fi
ecfs=$(realpath "$ecfs_arg")
if [[ $(id -u) -ne 0 ]]; then
  echo "xfstests: run as root (mount(8), /sbin/mount.fuse.ecfs, test users)" >&2
  exit 1
fi

src=${XFSTESTS_SRC:-/var/tmp/ecfs-xfstests}
url=${XFSTESTS_URL:-https://github.com/kdave/xfstests}
work=${XFSTESTS_WORK:-/var/tmp/ecfs-xfstests-work}
results=${XFSTESTS_RESULTS:-/var/tmp/ecfs-xfstests-results/$(date +%Y%m%d-%H%M%S)}
group=${XFSTESTS_GROUP-generic/quick}
size=${XFSTESTS_SIZE:-8G}
test_timeout=${XFSTESTS_TEST_TIMEOUT:-1800}

# Nothing of xfstests, its images or its results lives in the repository.
for dir in "$src" "$work" "$results"; do
  case $(realpath -m "$dir")/ in
    "$repo"/*) echo "xfstests: $dir is inside the repository; choose a directory outside it" >&2
               exit 1 ;;
  esac
done

# --- Debian packages xfstests builds and runs with (README "Ubuntu or Debian"),
# installed only when missing.
packages=(
  git make gcc automake autoconf libtool libtool-bin pkg-config
  xfslibs-dev uuid-dev libuuid1 libacl1-dev libaio-dev libgdbm-dev libgdbm-compat-dev
  libcap-dev liburing-dev
  e2fsprogs xfsprogs quota attr acl gawk fio dbench uuid-runtime python3 sqlite3
  bc dump indent psmisc util-linux fuse3
)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "xfstests: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- The xfstests checkout: reused when present, cloned otherwise.
if [[ -x $src/check && -d $src/common ]]; then
  echo "xfstests: using the checkout in $src"
else
  echo "xfstests: cloning $url into $src"
  git clone --quiet "$url" "$src"
fi

# xfstests' _fs_type reads the mount's type from `df -T` and knows only
# some fuse subtypes: a mount of type fuse.ecfs (or fuseblk.ecfs) must read
# as FSTYP=fuse, or check refuses the test mount as "not a type fuse
# filesystem". A df earlier in PATH reports the type so; xfstests itself is
# left as fetched. (With FSTYP=fuse xfstests cannot re-create a scratch
# filesystem: _scratch_mkfs empties it, and tests that need a filesystem of
# a given size are not run.)
wrappers=$work/bin
mkdir -p "$wrappers"
real_df=$(PATH=/usr/bin:/bin type -P df)
cat >"$wrappers/df" <<EOF
#!/bin/sh
# ecfs's xfstests run: fuse.ecfs and fuseblk.ecfs mounts are FSTYP=fuse.
$real_df "\$@" | sed -e 's/ fuse\.ecfs / fuse /' -e 's/ fuseblk\.ecfs / fuse /'
EOF
chmod 755 "$wrappers/df"
export PATH=$wrappers:$PATH

echo "xfstests: building in $src"
make -C "$src" -j "$(nproc)" >"$src/.ecfs-build.log" 2>&1 ||
  { tail -30 "$src/.ecfs-build.log" >&2; echo "xfstests: build failed" >&2; exit 1; }

# Users some tests run as (README "Setup Environment" step 6); without them
# those tests are not run.
getent group fsgqa >/dev/null || groupadd fsgqa
getent passwd fsgqa >/dev/null || useradd -m -g fsgqa fsgqa
getent passwd fsgqa2 >/dev/null || useradd fsgqa2
getent passwd 123456-fsgqa >/dev/null || useradd 123456-fsgqa 2>/dev/null || true

# --- Images, mount points, the mount helper.
test_img=$work/test.img
scratch_img=$work/scratch.img
test_dir=$work/mnt/test
scratch_mnt=$work/mnt/scratch
helper=/sbin/mount.fuse.ecfs
helper_saved=""        # what $helper was before this run, restored at exit
helper_was=absent
watchdog_pid=""

unmount_all() {
  local dir
  for dir in "$scratch_mnt" "$test_dir"; do
    # /proc/self/mounts, not mountpoint(1): a dead daemon's mount answers
    # ENOTCONN to everything.
    if grep -qs " $dir " /proc/self/mounts; then
      umount "$dir" 2>/dev/null || umount -l "$dir" || true
    fi
  done
}

cleanup() {
  if [[ -n $watchdog_pid ]]; then kill "$watchdog_pid" 2>/dev/null || true; fi
  unmount_all
  case $helper_was in
    absent) rm -f "$helper" ;;
    link) ln -sfn "$helper_saved" "$helper" ;;
    file) mv -f "$helper_saved" "$helper" ;;
  esac
}
trap cleanup EXIT

mkdir -p "$work" "$test_dir" "$scratch_mnt" "$results"
unmount_all   # left over from an interrupted run

# mount(8) runs /sbin/mount.fuse.ecfs IMAGE DIR -o OPTIONS for `mount -t
# fuse.ecfs`; ecfs serves as that helper when called by that name.
if [[ -L $helper ]]; then
  helper_was=link helper_saved=$(readlink "$helper")
elif [[ -e $helper ]]; then
  helper_was=file helper_saved="$work/mount.fuse.ecfs.saved"
  mv -f "$helper" "$helper_saved"
fi
ln -sfn "$ecfs" "$helper"

# Mounted by root, ecfs mounts as fuseblk over a loop device by default, and
# the mount's source is then /dev/loopN; xfstests finds its mounts by
# TEST_DEV / SCRATCH_DEV in the source column of df and findmnt, so the
# mounts are plain fuse ones, whose source is the image path.
if [[ -z ${ECFS_MOUNT_OPTIONS+set} ]]; then
  ECFS_MOUNT_OPTIONS=""
  if "$ecfs" mount --help 2>/dev/null | grep -q no_blkdev; then ECFS_MOUNT_OPTIONS=no_blkdev; fi
fi
mount_opts=${ECFS_MOUNT_OPTIONS:+-o $ECFS_MOUNT_OPTIONS}

"$ecfs" mkfs --force --quiet --size "$size" "$test_img"
"$ecfs" mkfs --force --quiet --size "$size" "$scratch_img"

# FSTYP=fuse with FUSE_SUBTYP=.ecfs as README.fuse describes; the image files
# are the "devices" (plain strings to xfstests for fuse).
config=$work/local.config
cat >"$config" <<EOF
export FSTYP=fuse
export FUSE_SUBTYP=.ecfs
export TEST_DEV=$test_img
export TEST_DIR=$test_dir
export SCRATCH_DEV=$scratch_img
export SCRATCH_MNT=$scratch_mnt
export TEST_FS_MOUNT_OPTS="$mount_opts"
export MOUNT_OPTIONS="$mount_opts"
export RESULT_BASE=$results
EOF
cp "$config" "$results/local.config"
{ echo "ecfs: $ecfs"; sha256sum "$ecfs" | cut -d' ' -f1
  echo "xfstests: $(git -C "$src" log -1 --format='%h %s' 2>/dev/null || echo unknown)"
  echo "kernel: $(uname -r)"; } >"$results/versions.txt"

# --- A watchdog: xfstests has no per-test timeout, and a test stuck on a FUSE
# request would stop the run. A test (bash ./tests/DIR/NNN under ./check)
# running longer than XFSTESTS_TEST_TIMEOUT is killed with everything it
# started; check then records it as failed. Kills are listed in timeouts.txt.
descendants() {
  local child
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}
watchdog() {
  local current="" since=0 pid cmd found found_cmd
  while kill -0 $$ 2>/dev/null; do
    sleep 10
    found="" found_cmd=""
    for pid in $(descendants $$); do
      cmd=$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || continue
      if [[ $cmd =~ ^(/usr)?(/bin/)?bash\ \./tests/[a-z0-9]+/[0-9]+ ]]; then
        found=$pid found_cmd=$cmd
        break
      fi
    done
    if [[ $found != "$current" ]]; then
      current=$found since=$SECONDS
    elif [[ -n $current ]] && ((SECONDS - since > test_timeout)); then
      echo "$(date '+%F %T') killed after ${test_timeout}s: ${found_cmd}" >>"$results/timeouts.txt"
      echo "xfstests: watchdog: killing ${found_cmd}(over ${test_timeout}s)" >&2
      kill -KILL $(descendants "$current") "$current" 2>/dev/null || true
      current="" since=$SECONDS
    fi
  done
}
if ((test_timeout > 0)); then
  watchdog &
  watchdog_pid=$!
fi

check_args=()
[[ -n $group ]] && check_args+=(-g "$group")
check_args+=(-R xunit "$@")
echo "xfstests: ./check ${check_args[*]}   (results in $results)"
status=0
(cd "$src" && HOST_OPTIONS=$config ./check "${check_args[@]}") 2>&1 |
  tee "$results/check.out" || status=$?

# --- Summary: check's log lists the tests run (not-run ones included), not
# run and failed.
log=$results/check.log
last_list() { { grep "^$1" "$log" || true; } | tail -1 | sed "s/^$1 *//"; }
ran=$(last_list 'Ran:' | wc -w)
notrun=$(last_list 'Not run:' | wc -w)
failed_list=$(last_list 'Failures:')
failed=$(wc -w <<<"$failed_list")
passed=$((ran - notrun - failed))
echo
echo "xfstests: passed $passed, failed $failed, not run $notrun (of $ran)"
if ((failed)); then
  echo "failed:$(printf ' %s' $failed_list)"
  echo "  (diffs: $results/<test>.out.bad, logs: $results/<test>.full)"
fi
if ((notrun)); then
  echo "not run, by reason:"
  for t in $(last_list 'Not run:'); do cat "$results/$t.notrun" 2>/dev/null || echo "(no reason)"; done |
    sort | uniq -c | sort -rn | sed 's/^/  /'
fi
[[ -s $results/timeouts.txt ]] && { echo "killed by the watchdog:"; sed 's/^/  /' "$results/timeouts.txt"; }
echo "results: $results"
exit "$status"
