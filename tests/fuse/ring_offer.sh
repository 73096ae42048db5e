#!/usr/bin/env bash
# Turns the kernel's offer of FUSE over io_uring (the fuse module parameter
# enable_uring) on for the io_uring/ run of the FUSE suite, and back after it
# (ctest fixture setup and cleanup; tests/CMakeLists.txt).
#   bash tests/fuse/ring_offer.sh on STATE_FILE       saves the value, sets Y
#   bash tests/fuse/ring_offer.sh restore STATE_FILE  puts the saved value back
set -euo pipefail
parameter=/sys/module/fuse/parameters/enable_uring
case ${1:-} in
  on)
    if [ ! -w "$parameter" ]; then
      echo "ring_offer: $parameter is missing or not writable (a kernel before 6.14, or not root): the io_uring/ tests will skip"
      rm -f "$2"
      exit 0
    fi
    cat "$parameter" >"$2"
    echo Y >"$parameter"
    ;;
  restore)
    if [ -f "$2" ]; then
      cat "$2" >"$parameter"
      rm -f "$2"
    fi
    ;;
  *)
    echo "usage: ring_offer.sh on|restore STATE_FILE" >&2
    exit 2
    ;;
esac
