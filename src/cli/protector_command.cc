#include "cli/protector_command.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "cli/ioctl_client.h"
#include "cli/json_writer.h"
#include "cli/key_client.h"
#include "cli/protector_access.h"
#include "cli/time_text.h"
#include "fscrypt/policy.h"
#include "fscrypt/protector_wrap.h"

namespace ecfs::cli {
namespace {

constexpr const char* kDescription =
    "list, add, remove and change the protectors that keep encryption keys\n"
    "\n"
    "  ecfs protector list PATH [--json]\n"
    "  ecfs protector add DIR [--name NAME] [--passphrase-fd N | --key-file FILE |\n"
    "                     --protector ID] [--with-passphrase-fd N | --with-key-file FILE]\n"
    "  ecfs protector remove PATH ID [--from DIR] [--force]\n"
    "  ecfs protector change-passphrase PATH ID [--passphrase-fd N]\n"
    "\n"
    "A protector (a passphrase, a 32-byte key file, or a recovery passphrase) wraps the\n"
    "master keys of encrypted directories; the records live in the image, outside every\n"
    "subvolume. A key may have several protectors and a protector may keep several keys.\n"
    "Only a protector's owner (or root) may change or remove it, and the last protector\n"
    "of a key is removed only with --force: without it, the files under that key could\n"
    "never be unlocked again. Run 'ecfs protector COMMAND --help' for one command.";

constexpr const char* kFooter =
    "Exit status: 0 on success; 1 if the operation failed (wrong passphrase, not the\n"
    "owner, last protector, not an ecfs mount, ...); 2 for bad options.";

constexpr const char* kExamples =
    "\n"
    "\n"
    "Examples:\n"
    "  See which protectors keep which keys:\n"
    "    ecfs protector list /mnt\n"
    "\n"
    "  Add a key file as a second way in, then drop the old passphrase:\n"
    "    ecfs protector add /mnt/private --key-file /root/private.key\n"
    "    ecfs protector remove /mnt 25d15ca37507a0c4\n"
    "\n"
    "  Change a passphrase:\n"
    "    ecfs protector change-passphrase /mnt 25d15ca37507a0c4";

struct ListArgs {
  std::string path;
  bool json = false;
};

struct AddArgs {
  std::string directory;
  SecretOptions secret;       // the new protector's (or --protector's) secret
  SecretOptions with_secret;  // the secret that opens DIR's key now
  std::string name;
  std::string kdf_time = "1s";
};

struct RemoveArgs {
  std::string path;
  std::string id;
  std::optional<std::string> from;
  bool force = false;
};

struct ChangeArgs {
  std::string path;
  std::string id;
  std::optional<int> passphrase_fd;
  std::string kdf_time = "1s";
};

int failure(const std::string& command, const Error& error) {
  print_error(command, error.to_string());
  return kExitFailure;
}

int usage_error(const std::string& command, const std::string& message) {
  print_error(command, message);
  return kExitUsage;
}

int run_list(const ListArgs& args) {
  constexpr const char* kCommand = "protector list";
  auto path = open_for_ioctl(args.path, false);
  if (!path) return failure(kCommand, path.error());
  auto listing = list_protectors(path->fd(), "listing the protectors on " + args.path);
  if (!listing) return failure(kCommand, listing.error());
  if (args.json) {
    JsonWriter json;
    json.begin_object();
    json.key("protectors");
    json.begin_array();
    for (const auto& record : listing->protectors) {
      json.begin_object();
      json.field("id", fscrypt::protector_id_text(record.id));
      json.field("kind", fscrypt::protector_kind_name(record.kind));
      json.field("name", record.name);
      json.field("owner_uid", record.owner_uid);
      json.field("created_sec", record.created_sec);
      if (fscrypt::is_passphrase_kind(record.kind)) {
        json.key("argon2id");
        json.begin_object();
        json.field("time_cost", record.argon2.time_cost);
        json.field("memory_kib", record.argon2.memory_kib);
        json.field("parallelism", record.argon2.parallelism);
        json.end_object();
      }
      json.key("keys");
      json.begin_array();
      for (const auto& wrapped : listing->wrapped_keys) {
        if (wrapped.protector == record.id) json.value(to_hex(wrapped.key_identifier));
      }
      json.end_array();
      json.end_object();
    }
    json.end_array();
    json.end_object();
    std::fputs(json.text().c_str(), stdout);
    return kExitOk;
  }
  if (listing->protectors.empty()) {
    std::printf("No protectors on %s.\n", args.path.c_str());
    return kExitOk;
  }
  std::printf("%-16s  %-19s  %-6s  %-10s  %s\n", "PROTECTOR", "KIND", "OWNER", "CREATED",
              "NAME / KEYS");
  for (const auto& record : listing->protectors) {
    std::printf("%-16s  %-19s  %-6u  %-10s  %s\n", fscrypt::protector_id_text(record.id).c_str(),
                fscrypt::protector_kind_name(record.kind), record.owner_uid,
                utc_date_text(record.created_sec).c_str(), record.name.c_str());
    for (const auto& wrapped : listing->wrapped_keys) {
      if (wrapped.protector == record.id) {
        std::printf("%60s key %s\n", "", to_hex(wrapped.key_identifier).c_str());
      }
    }
  }
  return kExitOk;
}

int add_with_key(const AddArgs& args, int fd, const ProtectorListing& listing,
                 const crypto::SecretBytes& master, std::chrono::milliseconds time);

int run_add(const AddArgs& args) {
  constexpr const char* kCommand = "protector add";
  auto time = parse_kdf_time(args.kdf_time);
  if (!time) return usage_error(kCommand, time.error().message());
  if (Status name = check_protector_name(args.name); !name) {
    return usage_error(kCommand, name.error().message());
  }
  auto directory = open_for_ioctl(args.directory, true);
  if (!directory) return failure(kCommand, directory.error());
  const int fd = directory->fd();
  auto identifier = directory_key(fd, args.directory);
  if (!identifier) return failure(kCommand, identifier.error());
  auto listing = list_protectors(fd, "listing the protectors of " + args.directory);
  if (!listing) return failure(kCommand, listing.error());
  // The key itself, through a protector that keeps it now.
  auto key = unwrap_key(*listing, *identifier, args.with_secret, args.directory);
  if (!key) return failure(kCommand, key.error());
  // Holding the key in the mount is what lets the daemon file it; a
  // directory that was locked is locked again afterwards, whatever happens.
  auto state = master_key_status(fd, *identifier, "checking the key of " + args.directory);
  if (!state) return failure(kCommand, state.error());
  const bool held = state->present() && state->added_by_self;
  auto added = add_master_key(fd, key->key, "adding the key of " + args.directory);
  if (!added) return failure(kCommand, added.error());
  const int status = add_with_key(args, fd, *listing, key->key, *time);
  if (!held) {
    if (auto removed = remove_master_key(fd, *identifier, false, "locking " + args.directory);
        !removed) {
      print_error(kCommand, "locking it again: " + removed.error().to_string());
      return kExitFailure;
    }
  }
  return status;
}

// The rest of `protector add`, with DIR's key held: the new (or named)
// protector, and the key wrapped for it.
int add_with_key(const AddArgs& args, int fd, const ProtectorListing& listing,
                 const crypto::SecretBytes& master, std::chrono::milliseconds time) {
  constexpr const char* kCommand = "protector add";
  fscrypt::ProtectorId target{};
  crypto::SecretBytes protector_key;
  bool new_protector = false;
  if (args.secret.protector) {
    auto id = fscrypt::parse_protector_id(*args.secret.protector);
    if (!id) return usage_error(kCommand, id.error().message());
    const fscrypt::ProtectorRecord* record = listing.find(*id);
    if (record == nullptr) {
      return failure(kCommand, Error(ENOENT, "no protector " + *args.secret.protector));
    }
    auto opened = open_named_protector(
        *record, args.secret, "Enter the passphrase of protector " + *args.secret.protector + ": ");
    if (!opened) return failure(kCommand, opened.error());
    target = *id;
    protector_key = std::move(*opened);
  } else {
    auto secret = read_new_secret(args.secret, "Enter the new passphrase: ");
    if (!secret) return failure(kCommand, secret.error());
    crypto::Argon2Params costs{0, 0, 0};
    if (fscrypt::is_passphrase_kind(secret->kind)) {
      auto calibrated = calibrated_costs(time);
      if (!calibrated) return failure(kCommand, calibrated.error());
      costs = *calibrated;
    }
    auto made = fscrypt::create_protector(secret->kind, secret->secret.span(), costs, getuid(),
                                          args.name, static_cast<int64_t>(std::time(nullptr)));
    if (!made) return failure(kCommand, made.error());
    if (Status put = put_protector(fd, made->record, "filing the protector"); !put) {
      return failure(kCommand, put.error());
    }
    target = made->record.id;
    protector_key = std::move(made->protector_key);
    new_protector = true;
  }
  auto wrapped = fscrypt::wrap_master_key(target, protector_key, master);
  Status put = wrapped ? put_wrapped_key(fd, *wrapped, "filing the wrapped key")
                       : Status(std::unexpected(wrapped.error()));
  if (!put) {
    if (new_protector) {
      if (Status removed = remove_protector(fd, target, true, "removing the new protector");
          !removed) {
        print_error(kCommand, "cleaning up: " + removed.error().to_string());
      }
    }
    return failure(kCommand, put.error());
  }
  std::printf("Protector %s now keeps the key of %s.\n", fscrypt::protector_id_text(target).c_str(),
              args.directory.c_str());
  return kExitOk;
}

int run_remove(const RemoveArgs& args) {
  constexpr const char* kCommand = "protector remove";
  auto id = fscrypt::parse_protector_id(args.id);
  if (!id) return usage_error(kCommand, id.error().message());
  auto path = open_for_ioctl(args.path, false);
  if (!path) return failure(kCommand, path.error());
  if (args.from) {
    auto directory = open_for_ioctl(*args.from, true);
    if (!directory) return failure(kCommand, directory.error());
    auto identifier = directory_key(directory->fd(), *args.from);
    if (!identifier) return failure(kCommand, identifier.error());
    if (Status removed =
            remove_wrapped_key(path->fd(), *id, *identifier, args.force,
                               "removing protector " + args.id + " from " + *args.from);
        !removed) {
      return failure(kCommand, removed.error());
    }
    std::printf("Protector %s no longer keeps the key of %s.\n", args.id.c_str(),
                args.from->c_str());
    return kExitOk;
  }
  if (Status removed =
          remove_protector(path->fd(), *id, args.force, "removing protector " + args.id);
      !removed) {
    return failure(kCommand, removed.error());
  }
  std::printf("Removed protector %s.\n", args.id.c_str());
  return kExitOk;
}

int run_change(const ChangeArgs& args) {
  constexpr const char* kCommand = "protector change-passphrase";
  auto time = parse_kdf_time(args.kdf_time);
  if (!time) return usage_error(kCommand, time.error().message());
  auto id = fscrypt::parse_protector_id(args.id);
  if (!id) return usage_error(kCommand, id.error().message());
  auto path = open_for_ioctl(args.path, false);
  if (!path) return failure(kCommand, path.error());
  auto listing = list_protectors(path->fd(), "listing the protectors on " + args.path);
  if (!listing) return failure(kCommand, listing.error());
  const fscrypt::ProtectorRecord* record = listing->find(*id);
  if (record == nullptr) return failure(kCommand, Error(ENOENT, "no protector " + args.id));
  if (record->kind != fscrypt::ProtectorKind::kPassphrase) {
    return failure(kCommand, Error(EINVAL, "protector " + args.id + " is a " +
                                               fscrypt::protector_kind_name(record->kind) +
                                               ", not a passphrase of yours; add a new "
                                               "protector and remove this one instead"));
  }
  if (record->owner_uid != getuid() && getuid() != 0) {
    return failure(kCommand, Error(EPERM, "protector " + args.id + " belongs to another user"));
  }
  SecretOptions current;
  current.passphrase_fd = args.passphrase_fd;
  auto protector_key = open_named_protector(*record, current, "Enter the current passphrase: ");
  if (!protector_key) return failure(kCommand, protector_key.error());
  auto fresh =
      read_passphrase(PassphraseSource{args.passphrase_fd}, "Enter the new passphrase: ", true);
  if (!fresh) return failure(kCommand, fresh.error());
  auto costs = calibrated_costs(*time);
  if (!costs) return failure(kCommand, costs.error());
  auto changed = fscrypt::rewrap_protector(*record, *protector_key, fresh->span(), *costs);
  if (!changed) return failure(kCommand, changed.error());
  if (Status put = put_protector(path->fd(), *changed, "changing protector " + args.id); !put) {
    return failure(kCommand, put.error());
  }
  std::printf("Changed the passphrase of protector %s.\n", args.id.c_str());
  return kExitOk;
}

}  // namespace

void add_protector_command(CLI::App& app, CommandRunner& runner) {
  CLI::App* protector = app.add_subcommand("protector", kDescription);
  protector->require_subcommand(1);
  protector->footer(std::string(kFooter) + kExamples);

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list =
      protector->add_subcommand("list", "list the protectors of the mount and the keys each keeps");
  list->footer(kFooter);
  list->add_option("PATH", list_args->path, "any path on the ecfs mount")->required();
  list->add_flag("--json", list_args->json, "print JSON");
  list->callback([list_args, &runner] { runner = [list_args] { return run_list(*list_args); }; });

  auto add_args = std::make_shared<AddArgs>();
  CLI::App* add = protector->add_subcommand(
      "add", "let a new (or another existing) protector keep the key of an encrypted directory");
  add->footer(kFooter);
  add->add_option("DIR", add_args->directory, "an encrypted directory")->required();
  add_secret_options(*add, add_args->secret, true);
  add->add_option("--with-key-file", add_args->with_secret.key_file,
                  "open DIR's key with this key file (else a passphrase)")
      ->type_name("FILE");
  add->add_option("--with-passphrase-fd", add_args->with_secret.passphrase_fd,
                  "read the passphrase that opens DIR's key from descriptor N")
      ->type_name("N");
  add->add_option("--name", add_args->name, "a label for the new protector")->type_name("NAME");
  add->add_option("--kdf-time", add_args->kdf_time, "CPU time one passphrase check costs")
      ->type_name("TIME");
  add->callback([add_args, &runner] { runner = [add_args] { return run_add(*add_args); }; });

  auto remove_args = std::make_shared<RemoveArgs>();
  CLI::App* remove = protector->add_subcommand(
      "remove", "remove a protector, or with --from only its hold on one directory's key");
  remove->footer(kFooter);
  remove->add_option("PATH", remove_args->path, "any path on the ecfs mount")->required();
  remove->add_option("ID", remove_args->id, "the protector (16 hex digits)")->required();
  remove->add_option("--from", remove_args->from, "only the key of this encrypted directory")
      ->type_name("DIR");
  remove->add_flag("--force", remove_args->force, "remove even the last protector of a key");
  remove->callback(
      [remove_args, &runner] { runner = [remove_args] { return run_remove(*remove_args); }; });

  auto change_args = std::make_shared<ChangeArgs>();
  CLI::App* change =
      protector->add_subcommand("change-passphrase", "change the passphrase of a protector");
  change->footer(kFooter);
  change->add_option("PATH", change_args->path, "any path on the ecfs mount")->required();
  change->add_option("ID", change_args->id, "the passphrase protector (16 hex digits)")->required();
  change
      ->add_option("--passphrase-fd", change_args->passphrase_fd,
                   "read the current and then the new passphrase from descriptor N, one per line")
      ->type_name("N");
  change->add_option("--kdf-time", change_args->kdf_time, "CPU time one passphrase check costs")
      ->type_name("TIME");
  change->callback(
      [change_args, &runner] { runner = [change_args] { return run_change(*change_args); }; });
}

}  // namespace ecfs::cli
