#include "base/log.h"

#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <string>

namespace ecfs::log {
namespace {

std::atomic<bool> to_syslog{false};
std::atomic<Sink> test_sink{nullptr};

int syslog_priority(Level level) {
  switch (level) {
    case Level::kError:
      return LOG_ERR;
    case Level::kWarning:
      return LOG_WARNING;
    case Level::kInfo:
      return LOG_INFO;
  }
  return LOG_ERR;
}

}  // namespace

void write(Level level, std::string_view message) {
  if (Sink sink = test_sink.load()) {
    sink(level, message);
    return;
  }
  if (to_syslog.load()) {
    syslog(syslog_priority(level), "%.*s", static_cast<int>(message.size()), message.data());
    return;
  }
  // One write(2) per line, so that lines of concurrent threads do not mix.
  std::string line = "ecfs: ";
  line += message;
  line += '\n';
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

void use_syslog() { to_syslog.store(true); }

void set_sink_for_test(Sink sink) { test_sink.store(sink); }

}  // namespace ecfs::log
