#include "fuse/ioctl_dispatch.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "crypto/secret.h"
#include "fs/key_history.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/policy.h"
#include "fscrypt/protector.h"
#include "fuse/ioctl_abi.h"

namespace ecfs::fuse {
namespace {

IoctlAnswer refuse(int error, std::string message) {
  IoctlAnswer answer;
  answer.error = error;
  answer.message = std::move(message);
  return answer;
}

IoctlAnswer refuse(const Error& error) {
  const int value = error.errno_value() > 0 ? error.errno_value() : EIO;
  return refuse(value, error.message());
}

template <typename Struct>
IoctlAnswer answer_with(const Struct& out) {
  IoctlAnswer answer;
  answer.out.resize(sizeof(Struct));
  std::memcpy(answer.out.data(), &out, sizeof(Struct));
  return answer;
}

bool all_zero(ByteSpan bytes) {
  for (uint8_t byte : bytes)
    if (byte != 0) return false;
  return true;
}

template <typename T, size_t N>
bool all_zero(const T (&words)[N]) {
  return all_zero(ByteSpan(reinterpret_cast<const uint8_t*>(words), sizeof(words)));
}

// A non-secret argument struct, copied out of the request.
template <typename Struct>
Struct load(ByteSpan in) {
  Struct value;
  std::memcpy(&value, in.data(), sizeof(Struct));
  return value;
}

// struct fscrypt_key_specifier as keyring.c `valid_key_spec` checks it (the
// reserved word zero, a known type), plus the ABI rule that the union bytes
// past the descriptor or identifier are zero. Fields are native-endian, as
// in every ioctl argument.
Result<fscrypt::KeySpecifier> decode_key_spec(const KeySpecifier& spec) {
  if (spec.reserved != 0) return fail(EINVAL, "key specifier: reserved field is not zero");
  const ByteSpan bytes(spec.bytes);
  switch (spec.type) {
    case kKeySpecTypeDescriptor: {
      if (!all_zero(bytes.subspan(kKeyDescriptorBytes))) {
        return fail(EINVAL, "key specifier: bytes past the descriptor are not zero");
      }
      fscrypt::KeyDescriptor descriptor{};
      std::memcpy(descriptor.data(), bytes.data(), descriptor.size());
      return fscrypt::KeySpecifier::from_descriptor(descriptor);
    }
    case kKeySpecTypeIdentifier: {
      if (!all_zero(bytes.subspan(kKeyIdentifierBytes))) {
        return fail(EINVAL, "key specifier: bytes past the identifier are not zero");
      }
      fscrypt::KeyIdentifier identifier{};
      std::memcpy(identifier.data(), bytes.data(), identifier.size());
      return fscrypt::KeySpecifier::from_identifier(identifier);
    }
    default:
      return fail(EINVAL, "key specifier: unknown type " + std::to_string(spec.type));
  }
}

KeySpecifier encode_key_spec(const fscrypt::KeySpecifier& key) {
  KeySpecifier spec;
  std::memset(&spec, 0, sizeof(spec));
  spec.type = key.type() == fscrypt::KeySpecifierType::kDescriptor ? kKeySpecTypeDescriptor
                                                                   : kKeySpecTypeIdentifier;
  std::memcpy(spec.bytes, key.bytes().data(), key.size());
  return spec;
}

// ---- ECFS_IOC_ADD_KEY (keyring.c fscrypt_ioctl_add_key) ----------------

IoctlAnswer add_key(fs::FileSystem& filesystem, const fscrypt::Caller& caller, ByteSpan in) {
  // The fields around raw[] only: the key itself is copied once, below,
  // into locked memory.
  AddKeyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  std::memcpy(&arg, in.data(), offsetof(AddKeyArg, raw));
  std::memcpy(arg.reserved, in.data() + offsetof(AddKeyArg, reserved), sizeof(arg.reserved));
  const ByteSpan raw = in.subspan(offsetof(AddKeyArg, raw), sizeof(arg.raw));

  // No FSCRYPT_ADD_KEY_FLAG_* is offered yet; the kernel refuses unknown
  // flags with EINVAL.
  if (arg.flags != 0) return refuse(EINVAL, "add key: unknown flags");
  auto key = decode_key_spec(arg.key_spec);
  if (!key) return refuse(key.error());
  // For an identifier the union is output only: the server computes it.
  // The kernel overwrites whatever was there; ecfs's ABI wants unused input
  // bytes zero, so that a later version may give them a meaning.
  if (key->type() == fscrypt::KeySpecifierType::kIdentifier && !all_zero(key->bytes())) {
    return refuse(EINVAL, "add key: the identifier is an output and must be zero on input");
  }
  if (!all_zero(arg.reserved)) return refuse(EINVAL, "add key: reserved fields are not zero");
  // keyring.c checks the capability before looking at the key: "Only root
  // can add keys that are identified by an arbitrary descriptor".
  if (key->type() == fscrypt::KeySpecifierType::kDescriptor && !caller.is_privileged) {
    return refuse(EACCES, "add key: a descriptor key needs CAP_SYS_ADMIN");
  }
  // The kernel's alternative of a keyring key (key_id) is not offered.
  if (arg.key_id != 0) return refuse(EINVAL, "add key: key_id must be 0");
  // FSCRYPT_MIN_KEY_SIZE .. FSCRYPT_MAX_KEY_SIZE.
  constexpr uint32_t kMinRawKeyBytes = 16;
  if (arg.raw_size < kMinRawKeyBytes || arg.raw_size > kMaxRawKeyBytes) {
    return refuse(EINVAL, "add key: raw_size must be 16..64, not " + std::to_string(arg.raw_size));
  }
  if (!all_zero(raw.subspan(arg.raw_size))) {
    return refuse(EINVAL, "add key: bytes of raw[] past raw_size are not zero");
  }

  auto change = [&] {
    const crypto::SecretBytes secret = crypto::SecretBytes::copy_of(raw.first(arg.raw_size));
    return filesystem.add_key(caller, *key, secret.span());
  }();
  if (!change) return refuse(change.error());

  // The whole struct goes back: raw[] as zeros, which also wipes the
  // caller's copy of the key.
  AddKeyArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  out.key_spec = encode_key_spec(change->key);
  out.raw_size = arg.raw_size;
  IoctlAnswer answer = answer_with(out);
  answer.stale_inodes = std::move(change->stale_inodes);
  answer.stale_names = std::move(change->stale_names);
  return answer;
}

// ---- ECFS_IOC_REMOVE_KEY (keyring.c do_remove_key) ---------------------

IoctlAnswer remove_key(fs::FileSystem& filesystem, const fscrypt::Caller& caller, ByteSpan in) {
  const auto arg = load<RemoveKeyArg>(in);
  if (arg.flags & ~kRemoveKeyFlagAllUsers) return refuse(EINVAL, "remove key: unknown flags");
  const bool all_users = (arg.flags & kRemoveKeyFlagAllUsers) != 0;
  // fscrypt_ioctl_remove_key_all_users checks CAP_SYS_ADMIN before it even
  // reads the argument.
  if (all_users && !caller.is_privileged) {
    return refuse(EACCES, "remove key: removing all users' claims needs CAP_SYS_ADMIN");
  }
  auto key = decode_key_spec(arg.key_spec);
  if (!key) return refuse(key.error());
  if (!all_zero(arg.reserved)) return refuse(EINVAL, "remove key: reserved fields are not zero");
  if (key->type() == fscrypt::KeySpecifierType::kDescriptor && !caller.is_privileged) {
    return refuse(EACCES, "remove key: a descriptor key needs CAP_SYS_ADMIN");
  }

  auto change = filesystem.remove_key(caller, *key, all_users);
  if (!change) return refuse(change.error());

  RemoveKeyArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  out.flags = arg.flags;
  out.key_spec = encode_key_spec(*key);
  out.removal_status_flags = change->removal_status_flags;
  IoctlAnswer answer = answer_with(out);
  answer.stale_inodes = std::move(change->stale_inodes);
  answer.stale_names = std::move(change->stale_names);
  return answer;
}

// ---- ECFS_IOC_KEY_STATUS (keyring.c fscrypt_ioctl_get_key_status) -------

IoctlAnswer key_status(fs::FileSystem& filesystem, const fscrypt::Caller& caller, ByteSpan in) {
  const auto arg = load<KeyStatusArg>(in);
  if (arg.flags != 0) return refuse(EINVAL, "key status: unknown flags");
  auto key = decode_key_spec(arg.key_spec);
  if (!key) return refuse(key.error());
  if (!all_zero(arg.reserved)) return refuse(EINVAL, "key status: reserved fields are not zero");
  // status, status_flags and user_count are outputs: ignored on input, as
  // the kernel overwrites them.
  const fscrypt::KeyStatusReport report = filesystem.key_status(caller, *key);

  KeyStatusArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  out.key_spec = encode_key_spec(*key);
  out.status = static_cast<uint32_t>(report.status);
  out.status_flags = report.status_flags;
  out.user_count = report.user_count;
  return answer_with(out);
}

// ---- ECFS_IOC_SET_POLICY / ECFS_IOC_GET_POLICY (policy.c) --------------

// The size of the policy whose version byte is `version`
// (fscrypt_policy_size), or 0 for an unknown version.
size_t policy_size_for_version(uint8_t version) {
  switch (version) {
    case fscrypt::kPolicyV1:
      return kPolicyV1Bytes;
    case fscrypt::kPolicyV2:
      return kPolicyV2Bytes;
    default:
      return 0;
  }
}

IoctlAnswer set_policy(fs::FileSystem& filesystem, uint64_t ino, const fscrypt::Caller& caller,
                       ByteSpan in) {
  const auto arg = load<PolicyArg>(in);
  if (!all_zero(arg.reserved)) return refuse(EINVAL, "set policy: reserved fields are not zero");
  // fscrypt_ioctl_set_policy: the version byte decides the size; an
  // unknown version is EINVAL. Here the size is also stated, and must agree.
  const size_t size = policy_size_for_version(arg.policy[0]);
  if (size == 0) {
    return refuse(EINVAL, "set policy: unknown policy version " + std::to_string(arg.policy[0]));
  }
  if (arg.policy_size != size) {
    return refuse(EINVAL, "set policy: policy_size " + std::to_string(arg.policy_size) +
                              " does not match a version " + std::to_string(arg.policy[0]) +
                              " policy (" + std::to_string(size) + " bytes)");
  }
  const ByteSpan bytes(arg.policy);
  if (!all_zero(bytes.subspan(size))) {
    return refuse(EINVAL, "set policy: bytes past policy_size are not zero");
  }
  auto policy = fscrypt::parse_policy(bytes.first(size));
  if (!policy) return refuse(policy.error());

  if (auto set = filesystem.set_policy(ino, *policy, caller); !set) return refuse(set.error());
  return answer_with(arg);
}

IoctlAnswer get_policy(fs::FileSystem& filesystem, uint64_t ino, ByteSpan in) {
  const auto arg = load<PolicyArg>(in);
  if (!all_zero(arg.reserved)) return refuse(EINVAL, "get policy: reserved fields are not zero");
  // policy_size and policy[] are outputs here (the buffer is always large
  // enough, so the kernel's EOVERFLOW cannot happen).
  auto policy = filesystem.get_policy(ino);
  if (!policy) return refuse(policy.error());
  const Bytes bytes = fscrypt::serialize_policy(*policy);

  PolicyArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  out.policy_size = static_cast<uint32_t>(bytes.size());
  std::memcpy(out.policy, bytes.data(), bytes.size());
  return answer_with(out);
}

// Anyone may commit, as anyone may call sync(2).
IoctlAnswer sync(fs::FileSystem& filesystem) {
  if (Status synced = filesystem.sync(); !synced) return refuse(synced.error());
  SyncArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  return answer_with(out);
}

// As mount(2)'s MS_REMOUNT: CAP_SYS_ADMIN.
IoctlAnswer remount(fs::FileSystem& filesystem, bool caller_is_admin, ByteSpan in) {
  if (!caller_is_admin) return refuse(EPERM, "remounting needs CAP_SYS_ADMIN");
  RemountArg arg;
  std::memcpy(&arg, in.data(), sizeof(arg));
  constexpr uint32_t kKnownFlags = kRemountReadOnly | kRemountNoDirectoryAtime | kRemountKeepAtime;
  if ((arg.flags & ~kKnownFlags) != 0 || arg.atime > kRemountAtimeAlways ||
      !all_zero(arg.reserved)) {
    return refuse(EINVAL, "unknown remount flags or reserved fields set");
  }
  fs::FileSystem::Remount remount;
  remount.read_only = (arg.flags & kRemountReadOnly) != 0;
  if ((arg.flags & kRemountKeepAtime) == 0) {
    remount.directory_atime = (arg.flags & kRemountNoDirectoryAtime) == 0;
    remount.atime = arg.atime == kRemountAtimeNever      ? fs::AtimeUpdates::kNever
                    : arg.atime == kRemountAtimeRelative ? fs::AtimeUpdates::kRelative
                                                         : fs::AtimeUpdates::kAlways;
  }
  // The bound of -o commit= (fuse/mount_options.h).
  if (arg.commit_seconds > 86400) return refuse(EINVAL, "commit interval above a day");
  if (arg.commit_seconds != 0) remount.commit_interval = std::chrono::seconds(arg.commit_seconds);
  if (Status done = filesystem.remount(remount); !done) return refuse(done.error());
  RemountArg out = arg;
  return answer_with(out);
}

// As btrfs without user_subvol_rm_allowed: changing subvolumes needs
// CAP_SYS_ADMIN (the daemon cannot check the caller's write permission on
// the directory as the kernel would, so it asks for the capability).
IoctlAnswer subvolume_change(fs::FileSystem& filesystem, uint64_t dir, bool caller_is_admin,
                             unsigned command, ByteSpan in) {
  if (!caller_is_admin) return refuse(EPERM, "changing subvolumes needs CAP_SYS_ADMIN");
  SubvolArg arg;
  std::memcpy(&arg, in.data(), sizeof(arg));
  if ((arg.flags & ~kSubvolReadOnly) != 0 || arg.reserved != 0 || arg.id != 0 ||
      arg.name_len == 0 || arg.name_len >= kSubvolNameBytes ||
      !all_zero(ByteSpan(arg.name + arg.name_len, kSubvolNameBytes - arg.name_len))) {
    return refuse(EINVAL, "malformed subvolume request");
  }
  const std::string_view name(reinterpret_cast<const char*>(arg.name), arg.name_len);
  if (name.find('\0') != std::string_view::npos) return refuse(EINVAL, "a name with a NUL byte");
  Result<uint64_t> done = 0;
  if (command == ECFS_IOC_SUBVOL_DELETE) {
    if (arg.source != 0 || arg.flags != 0) return refuse(EINVAL, "malformed subvolume request");
    done = filesystem.delete_subvolume(dir, name);
  } else if (arg.source == 0) {
    if (arg.flags != 0) return refuse(EINVAL, "read-only applies to snapshots");
    fs::Caller owner;  // the subvolume's root belongs to root, as btrfs's
    done = filesystem.create_subvolume(dir, name, owner);
  } else {
    done = filesystem.snapshot(arg.source, dir, name, (arg.flags & kSubvolReadOnly) != 0);
  }
  if (!done) return refuse(done.error());
  arg.id = *done;
  IoctlAnswer out = answer_with(arg);
  // The kernel's dentry for the name (a negative one for a new name, or
  // the deleted subvolume's) must go.
  out.stale_names.push_back({dir, std::string(name)});
  // The directory's size, link count and times changed.
  out.stale_inodes.push_back(dir);
  return out;
}

IoctlAnswer subvolume_info(fs::FileSystem& filesystem, uint64_t ino, ByteSpan in) {
  SubvolInfoArg arg;
  std::memcpy(&arg, in.data(), sizeof(arg));
  if (arg.which > kSubvolInfoNext || !all_zero(arg.reserved) ||
      (arg.which == kSubvolInfoOfFile && arg.id != 0)) {
    return refuse(EINVAL, "malformed subvolume info request");
  }
  Result<fs::SubvolumeListing> found = fs::SubvolumeListing{};
  if (arg.which == kSubvolInfoOfFile) {
    found = filesystem.subvolume_of(ino);
  } else {
    auto next = filesystem.next_subvolume(arg.id);
    if (!next) return refuse(next.error());
    found = next->value_or(fs::SubvolumeListing{});
  }
  if (!found) return refuse(found.error());
  if (found->path.size() > kSubvolPathBytes) return refuse(ENAMETOOLONG, "a path too long");
  SubvolInfoArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  out.which = arg.which;
  out.id = found->id;
  out.parent_id = found->parent_id.value_or(0);
  out.root_node = found->id == 0 ? 0 : found->root_node;
  out.created_generation = found->info.created_generation;
  out.source_generation = found->info.source_generation;
  out.otime_sec = found->info.otime_sec;
  out.otime_nsec = found->info.otime_nsec;
  out.flags =
      (found->info.read_only() ? kSubvolReadOnly : 0) | (found->deleted ? kSubvolInfoDeleted : 0);
  std::memcpy(out.uuid, found->info.uuid.data(), sizeof(out.uuid));
  std::memcpy(out.parent_uuid, found->info.parent_uuid.data(), sizeof(out.parent_uuid));
  out.path_len = static_cast<uint32_t>(found->path.size());
  std::memcpy(out.path, found->path.data(), found->path.size());
  return answer_with(out);
}

// Anyone may wait, as anyone may call sync(2).
IoctlAnswer subvolume_sync(fs::FileSystem& filesystem) {
  if (Status done = filesystem.wait_for_deletions(); !done) return refuse(done.error());
  SyncArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  return answer_with(out);
}

// ---- ECFS_IOC_PROTECTOR_PUT / _REMOVE / _NEXT (fs/protector_store.h) -----

fscrypt::ProtectorId protector_id_of(const ProtectorArg& arg) {
  fscrypt::ProtectorId id;
  std::memcpy(id.data(), arg.protector, id.size());
  return id;
}

fscrypt::KeyIdentifier identifier_of(const ProtectorArg& arg) {
  fscrypt::KeyIdentifier identifier;
  std::memcpy(identifier.data(), arg.key_identifier, identifier.size());
  return identifier;
}

IoctlAnswer protector_change(fs::FileSystem& filesystem, const fscrypt::Caller& caller,
                             unsigned command, ByteSpan in) {
  const auto arg = load<ProtectorArg>(in);
  if (!all_zero(arg.reserved)) return refuse(EINVAL, "protector: reserved fields are not zero");
  const bool put = command == ECFS_IOC_PROTECTOR_PUT;
  if (arg.flags & ~(put ? 0u : kProtectorRemoveForce)) {
    return refuse(EINVAL, "protector: unknown flags");
  }
  const size_t length = put ? arg.record_len : 0;
  if (length > kProtectorRecordBytes || !all_zero(ByteSpan(arg.record).subspan(length))) {
    return refuse(EINVAL, "protector: record length or padding is wrong");
  }
  const ByteSpan record(arg.record, length);
  const fscrypt::ProtectorId id = protector_id_of(arg);
  const fscrypt::KeyIdentifier identifier = identifier_of(arg);
  const bool force = (arg.flags & kProtectorRemoveForce) != 0;
  Status done = ok();
  switch (arg.item) {
    case kProtectorItemProtector: {
      if (!all_zero(ByteSpan(arg.key_identifier))) {
        return refuse(EINVAL, "protector: a key identifier for a protector");
      }
      if (!put) {
        done = filesystem.remove_protector(caller, id, force);
        break;
      }
      auto decoded = fscrypt::decode_protector(id, record);
      if (!decoded) return refuse(EINVAL, decoded.error().message());
      done = filesystem.put_protector(caller, *decoded);
      break;
    }
    case kProtectorItemWrappedKey: {
      if (!put) {
        done = filesystem.remove_wrapped_key(caller, id, identifier, force);
        break;
      }
      auto decoded = fscrypt::decode_wrapped_key(id, record);
      if (!decoded) return refuse(EINVAL, decoded.error().message());
      if (decoded->key_identifier != identifier) {
        return refuse(EINVAL, "protector: the record wraps another key than the one named");
      }
      done = filesystem.put_wrapped_key(caller, *decoded);
      break;
    }
    default:
      return refuse(EINVAL, "protector: unknown item " + std::to_string(arg.item));
  }
  if (!done) return refuse(done.error());
  ProtectorArg out = arg;
  return answer_with(out);
}

IoctlAnswer protector_next(fs::FileSystem& filesystem, ByteSpan in) {
  const auto arg = load<ProtectorArg>(in);
  if (arg.flags != 0 || !all_zero(arg.reserved)) {
    return refuse(EINVAL, "protector list: flags or reserved fields are not zero");
  }
  std::optional<fs::ProtectorItem> after;
  if (arg.item != 0) {
    if (arg.item != kProtectorItemProtector && arg.item != kProtectorItemWrappedKey) {
      return refuse(EINVAL, "protector list: unknown item " + std::to_string(arg.item));
    }
    after.emplace();
    after->kind = arg.item == kProtectorItemProtector ? fs::ProtectorItemKind::kProtector
                                                      : fs::ProtectorItemKind::kWrappedKey;
    after->protector = protector_id_of(arg);
    after->key_identifier = identifier_of(arg);
  }
  auto next = filesystem.next_protector_item(after);
  if (!next) return refuse(next.error());
  ProtectorArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  if (*next) {
    if ((*next)->record.size() > kProtectorRecordBytes) {
      return refuse(EUCLEAN, "protector list: a record larger than the interface carries");
    }
    out.item = (*next)->kind == fs::ProtectorItemKind::kProtector ? kProtectorItemProtector
                                                                  : kProtectorItemWrappedKey;
    std::memcpy(out.protector, (*next)->protector.data(), sizeof(out.protector));
    if ((*next)->kind == fs::ProtectorItemKind::kWrappedKey) {
      std::memcpy(out.key_identifier, (*next)->key_identifier.data(), sizeof(out.key_identifier));
    }
    out.record_len = static_cast<uint32_t>((*next)->record.size());
    std::memcpy(out.record, (*next)->record.data(), (*next)->record.size());
  }
  return answer_with(out);
}

// ---- ECFS_IOC_KEY_USAGE (fs/key_usage.h) ---------------------------------

IoctlAnswer key_usage(fs::FileSystem& filesystem, ByteSpan in) {
  const auto arg = load<KeyUsageArg>(in);
  if ((arg.flags & ~kKeyUsageContinue) != 0 || !all_zero(arg.reserved)) {
    return refuse(EINVAL, "key usage: unknown flags or reserved fields not zero");
  }
  if ((arg.flags & kKeyUsageContinue) == 0 && !all_zero(ByteSpan(arg.after))) {
    return refuse(EINVAL, "key usage: 'after' without kKeyUsageContinue");
  }
  auto usage = filesystem.key_usage();
  if (!usage) return refuse(usage.error());
  auto it = usage->begin();
  if (arg.flags & kKeyUsageContinue) {
    fscrypt::KeyIdentifier after;
    std::memcpy(after.data(), arg.after, after.size());
    it = usage->upper_bound(after);
  }
  KeyUsageArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  for (; it != usage->end() && out.count < kKeyUsageEntries; ++it, ++out.count) {
    KeyUsageEntry& entry = out.entries[out.count];
    std::memcpy(entry.key_identifier, it->first.data(), sizeof(entry.key_identifier));
    entry.extents = it->second.extents;
    entry.bytes = it->second.bytes;
  }
  out.more = it != usage->end() ? 1 : 0;
  return answer_with(out);
}

// ---- ECFS_IOC_REKEY (fs/key_history.h) -----------------------------------

IoctlAnswer rekey(fs::FileSystem& filesystem, uint64_t ino, const fscrypt::Caller& caller,
                  ByteSpan in) {
  const auto arg = load<RekeyArg>(in);
  if (arg.flags != 0 || !all_zero(arg.reserved)) {
    return refuse(EINVAL, "rekey: unknown flags or reserved fields not zero");
  }
  fscrypt::KeyIdentifier to;
  std::memcpy(to.data(), arg.key_identifier, to.size());
  auto report = filesystem.rekey_directory(ino, to, caller);
  if (!report) return refuse(report.error());
  RekeyArg out = arg;
  out.names = report->names;
  out.inodes = report->inodes;
  out.skipped = report->skipped;
  out.not_owned = report->not_owned;
  return answer_with(out);
}

IoctlAnswer rekey_contents(fs::FileSystem& filesystem, uint64_t ino, const fscrypt::Caller& caller,
                           ByteSpan in) {
  const auto arg = load<RekeyContentsArg>(in);
  if (arg.flags != 0 || !all_zero(arg.reserved)) {
    return refuse(EINVAL, "rekey contents: unknown flags or reserved fields not zero");
  }
  if (arg.max_bytes == 0 || arg.max_bytes > (uint64_t{1} << 30)) {
    return refuse(EINVAL, "rekey contents: max_bytes must be 1 byte to 1 GiB");
  }
  auto report = filesystem.rekey_contents(ino, arg.max_bytes, caller);
  if (!report) return refuse(report.error());
  RekeyContentsArg out = arg;
  out.bytes = report->bytes;
  out.extents = report->extents;
  out.shared = report->shared;
  out.done = report->done ? 1 : 0;
  return answer_with(out);
}

IoctlAnswer previous_keys(fs::FileSystem& filesystem, uint64_t ino, ByteSpan in) {
  const auto arg = load<PreviousKeysArg>(in);
  if (!all_zero(arg.reserved)) return refuse(EINVAL, "previous keys: reserved fields not zero");
  auto keys = filesystem.previous_keys(ino);
  if (!keys) return refuse(keys.error());
  static_assert(kPreviousKeysMax == fs::kMaxPreviousKeys);
  PreviousKeysArg out;
  std::memset(&out, 0, sizeof(out));
  out.version = kIoctlAbiVersion;
  for (const fscrypt::KeyIdentifier& key : *keys) {
    std::memcpy(out.key_identifiers[out.count++], key.data(), key.size());
  }
  return answer_with(out);
}

}  // namespace

IoctlAnswer answer_ioctl(fs::FileSystem& filesystem, uint64_t ino, const fscrypt::Caller& caller,
                         unsigned command, ByteSpan in, bool caller_is_admin) {
  const size_t expected = ioctl_argument_size(command);
  // A command of someone else's: "inappropriate ioctl for device", as
  // every filesystem answers (fs/ioctl.c vfs_ioctl returns -ENOIOCTLCMD,
  // turned into ENOTTY).
  if (expected == 0) return refuse(ENOTTY, "not an ecfs ioctl");
  // The kernel copies exactly _IOC_SIZE bytes, so a short argument can
  // only come from a caller that bypassed the number; reject it all the same.
  if (in.size() != expected) return refuse(EINVAL, "ioctl argument of the wrong size");
  uint32_t version = 0;
  std::memcpy(&version, in.data(), sizeof(version));
  if (version != kIoctlAbiVersion) {
    return refuse(EINVAL, "unknown ioctl ABI version " + std::to_string(version));
  }
  switch (command) {
    case ECFS_IOC_ADD_KEY:
      return add_key(filesystem, caller, in);
    case ECFS_IOC_REMOVE_KEY:
      return remove_key(filesystem, caller, in);
    case ECFS_IOC_KEY_STATUS:
      return key_status(filesystem, caller, in);
    case ECFS_IOC_SET_POLICY:
      return set_policy(filesystem, ino, caller, in);
    case ECFS_IOC_GET_POLICY:
      return get_policy(filesystem, ino, in);
    case ECFS_IOC_SYNC:
      return sync(filesystem);
    case ECFS_IOC_REMOUNT:
      return remount(filesystem, caller_is_admin, in);
    case ECFS_IOC_SUBVOL_CREATE:
    case ECFS_IOC_SUBVOL_DELETE:
      return subvolume_change(filesystem, ino, caller_is_admin, command, in);
    case ECFS_IOC_SUBVOL_INFO:
      return subvolume_info(filesystem, ino, in);
    case ECFS_IOC_SUBVOL_SYNC:
      return subvolume_sync(filesystem);
    case ECFS_IOC_REKEY:
      return rekey(filesystem, ino, caller, in);
    case ECFS_IOC_PREVIOUS_KEYS:
      return previous_keys(filesystem, ino, in);
    case ECFS_IOC_REKEY_CONTENTS:
      return rekey_contents(filesystem, ino, caller, in);
    case ECFS_IOC_PROTECTOR_PUT:
    case ECFS_IOC_PROTECTOR_REMOVE:
      return protector_change(filesystem, caller, command, in);
    case ECFS_IOC_PROTECTOR_NEXT:
      return protector_next(filesystem, in);
    case ECFS_IOC_KEY_USAGE:
      return key_usage(filesystem, in);
    default:
      return refuse(ENOTTY, "not an ecfs ioctl");
  }
}

void wipe_ioctl_secrets(unsigned command, MutableByteSpan in) {
  if (command != ECFS_IOC_ADD_KEY) return;
  const size_t begin = offsetof(AddKeyArg, raw);
  if (in.size() < begin) return;
  crypto::secure_zero(in.subspan(begin, std::min(sizeof(AddKeyArg::raw), in.size() - begin)));
}

}  // namespace ecfs::fuse
