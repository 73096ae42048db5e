#!/usr/bin/env bash
# Runs the demonstration (scripts/demo.sh ECFS) in a scratch TMPDIR: it must
# exit 0 and leave nothing behind there, mounted or not.
#   bash tests/demo_check.sh DEMO_SCRIPT ECFS_BINARY
set -euo pipefail
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if ! TMPDIR=$scratch bash "$1" "$2" >"$scratch.log" 2>&1; then
  cat "$scratch.log"
  rm -f "$scratch.log"
  echo "demo_check: the demonstration failed" >&2
  exit 1
fi
rm -f "$scratch.log"
if grep -q " $scratch" /proc/self/mounts; then
  echo "demo_check: the demonstration left a mount under $scratch" >&2
  exit 1
fi
if [ -n "$(ls -A "$scratch")" ]; then
  echo "demo_check: the demonstration left files in $scratch: $(ls -A "$scratch")" >&2
  exit 1
fi
echo "demo_check: the demonstration ran and cleaned up"
