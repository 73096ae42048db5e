# bash completion for ecfs: commands, their subcommands and options, and
# paths. The lists come from the installed binary's own --help texts, so
# they follow the program.
_ecfs_commands() {  # the commands or subcommands a --help text lists
  "$@" --help 2>/dev/null |
    awk '/^Subcommands:/ {on = 1; next} on && /^$/ {exit} on && /^  [a-z]/ {sub(/,$/, "", $1); print $1}'
}

_ecfs_options() {  # the options a --help text names
  "$@" --help 2>/dev/null | grep -oE -- '(^|[ ,])--?[A-Za-z][A-Za-z0-9-]*' | tr -d ' ,' | sort -u
}

_ecfs() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  local ecfs=${COMP_WORDS[0]}
  # The command words typed so far (not options, not the word being typed).
  local words=() i
  for ((i = 1; i < COMP_CWORD; i++)); do
    [[ ${COMP_WORDS[i]} == -* ]] || words+=("${COMP_WORDS[i]}")
  done
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_ecfs_options "$ecfs" "${words[@]:0:2}")" -- "$cur")
    return
  fi
  if ((${#words[@]} <= 1)); then
    local listed
    listed=$(_ecfs_commands "$ecfs" "${words[@]}")
    if [[ -n $listed ]]; then
      mapfile -t COMPREPLY < <(compgen -W "$listed" -- "$cur")
      return
    fi
  fi
  # Operands: images, devices, mount points, key files.
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  compopt -o filenames 2>/dev/null
}
complete -F _ecfs ecfs
