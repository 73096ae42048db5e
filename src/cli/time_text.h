// Times as the command line prints them: UTC, ISO 8601 order.
#pragma once

#include <cstdint>
#include <string>

namespace ecfs::cli {

// "2026-12-07 19:20:01 UTC" for seconds since the epoch.
std::string utc_time_text(int64_t sec);
// "2026-12-07".
std::string utc_date_text(int64_t sec);

}  // namespace ecfs::cli
