// `ecfs crypt`: an fscrypt oracle. Encrypts or decrypts standard input to
// standard output the way fscrypt does on disk, with the options of xfstests'
// fscrypt-crypt-util plus --extent-nonce. The parsing lives here, the rules
// in crypt_request.h, the work in crypt_oracle.h.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers the `crypt` subcommand on `app`; when it is chosen, `runner`
// receives the work (see command.h).
void add_crypt_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
