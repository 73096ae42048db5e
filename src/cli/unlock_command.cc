#include "cli/unlock_command.h"

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/ioctl_client.h"
#include "cli/key_client.h"
#include "cli/protector_access.h"
#include "fscrypt/policy.h"

namespace ecfs::cli {
namespace {

constexpr const char* kUnlockDescription =
    "unlock an encrypted directory with its passphrase, key file or recovery passphrase\n"
    "\n"
    "  ecfs unlock DIR [--passphrase-fd N | --key-file FILE] [--protector ID]\n"
    "\n"
    "Finds the protectors in the image that keep DIR's key, opens one with the secret\n"
    "(the passphrase is asked on the terminal without echo, or read from --passphrase-fd;\n"
    "a recovery passphrase may be typed in any case and grouping), and adds the key to\n"
    "the mount for the calling user, as 'ecfs key add' would: names and contents under\n"
    "DIR, and under every directory with the same key, become readable. A wrong secret\n"
    "is refused and changes nothing.";

constexpr const char* kLockDescription =
    "lock an encrypted directory: remove its key from the mount\n"
    "\n"
    "  ecfs lock DIR [--all-users]\n"
    "\n"
    "Removes the calling user's claim to DIR's key, with the kernel's semantics: dirty\n"
    "data is written out first, and once no user holds the key its names and contents\n"
    "are unreadable again. Files still open keep working until closed (the key is then\n"
    "'incompletely removed'; lock again once they are closed). --all-users (root) removes\n"
    "every user's claim.";

constexpr const char* kFooter =
    "Exit status: 0 on success (warnings included); 1 if it failed (not encrypted, wrong\n"
    "passphrase, no protector, not an ecfs mount, ...); 2 for bad options.";

constexpr const char* kUnlockExamples =
    "\n"
    "\n"
    "Examples:\n"
    "  Unlock with the passphrase, asked on the terminal:\n"
    "    ecfs unlock /mnt/private\n"
    "\n"
    "  Unlock from a script, with a key file or a passphrase on descriptor 3:\n"
    "    ecfs unlock /mnt/private --key-file /root/private.key\n"
    "    ecfs unlock /mnt/private --passphrase-fd 3 3</root/passphrase";

struct UnlockArgs {
  std::string directory;
  SecretOptions secret;
};

struct LockArgs {
  std::string directory;
  bool all_users = false;
};

int failure(const std::string& command, const Error& error) {
  print_error(command, error.to_string());
  return kExitFailure;
}

int run_lock(const LockArgs& args) {
  constexpr const char* kCommand = "lock";
  auto directory = open_for_ioctl(args.directory, true);
  if (!directory) return failure(kCommand, directory.error());
  auto identifier = directory_key(directory->fd(), args.directory);
  if (!identifier) return failure(kCommand, identifier.error());
  auto removal =
      remove_master_key(directory->fd(), *identifier, args.all_users, "locking " + args.directory);
  if (!removal) return failure(kCommand, removal.error());
  // The keys it was under before a rotation, which its files' older data
  // still needs, go too (those this user holds).
  auto earlier = previous_keys(directory->fd(), args.directory);
  if (!earlier) return failure(kCommand, earlier.error());
  for (const fscrypt::KeyIdentifier& key : *earlier) {
    auto state = master_key_status(directory->fd(), key, "checking the keys of " + args.directory);
    if (!state) return failure(kCommand, state.error());
    if (!state->present() || (!state->added_by_self && !args.all_users)) continue;
    auto removed =
        remove_master_key(directory->fd(), key, args.all_users, "locking " + args.directory);
    if (!removed) return failure(kCommand, removed.error());
    removal->other_users = removal->other_users || removed->other_users;
    removal->files_busy = removal->files_busy || removed->files_busy;
    std::printf(
        "Removed earlier key %s too (data written before a rotation; directories still under "
        "that key are locked as well).\n",
        to_hex(key).c_str());
  }
  if (removal->other_users) {
    std::printf("warning: other users still have this key added: %s stays unlocked for them\n",
                args.directory.c_str());
  }
  if (removal->files_busy) {
    std::printf(
        "warning: some files under %s are still open: they stay readable until closed; run "
        "'ecfs lock %s' again then\n",
        args.directory.c_str(), args.directory.c_str());
  }
  if (!removal->other_users && !removal->files_busy) {
    std::printf("Locked %s.\n", args.directory.c_str());
  }
  return kExitOk;
}

}  // namespace

int unlock_directory(const std::string& command, const std::string& path,
                     const SecretOptions& secret) {
  auto directory = open_for_ioctl(path, true);
  if (!directory) return failure(command, directory.error());
  const int fd = directory->fd();
  auto identifier = directory_key(fd, path);
  if (!identifier) return failure(command, identifier.error());
  // After a rotation (ecfs rekey) the files may still hold data under the
  // keys the directory was under before: those are unlocked too.
  auto earlier = previous_keys(fd, path);
  if (!earlier) return failure(command, earlier.error());
  std::vector<fscrypt::KeyIdentifier> needed;
  bool current_needed = false;
  for (size_t i = 0; i <= earlier->size(); ++i) {
    const fscrypt::KeyIdentifier& key = i == 0 ? *identifier : (*earlier)[i - 1];
    auto state = master_key_status(fd, key, "checking the keys of " + path);
    if (!state) return failure(command, state.error());
    if (state->present() && state->added_by_self) continue;
    if (i == 0) current_needed = true;
    needed.push_back(key);
  }
  if (!current_needed) std::printf("%s is already unlocked.\n", path.c_str());
  if (needed.empty()) return kExitOk;
  auto listing = list_protectors(fd, "listing the protectors of " + path);
  if (!listing) return failure(command, listing.error());
  auto keys = unwrap_keys(*listing, needed, secret, path, current_needed);
  std::vector<fscrypt::KeyIdentifier> still_locked;
  size_t unlocked_earlier = 0;
  bool wrong_secret = false;
  bool failed = false;  // an earlier key's protector could not be used
  for (size_t i = 0; i < needed.size(); ++i) {
    const bool current = current_needed && i == 0;
    if (!keys[i]) {
      // The directory's own key is what unlocking means; earlier ones are
      // reported and may be opened by another secret.
      if (current) return failure(command, keys[i].error());
      const int error = keys[i].error().errno_value();
      if (error != ENOKEY && error != EKEYREJECTED) {
        print_error(command, keys[i].error().to_string());
        failed = true;
      }
      wrong_secret = wrong_secret || error == EKEYREJECTED;
      still_locked.push_back(needed[i]);
      continue;
    }
    auto added = add_master_key(fd, keys[i]->key, "adding the key of " + path);
    if (!added) return failure(command, added.error());
    if (*added != needed[i]) {
      // unwrap_master_key checked the identifier; the mount must agree.
      return failure(command, Error(EPROTO, "the mount computed another identifier for the key"));
    }
    if (current) {
      const fscrypt::ProtectorRecord* used = listing->find(keys[i]->protector);
      std::printf("Unlocked %s with protector %s (%s).\n", path.c_str(),
                  fscrypt::protector_id_text(keys[i]->protector).c_str(),
                  used ? fscrypt::protector_kind_name(used->kind) : "?");
    } else {
      std::printf("Unlocked earlier key %s of %s (data written before a rotation).\n",
                  to_hex(needed[i]).c_str(), path.c_str());
      ++unlocked_earlier;
    }
  }
  for (const fscrypt::KeyIdentifier& key : still_locked) {
    std::printf(
        "Earlier key %s of %s stays locked: this secret opens no protector of yours that keeps "
        "it; data written before the rotation reads as 'Required key not available' until it "
        "is unlocked (run 'ecfs unlock %s' again with its passphrase or key file).\n",
        to_hex(key).c_str(), path.c_str(), path.c_str());
  }
  // Run again for the earlier keys alone, a secret that opens none of them
  // is refused as a wrong one is.
  if (!current_needed && unlocked_earlier == 0 && wrong_secret) {
    return failure(command, Error(EKEYREJECTED, "the secret opens no earlier key of " + path));
  }
  return failed ? kExitFailure : kExitOk;
}

void add_unlock_commands(CLI::App& app, CommandRunner& runner) {
  auto unlock_args = std::make_shared<UnlockArgs>();
  CLI::App* unlock = app.add_subcommand("unlock", kUnlockDescription);
  unlock->footer(std::string(kFooter) + kUnlockExamples);
  unlock->add_option("DIR", unlock_args->directory, "an encrypted directory")->required();
  add_secret_options(*unlock, unlock_args->secret, true);
  unlock->callback([unlock_args, &runner] {
    runner = [unlock_args] {
      return unlock_directory("unlock", unlock_args->directory, unlock_args->secret);
    };
  });

  auto lock_args = std::make_shared<LockArgs>();
  CLI::App* lock = app.add_subcommand("lock", kLockDescription);
  lock->footer(kFooter);
  lock->add_option("DIR", lock_args->directory, "an encrypted directory")->required();
  lock->add_flag("--all-users", lock_args->all_users, "remove every user's claim (root)");
  lock->callback([lock_args, &runner] { runner = [lock_args] { return run_lock(*lock_args); }; });
}

}  // namespace ecfs::cli
