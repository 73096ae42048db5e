// `ecfs key add|remove|status`: the master keys of a mounted ecfs
// filesystem, through ecfs's ioctls (fuse/ioctl_abi.h), with fscryptctl's
// add_key / remove_key / key_status semantics and output.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers the `key` subcommand and its own subcommands on `app`
// (see command.h).
void add_key_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
