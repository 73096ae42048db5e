#include "cli/policy_command.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "cli/ioctl_client.h"
#include "cli/json_writer.h"
#include "cli/key_client.h"
#include "fscrypt/extent.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"
#include "fuse/ioctl_abi.h"
#include "store/format.h"

namespace ecfs::cli {
namespace {

constexpr const char* kPolicyDescription =
    "set and show the encryption policy of a directory on a mounted ecfs filesystem\n"
    "\n"
    "  ecfs policy set DIR KEY_ID [--contents MODE] [--filenames MODE] [--padding N]\n"
    "                  [--data-unit-size N]\n"
    "  ecfs policy get PATH [--json]\n"
    "\n"
    "Run 'ecfs policy COMMAND --help' for one command.";

constexpr const char* kSetDescription =
    "set the encryption policy of an empty directory (as fscryptctl set_policy)\n"
    "\n"
    "  ecfs policy set DIR KEY_ID [--contents MODE] [--filenames MODE] [--padding N]\n"
    "                  [--data-unit-size N]\n"
    "\n"
    "Files, directories and symlinks created in DIR from then on inherit the policy:\n"
    "their names and symlink targets are encrypted with the filenames mode, and every\n"
    "data extent of a file with its own key derived from the master key KEY_ID (a key\n"
    "identifier, 32 hex digits, as 'ecfs key add' prints; the caller must have added\n"
    "it). Setting the same policy again succeeds; a different one fails.\n"
    "\n"
    "Modes, as fscryptctl spells them: AES-256-XTS, AES-256-CTS, AES-128-CBC,\n"
    "AES-128-CTS, SM4-XTS, SM4-CTS, Adiantum, AES-256-HCTR2; valid pairs (contents /\n"
    "filenames): AES-256-XTS / AES-256-CTS (default) or AES-256-HCTR2, AES-128-CBC /\n"
    "AES-128-CTS, SM4-XTS / SM4-CTS, Adiantum / Adiantum.\n"
    "\n"
    "Only plain v2 policies are allowed: ecfs encrypts every extent with its own key\n"
    "and numbers its data units from the extent's start, which v1 policies (a 16-digit\n"
    "descriptor as KEY_ID), --direct-key and --iv-ino-lblk-64/32 (which tie ciphertext\n"
    "to inode numbers) cannot give. They are refused with the reason.";

constexpr const char* kGetDescription =
    "show the encryption policy of a file or directory (as fscryptctl get_policy)\n"
    "\n"
    "  ecfs policy get PATH [--json]\n"
    "\n"
    "Needs no key for a directory. (A regular file cannot be opened without its key.)";

constexpr const char* kFooter =
    "Exit status: 0 on success; 1 if the operation failed (not an ecfs mount, not\n"
    "encrypted, directory not empty, policy refused, ...); 2 for bad options.";

constexpr const char* kPolicyExamples =
    "\n"
    "\n"
    "Examples:\n"
    "  Encrypt a new directory with a new key, and show its policy:\n"
    "    mkdir /mnt/private\n"
    "    ecfs policy set /mnt/private \"$(ecfs key add /mnt --key-file key.bin)\"\n"
    "    ecfs policy get /mnt/private";

// fscryptctl's mode names (its mode_strings[]), indexed by FSCRYPT_MODE_*.
struct ModeName {
  uint8_t number;
  std::string_view name;
};
constexpr std::array<ModeName, 8> kModeNames = {{
    {fscrypt::kModeAes256Xts, "AES-256-XTS"},
    {fscrypt::kModeAes256Cts, "AES-256-CTS"},
    {fscrypt::kModeAes128Cbc, "AES-128-CBC"},
    {fscrypt::kModeAes128Cts, "AES-128-CTS"},
    {fscrypt::kModeSm4Xts, "SM4-XTS"},
    {fscrypt::kModeSm4Cts, "SM4-CTS"},
    {fscrypt::kModeAdiantum, "Adiantum"},
    {fscrypt::kModeAes256Hctr2, "AES-256-HCTR2"},
}};

std::optional<std::string_view> mode_name(uint8_t number) {
  for (const ModeName& mode : kModeNames)
    if (mode.number == number) return mode.name;
  return std::nullopt;
}

// fscryptctl's spelling, or the fscrypt library's (mode.h: the
// fscrypt-crypt-util and kernel spellings, any case).
std::optional<uint8_t> mode_number(std::string_view name) {
  for (const ModeName& mode : kModeNames)
    if (mode.name == name) return mode.number;
  if (auto mode = fscrypt::mode_by_name(name)) return (*mode)->number;
  return std::nullopt;
}

struct SetArgs {
  std::string directory;
  std::string key_id;
  std::string contents = "AES-256-XTS";
  std::string filenames = "AES-256-CTS";
  // Maximum padding leaks the least about name lengths (fscryptctl's default).
  unsigned padding = 32;
  std::optional<std::string> data_unit_size;
  uint8_t flags = 0;  // from the flag options (kFlagOptions)
};

// fscryptctl's flag options. ecfs refuses all three (per-extent encryption
// allows plain v2 policies only), but accepts them on the command line so
// that the refusal comes with its reason instead of "unknown option".
struct FlagOption {
  const char* name;
  uint8_t flag;
  const char* help;
};
constexpr FlagOption kFlagOptions[] = {
    {"--direct-key", fscrypt::kPolicyFlagDirectKey,
     "DIRECT_KEY flag (refused by ecfs: it ties the IV to the file nonce)"},
    {"--iv-ino-lblk-64", fscrypt::kPolicyFlagIvInoLblk64,
     "IV_INO_LBLK_64 flag (refused by ecfs: it ties the IV to the inode number)"},
    {"--iv-ino-lblk-32", fscrypt::kPolicyFlagIvInoLblk32,
     "IV_INO_LBLK_32 flag (refused by ecfs: it ties the IV to the inode number)"},
};

struct GetArgs {
  std::string path;
  bool json = false;
};

int usage_error(const char* command, const std::string& message) {
  print_error(command, message);
  return kExitUsage;
}

int failure(const char* command, const Error& error) {
  print_error(command, error.to_string());
  return kExitFailure;
}

// --padding: 4, 8, 16 or 32 bytes -> FSCRYPT_POLICY_FLAGS_PAD_*.
std::optional<uint8_t> padding_flags(unsigned padding) {
  for (uint8_t flags = 0; flags <= fscrypt::kPolicyFlagsPadMask; ++flags)
    if (fscrypt::filename_padding(flags) == padding) return flags;
  return std::nullopt;
}

// --data-unit-size: a power of two in bytes -> its log2 (fscryptctl's
// parse_data_unit_size). Whether the filesystem supports it is its call.
std::optional<uint8_t> log2_of_power_of_two(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < 2 || value > (uint64_t{1} << 31) || (value & (value - 1)) != 0) return std::nullopt;
  return static_cast<uint8_t>(std::countr_zero(value));
}

// Why the filesystem answered EINVAL to `policy`: the same checks it makes
// (fscrypt/extent.h, fscrypt/policy.h), run here because an ioctl carries
// back only the errno.
std::string explain_refused_policy(const fscrypt::Policy& policy) {
  if (auto allowed = fscrypt::check_extent_encryption_allowed(policy); !allowed) {
    return allowed.error().message() +
           "; ecfs encrypts every extent with its own key, so it allows only plain v2 policies "
           "(v1 policies, DIRECT_KEY and IV_INO_LBLK_* tie ciphertext to inode numbers)";
  }
  fscrypt::FsTraits traits;
  traits.block_size = store::kSectorSize;
  if (auto supported = fscrypt::check_policy_supported(policy, traits); !supported) {
    return "invalid encryption options provided: " + supported.error().message();
  }
  return "invalid encryption options provided";
}

int run_set(const SetArgs& args) {
  constexpr const char* kCommand = "policy set";
  const auto contents = mode_number(args.contents);
  if (!contents) return usage_error(kCommand, "invalid contents mode: " + args.contents);
  const auto filenames = mode_number(args.filenames);
  if (!filenames) return usage_error(kCommand, "invalid filenames mode: " + args.filenames);
  const auto padding = padding_flags(args.padding);
  if (!padding) {
    return usage_error(
        kCommand, "invalid padding: " + std::to_string(args.padding) + " (4, 8, 16 or 32 bytes)");
  }
  const auto flags = static_cast<uint8_t>(*padding | args.flags);
  uint8_t log2_data_unit_size = 0;
  if (args.data_unit_size) {
    const auto log2 = log2_of_power_of_two(*args.data_unit_size);
    if (!log2) {
      return usage_error(kCommand, "invalid data unit size: " + *args.data_unit_size +
                                       " (a power of two, in bytes)");
    }
    log2_data_unit_size = *log2;
  }
  const auto key = fscrypt::KeySpecifier::from_hex(args.key_id);
  if (!key) {
    // Not repeated: someone may have pasted a raw key there.
    return usage_error(kCommand,
                       "KEY_ID must be a key identifier (32 hex digits, as 'ecfs key add' "
                       "prints) or a v1 key descriptor (16 hex digits)");
  }

  fscrypt::Policy policy;
  if (key->type() == fscrypt::KeySpecifierType::kDescriptor) {
    // A v1 policy: passed on, so that the filesystem refuses it itself.
    if (args.data_unit_size) {
      return usage_error(kCommand, "--data-unit-size needs a v2 policy (a key identifier)");
    }
    fscrypt::PolicyV1 v1;
    v1.contents_mode = *contents;
    v1.filenames_mode = *filenames;
    v1.flags = flags;
    std::copy_n(key->bytes().begin(), v1.master_key_descriptor.size(),
                v1.master_key_descriptor.begin());
    policy = v1;
  } else {
    fscrypt::PolicyV2 v2;
    v2.contents_mode = *contents;
    v2.filenames_mode = *filenames;
    v2.flags = flags;
    v2.log2_data_unit_size = log2_data_unit_size;
    std::copy_n(key->bytes().begin(), v2.master_key_identifier.size(),
                v2.master_key_identifier.begin());
    policy = v2;
  }

  auto directory = open_for_ioctl(args.directory, true);
  if (!directory) return failure(kCommand, directory.error());
  const std::string what = "setting the policy of " + args.directory;
  Status set = set_directory_policy(directory->fd(), policy, what);
  if (!set) {
    if (set.error().errno_value() == EINVAL) {
      return failure(kCommand, Error(EINVAL, what + ": " + explain_refused_policy(policy)));
    }
    return failure(kCommand, set.error());
  }
  return kExitOk;
}

std::vector<std::string> flag_names(uint8_t flags) {
  std::vector<std::string> names = {
      "PAD_" + std::to_string(fscrypt::filename_padding(flags & fscrypt::kPolicyFlagsPadMask))};
  if (flags & fscrypt::kPolicyFlagDirectKey) names.emplace_back("DIRECT_KEY");
  if (flags & fscrypt::kPolicyFlagIvInoLblk64) names.emplace_back("IV_INO_LBLK_64");
  if (flags & fscrypt::kPolicyFlagIvInoLblk32) names.emplace_back("IV_INO_LBLK_32");
  constexpr uint8_t kKnown = fscrypt::kPolicyFlagsPadMask | fscrypt::kPolicyFlagDirectKey |
                             fscrypt::kPolicyFlagIvInoLblk64 | fscrypt::kPolicyFlagIvInoLblk32;
  if (const uint8_t unknown = flags & ~kKnown; unknown != 0) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "%02x", unknown);
    names.push_back(std::string("Unknown (") + hex + ")");
  }
  return names;
}

