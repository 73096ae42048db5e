#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers the `subvolume` subcommands on `app` (see command.h):
// create, snapshot, list, show, delete, sync, in btrfs-progs' shapes.
void add_subvolume_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
