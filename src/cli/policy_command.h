// `ecfs policy set|get`: the fscrypt encryption policy of a directory on a
// mounted ecfs filesystem, through ecfs's ioctls (fuse/ioctl_abi.h), with
// fscryptctl's set_policy / get_policy options, defaults and output.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers the `policy` subcommand and its own subcommands on `app`
// (see command.h).
void add_policy_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
