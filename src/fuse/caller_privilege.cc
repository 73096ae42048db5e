#include "fuse/caller_privilege.h"

#include <linux/capability.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace ecfs::fuse {

std::optional<uint64_t> effective_capabilities(std::string_view proc_status) {
  // proc(5): "CapEff: Mask of capabilities enabled in effective set", in hex.
  constexpr std::string_view kField = "CapEff:";
  size_t start = 0;
  while (start < proc_status.size()) {
    size_t end = proc_status.find('\n', start);
    if (end == std::string_view::npos) end = proc_status.size();
    std::string_view line = proc_status.substr(start, end - start);
    start = end + 1;
    if (!line.starts_with(kField)) continue;
    line.remove_prefix(kField.size());
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    uint64_t mask = 0;
    const auto [rest, error] = std::from_chars(line.data(), line.data() + line.size(), mask, 16);
    if (line.empty() || error != std::errc() || rest != line.data() + line.size()) {
      return std::nullopt;
    }
    return mask;
  }
  return std::nullopt;
}

bool process_has_capability(pid_t pid, int capability) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  const std::optional<uint64_t> capabilities = effective_capabilities(text.str());
  return capabilities && ((*capabilities >> capability) & 1);
}

bool request_is_privileged(uint32_t uid, pid_t pid) {
  return uid == 0 || process_has_capability(pid, CAP_SYS_ADMIN);
}

fscrypt::Caller fscrypt_caller(uint32_t uid, pid_t pid) {
  fscrypt::Caller caller;
  caller.uid = uid;
  caller.is_privileged = request_is_privileged(uid, pid);
  return caller;
}

}  // namespace ecfs::fuse
