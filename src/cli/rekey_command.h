#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers `ecfs rekey` on `app` (see command.h): key rotation of an
// encrypted directory tree for everything written from then on
// (fs/key_history.h), walked a directory at a time over ECFS_IOC_REKEY.
void add_rekey_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
