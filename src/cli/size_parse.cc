#include "cli/size_parse.h"

#include <cerrno>
#include <cstdio>
#include <limits>

namespace ecfs::cli {
namespace {

constexpr std::string_view kUnits = "KMGTPE";

std::unexpected<Error> bad_size(std::string_view text, std::string_view why) {
  return fail(EINVAL, "invalid size '" + std::string(text) + "': " + std::string(why));
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) {
    return bad_size(text, "expected a number with an optional unit K, M, G, T, P or E");
  }
  uint64_t value = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (size_t i = 0; i < digits; ++i) {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (kMax - digit) / 10) return bad_size(text, "too large");
    value = value * 10 + digit;
  }
  std::string_view suffix = text.substr(digits);
  if (suffix.empty()) return value;

  char unit = suffix.front();
  if (unit >= 'a' && unit <= 'z') unit = static_cast<char>(unit - 'a' + 'A');
  const size_t power = kUnits.find(unit);
  std::string_view rest = suffix.substr(1);
  if (power == std::string_view::npos ||
      !(rest.empty() || rest == "B" || rest == "iB" || rest == "b" || rest == "ib")) {
    return bad_size(text, "unknown unit '" + std::string(suffix) + "' (use K, M, G, T, P or E)");
  }
  const unsigned shift = 10 * static_cast<unsigned>(power + 1);
  if (value > (kMax >> shift)) return bad_size(text, "too large");
  return value << shift;
}

std::string format_size(uint64_t bytes) {
  constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  size_t unit = 0;
  while (unit + 1 < std::size(kNames) && (bytes >> (10 * (unit + 1))) != 0) ++unit;
  if (unit == 0) return std::to_string(bytes) + "B";
  const double scaled =
      static_cast<double>(bytes) / static_cast<double>(uint64_t{1} << (10 * unit));
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%s", scaled, kNames[unit]);
  return text;
}

}  // namespace ecfs::cli
