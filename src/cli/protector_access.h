// What the protector commands share: turning the user's secret into a
// master key through the image's protectors, making new protectors with
// costs calibrated on this machine, and the options that name a secret.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/key_client.h"
#include "cli/secret_input.h"
#include "crypto/argon2.h"
#include "crypto/secret.h"
#include "fscrypt/protector.h"

namespace ecfs::cli {

// How the user proves who they are: --key-file F (a key-file protector),
// otherwise a passphrase from the terminal or --passphrase-fd N;
// --protector ID picks one protector.
struct SecretOptions {
  bool passphrase = false;  // --passphrase: the default, said explicitly
  std::optional<std::string> key_file;
  std::optional<int> passphrase_fd;
  std::optional<std::string> protector;
};
// Registers --passphrase, --key-file, --passphrase-fd and (with
// `with_protector`) --protector on `command`; --key-file excludes the
// passphrase options and --protector.
void add_secret_options(CLI::App& command, SecretOptions& options, bool with_protector);

// The master key `identifier`, unwrapped with the first protector of the
// listing that wraps it, is of the secret's kind, is the caller's own (or
// the one --protector names: another user's protector is never tried
// unasked, since its costs are its owner's choice) and opens with the
// secret (passphrase protectors before recovery ones). `what` names the
// directory in the prompt. ENOKEY when no protector fits; EKEYREJECTED when
// none opens.
struct UnwrappedKey {
  crypto::SecretBytes key;
  fscrypt::ProtectorId protector{};
};
Result<UnwrappedKey> unwrap_key(const ProtectorListing& listing,
                                const fscrypt::KeyIdentifier& identifier,
                                const SecretOptions& secret, const std::string& what);
// unwrap_key for several keys with one secret, asked once (none asked when
// no protector fits any): a protector is opened at most once, and serves
// every key it keeps. One result per identifier, in order. Messages call
// the first "the key of `what`" when `first_is_current`, every other one
// "key ID of `what`" (the keys it was under before a rotation).
std::vector<Result<UnwrappedKey>> unwrap_keys(const ProtectorListing& listing,
                                              std::span<const fscrypt::KeyIdentifier> identifiers,
                                              const SecretOptions& secret, const std::string& what,
                                              bool first_is_current);

// The protector a secret opens, with its key (for change-passphrase and for
// adding a key to an existing protector). EKEYREJECTED, ENOENT.
Result<crypto::SecretBytes> open_named_protector(const fscrypt::ProtectorRecord& record,
                                                 const SecretOptions& secret,
                                                 const std::string& prompt);

// Argon2id costs for a new passphrase protector: about `target` of CPU on
// this machine, memory capped at 128 MiB (a quarter of RAM if that is less),
// lanes up to the CPUs (at most 8).
Result<crypto::Argon2Params> calibrated_costs(std::chrono::milliseconds target);
// "1s", "250ms", "2" (seconds): 1 ms to 60 s. EINVAL otherwise.
Result<std::chrono::milliseconds> parse_kdf_time(const std::string& text);

// EINVAL unless `name` is a protector name (at most 64 printable ASCII
// bytes), so that a bad --name is refused before any secret is asked.
Status check_protector_name(const std::string& name);

// The secret for a new protector: the key file, or a new passphrase
// (asked twice on a terminal).
struct NewSecret {
  fscrypt::ProtectorKind kind = fscrypt::ProtectorKind::kPassphrase;
  crypto::SecretBytes secret;
};
Result<NewSecret> read_new_secret(const SecretOptions& options, const std::string& prompt);

}  // namespace ecfs::cli
