#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers `ecfs encrypt` on `app` (see command.h): a new master key, kept
// by a protector in the image (and a recovery passphrase), set as the
// policy of an empty directory, in one step (google/fscrypt's shape).
void add_encrypt_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
