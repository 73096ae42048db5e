#!/usr/bin/env bash
# Does a long job in one subvolume stall small operations elsewhere? stat
# latency (median and 99th percentile of statx with AT_STATX_FORCE_SYNC, so
# that each reaches the daemon; bench/stat_latency.cc) in a directory
# of the top level, first with the mount idle, then while another subvolume
# takes a 4 GiB sequential write (dd, then `ecfs sync`, which commits it),
# then while that subvolume, holding the file and ECFS_BENCH_FILES more
# small files, is deleted (`ecfs subvolume delete` and `subvolume sync`,
# which waits for the background drop). Rounds alternate idle and loaded
# runs; the script prints each run, the medians and the loaded/idle ratios.
#
#   bash bench/stat_latency.sh [BUILD_DIR]
#
# ECFS_BENCH_DIR    where the image goes (default /var/tmp)
# ECFS_BENCH_WRITE  bytes of the write, in MiB (default 4096)
# ECFS_BENCH_ROUNDS rounds (default 3)
# ECFS_BENCH_FILES  small files added before the deletion (default 50000)
# ECFS_BENCH_NO_SUBVOLUMES=1: the writer uses a plain directory (for builds
#                   without subvolumes, as the "before" figure)
# Needs root and /dev/fuse.
set -euo pipefail

build=${1:-build}
ecfs="$build/bin/ecfs"
probe="$build/bin/stat_latency"
write_mib=${ECFS_BENCH_WRITE:-4096}
rounds=${ECFS_BENCH_ROUNDS:-3}
no_subvolumes=${ECFS_BENCH_NO_SUBVOLUMES:-0}
small_files=${ECFS_BENCH_FILES:-50000}

. "$(dirname "$0")/mount_bench_lib.sh"
bench_workdir statlat

"$ecfs" mkfs "$work/img" --size "$(( write_mib * 3 + 4096 ))M" --quiet
"$ecfs" mount "$work/img" "$mnt"
mkdir "$mnt/quiet"
make_writer() {
  if [ "$no_subvolumes" = 1 ]; then mkdir "$mnt/writer"; else "$ecfs" subvolume create "$mnt/writer" >/dev/null; fi
}
drop_writer() {
  if [ "$no_subvolumes" = 1 ]; then rm -rf "$mnt/writer"; else "$ecfs" subvolume delete "$mnt/writer" >/dev/null; fi
  "$ecfs" sync "$mnt"
  [ "$no_subvolumes" = 1 ] || "$ecfs" subvolume sync "$mnt"
}
"$probe" "$mnt/quiet" 1000 1 >/dev/null  # creates the files

declare -a idle_p50 idle_p99 write_p50 write_p99 delete_p50 delete_p99
for round in $(seq 1 "$rounds"); do
  read -r _ _ _ p50 _ p99 _ _ < <("$probe" "$mnt/quiet" 1000 10)
  idle_p50+=("$p50"); idle_p99+=("$p99")
  echo "round $round idle:  p50 ${p50} us  p99 ${p99} us"
  make_writer
  rm -f "$work/stop"
  ( dd if=/dev/zero of="$mnt/writer/big" bs=1M count="$write_mib" status=none
    "$ecfs" sync "$mnt"; touch "$work/stop" ) &
  writer=$!
  read -r _ _ _ p50 _ p99 _ _ < <("$probe" "$mnt/quiet" 1000 600 "$work/stop")
  wait "$writer"
  write_p50+=("$p50"); write_p99+=("$p99")
  echo "round $round write: p50 ${p50} us  p99 ${p99} us (while ${write_mib} MiB are written to another subvolume)"
  # Small files in 100 directories, so the deleted tree has many leaves.
  for d in $(seq 0 99); do mkdir "$mnt/writer/d$d"; done
  seq 0 $(( small_files - 1 )) | awk '{ printf "'"$mnt"'/writer/d%d/f%d\n", $1 % 100, $1 }' | xargs touch
  "$ecfs" sync "$mnt"
  rm -f "$work/stop"
  ( drop_writer; touch "$work/stop" ) &
  dropper=$!
  read -r _ _ _ p50 _ p99 _ max < <("$probe" "$mnt/quiet" 1000 600 "$work/stop")
  wait "$dropper"
  delete_p50+=("$p50"); delete_p99+=("$p99")
  echo "round $round delete: p50 ${p50} us  p99 ${p99} us  max ${max} us (while that subvolume, with ${small_files} more files, is deleted and dropped)"
done

mi50=$(median "${idle_p50[@]}"); mi99=$(median "${idle_p99[@]}")
mw50=$(median "${write_p50[@]}"); mw99=$(median "${write_p99[@]}")
md50=$(median "${delete_p50[@]}"); md99=$(median "${delete_p99[@]}")
echo
printf 'medians: idle p50 %s us p99 %s us; under the write p50 %s us p99 %s us; under the deletion p50 %s us p99 %s us\n' \
  "$mi50" "$mi99" "$mw50" "$mw99" "$md50" "$md99"
awk -v a="$mw50" -v b="$mi50" -v c="$mw99" -v d="$mi99" -v e="$md50" -v f="$md99" \
  'BEGIN { printf "loaded/idle: write p50 %.2fx  p99 %.2fx; deletion p50 %.2fx  p99 %.2fx\n", a / b, c / d, e / b, f / d }'
