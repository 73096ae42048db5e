// `ecfs sync PATH`: commits everything a mounted ecfs filesystem holds and
// returns once it is durable, as sync(1) does for filesystems that the
// kernel tells about sync(2). A plain fuse mount (one not mounted by root,
// or mounted with -o no_blkdev) is never told: there, this is the command.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers the `sync` subcommand on `app` (see command.h).
void add_sync_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
