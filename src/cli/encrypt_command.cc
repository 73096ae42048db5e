#include "cli/encrypt_command.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/ioctl_client.h"
#include "cli/key_client.h"
#include "cli/protector_access.h"
#include "crypto/random.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"
#include "fscrypt/protector_wrap.h"

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
  SecretOptions secret;
  std::string name;
  bool no_recovery = false;
  std::string kdf_time = "1s";
};

int failure(const Error& error) {
  print_error(kCommand, error.to_string());
  return kExitFailure;
}

int usage_error(const std::string& message) {
  print_error(kCommand, message);
  return kExitUsage;
}

Status write_all(int fd, ByteSpan bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, "writing the recovery passphrase");
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return ok();
}

int64_t now_seconds() { return static_cast<int64_t>(std::time(nullptr)); }

// What encrypt filed, so that a later failure can take it back.
struct Filed {
  int fd = -1;
  std::optional<fscrypt::KeyIdentifier> key;
  std::vector<fscrypt::ProtectorId> new_protectors;
  std::vector<fscrypt::ProtectorId> wrapped_under;  // existing protectors given the key

  void undo(const std::string& where) {
    for (const auto& id : new_protectors) {
      if (Status removed = remove_protector(fd, id, true, where); !removed) {
        print_error(kCommand, "cleaning up: " + removed.error().to_string());
      }
    }
    for (const auto& id : wrapped_under) {
      if (Status removed = remove_wrapped_key(fd, id, *key, true, where); !removed) {
        print_error(kCommand, "cleaning up: " + removed.error().to_string());
      }
    }
    if (key) {
      if (auto removed = remove_master_key(fd, *key, false, where); !removed) {
        print_error(kCommand, "cleaning up: " + removed.error().to_string());
      }
    }
  }
};

