#!/usr/bin/env bash
# Installs the Debian 12 packages ecfs needs. Idempotent and quiet when
# everything is present; needs root only when something is missing.
#
#   scripts/install-deps.sh [demo|install|all]
#
# demo: what building and running `ecfs` needs (make demo): a compiler,
#       CMake, and the libraries ecfs links.
# install: that, and help2man for the manual pages (make install).
# all (the default): also what the tests, fuzzers and benchmarks use
#       (make check, make bench, make bench-fs).
set -euo pipefail

profile=${1:-all}

demo_packages=(
  build-essential cmake pkg-config
  libssl-dev          # OpenSSL 3: every primitive OpenSSL offers
  libargon2-dev       # Argon2id for passphrase protectors
  libcli11-dev        # command-line parsing
  libisal-dev         # crc32c (Intel ISA-L)
  libxxhash-dev       # xxhash64
  libb2-dev           # BLAKE2b
  libfuse3-dev fuse3  # the FUSE mount (libfuse3 low-level API, fusermount3)
  liburing-dev        # FUSE over io_uring (fuse/ring_channel.h)
  util-linux          # mount, mountpoint
)
test_packages=(
  libgtest-dev libgmock-dev
  libbenchmark-dev
  zlib1g-dev          # golden images are stored gzip-compressed
  attr acl            # getfattr/setfattr, getfacl/setfacl in the mount tests
  fio                 # filesystem benchmarks (bench/fs_bench.sh)
  gocryptfs           # the FUSE encrypted filesystem bench/fs_bench.sh compares with
  clang-16 libc++-16-dev libc++abi-16-dev libfuzzer-16-dev libclang-rt-16-dev  # libFuzzer targets
  e2fsprogs           # mkfs.ext4 / debugfs for the kernel-as-judge tests
  python3
  help2man            # the manual pages (scripts/man-pages.sh)
  man-db              # man -l renders each page in tests/cli/install_test.cc
)

case $profile in
  demo) packages=("${demo_packages[@]}") ;;
  install) packages=("${demo_packages[@]}" help2man) ;;
  all) packages=("${demo_packages[@]}" "${test_packages[@]}") ;;
  *) echo "install-deps: unknown profile '$profile' (demo, install or all)" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
