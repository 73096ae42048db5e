#!/usr/bin/env bash
# A short narrated tour of `ecfs crypt`, the fscrypt oracle: key identifiers,
# file contents and filenames under several fscrypt policies, and ecfs's
# per-extent keys; then, as root, an encrypted directory on an ecfs mount,
# a snapshot of it taken without its key, and a directory unlocked with a
# passphrase kept in the image. Cleans up after itself on
# success, failure and Ctrl-C. Usage: scripts/demo.sh [path/to/ecfs]
# (make demo)
set -euo pipefail

ecfs=${1:-build/bin/ecfs}
if [[ ! -x $ecfs ]]; then
  echo "demo: no ecfs binary at '$ecfs' (run 'make build' first)" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ecfs-demo.XXXXXX")
mnt="$work/mnt"
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # Ctrl-C: the EXIT trap still cleans up

bold=$'\e[1m' dim=$'\e[2m' reset=$'\e[0m'
if [[ ! -t 1 ]]; then bold='' dim='' reset=''; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$reset"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$reset"; }
run() { printf '$ %s\n' "$*"; }
# First bytes of a file in hex.
hex_head() { od -An -tx1 -N "${2:-32}" "$1" | tr -d ' \n'; echo; }
# check_same FILE EXPECTED [WHAT]: stop the demo unless they are identical.
check_same() {
  local what=${3:-round trip}
  if cmp -s "$1" "$2"; then echo "  $what: identical"; else echo "  $what: DIFFERENT" >&2; exit 1; fi
}

# xfstests' TEST_RAW_KEY: the bytes 0x01, 0x02, ..., 0x40.
key=$(for i in $(seq 1 64); do printf '%02x' "$i"; done)
nonce=f0e1d2c3b4a5968778695a4b3c2d1e0f   # an inode's 16-byte nonce (random in real life)
fs_uuid=0123456789abcdef0123456789abcdef

say "1. The master key and its fscrypt key identifier"
echo "KEY=$key"
note "A 64-byte master key (xfstests' test key). fscrypt v2 names a key by"
note "HKDF-SHA512(key, info = \"fscrypt\\0\" 0x01), 16 bytes; the kernel and xfstests"
note "agree it is 69b2f6edeee720cce0577937eb8a6751."
run "ecfs crypt --dump-key-identifier \$KEY"
identifier=$("$ecfs" crypt --dump-key-identifier "$key")
echo "  $identifier"
[[ $identifier == 69b2f6edeee720cce0577937eb8a6751 ]]

say "2. File contents: three data units of a file, under several policies"
note "A file of 3 x 4096 bytes minus 100: the last data unit is partial and is"
note "zero-padded, as on disk."
for i in $(seq 1 400); do echo "line $i of a very ordinary file that ecfs will encrypt"; done \
  >"$work/lines"
head -c $((3 * 4096 - 100)) "$work/lines" >"$work/plain"
cp "$work/plain" "$work/plain.padded"
truncate -s $((3 * 4096)) "$work/plain.padded"   # the zero padding of the last unit

demo_contents() {
  local label=$1 cipher=$2; shift 2
  printf '\n%s%s%s\n' "$bold" "$label" "$reset"
  run "ecfs crypt $* $cipher \$KEY < plain > cipher"
  "$ecfs" crypt "$@" "$cipher" "$key" <"$work/plain" >"$work/cipher"
  echo "  ciphertext: $(stat -c %s "$work/cipher") bytes, starting $(hex_head "$work/cipher")"
  "$ecfs" crypt --decrypt "$@" "$cipher" "$key" <"$work/cipher" >"$work/back"
  check_same "$work/back" "$work/plain.padded"
}
demo_contents "v2 policy, AES-256-XTS, per-file key (HKDF context 2 over the file nonce)" \
  AES-256-XTS --kdf=HKDF-SHA512 --file-nonce=$nonce
demo_contents "v1 policy, AES-256-XTS, key = AES-128-ECB(nonce, master key)" \
  AES-256-XTS --kdf=AES-128-ECB --file-nonce=$nonce
demo_contents "v2 IV_INO_LBLK_64: one key per filesystem, the inode number in the IV" \
  AES-256-XTS --kdf=HKDF-SHA512 --iv-ino-lblk-64 --mode-num=1 --inode-number=12 \
  --fs-uuid=$fs_uuid
demo_contents "v2 Adiantum (wide-block, for CPUs without AES instructions)" \
  Adiantum --kdf=HKDF-SHA512 --file-nonce=$nonce
demo_contents "v2 AES-128-CBC-ESSIV (the IV encrypted under SHA-256 of the key)" \
  AES-128-CBC-ESSIV --kdf=HKDF-SHA512 --file-nonce=$nonce

