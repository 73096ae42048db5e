#include "cli/time_text.h"

#include <ctime>

namespace ecfs::cli {
namespace {

// `sec` formatted with strftime's `format`, or a plain count when the time
// is outside what the C library can break down.
std::string formatted(int64_t sec, const char* format) {
  const time_t t = static_cast<time_t>(sec);
  tm utc{};
  char text[40];
  if (gmtime_r(&t, &utc) == nullptr || std::strftime(text, sizeof text, format, &utc) == 0) {
    return std::to_string(sec) + " s after the epoch";
  }
  return text;
}

}  // namespace

std::string utc_time_text(int64_t sec) { return formatted(sec, "%F %T UTC"); }

std::string utc_date_text(int64_t sec) { return formatted(sec, "%F"); }

}  // namespace ecfs::cli
