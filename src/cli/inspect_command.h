// `ecfs inspect`: dumps an ecfs image read-only: every superblock copy, the
// superblock in use (all fields), and the trees node by node with each
// item's key, size and contents (decoded where the engine defines the item
// type, hex otherwise), then the filesystem tree's inodes with their names,
// entries, extents and xattr names (fs/tree_contents.h); as text or, with
// --json, as one JSON document (btrfs inspect-internal dump-super /
// dump-tree). Encrypted inodes are shown without a key: stored (ciphertext)
// names and symlink records, fscrypt inode and extent contexts decoded, and
// each extent's image offset and first data unit number, enough to decrypt
// the image offline (tests/cli/offline_decrypt_test.cc).
#pragma once

#include <CLI/CLI.hpp>

#include "cli/command.h"

namespace ecfs::cli {

// Registers the `inspect` subcommand on `app` (see command.h).
void add_inspect_command(CLI::App& app, CommandRunner& runner);

}  // namespace ecfs::cli
