// Messages a running daemon leaves for its operator: why a mount turned
// read-only, why a background job stopped. They go to standard error until
// the daemon lets go of its terminal, then to syslog (the journal). Callers
// pass only what is safe to keep: errno values, inode and tree numbers,
// byte offsets; never a name, file contents or key bytes (DESIGN.md,
// "Security").
#pragma once

#include <string_view>

namespace ecfs::log {

enum class Level { kError, kWarning, kInfo };

// Writes one line: "ecfs: <message>" on standard error, or a syslog record
// of the matching priority. Thread-safe.
void write(Level level, std::string_view message);

inline void error(std::string_view message) { write(Level::kError, message); }
inline void warning(std::string_view message) { write(Level::kWarning, message); }

// From now on, messages go to syslog (for a daemon that closed its
// standard error). Not undone.
void use_syslog();

// For tests: every message goes to `sink` instead (nullptr: back to the
// default). The sink must be thread-safe.
using Sink = void (*)(Level level, std::string_view message);
void set_sink_for_test(Sink sink);

}  // namespace ecfs::log
