# Shared by the bench/*.sh scripts that measure through a mount; sourced
# after `set -euo pipefail`.
#
# bench_workdir NAME: a fresh directory under ECFS_BENCH_DIR (default
# /var/tmp) in `work`, with an empty mount point `mnt` in it; both go, the
# mount first, when the script exits or is interrupted.
bench_workdir() {
  work=$(mktemp -d "${ECFS_BENCH_DIR:-/var/tmp}/ecfs-$1.XXXXXX")
  mnt="$work/mnt"
  mkdir -p "$mnt"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM  # through the EXIT trap
}

bench_cleanup() {
  fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true
  sleep 1
  rm -rf "$work"
}

# median VALUE...: the middle one (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END { print v[int((NR + 1) / 2)] }'; }

# summary UNIT VALUE...: "min A  median B  max C UNIT".
summary() {
  local unit=$1
  shift
  printf '%s\n' "$@" | sort -g | awk -v unit="$unit" '{v[NR] = $1} END {
    printf "min %d  median %d  max %d %s", v[1], v[int((NR + 1) / 2)], v[NR], unit }'
}
