#!/usr/bin/env bash
# How long unlocking takes: `ecfs unlock` of a directory encrypted with a
# passphrase protector whose Argon2id costs `ecfs encrypt` calibrated to
# --kdf-time (default 1s: slow by design, it is what guessing costs), beside
# the same unlock with a key-file protector (no Argon2id: the floor of the
# command, the listing and the key's addition). Rounds alternate the two;
# the script prints each run, min/median/max and the passphrase/key-file
# ratio, and the costs the calibration chose.
#
#   bash bench/unlock_bench.sh [BUILD_DIR]
#
# ECFS_BENCH_DIR     where the image goes (default /var/tmp)
# ECFS_BENCH_ROUNDS  rounds (default 5)
# ECFS_BENCH_KDF     --kdf-time of the passphrase protector (default 1s)
# Needs root and /dev/fuse.
set -euo pipefail

build=${1:-build}
ecfs="$build/bin/ecfs"
rounds=${ECFS_BENCH_ROUNDS:-5}
kdf=${ECFS_BENCH_KDF:-1s}

. "$(dirname "$0")/mount_bench_lib.sh"
bench_workdir unlock

"$ecfs" mkfs --size 256M -q "$work/image"
"$ecfs" mount "$work/image" "$mnt"
head -c 32 /dev/urandom >"$work/key"
mkdir "$mnt/by-passphrase" "$mnt/by-key-file"
"$ecfs" encrypt "$mnt/by-passphrase" --passphrase-fd 3 --kdf-time "$kdf" --no-recovery \
  3<<<"benchmark passphrase" >/dev/null
"$ecfs" encrypt "$mnt/by-key-file" --key-file "$work/key" --no-recovery >/dev/null
"$ecfs" protector list "$mnt" --json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["protectors"]:
    if "argon2id" in p:
        a = p["argon2id"]
        print("calibrated Argon2id: %d passes, %d MiB, %d lanes"
              % (a["time_cost"], a["memory_kib"] // 1024, a["parallelism"]))'

# Milliseconds one unlock takes (the directory is locked before).
time_unlock() {
  local dir=$1
  shift
  "$ecfs" lock "$mnt/$dir" >/dev/null
  local start end
  start=$(date +%s%N)
  "$ecfs" unlock "$mnt/$dir" "$@" >/dev/null
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}

passphrase=() key_file=()
for round in $(seq 1 "$rounds"); do
  p=$(time_unlock by-passphrase --passphrase-fd 3 3<<<"benchmark passphrase")
  k=$(time_unlock by-key-file --key-file "$work/key")
  printf 'round %d: passphrase %d ms, key file %d ms\n' "$round" "$p" "$k"
  passphrase+=("$p") key_file+=("$k")
done

echo "unlock with a passphrase ($kdf target): $(summary ms "${passphrase[@]}")"
echo "unlock with a key file (baseline):     $(summary ms "${key_file[@]}")"
awk -v p="$(median "${passphrase[@]}")" -v k="$(median "${key_file[@]}")" \
  'BEGIN { printf "passphrase / key file (medians): %.1fx\n", p / (k > 0 ? k : 1) }'
