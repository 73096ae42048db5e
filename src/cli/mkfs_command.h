// `ecfs mkfs`: creates an ecfs filesystem in an image file or on a block
// device, as mkfs.btrfs does: refuses to overwrite an existing ecfs image
// without --force, then prints a short summary of what it made.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers the `mkfs` subcommand on `app` (see command.h).
void add_mkfs_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
