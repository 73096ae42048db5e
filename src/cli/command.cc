#include "cli/command.h"

#include <cctype>
#include <cstdio>

namespace ecfs::cli {

std::string redact_long_hex(std::string_view text) {
  // 16 bytes (FSCRYPT_MIN_KEY_SIZE) take 32 hex digits.
  constexpr size_t kShortestKeyHex = 32;
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t run = 0;
    while (i + run < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + run]))) ++run;
    if (run >= kShortestKeyHex) {
      out += "<hex redacted>";
    } else {
      out.append(text.substr(i, run));
    }
    i += run;
    if (run == 0) out.push_back(text[i++]);
  }
  return out;
}

void print_error(std::string_view command, std::string_view message) {
  std::string line = command.empty() ? "ecfs: " : "ecfs " + std::string(command) + ": ";
  line += redact_long_hex(message);
  // One line, whatever the message holds.
  for (char& c : line)
    if (c == '\n') c = ' ';
  line.push_back('\n');
  std::fputs(line.c_str(), stderr);
}

}  // namespace ecfs::cli
