// A new master key kept by a protector in the image, and by a recovery
// passphrase: what `ecfs encrypt` and `ecfs rekey --new-key` make before
// they use it. The key is drawn here, added to the mount (the daemon files
// a wrapped key only for a key its caller holds), then its protector and
// wrapped copies are filed; whatever was filed is taken back by undo() if
// the command fails before the key is in use.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/protector_access.h"
#include "crypto/secret.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/protector.h"

namespace ecfs::cli {

struct NewKeyOptions {
  // --protector ID: an existing protector, opened with its secret; else a
  // new passphrase or key-file protector, labelled `name`.
  SecretOptions secret;
  std::string name;
  bool no_recovery = false;
  std::chrono::milliseconds kdf_time{1000};
};

// The options as the command line gives them (`encrypt`, `rekey --new-key`).
struct NewKeyArgs {
  SecretOptions secret;
  std::string name;
  bool no_recovery = false;
  std::string kdf_time = "1s";
};
// Registers --passphrase, --key-file, --passphrase-fd, --protector, --name,
// --no-recovery and --kdf-time on `command`; `when` starts the help of the
// three last ("--new-key: " for rekey, "" for encrypt).
void add_new_key_options(CLI::App& command, NewKeyArgs& args, const std::string& when);
// Checks them, before any secret is asked: EINVAL with the reason (a usage
// error) for a bad --kdf-time, --name or --protector, or both of the last.
Result<NewKeyOptions> new_key_options(const NewKeyArgs& args);

class ProtectedKey {
 public:
  ProtectedKey() = default;
  ProtectedKey(ProtectedKey&&) = default;
  ProtectedKey& operator=(ProtectedKey&&) = default;

  const fscrypt::KeyIdentifier& identifier() const { return *key_; }
  const fscrypt::ProtectorId& protector() const { return protector_; }
  // "passphrase", "key file", or "existing" for --protector.
  const char* protector_kind() const {
    return new_kind_ ? fscrypt::protector_kind_name(*new_kind_) : "existing";
  }

  // Removes the protectors, wrapped keys and the key this filed (errors
  // printed under `command`'s name: the command is failing already).
  void undo(const char* command, const std::string& where);
  // Prints the recovery passphrase, if one was made, straight from locked
  // memory: "it unlocks `where` if the ... is lost".
  Status print_recovery(const std::string& where) const;

 private:
  friend Result<ProtectedKey> make_protected_key(int fd, const char* command,
                                                 const std::string& where,
                                                 const NewKeyOptions& options);
  int fd_ = -1;
  std::optional<fscrypt::KeyIdentifier> key_;
  fscrypt::ProtectorId protector_{};
  std::optional<fscrypt::ProtectorKind> new_kind_;  // a new protector's kind
  std::vector<fscrypt::ProtectorId> new_protectors_;
  std::vector<fscrypt::ProtectorId> wrapped_under_;  // existing protectors given the key
  std::optional<crypto::SecretBytes> recovery_;
  std::optional<fscrypt::ProtectorId> recovery_id_;
};

// Opens --protector's protector, or asks for the secret of a new one, then
// draws the key and files it under the protector and (unless no_recovery)
// under a new recovery protector. `fd`: any file of the mount, kept open
// while the result lives. `where` names the directory in prompts. On
// failure, nothing filed stays (clean-up errors printed under `command`).
Result<ProtectedKey> make_protected_key(int fd, const char* command, const std::string& where,
                                        const NewKeyOptions& options);

}  // namespace ecfs::cli
