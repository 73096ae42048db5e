// `ecfs --version`: the program's version and the image formats it reads
// and writes (format version and feature bits, docs/FORMAT.md "Versions and
// feature flags").
#pragma once

#include <string>

namespace ecfs::cli {

std::string version_text();

}  // namespace ecfs::cli
