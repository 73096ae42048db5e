#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers `ecfs unlock` and `ecfs lock` on `app` (see command.h): adding
// an encrypted directory's key to the mount through one of its protectors,
// and removing it again with the kernel's semantics.
void add_unlock_commands(CLI::App& app, CommandRunner& runner);

struct SecretOptions;
// Unlocks `directory` with `secret` (protector_access.h) and prints what
// it did; the exit status. For `ecfs mount --unlock` too.
int unlock_directory(const std::string& command, const std::string& directory,
                     const SecretOptions& secret);

}  // namespace ecfs::cli
