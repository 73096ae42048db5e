// FileSystem: the protector tree's records (fs/protector_store.h), each
// change committed before it returns so that a protector made or changed is
// never lost to a crash that follows.
#include <cerrno>

#include "fs/filesystem.h"
#include "fs/protector_store.h"

namespace ecfs::fs {
namespace {

// Runs `change` in the running transaction and commits it; a failure half
// way aborts (the volume logs why and turns read-only).
template <typename Change>
Status commit_change(store::Volume& volume, Change&& change) {
  std::unique_lock lock(volume.mutex());
  ECFS_TRY(volume.check_writable());
  // Short of space the change is refused before it starts (ENOSPC), as
  // every other change is, rather than failing half way.
  ECFS_TRY(volume.check_space(0));
  ProtectorStore protectors(volume);
  if (Status changed = change(protectors); !changed) {
    // A refusal (the rules, a malformed record read) changed nothing; an
    // error once the tree was written leaves a half-made change.
    if (!protectors.wrote()) return changed;
    return volume.abort_change(changed.error());
  }
  return volume.commit(lock);
}

}  // namespace

Status FileSystem::put_protector(const fscrypt::Caller& caller,
                                 const fscrypt::ProtectorRecord& record) {
  return commit_change(*volume_, [&](ProtectorStore& protectors) {
    return protectors.put_protector(caller, record);
  });
}

Status FileSystem::put_wrapped_key(const fscrypt::Caller& caller,
                                   const fscrypt::WrappedKeyRecord& record) {
  const fscrypt::KeyStatusReport status =
      keyring_.key_status(caller, fscrypt::KeySpecifier::from_identifier(record.key_identifier));
  const bool holds =
      status.status == fscrypt::KeyStatus::kPresent &&
      (caller.is_privileged || (status.status_flags & fscrypt::kKeyStatusFlagAddedBySelf) != 0);
  return commit_change(*volume_, [&](ProtectorStore& protectors) {
    return protectors.put_wrapped_key(caller, record, holds);
  });
}

Status FileSystem::remove_protector(const fscrypt::Caller& caller, const fscrypt::ProtectorId& id,
                                    bool force) {
  return commit_change(*volume_, [&](ProtectorStore& protectors) {
    return protectors.remove_protector(caller, id, force);
  });
}

Status FileSystem::remove_wrapped_key(const fscrypt::Caller& caller,
                                      const fscrypt::ProtectorId& protector,
                                      const fscrypt::KeyIdentifier& identifier, bool force) {
  return commit_change(*volume_, [&](ProtectorStore& protectors) {
    return protectors.remove_wrapped_key(caller, protector, identifier, force);
  });
}

Result<std::optional<ProtectorItem>> FileSystem::next_protector_item(
    const std::optional<ProtectorItem>& after) {
  std::lock_guard lock(volume_->mutex());
  if (volume_->closed()) return fail(ESHUTDOWN, "the filesystem is unmounted");
  return ProtectorStore(*volume_).next(after);
}

}  // namespace ecfs::fs
