#!/usr/bin/env bash
# Runs every test: the release build's suites (unit, kernel-as-judge, CLI),
# the sanitizer build's unit suites, and the libFuzzer targets for a short
# bounded time. Prints each suite's summary and a closing
# "N passed, N failed" line over all of them.
set -uo pipefail
build=${1:-build}
asan_build=${2:-build-asan}
jobs=$(nproc)

total_pass=0
total_fail=0
run_suite() {
  local label=$1; shift
  echo "=== $label ==="
  local log
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local summary
  summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
  if [[ $summary =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    local failed=${BASH_REMATCH[1]} all=${BASH_REMATCH[2]}
    total_pass=$((total_pass + all - failed))
    total_fail=$((total_fail + failed))
  elif [ "$rc" -ne 0 ]; then
    total_fail=$((total_fail + 1))
  fi
  rm -f "$log"
  return "$rc"
}

status=0
run_suite "unit tests" ctest --test-dir "$build" -L unit --output-on-failure -j "$jobs" || status=1
run_suite "unit tests under ASan+UBSan" env ASAN_OPTIONS=detect_leaks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$asan_build" -L unit --output-on-failure -j "$jobs" || status=1
run_suite "kernel-as-judge and command-line tests" \
  ctest --test-dir "$build" -LE unit --output-on-failure || status=1

echo "=== fuzzing the on-disk decoders (libFuzzer) ==="
fuzz_log=$(mktemp)
bash "$(dirname "$0")/fuzz.sh" "${ECFS_FUZZ_SECONDS:-15}" 2>&1 | tee "$fuzz_log"
fuzz_rc=${PIPESTATUS[0]}
if [[ $(tail -n1 "$fuzz_log") =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
  total_pass=$((total_pass + BASH_REMATCH[1]))
  total_fail=$((total_fail + BASH_REMATCH[2]))
elif [ "$fuzz_rc" -ne 0 ]; then
  total_fail=$((total_fail + 1))
fi
[ "$fuzz_rc" -eq 0 ] || status=1
rm -f "$fuzz_log"

echo "$total_pass passed, $total_fail failed"
exit $status
