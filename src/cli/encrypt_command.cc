#include "cli/encrypt_command.h"

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/ioctl_client.h"
#include "cli/key_client.h"
#include "cli/protected_key.h"
#include "cli/protector_access.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"

namespace ecfs::cli {
namespace {

constexpr const char* kCommand = "encrypt";

constexpr const char* kDescription =
    "encrypt an empty directory with a new key kept by a passphrase or key file\n"
    "\n"
    "  ecfs encrypt DIR [--name NAME] [--passphrase-fd N | --key-file FILE | --protector ID]\n"
    "\n"
    "Makes a new 64-byte master key, stores it in the image wrapped by a protector, adds\n"
    "it to the mount, and sets it as DIR's encryption policy (v2, AES-256-XTS contents,\n"
    "AES-256-CTS names padded to 32 bytes). The protector is a new passphrase (asked\n"
    "twice on the terminal, or read from --passphrase-fd), a new key-file protector\n"
    "(--key-file: 32 random bytes you keep, e.g. 'head -c 32 /dev/urandom > FILE'), or\n"
    "an existing protector (--protector ID, opened with its passphrase or key file).\n"
    "\n"
    "A recovery passphrase is made too and printed once: it unlocks DIR if the\n"
    "passphrase or key file is lost. Write it down, or pass --no-recovery.\n"
    "\n"
    "Passphrases are hashed with Argon2id, its costs calibrated on this machine to about\n"
    "--kdf-time of CPU (default 1s) with at most 128 MiB of memory; the costs are kept\n"
    "in the protector. Protectors and wrapped keys live in the image, outside every\n"
    "subvolume, so snapshots and copies of the image keep them. After a mount, 'ecfs\n"
    "unlock DIR' makes the files readable; 'ecfs lock DIR' removes the key again.";

constexpr const char* kFooter =
    "Exit status: 0 when DIR is encrypted; 1 if it could not be (not an ecfs mount, DIR\n"
    "not empty or already encrypted, wrong passphrase for --protector, ...; whatever\n"
    "was filed is removed again); 2 for bad options.\n"
    "\n"
    "Examples:\n"
    "  Encrypt a new directory with a passphrase (asked on the terminal):\n"
    "    mkdir /mnt/private && ecfs encrypt /mnt/private\n"
    "\n"
    "  The same from a script, with a key file and no recovery passphrase:\n"
    "    head -c 32 /dev/urandom > /root/private.key\n"
    "    ecfs encrypt /mnt/private --key-file /root/private.key --no-recovery";

struct EncryptArgs {
  std::string directory;
  NewKeyArgs key;
};

int failure(const Error& error) {
  print_error(kCommand, error.to_string());
  return kExitFailure;
}

int usage_error(const std::string& message) {
  print_error(kCommand, message);
  return kExitUsage;
}

int run(const EncryptArgs& args) {
  auto key_options = new_key_options(args.key);
  if (!key_options) return usage_error(key_options.error().message());
  auto directory = open_for_ioctl(args.directory, true);
  if (!directory) return failure(directory.error());
  const int fd = directory->fd();
  const std::string& where = args.directory;
  // Already encrypted, or not an ecfs mount: say so before asking anything.
  if (auto policy = directory_policy(fd, where); policy) {
    return failure(Error(EEXIST, where + " is already encrypted"));
  } else if (policy.error().errno_value() != ENODATA) {
    return failure(policy.error());
  }

  auto key = make_protected_key(fd, kCommand, where, *key_options);
  if (!key) return failure(key.error());

  fscrypt::PolicyV2 policy;
  policy.contents_mode = fscrypt::kModeAes256Xts;
  policy.filenames_mode = fscrypt::kModeAes256Cts;
  policy.flags = fscrypt::kPolicyFlagsPad32;
  policy.master_key_identifier = key->identifier();
  if (Status set = set_directory_policy(fd, policy, "setting the policy of " + where); !set) {
    key->undo(kCommand, where);
    return failure(set.error());
  }

  std::printf("Encrypted %s with key %s, protector %s (%s).\n", where.c_str(),
              to_hex(key->identifier()).c_str(),
              fscrypt::protector_id_text(key->protector()).c_str(), key->protector_kind());
  if (Status printed = key->print_recovery(where); !printed) return failure(printed.error());
  if (std::fflush(stdout) != 0) return failure(Error(EIO, "writing standard output failed"));
  return kExitOk;
}

}  // namespace

void add_encrypt_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<EncryptArgs>();
  CLI::App* command = app.add_subcommand("encrypt", kDescription);
  command->footer(kFooter);
  command->add_option("DIR", args->directory, "an empty directory on an ecfs mount")->required();
  add_new_key_options(*command, args->key, "");
  command->callback([args, &runner] { runner = [args] { return run(*args); }; });
}

}  // namespace ecfs::cli