say "3. A filename"
note "Names are NUL-padded to a multiple of the policy padding (here 32) and"
note "encrypted as one message with the directory's key; 255 is NAME_MAX."
name=holiday-photos-2026
demo_name() {
  local cipher=$1
  run "printf $name | ecfs crypt --kdf=HKDF-SHA512 --file-nonce=\$DIR_NONCE --data-unit-size=255 --padding=32 $cipher \$KEY"
  printf %s "$name" | "$ecfs" crypt --kdf=HKDF-SHA512 --file-nonce=$nonce \
    --data-unit-size=255 --padding=32 "$cipher" "$key" >"$work/name.cipher"
  echo "  $(stat -c %s "$work/name.cipher") bytes: $(hex_head "$work/name.cipher")"
  local back
  back=$("$ecfs" crypt --decrypt --kdf=HKDF-SHA512 --file-nonce=$nonce \
    --data-unit-size=255 --padding=32 "$cipher" "$key" <"$work/name.cipher" | tr -d '\0')
  echo "  decrypted: $back"
  [[ $back == "$name" ]]
}
demo_name AES-256-CTS-CBC
demo_name AES-256-HCTR2

say "4. Per-extent keys (ecfs, after the btrfs fscrypt series)"
note "Each extent has its own nonce; its key is HKDF context 9 over that nonce,"
note "and data units are counted from the start of the extent, not the file."
extent_a=00112233445566778899aabbccddeeff
extent_b=ffeeddccbbaa99887766554433221100
for extent in $extent_a $extent_b; do
  run "ecfs crypt --kdf=HKDF-SHA512 --extent-nonce=$extent AES-256-XTS \$KEY < plain"
  "$ecfs" crypt --kdf=HKDF-SHA512 --extent-nonce=$extent AES-256-XTS "$key" \
    <"$work/plain" >"$work/extent-$extent"
  echo "  starts $(hex_head "$work/extent-$extent")"
done
if cmp -s "$work/extent-$extent_a" "$work/extent-$extent_b"; then
  echo "  the two extents encrypted alike: FAILED" >&2
  exit 1
fi
echo "  same plaintext, two extent nonces: different ciphertext."
note "A reflinked or relocated piece of extent A keeps its numbering: its second"
note "data unit alone, with --data-unit-index=1, encrypts to the same bytes."
dd if="$work/plain.padded" of="$work/unit1" bs=4096 skip=1 count=1 status=none
"$ecfs" crypt --kdf=HKDF-SHA512 --extent-nonce=$extent_a --data-unit-index=1 AES-256-XTS "$key" \
  <"$work/unit1" >"$work/unit1.cipher"
dd if="$work/extent-$extent_a" of="$work/unit1.expected" bs=4096 skip=1 count=1 status=none
check_same "$work/unit1.cipher" "$work/unit1.expected" "unit 1 alone vs. unit 1 of the extent"

say "5. An encrypted directory on an ecfs mount"
if [[ $(id -u) -ne 0 || ! -c /dev/fuse ]] || ! command -v fusermount3 >/dev/null; then
  note "skipped: mounting needs root, /dev/fuse and fusermount3"