// fscryptctl's get_policy layout.
void print_text(const std::string& path, const fscrypt::Policy& policy) {
  const bool v1 = std::holds_alternative<fscrypt::PolicyV1>(policy);
  std::printf("Encryption policy for %s:\n", path.c_str());
  // fscryptctl hides the quirk that FSCRYPT_POLICY_V1 is 0.
  std::printf("\tPolicy version: %d\n", v1 ? 1 : fscrypt::policy_version(policy));
  const std::string key = fscrypt::policy_key_specifier(policy).to_hex();
  std::printf("\tMaster key %s: %s\n", v1 ? "descriptor" : "identifier", key.c_str());
  const auto show_mode = [](const char* kind, uint8_t number) {
    if (const auto name = mode_name(number)) {
      std::printf("\t%s encryption mode: %.*s\n", kind, static_cast<int>(name->size()),
                  name->data());
    } else {
      std::printf("\t%s encryption mode: Unknown (%d)\n", kind, number);
    }
  };
  show_mode("Contents", fscrypt::policy_contents_mode(policy));
  show_mode("Filenames", fscrypt::policy_filenames_mode(policy));
  std::string flags;
  for (const std::string& name : flag_names(fscrypt::policy_flags(policy))) {
    flags += (flags.empty() ? "" : ", ") + name;
  }
  std::printf("\tFlags: %s\n", flags.c_str());
  if (!v1) {
    const unsigned log2 = fscrypt::policy_log2_data_unit_size(policy);
    if (log2 != 0) {
      std::printf("\tData unit size: %u\n", 1u << log2);
    } else {
      std::printf("\tData unit size: default\n");
    }
  }
}

