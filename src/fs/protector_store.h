// The protector tree (store::kProtectorTreeId) as records: protectors and
// wrapped master keys (fscrypt/protector.h), kept with the image outside
// every subvolume. Who may change what is decided here, from the caller and
// what the caller proves:
//
//  - a new protector belongs to its caller (owner_uid must be the caller's
//    uid; a privileged caller may file one for anyone);
//  - a protector is replaced (a passphrase change) or removed only by its
//    owner or a privileged caller, and never changes kind;
//  - a wrapped key is filed under a protector its caller may change, and
//    only for a master key the caller holds (added to the mount's keyring),
//    so nobody files keys they cannot use; removed by the same rule;
//  - removing the last protector of a master key would lose every file
//    under it: EBUSY, unless forced;
//  - an unprivileged user owns at most kMaxProtectorsPerUser protectors.
//
// Records are public (google/fscrypt keeps its metadata world-readable):
// listing needs no permission. Every call REQUIRES the volume's mutex held;
// changes are made in the running transaction (the caller commits).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "fscrypt/keyring.h"
#include "fscrypt/protector.h"
#include "store/engine.h"
#include "store/volume.h"

namespace ecfs::fs {

enum class ProtectorItemKind : uint32_t { kProtector = 1, kWrappedKey = 2 };

// One record of the tree, as listed: the protector it belongs to, the key
// identifier (wrapped keys only) and the record's encoding.
struct ProtectorItem {
  ProtectorItemKind kind = ProtectorItemKind::kProtector;
  fscrypt::ProtectorId protector{};
  fscrypt::KeyIdentifier key_identifier{};
  Bytes record;
};

struct TreeRecords;  // protector_store.cc

class ProtectorStore {
 public:
  explicit ProtectorStore(store::Volume& volume) : volume_(volume) {}

  // Files `record` (a new protector, or a new wrapping of an existing one).
  // EPERM by the rules above; EINVAL for a record that does not encode or a
  // change of kind; EROFS.
  Status put_protector(const fscrypt::Caller& caller, const fscrypt::ProtectorRecord& record);
  // Files `record` under its protector: ENOENT without that protector;
  // EPERM by the rules; ENOKEY unless `caller_holds_key`.
  Status put_wrapped_key(const fscrypt::Caller& caller, const fscrypt::WrappedKeyRecord& record,
                         bool caller_holds_key);
  // Removes a protector and every key it wraps. ENOENT, EPERM; EBUSY when
  // it is the last protector of some master key and not `force`.
  Status remove_protector(const fscrypt::Caller& caller, const fscrypt::ProtectorId& id,
                          bool force);
  // Removes one wrapped key. ENOENT, EPERM; EBUSY when it is the key's last
  // protector and not `force`.
  Status remove_wrapped_key(const fscrypt::Caller& caller, const fscrypt::ProtectorId& protector,
                            const fscrypt::KeyIdentifier& identifier, bool force);

  // The first record after `after` in the tree's order (protectors by id,
  // each followed by its wrapped keys); from the start when `after` is
  // nullopt; nullopt at the end.
  Result<std::optional<ProtectorItem>> next(const std::optional<ProtectorItem>& after);
  // Whether a call has written to the tree (so that a failure after it
  // must abort the transaction).
  bool wrote() const { return wrote_; }

 private:
  Result<store::BTree*> writable_tree();
  Status check_may_change(const fscrypt::Caller& caller, const fscrypt::ProtectorRecord& record);
  // Every record of the tree, decoded (EUCLEAN for one that does not).
  Result<TreeRecords> records();

  store::Volume& volume_;
  bool wrote_ = false;
};

// How many protectors one unprivileged user may own: the records are kept
// by everyone's image, so one user cannot fill it (EDQUOT past it).
inline constexpr size_t kMaxProtectorsPerUser = 64;

// fsck of the protector tree of `engine`'s committed state: every record
// decodes and has its protector; the compat bit is set exactly when the
// tree exists. Problems are appended.
Status check_protector_tree(store::Engine& engine, std::vector<std::string>& problems);

}  // namespace ecfs::fs
