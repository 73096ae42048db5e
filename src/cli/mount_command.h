// `ecfs mount IMAGE MOUNTPOINT [-f] [-o OPTIONS]`: mounts an ecfs image
// through FUSE and serves it, as a daemon unless -f. Also the mount(8)
// helper form: a link named mount.fuse.ecfs (or mount.ecfs) to the ecfs
// binary, so `mount -t fuse.ecfs IMAGE DIR` and /etc/fstab lines
// (`IMAGE DIR fuse.ecfs defaults,commit=10 0 0`) work without anything
// installed besides that link (e.g. /sbin/mount.fuse.ecfs -> /usr/bin/ecfs).
#pragma once

#include <CLI/CLI.hpp>
#include <string_view>

#include "cli/command.h"

namespace ecfs::cli {

// Registers the `mount` subcommand on `app` (see command.h).
void add_mount_command(CLI::App& app, CommandRunner& runner);

// True when the program was started under a mount(8) helper name
// (basename of argv[0] is mount.fuse.ecfs or mount.ecfs).
bool is_mount_helper_name(std::string_view argv0);

// The mount(8) helper convention: `mount.fuse.ecfs IMAGE DIR [-sfnv]
// [-o OPTIONS] [-t TYPE]` (-s sloppy: unknown options are ignored; -f fake:
// check everything, mount nothing; -n, -v and -t are accepted and ignored).
int run_mount_helper(int argc, char** argv);

}  // namespace ecfs::cli
