// Key rotation (`ecfs rekey`, docs/FORMAT.md "Key rotation"): an encrypted
// inode moves to a new master key for everything written from then on,
// while the extents it already has keep their own contexts, which name the
// key they were written under. The KEY_HISTORY item of an inode lists the
// master keys it was under before, so that those extents stay readable and
// fsck can tell them from extents that do not belong to the file.
//
// KEY_HISTORY, key (ino, KEY_HISTORY, 0), 1 + 16 * count bytes:
//   count u8 | master_key_identifier[16] * count (oldest first)
// count is 1 to kMaxPreviousKeys; no identifier twice, none equal to the
// inode's current one. Only inodes that hold a fscrypt context have one;
// the image has incompat bit `key_rotation` (store/superblock.h) once any
// inode has.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/policy.h"

namespace ecfs::fs {

// At most this many earlier keys per inode: a rotation past it first needs
// the old extents rewritten (`rekey --contents`), which empties the list.
inline constexpr size_t kMaxPreviousKeys = 16;

Bytes encode_key_history(std::span<const fscrypt::KeyIdentifier> previous);
// EUCLEAN for a wrong size, a count of 0 or above kMaxPreviousKeys, or an
// identifier listed twice.
Result<std::vector<fscrypt::KeyIdentifier>> decode_key_history(ByteSpan data);

// What a rotation does to a full history: a file refuses it (its extents
// need every key listed); a directory, which holds no extents, drops its
// oldest key.
enum class HistoryOverflow { kRefuse, kDropOldest };

// The history of an inode that moves from key `from` to key `to`: `from`
// joins the list (last) and `to` leaves it (a rotation back to an earlier
// key). EOVERFLOW past kMaxPreviousKeys with kRefuse.
Result<std::vector<fscrypt::KeyIdentifier>> rotated_history(
    std::span<const fscrypt::KeyIdentifier> previous, const fscrypt::KeyIdentifier& from,
    const fscrypt::KeyIdentifier& to, HistoryOverflow overflow = HistoryOverflow::kRefuse);

// The master key identifier of a v2 policy (the only kind with contexts in
// ecfs: fscrypt/extent.h).
const fscrypt::KeyIdentifier& policy_key(const fscrypt::Policy& policy);
// `policy` naming master key `key` instead.
fscrypt::Policy with_key(const fscrypt::Policy& policy, const fscrypt::KeyIdentifier& key);
// Two v2 policies that differ at most in their master key.
bool same_policy_but_key(const fscrypt::Policy& a, const fscrypt::Policy& b);
// The policy an extent under master key `extent_key` of an inode with
// `inode_policy` and earlier keys `previous` is checked against: the
// inode's policy as it was under that key when it is one of `previous`,
// else the inode's own (which the series' checks then hold it to).
fscrypt::Policy extent_policy(const fscrypt::Policy& inode_policy,
                              std::span<const fscrypt::KeyIdentifier> previous,
                              const fscrypt::KeyIdentifier& extent_key);

// The master keys whose extents an inode may hold: its current one and
// those it was under before.
struct InodeKeySet {
  fscrypt::KeyIdentifier current{};
  std::vector<fscrypt::KeyIdentifier> previous;
  bool contains(const fscrypt::KeyIdentifier& key) const;
  // Every key of `other` is one of these.
  bool includes(const InodeKeySet& other) const;
};

}  // namespace ecfs::fs
