// Which master keys the data of a filesystem is encrypted under, counted
// without any key: every data extent of every subvolume and snapshot (the
// top level included, deleted ones not) names its master key in its extent
// context (fscrypt/extent.h), so counting is a walk of the file extent
// items. An extent shared by several files or snapshots counts once. So a
// user knows whether a key still protects anything before dropping its
// last protector (and, with key rotation, when an old key is done).
#pragma once

#include <cstdint>
#include <map>

#include "base/error.h"
#include "fscrypt/key_identifier.h"
#include "store/volume.h"

namespace ecfs::fs {

struct KeyUsage {
  uint64_t extents = 0;  // distinct data extents
  uint64_t bytes = 0;    // their allocated size on the device
  friend bool operator==(const KeyUsage&, const KeyUsage&) = default;
};

// Per master key identifier, over the running transaction's trees (the
// committed ones on a read-only mount). REQUIRES the volume's mutex held;
// it walks every file extent item, so it holds the lock for as long.
// EUCLEAN for an extent item or context that does not decode.
Result<std::map<fscrypt::KeyIdentifier, KeyUsage>> key_usage(store::Volume& volume);

}  // namespace ecfs::fs
