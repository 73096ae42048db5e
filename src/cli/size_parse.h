// Sizes on the command line and in summaries, the way btrfs-progs writes
// them: "8G", "16K", "4096" in, "8.00GiB" out. Units are binary (K = 1024),
// as mkfs.btrfs and truncate(1) read them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace ecfs::cli {

// A byte count: decimal digits, then optionally one unit letter K, M, G, T,
// P or E (either case) which may be followed by "iB" or "B" ("8G", "8GiB",
// "8gb" all mean 8 * 2^30). EINVAL, naming the text, for anything else:
// empty, signs, spaces, fractions, unknown units, or a value over 2^64 - 1.
Result<uint64_t> parse_size(std::string_view text);

// "8.00GiB", "16.00KiB", "512B": two decimals in the largest unit that keeps
// the number at least 1 (btrfs-progs' pretty_size).
std::string format_size(uint64_t bytes);

}  // namespace ecfs::cli
