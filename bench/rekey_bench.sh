#!/usr/bin/env bash
# How fast `ecfs rekey --contents` re-encrypts data under a new key, beside
# what a user would do without it: copying the same files within the mount
# through a pipe (`tar | tar`, which reads, decrypts, encrypts and writes
# every byte through FUSE; `cp` would reflink) and syncing. Each round rotates the whole tree to the other of two
# keys (so every byte is re-encrypted), then copies it; the page cache is
# dropped before each. The script prints each run, min/median/max of both
# in MiB/s and the rekey/copy ratio of the medians.
#
#   bash bench/rekey_bench.sh [BUILD_DIR]
#
# ECFS_BENCH_DIR     where the image goes (default /var/tmp)
# ECFS_BENCH_ROUNDS  rounds (default 5)
# ECFS_BENCH_MIB     data in the tree, MiB (default 256, in files of 16 MiB)
# Needs root and /dev/fuse.
set -euo pipefail

build=${1:-build}
ecfs="$build/bin/ecfs"
rounds=${ECFS_BENCH_ROUNDS:-5}
mib=${ECFS_BENCH_MIB:-256}

. "$(dirname "$0")/mount_bench_lib.sh"
bench_workdir rekey

"$ecfs" mkfs --size "$((mib * 4 + 512))M" -q "$work/image"
"$ecfs" mount "$work/image" "$mnt"
head -c 32 /dev/urandom >"$work/k1"
head -c 32 /dev/urandom >"$work/k2"
mkdir "$mnt/private"
"$ecfs" encrypt "$mnt/private" --key-file "$work/k1" --no-recovery >/dev/null
mkdir -p "$mnt/private/tree/a" "$mnt/private/tree/b"
for i in $(seq 1 $((mib / 16))); do
  head -c 16M /dev/urandom >"$mnt/private/tree/$([ $((i % 2)) = 0 ] && echo a || echo b)/f$i"
done
sync
key_of() { "$ecfs" status "$mnt/private" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"]["key_identifier"])'; }
first=$(key_of)
"$ecfs" rekey "$mnt/private" --new-key --key-file "$work/k2" --no-recovery >/dev/null
second=$(key_of)

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# MiB/s of a command over the tree's data.
rate() {
  local start end
  drop_caches
  start=$(date +%s%N)
  "$@" >/dev/null
  sync
  end=$(date +%s%N)
  awk -v m="$mib" -v ns=$((end - start)) 'BEGIN { printf "%.0f", m / (ns / 1e9) }'
}

copy_tree() { tar -C "$mnt/private/tree" -cf - . | tar -C "$mnt/private/copy" -xf -; }

rekey=() copy=() target=$second
for round in $(seq 1 "$rounds"); do
  r=$(rate "$ecfs" rekey "$mnt/private" --to "$target" --contents)
  mkdir "$mnt/private/copy"
  c=$(rate copy_tree)
  rm -rf "$mnt/private/copy"
  printf 'round %d: rekey --contents %d MiB/s, copy %d MiB/s\n' "$round" "$r" "$c"
  rekey+=("$r") copy+=("$c")
  target=$([ "$target" = "$second" ] && echo "$first" || echo "$second")
done

echo "rekey --contents ($mib MiB): $(summary MiB/s "${rekey[@]}")"
echo "copy of the same bytes:  $(summary MiB/s "${copy[@]}")"
awk -v r="$(median "${rekey[@]}")" -v c="$(median "${copy[@]}")" \
  'BEGIN { printf "rekey / copy (medians): %.2fx\n", r / (c > 0 ? c : 1) }'