int run(const EncryptArgs& args) {
  auto time = parse_kdf_time(args.kdf_time);
  if (!time) return usage_error(time.error().message());
  if (args.secret.protector && !args.name.empty()) {
    return usage_error("--name names a new protector; --protector uses an existing one");
  }
  if (Status name = check_protector_name(args.name); !name) {
    return usage_error(name.error().message());
  }
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

  // The protector: an existing one, opened, or a new one.
  std::optional<fscrypt::NewProtector> made;
  std::optional<fscrypt::ProtectorId> existing_id;
  crypto::SecretBytes protector_key;
  std::optional<crypto::Argon2Params> costs;
  const auto costs_now = [&]() -> Result<crypto::Argon2Params> {
    if (!costs) {
      auto calibrated = calibrated_costs(*time);
      if (!calibrated) return std::unexpected(calibrated.error());
      costs = *calibrated;
    }
    return *costs;
  };
  if (args.secret.protector) {
    auto id = fscrypt::parse_protector_id(*args.secret.protector);
    if (!id) return usage_error(id.error().message());
    auto listing = list_protectors(fd, where);
    if (!listing) return failure(listing.error());
    const fscrypt::ProtectorRecord* record = listing->find(*id);
    if (record == nullptr) return failure(Error(ENOENT, "no protector " + *args.secret.protector));
    auto opened = open_named_protector(
        *record, args.secret, "Enter the passphrase of protector " + *args.secret.protector + ": ");
    if (!opened) return failure(opened.error());
    protector_key = std::move(*opened);
    existing_id = *id;
  } else {
    auto secret = read_new_secret(args.secret, "Enter a passphrase for " + where + ": ");
    if (!secret) return failure(secret.error());
    crypto::Argon2Params params{0, 0, 0};
    if (fscrypt::is_passphrase_kind(secret->kind)) {
      auto calibrated = costs_now();
      if (!calibrated) return failure(calibrated.error());
      params = *calibrated;
    }
    auto created = fscrypt::create_protector(secret->kind, secret->secret.span(), params, getuid(),
                                             args.name, now_seconds());
    if (!created) return failure(created.error());
    made = std::move(*created);
  }

  // The master key, into the mount's keyring first: the daemon files a
  // wrapped key only for a key its caller holds.
  crypto::SecretBytes master(fscrypt::kMasterKeySize);
  if (Status drawn = crypto::random_bytes(master.mutable_span()); !drawn) {
    return failure(drawn.error());
  }
  Filed filed;
  filed.fd = fd;
  auto identifier = add_master_key(fd, master, "adding the new key to " + where);
  if (!identifier) return failure(identifier.error());
  filed.key = *identifier;
  const auto fail_and_undo = [&](const Error& error) {
    filed.undo(where);
    return failure(error);
  };

  if (made) {
    if (Status put = put_protector(fd, made->record, "filing the protector"); !put) {
      return fail_and_undo(put.error());
    }
    filed.new_protectors.push_back(made->record.id);
  }
  const fscrypt::ProtectorId protector_id = made ? made->record.id : *existing_id;
  const crypto::SecretBytes& wrapping_key = made ? made->protector_key : protector_key;
  auto wrapped = fscrypt::wrap_master_key(protector_id, wrapping_key, master);
  if (!wrapped) return fail_and_undo(wrapped.error());
  if (Status put = put_wrapped_key(fd, *wrapped, "filing the wrapped key"); !put) {
    return fail_and_undo(put.error());
  }
  if (!made) filed.wrapped_under.push_back(*existing_id);

  // The recovery passphrase: a protector of its own.
  std::optional<crypto::SecretBytes> recovery;
  std::optional<fscrypt::ProtectorId> recovery_id;
  if (!args.no_recovery) {
    auto generated = fscrypt::generate_recovery_passphrase();
    if (!generated) return fail_and_undo(generated.error());
    auto params = costs_now();
    if (!params) return fail_and_undo(params.error());
    const crypto::SecretBytes normalized =
        fscrypt::normalize_recovery_passphrase(generated->span());
    auto created =
        fscrypt::create_protector(fscrypt::ProtectorKind::kRecoveryPassphrase, normalized.span(),
                                  *params, getuid(), "recovery", now_seconds());
    if (!created) return fail_and_undo(created.error());
    if (Status put = put_protector(fd, created->record, "filing the recovery protector"); !put) {
      return fail_and_undo(put.error());
    }
    filed.new_protectors.push_back(created->record.id);
    auto recovery_wrapped =
        fscrypt::wrap_master_key(created->record.id, created->protector_key, master);
    if (!recovery_wrapped) return fail_and_undo(recovery_wrapped.error());
    if (Status put = put_wrapped_key(fd, *recovery_wrapped, "filing the recovery key"); !put) {
      return fail_and_undo(put.error());
    }
    recovery = std::move(*generated);
    recovery_id = created->record.id;
  }

  fscrypt::PolicyV2 policy;
  policy.contents_mode = fscrypt::kModeAes256Xts;
  policy.filenames_mode = fscrypt::kModeAes256Cts;
  policy.flags = fscrypt::kPolicyFlagsPad32;
  policy.master_key_identifier = *identifier;
  if (Status set = set_directory_policy(fd, policy, "setting the policy of " + where); !set) {
    return fail_and_undo(set.error());
  }

  std::printf("Encrypted %s with key %s, protector %s (%s).\n", where.c_str(),
              to_hex(*identifier).c_str(), fscrypt::protector_id_text(protector_id).c_str(),
              made ? fscrypt::protector_kind_name(made->record.kind) : "existing");
  if (recovery) {
    std::printf(
        "\nRecovery passphrase, protector %s: it unlocks %s if the %s is lost.\n"
        "Write it down and keep it safe; it is not shown again:\n\n    ",
        fscrypt::protector_id_text(*recovery_id).c_str(), where.c_str(),
        !made                                                   ? "protector's secret"
        : made->record.kind == fscrypt::ProtectorKind::kKeyFile ? "key file"
                                                                : "passphrase");
    if (std::fflush(stdout) != 0) return failure(Error(EIO, "writing standard output failed"));
    // Straight from locked memory: no copy in stdio's buffer.
    if (Status written = write_all(STDOUT_FILENO, recovery->span()); !written) {
      return failure(written.error());
    }
    std::printf("\n\n");
  }
  if (std::fflush(stdout) != 0) return failure(Error(EIO, "writing standard output failed"));
  return kExitOk;
}

}  // namespace

void add_encrypt_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<EncryptArgs>();
  CLI::App* command = app.add_subcommand("encrypt", kDescription);
  command->footer(kFooter);
  command->add_option("DIR", args->directory, "an empty directory on an ecfs mount")->required();
  add_secret_options(*command, args->secret, true);
  command->add_option("--name", args->name, "a label for the new protector (at most 64 bytes)")
      ->type_name("NAME");
  command->add_flag("--no-recovery", args->no_recovery, "make no recovery passphrase");
  command
      ->add_option("--kdf-time", args->kdf_time,
                   "CPU time one passphrase check costs (Argon2id; default 1s)")
      ->type_name("TIME");
  command->callback([args, &runner] { runner = [args] { return run(*args); }; });
}

}  // namespace ecfs::cli
