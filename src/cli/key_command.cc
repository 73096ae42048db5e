#include "cli/key_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "cli/ioctl_client.h"
#include "cli/json_writer.h"
#include "cli/key_client.h"
#include "cli/size_parse.h"
#include "crypto/secret.h"
#include "fscrypt/key_identifier.h"
#include "fuse/ioctl_abi.h"

namespace ecfs::cli {
namespace {

constexpr const char* kKeyDescription =
    "add, remove and query the encryption keys of a mounted ecfs filesystem\n"
    "\n"
    "  ecfs key add MOUNTPOINT [--key-file FILE]\n"
    "  ecfs key remove MOUNTPOINT KEY_ID [--all-users]\n"
    "  ecfs key status MOUNTPOINT KEY_ID\n"
    "  ecfs key usage MOUNTPOINT [--json]\n"
    "\n"
    "Keys live in the mount's memory only, as the kernel's fscrypt keyring keeps them per\n"
    "filesystem: each user who adds a key holds a claim on it, and a key is removed when\n"
    "its last claim is. KEY_ID is a key identifier (32 hex digits), as 'ecfs key add'\n"
    "prints it. Run 'ecfs key COMMAND --help' for one command.";

constexpr const char* kAddDescription =
    "add a master key and print its identifier (as fscryptctl add_key)\n"
    "\n"
    "  ecfs key add MOUNTPOINT [--key-file FILE]\n"
    "\n"
    "Reads the raw key, 16 to 64 bytes of binary (usually 64), from FILE or from standard\n"
    "input, which must then not be a terminal (pipe it in). Adds it to the filesystem\n"
    "mounted at MOUNTPOINT for the calling user and prints the key identifier, the\n"
    "32 hex digits that name the key in 'ecfs policy set' and the other key commands.\n"
    "Adding a key that is present adds the caller's claim to it.";

constexpr const char* kRemoveDescription =
    "remove the caller's claim to a master key (as fscryptctl remove_key)\n"
    "\n"
    "  ecfs key remove MOUNTPOINT KEY_ID [--all-users]\n"
    "\n"
    "Removes the calling user's claim; when no other user holds one, the key itself is\n"
    "removed: buffered data is written back, every cached key derived from it is dropped,\n"
    "and files under policies of that key can no longer be opened (ENOKEY) until it is\n"
    "added again. Files still open keep working; the key then stays 'incompletely\n"
    "removed' until they are closed and the removal is run again. Both cases are\n"
    "reported as warnings. --all-users removes every user's claim (needs root).";

constexpr const char* kStatusDescription =
    "show whether a master key is present (as fscryptctl key_status)\n"
    "\n"
    "  ecfs key status MOUNTPOINT KEY_ID\n"
    "\n"
    "Prints 'Present (user_count=N[, added_by_self])', 'Absent' or 'Incompletely removed'.";

constexpr const char* kFooter =
    "Exit status: 0 on success (warnings included); 1 if the operation failed (not an ecfs\n"
    "mount, key not present, permission denied, ...); 2 for bad options or key input.";

constexpr const char* kKeyExamples =
    "\n"
    "\n"
    "Examples:\n"
    "  Make a key and add it (prints its identifier):\n"
    "    head -c 64 /dev/urandom > key.bin\n"
    "    ecfs key add /mnt --key-file key.bin\n"
    "\n"
    "  See whether it is present, then remove it:\n"
    "    ecfs key status /mnt 0123456789abcdef0123456789abcdef\n"
    "    ecfs key remove /mnt 0123456789abcdef0123456789abcdef";

// FSCRYPT_MIN_KEY_SIZE: the shortest raw key the kernel accepts (AES-128
// modes); whether it is long enough for a policy is checked when it is used.
constexpr size_t kMinRawKeyBytes = 16;

struct AddArgs {
  std::string mountpoint;
  std::optional<std::string> key_file;
};

struct KeyArgs {
  std::string mountpoint;
  std::string key_id;
  bool all_users = false;
};

int failure(const char* command, const Error& error) {
  print_error(command, error.to_string());
  return kExitFailure;
}

// How reading the raw key went: the key, or an exit status after a message.
struct KeyInput {
  std::optional<crypto::SecretBytes> key;
  int exit_status = kExitOk;
};

// Reads a raw key from `fd` (named `source` in messages) as fscryptctl
// does: read(2) straight into locked memory (no stdio buffer keeps a
// copy), one byte more than the largest key to tell "too long".
KeyInput read_raw_key(const char* command, int fd, const std::string& source) {
  crypto::SecretBytes buffer(fuse::kMaxRawKeyBytes + 1);
  size_t size = 0;
  while (size < buffer.size()) {
    const ssize_t n = read(fd, buffer.data() + size, buffer.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      print_error(command, Error(errno, "reading the key from " + source).to_string());
      return {std::nullopt, kExitFailure};
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  if (size < kMinRawKeyBytes) {
    print_error(command, "the key from " + source + " is too short: " + std::to_string(size) +
                             " bytes; a raw key is 16 to 64 bytes of binary");
    return {std::nullopt, kExitUsage};
  }
  if (size > fuse::kMaxRawKeyBytes) {
    print_error(command,
                "the key from " + source + " is too long: a raw key is at most 64 bytes of binary");
    return {std::nullopt, kExitUsage};
  }
  return {crypto::SecretBytes::copy_of(buffer.span().first(size)), kExitOk};
}

KeyInput read_key_input(const char* command, const AddArgs& args) {
  if (!args.key_file) {
    if (isatty(STDIN_FILENO)) {
      print_error(command,
                  "refusing to read a raw key from a terminal: pipe it in (for example "
                  "'head -c 64 /dev/urandom > key; ecfs key add MNT < key') or use --key-file");
      return {std::nullopt, kExitUsage};
    }
    return read_raw_key(command, STDIN_FILENO, "standard input");
  }
  const int fd = open(args.key_file->c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    print_error(command, Error(errno, "opening the key file " + *args.key_file).to_string());
    return {std::nullopt, kExitFailure};
  }
  KeyInput input = read_raw_key(command, fd, *args.key_file);
  close(fd);
  return input;
}

int run_add(const AddArgs& args) {
  constexpr const char* kCommand = "key add";
  KeyInput input = read_key_input(kCommand, args);
  if (!input.key) return input.exit_status;
  auto mount = open_for_ioctl(args.mountpoint, false);
  if (!mount) return failure(kCommand, mount.error());

  auto identifier = add_master_key(mount->fd(), *input.key, "adding the key to " + args.mountpoint);
  input.key.reset();
  if (!identifier) return failure(kCommand, identifier.error());
  std::printf("%s\n", to_hex(*identifier).c_str());
  return kExitOk;
}

// KEY_ID as fuse::KeySpecifier, or nullopt after a usage message. The
// argument is never repeated in the message: someone may have pasted a raw
// key there.
std::optional<fuse::KeySpecifier> parse_key_id(const char* command, const std::string& key_id) {
  auto key = fscrypt::KeySpecifier::from_hex(key_id);
  if (!key) {
    print_error(command,
                "KEY_ID must be a key identifier (32 hex digits, as 'ecfs key add' prints) or a "
                "v1 key descriptor (16 hex digits)");
    return std::nullopt;
  }
  fuse::KeySpecifier spec;
  std::memset(&spec, 0, sizeof(spec));
  spec.type = key->type() == fscrypt::KeySpecifierType::kDescriptor ? fuse::kKeySpecTypeDescriptor
                                                                    : fuse::kKeySpecTypeIdentifier;
  std::memcpy(spec.bytes, key->bytes().data(), key->size());
  return spec;
}

int run_remove(const KeyArgs& args) {
  constexpr const char* kCommand = "key remove";
  const auto spec = parse_key_id(kCommand, args.key_id);
  if (!spec) return kExitUsage;
  auto mount = open_for_ioctl(args.mountpoint, false);
  if (!mount) return failure(kCommand, mount.error());

  fuse::RemoveKeyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.flags = args.all_users ? fuse::kRemoveKeyFlagAllUsers : 0;
  arg.key_spec = *spec;
  const Status removed = call_ioctl(mount->fd(), fuse::ECFS_IOC_REMOVE_KEY, &arg,
                                    IoctlOperation::kRemoveKey, "removing the key");
  if (!removed) return failure(kCommand, removed.error());
  // fscryptctl's words, on standard output; the removal itself succeeded.
  if (arg.removal_status_flags & fuse::kKeyRemovalStatusFlagOtherUsers) {
    std::printf("warning: other users still have this key added\n");
  } else if (arg.removal_status_flags & fuse::kKeyRemovalStatusFlagFilesBusy) {
    std::printf("warning: some files using this key are still in-use\n");
  }
  return kExitOk;
}

constexpr const char* kUsageDescription =
    "show how much data each master key encrypts, across every subvolume and snapshot\n"
    "\n"
    "  ecfs key usage MOUNTPOINT [--json]\n"
    "\n"
    "Counts the data extents (each once, however many files and snapshots share it)\n"
    "and their bytes per master key identifier, from the keys their extent contexts\n"
    "name: no key is needed. Buffered data is committed first. A key that encrypts\n"
    "nothing any more can lose its protectors without losing a file.";

struct UsageArgs {
  std::string mountpoint;
  bool json = false;
};

int run_usage(const UsageArgs& args) {
  constexpr const char* kCommand = "key usage";
  auto mount = open_for_ioctl(args.mountpoint, false);
  if (!mount) return failure(kCommand, mount.error());
  auto rows = key_usage(mount->fd(), "counting the keys' data on " + args.mountpoint);
  if (!rows) return failure(kCommand, rows.error());
  if (args.json) {
    JsonWriter json;
    json.begin_object();
    json.key("keys");
    json.begin_array();
    for (const KeyUsageRow& row : *rows) {
      json.begin_object();
      json.field("key_identifier", to_hex(row.identifier));
      json.field("extents", row.extents);
      json.field("bytes", row.bytes);
      json.end_object();
    }
    json.end_array();
    json.end_object();
    std::fputs(json.text().c_str(), stdout);
    return kExitOk;
  }
  if (rows->empty()) {
    std::printf("No encrypted data on %s.\n", args.mountpoint.c_str());
    return kExitOk;
  }
  std::printf("%-32s  %10s  %s\n", "KEY", "EXTENTS", "BYTES");
  for (const KeyUsageRow& row : *rows) {
    std::printf("%-32s  %10llu  %s (%llu)\n", to_hex(row.identifier).c_str(),
                static_cast<unsigned long long>(row.extents), format_size(row.bytes).c_str(),
                static_cast<unsigned long long>(row.bytes));
  }
  return kExitOk;
}

int run_status(const KeyArgs& args) {
  constexpr const char* kCommand = "key status";
  const auto spec = parse_key_id(kCommand, args.key_id);
  if (!spec) return kExitUsage;
  auto mount = open_for_ioctl(args.mountpoint, false);
  if (!mount) return failure(kCommand, mount.error());

  fuse::KeyStatusArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.key_spec = *spec;
  const Status queried = call_ioctl(mount->fd(), fuse::ECFS_IOC_KEY_STATUS, &arg,
                                    IoctlOperation::kKeyStatus, "getting the key status");
  if (!queried) return failure(kCommand, queried.error());
  switch (arg.status) {
    case fuse::kKeyStatusPresent: {
      std::string line = "Present";
      if (arg.user_count != 0 || arg.status_flags != 0) {
        line += " (user_count=" + std::to_string(arg.user_count);
        if (arg.status_flags & fuse::kKeyStatusFlagAddedBySelf) line += ", added_by_self";
        const uint32_t unknown = arg.status_flags & ~fuse::kKeyStatusFlagAddedBySelf;
        if (unknown != 0) {
          char hex[16];
          std::snprintf(hex, sizeof(hex), "0x%08x", unknown);
          line += std::string(", unknown_flags=") + hex;
        }
        line += ")";
      }
      std::printf("%s\n", line.c_str());
      break;
    }
    case fuse::kKeyStatusAbsent:
      std::printf("Absent\n");
      break;
    case fuse::kKeyStatusIncompletelyRemoved:
      std::printf("Incompletely removed\n");
      break;
    default:
      std::printf("Unknown status (%u)\n", arg.status);
      break;
  }
  return kExitOk;
}

}  // namespace

void add_key_command(CLI::App& app, CommandRunner& runner) {
  CLI::App* key = app.add_subcommand("key", kKeyDescription);
  key->require_subcommand(1);
  key->footer(std::string(kFooter) + kKeyExamples);

  auto add_args = std::make_shared<AddArgs>();
  CLI::App* add = key->add_subcommand("add", kAddDescription);
  add->footer(kFooter);
  add->add_option("MOUNTPOINT", add_args->mountpoint, "the ecfs mount (any path inside it)")
      ->required();
  add->add_option("--key-file", add_args->key_file,
                  "read the raw key from FILE instead of standard input");
  add->callback([add_args, &runner] { runner = [add_args] { return run_add(*add_args); }; });

  auto remove_args = std::make_shared<KeyArgs>();
  CLI::App* remove = key->add_subcommand("remove", kRemoveDescription);
  remove->footer(kFooter);
  remove->add_option("MOUNTPOINT", remove_args->mountpoint, "the ecfs mount")->required();
  remove->add_option("KEY_ID", remove_args->key_id, "the key identifier (32 hex digits)")
      ->required();
  remove->add_flag("--all-users", remove_args->all_users,
                   "remove every user's claim to the key, not only the caller's (needs root)");
  remove->callback(
      [remove_args, &runner] { runner = [remove_args] { return run_remove(*remove_args); }; });

  auto status_args = std::make_shared<KeyArgs>();
  CLI::App* status = key->add_subcommand("status", kStatusDescription);
  status->footer(kFooter);
  status->add_option("MOUNTPOINT", status_args->mountpoint, "the ecfs mount")->required();
  status->add_option("KEY_ID", status_args->key_id, "the key identifier (32 hex digits)")
      ->required();
  status->callback(
      [status_args, &runner] { runner = [status_args] { return run_status(*status_args); }; });

  auto usage_args = std::make_shared<UsageArgs>();
  CLI::App* usage = key->add_subcommand("usage", kUsageDescription);
  usage->footer(kFooter);
  usage->add_option("MOUNTPOINT", usage_args->mountpoint, "the ecfs mount (any path inside it)")
      ->required();
  usage->add_flag("--json", usage_args->json, "print JSON");
  usage->callback(
      [usage_args, &runner] { runner = [usage_args] { return run_usage(*usage_args); }; });
}

}  // namespace ecfs::cli
