#include "cli/protector_access.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <thread>

#include "fscrypt/protector_wrap.h"

namespace ecfs::cli {
namespace {

constexpr uint32_t kMaxMemoryKib = 128 * 1024;  // google/fscrypt's cap
constexpr uint32_t kMaxLanes = 8;

PassphraseSource passphrase_source(const SecretOptions& options) {
  return PassphraseSource{options.passphrase_fd};
}

// The secret as a protector of `kind` hashes it: recovery passphrases are
// normalized (any case, any grouping).
crypto::SecretBytes secret_for(fscrypt::ProtectorKind kind, const crypto::SecretBytes& secret) {
  if (kind == fscrypt::ProtectorKind::kRecoveryPassphrase) {
    return fscrypt::normalize_recovery_passphrase(secret.span());
  }
  return crypto::SecretBytes::copy_of(secret.span());
}

}  // namespace

void add_secret_options(CLI::App& command, SecretOptions& options, bool with_protector) {
  CLI::Option* passphrase = command.add_flag("--passphrase", options.passphrase,
                                             "use a passphrase protector (the default)");
  CLI::Option* key_file =
      command.add_option("--key-file", options.key_file, "use a key-file protector (32 raw bytes)")
          ->type_name("FILE");
  CLI::Option* passphrase_fd =
      command
          .add_option(
              "--passphrase-fd", options.passphrase_fd,
              "read the passphrase from descriptor N (to a newline) instead of the terminal")
          ->type_name("N");
  key_file->excludes(passphrase)->excludes(passphrase_fd);
  if (with_protector) {
    CLI::Option* protector =
        command
            .add_option("--protector", options.protector, "use only protector ID (16 hex digits)")
            ->type_name("ID");
    protector->excludes(passphrase);
  }
}

std::vector<Result<UnwrappedKey>> unwrap_keys(const ProtectorListing& listing,
                                              std::span<const fscrypt::KeyIdentifier> identifiers,
                                              const SecretOptions& secret, const std::string& what,
                                              bool first_is_current) {
  std::vector<Result<UnwrappedKey>> results;
  std::optional<fscrypt::ProtectorId> only;
  if (secret.protector) {
    auto id = fscrypt::parse_protector_id(*secret.protector);
    if (!id) {
      for (size_t i = 0; i < identifiers.size(); ++i)
        results.push_back(std::unexpected(id.error()));
      return results;
    }
    only = *id;
  }
  const bool key_file = secret.key_file.has_value();
  // Another user's protector is tried only when named: its costs are that
  // user's choice, up to hours of hashing (crypto/argon2.h limits).
  const uid_t self = getuid();
  std::vector<std::vector<const fscrypt::ProtectorRecord*>> candidates(identifiers.size());
  bool any = false;
  for (size_t i = 0; i < identifiers.size(); ++i) {
    for (const auto* record : listing.protecting(identifiers[i])) {
      if (only ? record->id != *only : record->owner_uid != self) continue;
      if (key_file != (record->kind == fscrypt::ProtectorKind::kKeyFile)) continue;
      candidates[i].push_back(record);
    }
    // Chosen passphrases before recovery passphrases: the usual case first.
    std::stable_sort(candidates[i].begin(), candidates[i].end(), [](const auto* a, const auto* b) {
      return a->kind == fscrypt::ProtectorKind::kPassphrase &&
             b->kind == fscrypt::ProtectorKind::kRecoveryPassphrase;
    });
    any = any || !candidates[i].empty();
  }
  Result<crypto::SecretBytes> typed = fail(ENOKEY, "no secret read");
  if (any) {
    typed = key_file ? read_protector_key_file(*secret.key_file)
                     : read_passphrase(passphrase_source(secret),
                                       "Enter the passphrase for " + what + ": ", false);
  }
  // Each protector is opened (hashed) at most once, whatever it keeps.
  std::map<fscrypt::ProtectorId, std::optional<crypto::SecretBytes>> opened;
  for (size_t i = 0; i < identifiers.size(); ++i) {
    const std::string key_what =
        i == 0 && first_is_current ? what : "key " + to_hex(identifiers[i]) + " of " + what;
    if (candidates[i].empty()) {
      results.push_back(
          fail(ENOKEY, std::string("no ") + (key_file ? "key-file" : "passphrase") +
                           (only ? " protector " + *secret.protector : " protector of yours") +
                           " keeps the key of " + key_what +
                           (only ? "" : " (name another user's with --protector ID)")));
      continue;
    }
    if (!typed) {
      results.push_back(std::unexpected(typed.error()));
      continue;
    }
    std::optional<Result<UnwrappedKey>> found;
    for (const auto* record : candidates[i]) {
      auto slot = opened.find(record->id);
      if (slot == opened.end()) {
        const crypto::SecretBytes attempt = secret_for(record->kind, *typed);
        auto protector_key = fscrypt::open_protector(*record, attempt.span());
        if (!protector_key && protector_key.error().errno_value() != EKEYREJECTED) {
          found = std::unexpected(protector_key.error());
          break;
        }
        std::optional<crypto::SecretBytes> key;
        if (protector_key) key = std::move(*protector_key);
        slot = opened.emplace(record->id, std::move(key)).first;
      }
      if (!slot->second) continue;  // the secret does not open it
      const fscrypt::WrappedKeyRecord* wrapped = listing.wrapped(record->id, identifiers[i]);
      auto key = fscrypt::unwrap_master_key(*wrapped, *slot->second);
      if (!key) {
        found = std::unexpected(key.error());
      } else {
        found = UnwrappedKey{std::move(*key), record->id};
      }
      break;
    }
    if (!found) {
      found = fail(EKEYREJECTED, std::string("wrong ") + (key_file ? "key file" : "passphrase") +
                                     " for " + key_what);
    }
    results.push_back(std::move(*found));
  }
  return results;
}

Result<UnwrappedKey> unwrap_key(const ProtectorListing& listing,
                                const fscrypt::KeyIdentifier& identifier,
                                const SecretOptions& secret, const std::string& what) {
  return std::move(unwrap_keys(listing, std::span(&identifier, 1), secret, what, true).front());
}

Result<crypto::SecretBytes> open_named_protector(const fscrypt::ProtectorRecord& record,
                                                 const SecretOptions& secret,
                                                 const std::string& prompt) {
  const bool key_file = record.kind == fscrypt::ProtectorKind::kKeyFile;
  if (key_file != secret.key_file.has_value()) {
    return fail(EINVAL, "protector " + fscrypt::protector_id_text(record.id) + " is a " +
                            fscrypt::protector_kind_name(record.kind) +
                            (key_file ? " protector: give --key-file" : " protector"));
  }
  auto typed = key_file ? read_protector_key_file(*secret.key_file)
                        : read_passphrase(passphrase_source(secret), prompt, false);
  if (!typed) return std::unexpected(typed.error());
  const crypto::SecretBytes attempt = secret_for(record.kind, *typed);
  return fscrypt::open_protector(record, attempt.span());
}

Result<crypto::Argon2Params> calibrated_costs(std::chrono::milliseconds target) {
  uint32_t memory = kMaxMemoryKib;
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0) {
    const uint64_t quarter_kib = static_cast<uint64_t>(pages) * page_size / 4 / 1024;
    memory = static_cast<uint32_t>(std::min<uint64_t>(memory, quarter_kib));
  }
  const uint32_t lanes = std::clamp<uint32_t>(std::thread::hardware_concurrency(), 1, kMaxLanes);
  return crypto::calibrate_argon2id(target, memory, lanes);
}

