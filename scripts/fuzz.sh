#!/usr/bin/env bash
# Builds the libFuzzer targets under fuzz/ and runs each for a bounded time
# from a freshly generated seed corpus (valid nodes and superblocks of the
# current format). Exits non-zero when a target crashes, leaks, trips a
# sanitizer or breaks one of its round-trip properties; prints one summary
# line per target and a closing "fuzz: N targets, N passed, N failed" line.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
# Environment: ECFS_FUZZ_BUILD (default build-fuzz), ECFS_FUZZ_JOBS (default 2),
# ECFS_FUZZ_CXX (default clang++-16).
#
# Why clang-16 and libc++: GCC has no libFuzzer, and clang's support for
# <expected> (used by base/error.h) needs libc++; the objects use libc++ and
# are linked against libc++ next to the libstdc++ runtime that the packaged
# libFuzzer archive itself was built with.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-20}
out=${ECFS_FUZZ_BUILD:-$root/build-fuzz}
jobs=${ECFS_FUZZ_JOBS:-2}
cxx=${ECFS_FUZZ_CXX:-clang++-16}
targets=(node_fuzz superblock_fuzz)

# Library sources the targets need (no tests): base, SHA-256 for the sha256
# checksum, the checksums, the two codecs and the block device interface
# the superblock reader takes.
lib_sources=()
for f in "$root"/src/base/*.cc; do
  [[ $f == *_test.cc ]] || lib_sources+=("$f")
done
lib_sources+=("$root/src/crypto/hash.cc" "$root/src/crypto/evp.cc"
  "$root/src/store/checksum.cc" "$root/src/store/metadata_checksum.cc"
  "$root/src/store/node.cc" "$root/src/store/superblock.cc" "$root/src/block/block_device.cc")

compile_flags=(-std=c++2b -stdlib=libc++ -O1 -g -fno-omit-frame-pointer
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -Wall -Wextra -Werror -I "$root/src")
link_libs=(-lc++ -lcrypto -lisal -lxxhash -lb2)

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz: skipped: $cxx not found (scripts/install-deps.sh installs clang-16, libc++-16-dev," \
    "libfuzzer-16-dev and libclang-rt-16-dev)"
  exit 0
fi

mkdir -p "$out/obj" "$out/artifacts" "$out/logs"

# Objects are named after their path (base/bytes.cc -> src_base_bytes.cc.o).
object_of() {
  local rel=${1#"$root"/}
  echo "$out/obj/${rel//\//_}.o"
}
# True when `object` is missing or older than its source or any header it
# included last time (clang's -MMD dependency file).
stale() {
  local object=$1 deps=${1%.o}.d dep
  [[ -f $object && -f $deps ]] || return 0
  while read -r dep; do
    [[ -z $dep ]] && continue
    [[ -e $dep && ! $dep -nt $object ]] || return 0
  done < <(sed -e 's/^[^:]*://' -e 's/\\$//' "$deps" | tr -s ' \t' '\n')
  return 1
}

# A change of compiler flags invalidates every object.
flags_stamp="$cxx ${compile_flags[*]} ${link_libs[*]}"
if [[ ! -f $out/flags || $(cat "$out/flags") != "$flags_stamp" ]]; then
  rm -f "$out"/obj/*.o "$out"/obj/*.d
fi

all_sources=("${lib_sources[@]}" "$root"/fuzz/*.cc)
to_compile=()
for src in "${all_sources[@]}"; do
  stale "$(object_of "$src")" && to_compile+=("$src")
done

if ((${#to_compile[@]} > 0)); then
  # A missing libc++ or libFuzzer is a missing dependency, not a failure.
  probe_dir=$(mktemp -d)
  printf '#include <expected>\n#include <cstdint>\n#include <cstddef>\nextern "C" int %s\n' \
    'LLVMFuzzerTestOneInput(const uint8_t*, size_t) { std::expected<int, int> e = 1; return *e - 1; }' \
    >"$probe_dir/probe.cc"
  if ! { "$cxx" -std=c++2b -stdlib=libc++ -fsanitize=fuzzer -c "$probe_dir/probe.cc" \
    -o "$probe_dir/probe.o" && "$cxx" -fsanitize=fuzzer "$probe_dir/probe.o" -lc++ \
    -o "$probe_dir/probe"; } >"$probe_dir/log" 2>&1; then
    echo "fuzz: skipped: $cxx cannot build a libFuzzer target with libc++ (install libc++-16-dev," \
      "libfuzzer-16-dev and libclang-rt-16-dev; scripts/install-deps.sh does):"
    sed 's/^/  /' "$probe_dir/log" | head -n 5
    rm -rf "$probe_dir"
    exit 0
  fi
  rm -rf "$probe_dir"

  echo "fuzz: compiling ${#to_compile[@]} of ${#all_sources[@]} sources with $cxx into $out"
  for src in "${to_compile[@]}"; do echo "$src $(object_of "$src")"; done |
    xargs -P "$jobs" -I{} sh -c 'line=$1; shift; src=${line%% *}; obj=${line#* }
      exec "$@" -MMD -MF "${obj%.o}.d" -c "$src" -o "$obj"' _ {} "$cxx" "${compile_flags[@]}" ||
    {
      echo "fuzz: FAILED to compile"
      exit 1
    }
  echo "$flags_stamp" >"$out/flags"
fi

lib_objects=()
for src in "${lib_sources[@]}"; do lib_objects+=("$(object_of "$src")"); done
# link BINARY SANITIZERS MAIN_OBJECT: relinks when an object is newer.
link() {
  local binary=$1 sanitizers=$2 main_object=$3 object relink=0
  [[ -x $binary ]] || relink=1
  for object in "$main_object" "${lib_objects[@]}"; do [[ $object -nt $binary ]] && relink=1; done
  ((relink)) || return 0
  "$cxx" -fsanitize="$sanitizers" "$main_object" "${lib_objects[@]}" "${link_libs[@]}" -o "$binary"
}
for t in "${targets[@]}"; do
  link "$out/$t" fuzzer,address,undefined "$(object_of "$root/fuzz/$t.cc")" || {
    echo "fuzz: FAILED to link $t"
    exit 1
  }
done
# The seed generator has its own main: sanitizers and coverage hooks, no libFuzzer.
link "$out/make_fuzz_seeds" fuzzer-no-link,address,undefined \
  "$(object_of "$root/fuzz/make_fuzz_seeds.cc")" || {
  echo "fuzz: FAILED to link make_fuzz_seeds"
  exit 1
}

mkdir -p "$out/corpus/node_fuzz" "$out/corpus/superblock_fuzz"
if ! "$out/make_fuzz_seeds" "$out/corpus/node_fuzz" "$out/corpus/superblock_fuzz"; then
  echo "fuzz: FAILED to write the seed corpus"
  exit 1
fi

passed=0
failed=0
for t in "${targets[@]}"; do
  log="$out/logs/$t.log"
  # A crash leaves its input at $out/artifacts/$t-crash-<sha1> (reproduce by
  # running the target on that file). The corpus directory keeps what each
  # run discovers, so later runs start further along.
  "$out/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$t-" "$out/corpus/$t" >"$log" 2>&1
  rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+')
  if ((rc == 0)); then
    passed=$((passed + 1))
    echo "fuzz: $t: ${runs:-?} runs in ${seconds}s, ${cov:-?} edges covered, no failure"
  else
    failed=$((failed + 1))
    echo "fuzz: $t: FAILED (exit $rc) after ${runs:-?} runs; log $log"
    grep -E 'ERROR|SUMMARY|_fuzz: |Test unit written to' "$log" | head -n 10 | sed 's/^/  /'
  fi
done

echo "fuzz: ${#targets[@]} targets, $passed passed, $failed failed"
((failed == 0))