void print_json(const std::string& path, const fscrypt::Policy& policy) {
  const bool v1 = std::holds_alternative<fscrypt::PolicyV1>(policy);
  const uint8_t flags = fscrypt::policy_flags(policy);
  JsonWriter json;
  json.begin_object();
  json.field("path", path);
  json.field("version", static_cast<unsigned>(v1 ? 1 : fscrypt::policy_version(policy)));
  const auto mode = [&json](std::string_view key, uint8_t number) {
    json.key(key);
    json.begin_object();
    json.field("number", static_cast<unsigned>(number));
    json.key("name");
    if (const auto name = mode_name(number)) {
      json.value(*name);
    } else {
      json.null_value();
    }
    json.end_object();
  };
  mode("contents_mode", fscrypt::policy_contents_mode(policy));
  mode("filenames_mode", fscrypt::policy_filenames_mode(policy));
  json.field("flags", static_cast<unsigned>(flags));
  json.key("flag_names");
  json.begin_array();
  for (const std::string& name : flag_names(flags)) json.value(name);
  json.end_array();
  json.field("padding", static_cast<unsigned>(
                            fscrypt::filename_padding(flags & fscrypt::kPolicyFlagsPadMask)));
  const unsigned log2 = fscrypt::policy_log2_data_unit_size(policy);
  json.field("log2_data_unit_size", log2);
  // null: the filesystem block size (the policy leaves it to the filesystem).
  json.key("data_unit_size");
  if (log2 != 0) {
    json.value(uint64_t{1} << log2);
  } else {
    json.null_value();
  }
  json.field(v1 ? "master_key_descriptor" : "master_key_identifier",
             fscrypt::policy_key_specifier(policy).to_hex());
  json.end_object();
  std::fputs(json.text().c_str(), stdout);
}

