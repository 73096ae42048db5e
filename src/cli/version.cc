#include "cli/version.h"

#include "cli/store_text.h"
#include "store/format.h"
#include "store/superblock.h"

#ifndef ECFS_VERSION
#error "ECFS_VERSION is set by CMakeLists.txt from the project version"
#endif

namespace ecfs::cli {

std::string program_version() { return std::string("ecfs ") + ECFS_VERSION; }

std::string version_text() {
  // The names of docs/FORMAT.md's feature table, from the table the whole
  // command line uses (store_text.h), for every bit this build knows.
  return program_version() + "\n" + "image format version " +
         std::to_string(store::kFormatVersion) + " (reads and writes it)\n" +
         "features: incompat " + feature_names(FeatureMask::kIncompat, store::kIncompatKnown) +
         "; compat_ro " + feature_names(FeatureMask::kCompatRo, store::kCompatRoKnown) +
         "; compat " + feature_names(FeatureMask::kCompat, store::kCompatKnown) + "\n";
}

}  // namespace ecfs::cli
