#!/usr/bin/env bash
# Writes the manual pages of ecfs from the binary's own --help texts, so the
# pages cannot drift from the program: ecfs(8), and ecfs-COMMAND(8) for each
# command `ecfs --help` lists (help2man, Debian's package of the same name),
# each also compressed (PAGE.8.gz, what `make install` installs). The help
# texts are laid out for it (src/cli/help_formatter.h): "Usage:" and "or:"
# lines become the SYNOPSIS, "Options:" the OPTIONS, a final "Examples:"
# paragraph the EXAMPLES.
#
#   scripts/man-pages.sh ECFS_BINARY OUTPUT_DIR VERSION
set -euo pipefail

ecfs=$1
out=$2
version=$3
command -v help2man >/dev/null || { echo "man-pages: help2man is missing (make deps)" >&2; exit 1; }
mkdir -p "$out"

# "  name[, alias]   description" lines after "Subcommands:".
commands=$("$ecfs" --help | awk '/^Subcommands:/ {on = 1; next} on && /^$/ {exit} on && /^  [a-z]/ {print}')
[ -n "$commands" ] || { echo "man-pages: '$ecfs --help' lists no commands" >&2; exit 1; }

see_also=$(awk '{sub(/,$/, "", $1); printf "%sB ecfs-%s (8)", (NR > 1 ? ",\n." : "."), $1}' <<<"$commands")

# The top-level page.
help2man --no-info --section=8 --version-string="$version" \
  --name="an encrypted copy-on-write filesystem with per-extent fscrypt keys" \
  --include=<(printf '[SEE ALSO]\n%s\n' "$see_also") \
  --output="$out/ecfs.8" "$ecfs"

# Pages that other tools' pages complete.
declare -A extra_see_also=(
  [mount]=$',\n.BR mount (8),\n.BR fstab (5),\n.BR fuse (8)'
  [key]=$',\n.BR fscryptctl (8)'
  [policy]=$',\n.BR fscryptctl (8)'
)

# Each line: two spaces, the name (and an alias after a comma), two or more
# spaces, the description.
while IFS=$'\t' read -r name description; do
  help2man --no-info --section=8 --version-string="$version" \
    --help-option="$name --help" --name="$description" \
    --include=<(printf '[SEE ALSO]\n.BR ecfs (8)%s\n' "${extra_see_also[$name]:-}") \
    --output="$out/ecfs-$name.8" "$ecfs"
  # help2man names the page after the program; this one is the command's.
  sed -i -E -e "1,/^\\.TH/ s/^\\.TH ECFS /.TH ECFS-${name^^} /" \
    -e "/^\\.SH NAME/{n;s/^ecfs /ecfs-$name /}" "$out/ecfs-$name.8"
done < <(sed -E 's/^  ([a-z-]+)(, [a-z-]+)? {2,}(.*)$/\1\t\3/' <<<"$commands")

for page in "$out"/*.8; do gzip -9nf -k "$page"; done
