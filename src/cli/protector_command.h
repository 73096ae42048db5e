#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers `ecfs protector` on `app` (see command.h): list, add, remove,
// change-passphrase (google/fscrypt's metadata commands, over the image's
// protector tree).
void add_protector_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
