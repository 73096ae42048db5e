#include "cli/status_command.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli/ioctl_client.h"
#include "cli/json_writer.h"
#include "cli/key_client.h"
#include "fscrypt/policy.h"

namespace ecfs::cli {
namespace {

constexpr const char* kCommand = "status";

constexpr const char* kDescription =
    "show whether encrypted directories are locked, and what protects their keys\n"
    "\n"
    "  ecfs status PATH [--json]\n"
    "\n"
    "For an encrypted directory: its key identifier, whether the key is present\n"
    "(unlocked, for the calling user or another), locked, or incompletely locked (files\n"
    "still open), and the protectors that keep the key; after a rotation ('ecfs rekey')\n"
    "the same for the earlier keys its files' older data is under. For any other path:\n"
    "the same for every key the image's protectors keep, and protectors that keep none.\n"
    "Needs no key and changes nothing.";

constexpr const char* kFooter =
    "Exit status: 0 on success; 1 if PATH is not on an ecfs mount or could not be read;\n"
    "2 for bad options.\n"
    "\n"
    "Examples:\n"
    "  One directory, and everything on the mount as JSON:\n"
    "    ecfs status /mnt/private\n"
    "    ecfs status /mnt --json";

struct StatusArgs {
  std::string path;
  bool json = false;
};

struct KeyReport {
  fscrypt::KeyIdentifier identifier{};
  std::string state;  // "unlocked", "unlocked by another user", "locked", ...
  std::vector<const fscrypt::ProtectorRecord*> protectors;
};

std::string state_text(const KeyState& state) {
  if (state.present()) return state.added_by_self ? "unlocked" : "unlocked by another user";
  if (state.incompletely_removed()) return "incompletely locked (files still open)";
  return "locked";
}

int failure(const Error& error) {
  print_error(kCommand, error.to_string());
  return kExitFailure;
}

void print_protectors_text(const std::vector<const fscrypt::ProtectorRecord*>& protectors) {
  if (protectors.empty()) {
    std::printf("  protectors: none (the key is not kept in the image)\n");
    return;
  }
  for (const auto* record : protectors) {
    std::printf("  protector %s  %-19s  %s\n", fscrypt::protector_id_text(record->id).c_str(),
                fscrypt::protector_kind_name(record->kind), record->name.c_str());
  }
}

void json_key(JsonWriter& json, const KeyReport& report) {
  json.begin_object();
  json.field("key_identifier", to_hex(report.identifier));
  json.field("state", report.state);
  json.key("protectors");
  json.begin_array();
  for (const auto* record : report.protectors) {
    json.begin_object();
    json.field("id", fscrypt::protector_id_text(record->id));
    json.field("kind", fscrypt::protector_kind_name(record->kind));
    json.field("name", record->name);
    json.end_object();
  }
  json.end_array();
  json.end_object();
}

int run(const StatusArgs& args) {
  auto path = open_for_ioctl(args.path, false);
  if (!path) return failure(path.error());
  const int fd = path->fd();
  auto listing = list_protectors(fd, "listing the protectors on " + args.path);
  if (!listing) return failure(listing.error());
  const auto report_for = [&](const fscrypt::KeyIdentifier& identifier) -> Result<KeyReport> {
    auto state = master_key_status(fd, identifier, "checking a key on " + args.path);
    if (!state) return std::unexpected(state.error());
    return KeyReport{identifier, state_text(*state), listing->protecting(identifier)};
  };

  auto policy = directory_policy(fd, "getting the policy of " + args.path);
  if (policy && std::holds_alternative<fscrypt::PolicyV1>(*policy)) {
    // v1 keys are named by descriptors and never kept by protectors.
    if (args.json) {
      JsonWriter json;
      json.begin_object();
      json.field("path", args.path);
      json.field("encrypted", true);
      json.field("policy_version", 1u);
      json.end_object();
      std::fputs(json.text().c_str(), stdout);
    } else {
      std::printf("%s: encrypted with a v1 policy (its key is managed with 'ecfs key')\n",
                  args.path.c_str());
    }
    return kExitOk;
  }
  if (policy) {
    auto report = report_for(std::get<fscrypt::PolicyV2>(*policy).master_key_identifier);
    if (!report) return failure(report.error());
    // The keys it was under before a rotation (ecfs rekey).
    auto earlier_keys = previous_keys(fd, args.path);
    if (!earlier_keys) return failure(earlier_keys.error());
    std::vector<KeyReport> earlier;
    for (const fscrypt::KeyIdentifier& key : *earlier_keys) {
      auto earlier_report = report_for(key);
      if (!earlier_report) return failure(earlier_report.error());
      earlier.push_back(std::move(*earlier_report));
    }
    if (args.json) {
      JsonWriter json;
      json.begin_object();
      json.field("path", args.path);
      json.field("encrypted", true);
      json.key("key");
      json_key(json, *report);
      json.key("earlier_keys");
      json.begin_array();
      for (const KeyReport& key : earlier) json_key(json, key);
      json.end_array();
      json.end_object();
      std::fputs(json.text().c_str(), stdout);
    } else {
      std::printf("%s: encrypted, %s\n  key %s\n", args.path.c_str(), report->state.c_str(),
                  to_hex(report->identifier).c_str());
      print_protectors_text(report->protectors);
      for (const KeyReport& key : earlier) {
        std::printf("  earlier key %s (before a rotation), %s\n", to_hex(key.identifier).c_str(),
                    key.state.c_str());
        print_protectors_text(key.protectors);
      }
    }
    return kExitOk;
  }
  if (policy.error().errno_value() != ENODATA) return failure(policy.error());

  // Not encrypted: the mount as a whole, key by key.
  std::vector<KeyReport> keys;
  std::set<fscrypt::KeyIdentifier> seen;
  for (const auto& wrapped : listing->wrapped_keys) {
    if (!seen.insert(wrapped.key_identifier).second) continue;
    auto report = report_for(wrapped.key_identifier);
    if (!report) return failure(report.error());
    keys.push_back(std::move(*report));
  }
  std::vector<const fscrypt::ProtectorRecord*> idle;
  for (const auto& record : listing->protectors) {
    const bool keeps =
        std::any_of(listing->wrapped_keys.begin(), listing->wrapped_keys.end(),
                    [&](const auto& wrapped) { return wrapped.protector == record.id; });
    if (!keeps) idle.push_back(&record);
  }
  if (args.json) {
    JsonWriter json;
    json.begin_object();
    json.field("path", args.path);
    json.field("encrypted", false);
    json.key("keys");
    json.begin_array();
    for (const KeyReport& report : keys) json_key(json, report);
    json.end_array();
    json.key("unused_protectors");
    json.begin_array();
    for (const auto* record : idle) json.value(fscrypt::protector_id_text(record->id));
    json.end_array();
    json.end_object();
    std::fputs(json.text().c_str(), stdout);
    return kExitOk;
  }
  std::printf("%s: not encrypted; the image keeps %zu key%s\n", args.path.c_str(), keys.size(),
              keys.size() == 1 ? "" : "s");
  for (const KeyReport& report : keys) {
    std::printf("key %s: %s\n", to_hex(report.identifier).c_str(), report.state.c_str());
    print_protectors_text(report.protectors);
  }
  for (const auto* record : idle) {
    std::printf("protector %s (%s) keeps no key\n", fscrypt::protector_id_text(record->id).c_str(),
                fscrypt::protector_kind_name(record->kind));
  }
  return kExitOk;
}

}  // namespace

void add_status_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* command = app.add_subcommand("status", kDescription);
  command->footer(kFooter);
  command->add_option("PATH", args->path, "an encrypted directory, or any path on the mount")
      ->required();
  command->add_flag("--json", args->json, "print JSON");
  command->callback([args, &runner] { runner = [args] { return run(*args); }; });
}

}  // namespace ecfs::cli
