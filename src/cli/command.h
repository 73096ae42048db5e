// What every `ecfs` subcommand shares: how it plugs into the command line
// and which exit statuses it uses.
//
// A subcommand file offers `void add_NAME_command(CLI::App& app,
// CommandRunner& runner)`. It registers its options on `app`; when the user
// picks it, CLI11 calls back and the subcommand stores in `runner` the work
// to do, which main() runs after parsing has finished. So parsing never does
// work, and work never parses.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace ecfs::cli {

// Exit statuses, as fscrypt-crypt-util and most Unix tools use them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the work failed (I/O error, ...)
inline constexpr int kExitUsage = 2;    // bad options or operands: nothing was done

using CommandRunner = std::function<int()>;

// Prints "ecfs COMMAND: message" (or "ecfs: message") on stderr as one line.
// Messages must never contain key bytes; as a safety net for text that
// quotes the command line (CLI11's parse errors), every run of 32 or more hex
// digits, the shortest a master key can be written in, is shown as
// "<hex redacted>".
void print_error(std::string_view command, std::string_view message);

// The redaction print_error applies.
std::string redact_long_hex(std::string_view text);

}  // namespace ecfs::cli
