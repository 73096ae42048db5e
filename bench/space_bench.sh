#!/usr/bin/env bash
# Whether deleted data gives its space back to the host, and what that
# costs: an image is filled with files (default 512 MiB in 1 MiB files),
# half of them are deleted and the mount synced, with the default discard
# (holes punched after each commit) and with -o nodiscard as the baseline.
# Printed per round: the image's allocated size (du) after filling and
# after the deletes, and how long `rm` + `ecfs sync` took; then the medians
# and the discard/nodiscard ratio of the delete times.
#
#   bash bench/space_bench.sh [BUILD_DIR]
#
# ECFS_BENCH_DIR     where the image goes (default /var/tmp)
# ECFS_BENCH_ROUNDS  rounds (default 3)
# ECFS_BENCH_MIB     data written per round, MiB (default 512)
# Needs root and /dev/fuse.
set -euo pipefail

build=${1:-build}
ecfs="$build/bin/ecfs"
rounds=${ECFS_BENCH_ROUNDS:-3}
mib=${ECFS_BENCH_MIB:-512}

. "$(dirname "$0")/mount_bench_lib.sh"
bench_workdir space

allocated_mib() { echo $(($(stat -c %b "$work/image") * 512 / 1048576)); }

# One round with the mount options given: fill, delete half, report.
round() {
  rm -f "$work/image"
  "$ecfs" mkfs --size "$((mib * 2 + 256))M" -q "$work/image"
  "$ecfs" mount "$work/image" "$mnt" "$@"
  mkdir "$mnt/d"
  for i in $(seq 1 "$mib"); do head -c 1M /dev/urandom >"$mnt/d/f$i"; done
  "$ecfs" sync "$mnt"
  local full start end
  full=$(allocated_mib)
  start=$(date +%s%N)
  rm -f "$mnt"/d/f*[02468]
  "$ecfs" sync "$mnt"
  end=$(date +%s%N)
  local after
  after=$(allocated_mib)
  fusermount3 -u "$mnt" || umount "$mnt"
  sleep 1
  echo "$full $after $(((end - start) / 1000000))"
}

with=() without=()
for r in $(seq 1 "$rounds"); do
  result=$(round)
  read -r full after ms <<<"$result"
  printf 'round %d, discard:   image %d MiB full, %d MiB after deleting half; delete %d ms\n' \
    "$r" "$full" "$after" "$ms"
  with+=("$ms")
  result=$(round -o nodiscard)
  read -r full after ms <<<"$result"
  printf 'round %d, nodiscard: image %d MiB full, %d MiB after deleting half; delete %d ms\n' \
    "$r" "$full" "$after" "$ms"
  without+=("$ms")
done
awk -v d="$(median "${with[@]}")" -v n="$(median "${without[@]}")" \
  'BEGIN { printf "delete time, discard / nodiscard (medians %d / %d ms): %.2fx\n", d, n, d / (n > 0 ? n : 1) }'
