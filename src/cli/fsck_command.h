// `ecfs fsck`: checks an unmounted ecfs image read-only (btrfs check): the
// superblock copies, then every tree and extent reference (Engine::check),
// then, when the image holds a filesystem, its POSIX invariants
// (fs/fs_check.h). Never writes to the image.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers the `fsck` subcommand on `app` (see command.h).
void add_fsck_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
