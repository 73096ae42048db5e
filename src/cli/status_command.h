#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers `ecfs status` on `app` (see command.h): the encryption state of
// a directory, or of every key the mount's protectors keep.
void add_status_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
