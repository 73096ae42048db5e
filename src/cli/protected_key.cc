#include "cli/protected_key.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include "cli/command.h"
#include "cli/key_client.h"
#include "crypto/random.h"
#include "fscrypt/protector_wrap.h"

namespace ecfs::cli {
namespace {

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

}  // namespace

void add_new_key_options(CLI::App& command, NewKeyArgs& args, const std::string& when) {
  add_secret_options(command, args.secret, true);
  command.add_option("--name", args.name, when + "a label for a new protector (at most 64 bytes)")
      ->type_name("NAME");
  command.add_flag("--no-recovery", args.no_recovery, when + "make no recovery passphrase");
  command
      .add_option("--kdf-time", args.kdf_time,
                  when + "CPU time one passphrase check costs (Argon2id; default 1s)")
      ->type_name("TIME");
}

Result<NewKeyOptions> new_key_options(const NewKeyArgs& args) {
  auto time = parse_kdf_time(args.kdf_time);
  if (!time) return std::unexpected(time.error());
  if (args.secret.protector && !args.name.empty()) {
    return fail(EINVAL, "--name names a new protector; --protector uses an existing one");
  }
  ECFS_TRY(check_protector_name(args.name));
  if (args.secret.protector) {
    if (auto id = fscrypt::parse_protector_id(*args.secret.protector); !id) {
      return std::unexpected(id.error());
    }
  }
  return NewKeyOptions{args.secret, args.name, args.no_recovery, *time};
}

void ProtectedKey::undo(const char* command, const std::string& where) {
  for (const auto& id : new_protectors_) {
    if (Status removed = remove_protector(fd_, id, true, where); !removed) {
      print_error(command, "cleaning up: " + removed.error().to_string());
    }
  }
  for (const auto& id : wrapped_under_) {
    if (Status removed = remove_wrapped_key(fd_, id, *key_, true, where); !removed) {
      print_error(command, "cleaning up: " + removed.error().to_string());
    }
  }
  if (key_) {
    if (auto removed = remove_master_key(fd_, *key_, false, where); !removed) {
      print_error(command, "cleaning up: " + removed.error().to_string());
    }
  }
  new_protectors_.clear();
  wrapped_under_.clear();
  key_.reset();
}

Status ProtectedKey::print_recovery(const std::string& where) const {
  if (!recovery_) return ok();
  const char* lost = !new_kind_                                       ? "protector's secret"
                     : *new_kind_ == fscrypt::ProtectorKind::kKeyFile ? "key file"
                                                                      : "passphrase";
  std::printf(
      "\nRecovery passphrase, protector %s: it unlocks %s if the %s is lost.\n"
      "Write it down and keep it safe; it is not shown again:\n\n    ",
      fscrypt::protector_id_text(*recovery_id_).c_str(), where.c_str(), lost);
  if (std::fflush(stdout) != 0) return fail(EIO, "writing standard output failed");
  // Straight from locked memory: no copy in stdio's buffer.
  ECFS_TRY(write_all(STDOUT_FILENO, recovery_->span()));
  std::printf("\n\n");
  if (std::fflush(stdout) != 0) return fail(EIO, "writing standard output failed");
  return ok();
}

Result<ProtectedKey> make_protected_key(int fd, const char* command, const std::string& where,
                                        const NewKeyOptions& options) {
  // The protector: an existing one, opened, or a new one.
  std::optional<fscrypt::NewProtector> made;
  std::optional<fscrypt::ProtectorId> existing_id;
  crypto::SecretBytes protector_key;
  std::optional<crypto::Argon2Params> costs;
  const auto costs_now = [&]() -> Result<crypto::Argon2Params> {
    if (!costs) {
      auto calibrated = calibrated_costs(options.kdf_time);
      if (!calibrated) return std::unexpected(calibrated.error());
      costs = *calibrated;
    }
    return *costs;
  };
  if (options.secret.protector) {
    auto id = fscrypt::parse_protector_id(*options.secret.protector);
    if (!id) return std::unexpected(id.error());
    auto listing = list_protectors(fd, where);
    if (!listing) return std::unexpected(listing.error());
    const fscrypt::ProtectorRecord* record = listing->find(*id);
    if (record == nullptr) return fail(ENOENT, "no protector " + *options.secret.protector);
    auto opened = open_named_protector(
        *record, options.secret,
        "Enter the passphrase of protector " + *options.secret.protector + ": ");
    if (!opened) return std::unexpected(opened.error());
    protector_key = std::move(*opened);
    existing_id = *id;
  } else {
    auto secret = read_new_secret(options.secret, "Enter a passphrase for " + where + ": ");
    if (!secret) return std::unexpected(secret.error());
    crypto::Argon2Params params{0, 0, 0};
    if (fscrypt::is_passphrase_kind(secret->kind)) {
      auto calibrated = costs_now();
      if (!calibrated) return std::unexpected(calibrated.error());
      params = *calibrated;
    }
    auto created = fscrypt::create_protector(secret->kind, secret->secret.span(), params, getuid(),
                                             options.name, now_seconds());
    if (!created) return std::unexpected(created.error());
    made = std::move(*created);
  }

  // The master key, into the mount's keyring first.
  crypto::SecretBytes master(fscrypt::kMasterKeySize);
  ECFS_TRY(crypto::random_bytes(master.mutable_span()));
  ProtectedKey filed;
  filed.fd_ = fd;
  auto identifier = add_master_key(fd, master, "adding the new key to " + where);
  if (!identifier) return std::unexpected(identifier.error());
  filed.key_ = *identifier;
  const auto fail_and_undo = [&](Error error) -> Result<ProtectedKey> {
    filed.undo(command, where);
    return std::unexpected(std::move(error));
  };

  if (made) {
    if (Status put = put_protector(fd, made->record, "filing the protector"); !put) {
      return fail_and_undo(put.error());
    }
    filed.new_protectors_.push_back(made->record.id);
    filed.new_kind_ = made->record.kind;
  }
  filed.protector_ = made ? made->record.id : *existing_id;
  const crypto::SecretBytes& wrapping_key = made ? made->protector_key : protector_key;
  auto wrapped = fscrypt::wrap_master_key(filed.protector_, wrapping_key, master);
  if (!wrapped) return fail_and_undo(wrapped.error());
  if (Status put = put_wrapped_key(fd, *wrapped, "filing the wrapped key"); !put) {
    return fail_and_undo(put.error());
  }
  if (!made) filed.wrapped_under_.push_back(*existing_id);

  // The recovery passphrase: a protector of its own.
  if (!options.no_recovery) {
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
    filed.new_protectors_.push_back(created->record.id);
    auto recovery_wrapped =
        fscrypt::wrap_master_key(created->record.id, created->protector_key, master);
    if (!recovery_wrapped) return fail_and_undo(recovery_wrapped.error());
    if (Status put = put_wrapped_key(fd, *recovery_wrapped, "filing the recovery key"); !put) {
      return fail_and_undo(put.error());
    }
    filed.recovery_ = std::move(*generated);
    filed.recovery_id_ = created->record.id;
  }
  return filed;
}

}  // namespace ecfs::cli
