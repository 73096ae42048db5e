// A snapshot clones one tree: the subvolumes nested in its source are
// other trees and stay out of it. In the snapshot their names become empty
// directories (btrfs shows an empty directory where each nested subvolume
// was), so every entry of the snapshot names something it holds, and the
// directories stay as they were: same names, same readdir positions, same
// link counts (a subvolume's name counts in its directory's nlink as a
// directory's does). docs/FORMAT.md "Subvolumes".
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "base/error.h"
#include "store/btree.h"
#include "store/subvolume_items.h"

namespace ecfs::fs {

// In `snapshot_tree` (a clone made in the running transaction), each entry
// that names one of `nested` (tree id, its ROOT_REF in the source: the
// directory, index and name) becomes an entry naming a new empty directory
// of that tree, owned by root with mode 0755, created in `generation`.
// EUCLEAN when an entry is not where the ROOT_REF says.
Status replace_nested_subvolume_names(
    store::BTree& snapshot_tree, uint64_t generation,
    const std::vector<std::pair<uint64_t, store::RootRefItem>>& nested);

}  // namespace ecfs::fs
