#include "cli/key_client.h"

#include <cerrno>
#include <cstring>

#include "cli/ioctl_client.h"
#include "fuse/ioctl_abi.h"

namespace ecfs::cli {
namespace {

fuse::KeySpecifier identifier_spec(const fscrypt::KeyIdentifier& identifier) {
  fuse::KeySpecifier spec;
  std::memset(&spec, 0, sizeof(spec));
  spec.type = fuse::kKeySpecTypeIdentifier;
  std::memcpy(spec.bytes, identifier.data(), identifier.size());
  return spec;
}

fuse::ProtectorArg protector_arg(uint32_t item, const fscrypt::ProtectorId& id) {
  fuse::ProtectorArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.item = item;
  std::memcpy(arg.protector, id.data(), id.size());
  return arg;
}

Status put_record(int fd, fuse::ProtectorArg& arg, const Bytes& record, const std::string& where) {
  if (record.size() > sizeof(arg.record)) return fail(EINVAL, "protector record too large");
  arg.record_len = static_cast<uint32_t>(record.size());
  std::memcpy(arg.record, record.data(), record.size());
  return call_ioctl(fd, fuse::ECFS_IOC_PROTECTOR_PUT, &arg, IoctlOperation::kProtector, where);
}

}  // namespace

bool KeyState::present() const { return status == fuse::kKeyStatusPresent; }
bool KeyState::incompletely_removed() const {
  return status == fuse::kKeyStatusIncompletelyRemoved;
}

Result<fscrypt::KeyIdentifier> add_master_key(int fd, const crypto::SecretBytes& key,
                                              const std::string& where) {
  if (key.size() > fuse::kMaxRawKeyBytes) return fail(EINVAL, "a master key is at most 64 bytes");
  fuse::AddKeyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.key_spec.type = fuse::kKeySpecTypeIdentifier;
  arg.raw_size = static_cast<uint32_t>(key.size());
  std::memcpy(arg.raw, key.data(), key.size());
  const Status added = call_ioctl(fd, fuse::ECFS_IOC_ADD_KEY, &arg, IoctlOperation::kAddKey, where);
  crypto::secure_zero(MutableByteSpan(arg.raw, sizeof(arg.raw)));
  if (!added) return std::unexpected(added.error());
  fscrypt::KeyIdentifier identifier;
  std::memcpy(identifier.data(), arg.key_spec.bytes, identifier.size());
  return identifier;
}

Result<KeyRemoval> remove_master_key(int fd, const fscrypt::KeyIdentifier& identifier,
                                     bool all_users, const std::string& where) {
  fuse::RemoveKeyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.flags = all_users ? fuse::kRemoveKeyFlagAllUsers : 0;
  arg.key_spec = identifier_spec(identifier);
  ECFS_TRY(call_ioctl(fd, fuse::ECFS_IOC_REMOVE_KEY, &arg, IoctlOperation::kRemoveKey, where));
  KeyRemoval removal;
  removal.files_busy = (arg.removal_status_flags & fuse::kKeyRemovalStatusFlagFilesBusy) != 0;
  removal.other_users = (arg.removal_status_flags & fuse::kKeyRemovalStatusFlagOtherUsers) != 0;
  return removal;
}

Result<KeyState> master_key_status(int fd, const fscrypt::KeyIdentifier& identifier,
                                   const std::string& where) {
  fuse::KeyStatusArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.key_spec = identifier_spec(identifier);
  ECFS_TRY(call_ioctl(fd, fuse::ECFS_IOC_KEY_STATUS, &arg, IoctlOperation::kKeyStatus, where));
  KeyState state;
  state.status = arg.status;
  state.added_by_self = (arg.status_flags & fuse::kKeyStatusFlagAddedBySelf) != 0;
  state.user_count = arg.user_count;
  return state;
}

Status set_directory_policy(int fd, const fscrypt::Policy& policy, const std::string& where) {
  fuse::PolicyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  const Bytes bytes = fscrypt::serialize_policy(policy);
  arg.policy_size = static_cast<uint32_t>(bytes.size());
  std::memcpy(arg.policy, bytes.data(), bytes.size());
  return call_ioctl(fd, fuse::ECFS_IOC_SET_POLICY, &arg, IoctlOperation::kSetPolicy, where);
}

Result<fscrypt::Policy> directory_policy(int fd, const std::string& where) {
  fuse::PolicyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  ECFS_TRY(call_ioctl(fd, fuse::ECFS_IOC_GET_POLICY, &arg, IoctlOperation::kGetPolicy, where));
  if (arg.policy_size > sizeof(arg.policy)) {
    return fail(EPROTO, where + ": the mount answered a malformed policy");
  }
  auto policy = fscrypt::parse_policy(ByteSpan(arg.policy, arg.policy_size));
  if (!policy) {
    return fail(policy.error().errno_value(),
                where + ": file or directory uses an unrecognized encryption policy version");
  }
  return *policy;
}

Result<fscrypt::KeyIdentifier> directory_key(int fd, const std::string& directory) {
  auto policy = directory_policy(fd, "getting the policy of " + directory);
  if (!policy) return std::unexpected(policy.error());
  const auto* v2 = std::get_if<fscrypt::PolicyV2>(&*policy);
  if (v2 == nullptr) {
    return fail(EINVAL, directory + " has a v1 policy, which protectors do not keep");
  }
  return v2->master_key_identifier;
}

Result<std::vector<KeyUsageRow>> key_usage(int fd, const std::string& where) {
  std::vector<KeyUsageRow> rows;
  fuse::KeyUsageArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  for (;;) {
    ECFS_TRY(call_ioctl(fd, fuse::ECFS_IOC_KEY_USAGE, &arg, IoctlOperation::kKeyStatus, where));
    if (arg.count > fuse::kKeyUsageEntries) {
      return fail(EPROTO, where + ": the mount answered a malformed key usage");
    }
    for (uint32_t i = 0; i < arg.count; ++i) {
      KeyUsageRow row;
      std::memcpy(row.identifier.data(), arg.entries[i].key_identifier, row.identifier.size());
      // Strictly increasing, or the listing would not end.
      if (!rows.empty() && !(rows.back().identifier < row.identifier)) {
        return fail(EPROTO, where + ": the mount answered keys out of order");
      }
      row.extents = arg.entries[i].extents;
      row.bytes = arg.entries[i].bytes;
      rows.push_back(row);
    }
    if (!arg.more || arg.count == 0) return rows;
    const fuse::KeyUsageEntry last = arg.entries[arg.count - 1];
    std::memset(&arg, 0, sizeof(arg));
    arg.version = fuse::kIoctlAbiVersion;
    arg.flags = fuse::kKeyUsageContinue;
    std::memcpy(arg.after, last.key_identifier, sizeof(arg.after));
  }
}

Result<RekeyCounts> rekey_directory(int fd, const fscrypt::KeyIdentifier& to,
                                    const std::string& where) {
  fuse::RekeyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  std::memcpy(arg.key_identifier, to.data(), sizeof(arg.key_identifier));
  ECFS_TRY(call_ioctl(fd, fuse::ECFS_IOC_REKEY, &arg, IoctlOperation::kRekey, where));
  return RekeyCounts{arg.names, arg.inodes, arg.skipped, arg.not_owned};
}

Result<RekeyContentsCounts> rekey_contents(int fd, uint64_t max_bytes, const std::string& where) {
  fuse::RekeyContentsArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.max_bytes = max_bytes;
  ECFS_TRY(
      call_ioctl(fd, fuse::ECFS_IOC_REKEY_CONTENTS, &arg, IoctlOperation::kRekeyContents, where));
  return RekeyContentsCounts{arg.bytes, arg.extents, arg.shared, arg.done != 0};
}

Result<std::vector<fscrypt::KeyIdentifier>> previous_keys(int fd, const std::string& where) {
  fuse::PreviousKeysArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  ECFS_TRY(call_ioctl(fd, fuse::ECFS_IOC_PREVIOUS_KEYS, &arg, IoctlOperation::kGetPolicy, where));
  if (arg.count > fuse::kPreviousKeysMax) {
    return fail(EPROTO, where + ": the mount answered a malformed key list");
  }
  std::vector<fscrypt::KeyIdentifier> keys(arg.count);
  for (uint32_t i = 0; i < arg.count; ++i) {
    std::memcpy(keys[i].data(), arg.key_identifiers[i], keys[i].size());
  }
  return keys;
}

const fscrypt::ProtectorRecord* ProtectorListing::find(const fscrypt::ProtectorId& id) const {
  for (const auto& record : protectors) {
    if (record.id == id) return &record;
  }
  return nullptr;
}

std::vector<const fscrypt::ProtectorRecord*> ProtectorListing::protecting(
    const fscrypt::KeyIdentifier& identifier) const {
  std::vector<const fscrypt::ProtectorRecord*> out;
  for (const auto& wrapped : wrapped_keys) {
    if (wrapped.key_identifier != identifier) continue;
    if (const auto* record = find(wrapped.protector)) out.push_back(record);
  }
  return out;
}

const fscrypt::WrappedKeyRecord* ProtectorListing::wrapped(
    const fscrypt::ProtectorId& protector, const fscrypt::KeyIdentifier& identifier) const {
  for (const auto& record : wrapped_keys) {
    if (record.protector == protector && record.key_identifier == identifier) return &record;
  }
  return nullptr;
}

Result<ProtectorListing> list_protectors(int fd, const std::string& where) {
  ProtectorListing listing;
  fuse::ProtectorArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  // The tree cannot hold more records than this; a longer walk would be a
  // daemon that does not move on.
  constexpr size_t kMaxRecords = 1u << 20;
  for (size_t count = 0; count < kMaxRecords; ++count) {
    arg.flags = 0;
    arg.record_len = 0;
    std::memset(arg.record, 0, sizeof(arg.record));
    ECFS_TRY(
        call_ioctl(fd, fuse::ECFS_IOC_PROTECTOR_NEXT, &arg, IoctlOperation::kProtector, where));
    if (arg.item == 0) return listing;
    if (arg.record_len > sizeof(arg.record)) {
      return fail(EPROTO, where + ": the mount answered a malformed protector record");
    }
    fscrypt::ProtectorId id;
    std::memcpy(id.data(), arg.protector, id.size());
    const ByteSpan record(arg.record, arg.record_len);
    if (arg.item == fuse::kProtectorItemProtector) {
      auto decoded = fscrypt::decode_protector(id, record);
      if (!decoded) return std::unexpected(decoded.error());
      listing.protectors.push_back(std::move(*decoded));
    } else {
      auto decoded = fscrypt::decode_wrapped_key(id, record);
      if (!decoded) return std::unexpected(decoded.error());
      listing.wrapped_keys.push_back(std::move(*decoded));
    }
  }
  return fail(EPROTO, where + ": the protector listing does not end");
}

Status put_protector(int fd, const fscrypt::ProtectorRecord& record, const std::string& where) {
  auto encoded = fscrypt::encode_protector(record);
  if (!encoded) return std::unexpected(encoded.error());
  fuse::ProtectorArg arg = protector_arg(fuse::kProtectorItemProtector, record.id);
  return put_record(fd, arg, *encoded, where);
}

Status put_wrapped_key(int fd, const fscrypt::WrappedKeyRecord& record, const std::string& where) {
  fuse::ProtectorArg arg = protector_arg(fuse::kProtectorItemWrappedKey, record.protector);
  std::memcpy(arg.key_identifier, record.key_identifier.data(), record.key_identifier.size());
  return put_record(fd, arg, fscrypt::encode_wrapped_key(record), where);
}

Status remove_protector(int fd, const fscrypt::ProtectorId& id, bool force,
                        const std::string& where) {
  fuse::ProtectorArg arg = protector_arg(fuse::kProtectorItemProtector, id);
  arg.flags = force ? fuse::kProtectorRemoveForce : 0;
  return call_ioctl(fd, fuse::ECFS_IOC_PROTECTOR_REMOVE, &arg, IoctlOperation::kProtector, where);
}

Status remove_wrapped_key(int fd, const fscrypt::ProtectorId& protector,
                          const fscrypt::KeyIdentifier& identifier, bool force,
                          const std::string& where) {
  fuse::ProtectorArg arg = protector_arg(fuse::kProtectorItemWrappedKey, protector);
  std::memcpy(arg.key_identifier, identifier.data(), identifier.size());
  arg.flags = force ? fuse::kProtectorRemoveForce : 0;
  return call_ioctl(fd, fuse::ECFS_IOC_PROTECTOR_REMOVE, &arg, IoctlOperation::kProtector, where);
}

}  // namespace ecfs::cli