int run_get(const GetArgs& args) {
  constexpr const char* kCommand = "policy get";
  auto file = open_for_ioctl(args.path, false);
  if (!file) return failure(kCommand, file.error());
  auto policy = directory_policy(file->fd(), "getting the policy of " + args.path);
  if (!policy) return failure(kCommand, policy.error());
  if (args.json) {
    print_json(args.path, *policy);
  } else {
    print_text(args.path, *policy);
  }
  return kExitOk;
}

}  // namespace

void add_policy_command(CLI::App& app, CommandRunner& runner) {
  CLI::App* policy = app.add_subcommand("policy", kPolicyDescription);
  policy->require_subcommand(1);
  policy->footer(std::string(kFooter) + kPolicyExamples);

  auto set_args = std::make_shared<SetArgs>();
  CLI::App* set = policy->add_subcommand("set", kSetDescription);
  set->footer(kFooter);
  set->add_option("DIR", set_args->directory, "an empty directory on an ecfs mount")->required();
  set->add_option("KEY_ID", set_args->key_id, "the key identifier (32 hex digits)")->required();
  set->add_option("--contents", set_args->contents,
                  "contents encryption mode (default: AES-256-XTS)");
  set->add_option("--filenames", set_args->filenames,
                  "filenames encryption mode (default: AES-256-CTS)");
  set->add_option("--padding", set_args->padding,
                  "bytes of zero padding for filenames: 4, 8, 16 or 32 (default: 32)");
  set->add_option("--data-unit-size", set_args->data_unit_size,
                  "data unit size in bytes (default: the filesystem block size)");
  for (const FlagOption& option : kFlagOptions) {
    set->add_flag_callback(
        option.name, [set_args, flag = option.flag] { set_args->flags |= flag; }, option.help);
  }
  set->callback([set_args, &runner] { runner = [set_args] { return run_set(*set_args); }; });

  auto get_args = std::make_shared<GetArgs>();
  CLI::App* get = policy->add_subcommand("get", kGetDescription);
  get->footer(kFooter);
  get->add_option("PATH", get_args->path, "a file or directory on an ecfs mount")->required();
  get->add_flag("--json", get_args->json, "print the policy as JSON");
  get->callback([get_args, &runner] { runner = [get_args] { return run_get(*get_args); }; });
}

}  // namespace ecfs::cli