else
  mkdir -p "$mnt"
  run "ecfs mkfs demo.img --size 1G && ecfs mount demo.img mnt"
  "$ecfs" mkfs "$work/demo.img" --size 1G >/dev/null
  "$ecfs" mount "$work/demo.img" "$mnt"
  # The key's 64 bytes from its hex (bash's printf reads \xHH).
  printf "$(sed 's/../\\x&/g' <<<"$key")" >"$work/key.bin"
  run "ecfs key add mnt --key-file key.bin"
  key_id=$("$ecfs" key add "$mnt" --key-file "$work/key.bin")
  echo "  $key_id"
  run "mkdir mnt/private && ecfs policy set mnt/private $key_id"
  mkdir "$mnt/private"
  "$ecfs" policy set "$mnt/private" "$key_id"
  echo "holiday plans: the lighthouse" >"$mnt/private/plans.txt"
  cp "$mnt/private/plans.txt" "$mnt/private/copy.txt"  # copy_file_range: a reflink
  run "ls mnt/private   # with the key"
  ls "$mnt/private" | sed 's/^/  /'
  run "ecfs key remove mnt $key_id && ls mnt/private   # without: no-key names"
  "$ecfs" key remove "$mnt" "$key_id"
  ls "$mnt/private" | sed 's/^/  /'
  if cat "$mnt/private/plans.txt" 2>/dev/null; then
    echo "  read without the key: FAILED" >&2
    exit 1
  fi
  "$ecfs" key add "$mnt" --key-file "$work/key.bin" >/dev/null
  run "ecfs key add mnt --key-file key.bin && cat mnt/private/copy.txt"
  sed 's/^/  /' "$mnt/private/copy.txt"

  say "6. A snapshot of the encrypted directory, taken without its key"
  note "A subvolume is a tree of its own; a snapshot is a copy-on-write clone"
  note "of one, made in constant time. Every extent keeps its own encryption"
  note "context, so the clone needs no key and shares every encrypted byte."
  run "ecfs subvolume create mnt/home && mkdir mnt/home/private && ecfs policy set ..."
  "$ecfs" subvolume create "$mnt/home" >/dev/null
  mkdir "$mnt/home/private"
  "$ecfs" policy set "$mnt/home/private" "$key_id"
  echo "monday: buy rope" >"$mnt/home/private/diary.txt"
  run "ecfs key remove mnt $key_id"
  "$ecfs" key remove "$mnt" "$key_id"
  run "ecfs subvolume snapshot -r mnt/home mnt/home-monday   # no key loaded"
  "$ecfs" subvolume snapshot -r "$mnt/home" "$mnt/home-monday" | sed 's/^/  /'
  run "ls mnt/home/private mnt/home-monday/private   # the same no-key names"
  echo "  $(ls "$mnt/home/private")  $(ls "$mnt/home-monday/private")"
  if [[ $(ls "$mnt/home/private") != "$(ls "$mnt/home-monday/private")" ]]; then
    echo "  the snapshot's names differ: FAILED" >&2
    exit 1
  fi
  "$ecfs" key add "$mnt" --key-file "$work/key.bin" >/dev/null
  echo "tuesday: climb the lighthouse" >"$mnt/home/private/diary.txt"
  run "ecfs key add ... && cat mnt/home/private/diary.txt mnt/home-monday/private/diary.txt"
  sed 's/^/  /' "$mnt/home/private/diary.txt" "$mnt/home-monday/private/diary.txt"
  [[ $(cat "$mnt/home-monday/private/diary.txt") == "monday: buy rope" ]]
  run "ecfs subvolume list mnt"
  "$ecfs" subvolume list "$mnt" | sed 's/^/  /'
  run "ecfs subvolume delete mnt/home-monday && ecfs subvolume sync mnt"
  "$ecfs" subvolume delete "$mnt/home-monday" >/dev/null
  "$ecfs" subvolume sync "$mnt"
  echo "  dropped in the background; its space is free again"

  say "7. A passphrase kept in the image: encrypt, unmount, mount --unlock"
  note "ecfs encrypt makes the key, wraps it with the passphrase (Argon2id, its"
  note "cost calibrated on this machine; 50 ms here, 1 s by default) and with a"
  note "recovery passphrase printed once, and sets the policy in one step."
  run "mkdir mnt/journal && ecfs encrypt mnt/journal --passphrase-fd 3 --kdf-time 50ms 3<<<'...'"
  mkdir "$mnt/journal"
  "$ecfs" encrypt "$mnt/journal" --passphrase-fd 3 --kdf-time 50ms \
    3<<<"demo passphrase" | sed -n '1p;/^    /p' | sed 's/^ */  /'
  echo "wednesday: the lighthouse keeper waved" >"$mnt/journal/entry.txt"
  fusermount3 -u "$mnt"
  run "ecfs mount demo.img mnt --unlock journal --passphrase-fd 3 3<<<'wrong'"
  if "$ecfs" mount "$work/demo.img" "$mnt" --unlock journal --passphrase-fd 3 \
    3<<<"wrong" 2>&1 | sed 's/^/  /'; then :; fi
  run "ecfs unlock mnt/journal --passphrase-fd 3 3<<<'demo passphrase' && cat mnt/journal/entry.txt"
  "$ecfs" unlock "$mnt/journal" --passphrase-fd 3 3<<<"demo passphrase" | sed 's/^/  /'
  sed 's/^/  /' "$mnt/journal/entry.txt"
  run "ecfs status mnt/journal"
  "$ecfs" status "$mnt/journal" | sed 's/^/  /'
  fusermount3 -u "$mnt"
  "$ecfs" fsck "$work/demo.img" >/dev/null
  if grep -q -e lighthouse -e plans.txt -e diary -e rope -e "demo passphrase" \
    "$work/demo.img"; then
    echo "  plaintext found in the image: FAILED" >&2
    exit 1
  fi
  note "The image holds neither the text nor the names; ecfs inspect shows each"
  note "extent's context (nonce, key identifier) without the key; fsck is clean."
fi

say "Done"
note "The kernel judges all of this: 'make test-kernel' (as root) compares ecfs"
note "with ext4's own fscrypt, byte for byte, in both directions."
