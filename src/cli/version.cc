#include "cli/version.h"

#include "store/format.h"
#include "store/superblock.h"

#ifndef ECFS_VERSION
#error "ECFS_VERSION is set by CMakeLists.txt from the project version"
#endif

namespace ecfs::cli {

std::string program_version() { return std::string("ecfs ") + ECFS_VERSION; }

std::string version_text() {
  // The names of docs/FORMAT.md's feature table; a build that learns a bit
  // adds it here (the static_asserts keep the lists complete).
  static_assert(store::kIncompatKnown ==
                (store::kIncompatLargeXattrValues | store::kIncompatSubvolumes));
  static_assert(store::kCompatRoKnown == store::kCompatRoFreeSpaceTree);
  static_assert(store::kCompatKnown == (store::kCompatImageOrigin | store::kCompatProtectors));
  return program_version() + "\n" + "image format version " +
         std::to_string(store::kFormatVersion) +
         " (reads and writes it)\n"
         "features: incompat large_xattr_values, subvolumes; compat_ro free_space_tree; "
         "compat image_origin, protectors\n";
}

}  // namespace ecfs::cli