Result<std::chrono::milliseconds> parse_kdf_time(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  double ms = 0;
  if (used == 0) {
    ms = -1;
  } else if (unit.empty() || unit == "s") {
    ms = value * 1000;
  } else if (unit == "ms") {
    ms = value;
  } else {
    ms = -1;
  }
  if (!(ms >= 1 && ms <= 60000)) {
    return fail(EINVAL, "'" + text + "' is not a time from 1ms to 60s (for example 1s or 250ms)");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

Status check_protector_name(const std::string& name) {
  const bool printable =
      std::all_of(name.begin(), name.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (name.size() > fscrypt::kMaxProtectorNameSize || !printable) {
    return fail(EINVAL, "a protector name is at most 64 printable ASCII characters");
  }
  return ok();
}

Result<NewSecret> read_new_secret(const SecretOptions& options, const std::string& prompt) {
  NewSecret made;
  if (options.key_file) {
    made.kind = fscrypt::ProtectorKind::kKeyFile;
    auto key = read_protector_key_file(*options.key_file);
    if (!key) return std::unexpected(key.error());
    made.secret = std::move(*key);
    return made;
  }
  auto passphrase = read_passphrase(passphrase_source(options), prompt, true);
  if (!passphrase) return std::unexpected(passphrase.error());
  made.secret = std::move(*passphrase);
  return made;
}

}  // namespace ecfs::cli
