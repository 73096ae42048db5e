// The `ecfs` command: one binary, one subcommand per task (btrfs-progs and
// fscryptctl style). main() sets up locked memory for keys, parses, and runs
// the chosen subcommand.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command.h"
#include "cli/crypt_command.h"
#include "cli/encrypt_command.h"
#include "cli/fsck_command.h"
#include "cli/help_formatter.h"
#include "cli/inspect_command.h"
#include "cli/key_command.h"
#include "cli/mkfs_command.h"
#include "cli/mount_command.h"
#include "cli/policy_command.h"
#include "cli/protector_command.h"
#include "cli/rekey_command.h"
#include "cli/status_command.h"
#include "cli/subvolume_command.h"
#include "cli/sync_command.h"
#include "cli/unlock_command.h"
#include "cli/version.h"
#include "crypto/secret.h"

namespace ecfs::cli {

namespace {

// A first operand that is not an option must name a subcommand; CLI11 would
// only say "A subcommand is required".
bool names_unknown_command(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return false;
  auto known = app.get_subcommands([&](const CLI::App* sub) { return sub->check_name(argv[1]); });
  return known.empty();
}

// The subcommand the user named, for error messages ("" if none yet).
std::string chosen_subcommand(const CLI::App& app) {
  const std::vector<CLI::App*> chosen = app.get_subcommands();
  return chosen.empty() ? std::string() : chosen.front()->get_name();
}

}  // namespace
}  // namespace ecfs::cli

int main(int argc, char** argv) {
  // Key material (SecretBytes) goes to OpenSSL's locked heap from here on,
  // and no core dump of this process (the daemon included) shows any key.
  ecfs::crypto::init_secure_heap();
  if (ecfs::Status protected_dumps = ecfs::crypto::keep_secrets_out_of_core_dumps();
      !protected_dumps) {
    std::fprintf(stderr, "ecfs: %s\n", protected_dumps.error().to_string().c_str());
    return 1;
  }

  // Started by mount(8) as /sbin/mount.fuse.ecfs (a link to this binary).
  if (argc > 0 && ecfs::cli::is_mount_helper_name(argv[0])) {
    return ecfs::cli::run_mount_helper(argc, argv);
  }

  // Before the parser: `ecfs --version` needs no command.
  if (argc == 2 &&
      (std::string_view(argv[1]) == "--version" || std::string_view(argv[1]) == "-V")) {
    std::fputs(ecfs::cli::version_text().c_str(), stdout);
    return 0;
  }

  CLI::App app(
      "an encrypted copy-on-write filesystem with per-extent fscrypt keys\n"
      "\n"
      "  ecfs COMMAND [OPTIONS] [ARGUMENTS]\n"
      "  ecfs --version\n"
      "\n"
      "File contents are encrypted per extent, with the keys, ciphers and formats of\n"
      "Linux fscrypt; checksums cover the ciphertext, so snapshots, fsck and inspect\n"
      "need no key.",
      "ecfs");
  app.require_subcommand(1);
  // Listed in --help; answered above.
  const std::string version_help =
      "Print the version and the image formats this build reads and writes";
  app.add_flag("-V,--version", version_help);
  app.footer(
      "Run 'ecfs COMMAND --help' for the options of one command.\n"
      "\n"
      "Examples:\n"
      "  Make an 8 GiB filesystem in an image file, mount it, unmount it:\n"
      "    ecfs mkfs --size 8G fs.img\n"
      "    mkdir -p /mnt/ecfs && ecfs mount fs.img /mnt/ecfs\n"
      "    umount /mnt/ecfs");

  // Before the commands: subcommands take their parent's formatter when added
  // (`ecfs key --help` lists its own subcommands the same way).
  app.formatter(std::make_shared<ecfs::cli::HelpFormatter>());
  ecfs::cli::CommandRunner runner;
  ecfs::cli::add_crypt_command(app, runner);
  ecfs::cli::add_mkfs_command(app, runner);
  ecfs::cli::add_fsck_command(app, runner);
  ecfs::cli::add_inspect_command(app, runner);
  ecfs::cli::add_mount_command(app, runner);
  ecfs::cli::add_encrypt_command(app, runner);
  ecfs::cli::add_unlock_commands(app, runner);
  ecfs::cli::add_rekey_command(app, runner);
  ecfs::cli::add_protector_command(app, runner);
  ecfs::cli::add_status_command(app, runner);
  ecfs::cli::add_key_command(app, runner);
  ecfs::cli::add_policy_command(app, runner);
  ecfs::cli::add_sync_command(app, runner);
  ecfs::cli::add_subvolume_command(app, runner);

  if (ecfs::cli::names_unknown_command(app, argc, argv)) {
    ecfs::cli::print_error("", std::string("unknown command '") + argv[1] + "' (see --help)");
    return ecfs::cli::kExitUsage;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    std::string message = error.what();
    if (!message.empty() && message.back() == '\n') message.pop_back();
    ecfs::cli::print_error(ecfs::cli::chosen_subcommand(app), message + " (see --help)");
    return ecfs::cli::kExitUsage;
  }
  if (!runner) {
    ecfs::cli::print_error("", "no command given (see --help)");
    return ecfs::cli::kExitUsage;
  }
  return runner();
}
