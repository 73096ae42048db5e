// ProgressLine: a one-line progress display for long operations (fsck now;
// scrub, balance and mkfs of large images later). DESIGN.md "Conventions
// users expect": show progress on a terminal and stay quiet when not, so
// scripts and logs never see it.
//
// When enabled (by default: stderr is a terminal) it redraws one line of
// stderr in place with a carriage return and "erase to end of line" (ECMA-48
// EL, CSI K), at most every 100 ms and whenever the phase changes, and
// erases the line again on clear() or destruction, so what the command prints
// next starts on a clean line. Disabled, it writes nothing at all.
// Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace ecfs::cli {

class ProgressLine {
 public:
  // `prefix` starts the line ("ecfs fsck").
  explicit ProgressLine(std::string prefix);
  ProgressLine(std::string prefix, bool enabled);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool enabled() const { return enabled_; }
  // "PREFIX: PHASE DONE/TOTAL (P%)", or "PREFIX: PHASE DONE" when the total
  // is unknown (0).
  void update(std::string_view phase, uint64_t done, uint64_t total);
  // Erases the line if one is shown.
  void clear();

 private:
  std::string prefix_;
  bool enabled_;
  bool shown_ = false;
  std::string phase_;
  std::chrono::steady_clock::time_point drawn_at_;
};

}  // namespace ecfs::cli
