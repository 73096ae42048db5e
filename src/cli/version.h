// `ecfs --version`: the program's version and the image formats it reads
// and writes (format version and feature bits, docs/FORMAT.md "Versions and
// feature flags").
#pragma once

#include <string>

namespace ecfs::cli {

std::string version_text();
// "ecfs 0.1.0": what mkfs records as the image's maker (store::ImageOrigin).
std::string program_version();

}  // namespace ecfs::cli
