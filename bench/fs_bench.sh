#!/usr/bin/env bash
# Filesystem benchmark: the same fio jobs and metadata storm on an ecfs FUSE
# mount and on a plain directory of the host filesystem (the baseline, on the
# same disk as the ecfs image), printed as a table of figures and ratios.
#
#   bash bench/fs_bench.sh [BUILD_DIR]
#
# ECFS_BENCH_SIZE  sequential file size (default 4G)
# ECFS_BENCH_FILES files in the metadata storm (default 100000)
# ECFS_BENCH_DIR   where the image and the host directory go (default /var/tmp)
# Needs root (dropping caches, mounting) and /dev/fuse.
set -euo pipefail

build=${1:-build}
ecfs="$build/bin/ecfs"
storm="$build/bin/metadata_storm"
size=${ECFS_BENCH_SIZE:-4G}
files=${ECFS_BENCH_FILES:-100000}
base=${ECFS_BENCH_DIR:-/var/tmp}

for tool in fio python3 fusermount3; do
  command -v "$tool" >/dev/null || { echo "fs_bench: $tool is missing (make deps)" >&2; exit 1; }
done
[ -x "$ecfs" ] && [ -x "$storm" ] || { echo "fs_bench: build first (make build)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "fs_bench: needs root (drop caches, mount)" >&2; exit 1; }
[ -c /dev/fuse ] || { echo "fs_bench: /dev/fuse is missing" >&2; exit 1; }

work=$(mktemp -d "$base/ecfs-bench.XXXXXX")
image="$work/ecfs.img"
mnt="$work/mnt"
host="$work/host"
results="$work/results"
mkdir -p "$mnt" "$host" "$results"

cleanup() {
  if mountpoint -q "$mnt"; then fusermount3 -u "$mnt" || fusermount3 -u -z "$mnt" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

size_bytes=$(numfmt --from=iec "$size")
"$ecfs" mkfs "$image" --size $((size_bytes * 3 + (2 << 30))) --quiet
"$ecfs" mount "$image" "$mnt"

# fio JOB DIR RW BS [extra fio options...]: bandwidth in MB/s and IOPS.
run_fio() {
  local name=$1 dir=$2 rw=$3 bs=$4
  shift 4
  fio --name="$name" --directory="$dir" --filename=bench.dat --rw="$rw" --bs="$bs" \
    --ioengine=psync --numjobs=1 --output-format=json "$@" >"$results/$name.json"
}

fio_figure() {  # FILE read|write -> "MB/s IOPS"
  python3 -c '
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0][sys.argv[2]]
print("%.1f %.0f" % (job["bw_bytes"] / 1e6, job["iops"]))' "$1" "$2"
}

for target in host ecfs; do
  dir=$host
  [ "$target" = ecfs ] && dir=$mnt
  echo "fs_bench: $target ..." >&2
  for bs in 1M 128K; do
    run_fio "$target-seqwrite-$bs" "$dir" write "$bs" --size="$size" --end_fsync=1
    drop_caches
    run_fio "$target-seqread-$bs" "$dir" read "$bs" --size="$size"
    rm -f "$dir/bench.dat"
    drop_caches
  done
  run_fio "$target-randwrite-4K" "$dir" randwrite 4K --size=1G --runtime=20 --time_based \
    --end_fsync=1
  drop_caches
  run_fio "$target-randread-4K" "$dir" randread 4K --size=1G --runtime=20 --time_based
  rm -f "$dir/bench.dat"
  mkdir "$dir/storm"
  "$storm" "$dir/storm" "$files" >"$results/$target-storm.txt"
  rmdir "$dir/storm"
done

echo
echo "ecfs filesystem benchmark: $size sequential, $files files, $(nproc) CPUs"
printf '%-22s %14s %14s %8s\n' workload host ecfs ratio
row() {  # NAME HOST_VALUE ECFS_VALUE UNIT
  python3 -c '
import sys
name, h, e, unit = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print("%-22s %10.1f %-3s %10.1f %-3s %7.2fx" % (name, h, unit, e, unit, e / h if h else 0))' "$@"
}
for bs in 1M 128K; do
  for kind in seqwrite:write seqread:read; do
    job=${kind%%:*} side=${kind##*:}
    read -r h_bw _ < <(fio_figure "$results/host-$job-$bs.json" "$side")
    read -r e_bw _ < <(fio_figure "$results/ecfs-$job-$bs.json" "$side")
    row "$job $bs" "$h_bw" "$e_bw" MB/s
  done
done
for kind in randwrite:write randread:read; do
  job=${kind%%:*} side=${kind##*:}
  read -r _ h_iops < <(fio_figure "$results/host-$job-4K.json" "$side")
  read -r _ e_iops < <(fio_figure "$results/ecfs-$job-4K.json" "$side")
  row "$job 4K" "$h_iops" "$e_iops" IOPS
done
for phase in create stat readdir unlink; do
  h=$(awk -v p="$phase" '$1 == p {print $4}' "$results/host-storm.txt")
  e=$(awk -v p="$phase" '$1 == p {print $4}' "$results/ecfs-storm.txt")
  row "$phase" "$h" "$e" op/s
done

fusermount3 -u "$mnt"
"$ecfs" fsck "$image" >/dev/null && echo "fsck after the benchmark: clean"
