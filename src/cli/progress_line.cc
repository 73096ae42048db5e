#include "cli/progress_line.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

namespace ecfs::cli {
namespace {

// Redrawing more often only costs terminal bandwidth: the eye cannot follow.
constexpr std::chrono::milliseconds kRedrawInterval(100);

// ECMA-48: CR returns to the line start, CSI K (EL 0) erases to its end.
constexpr const char* kEraseToEnd = "\x1b[K";

// The text of the line, without the terminal controls.
std::string format_line(std::string_view prefix, std::string_view phase, uint64_t done,
                        uint64_t total) {
  std::string line = std::string(prefix) + ": " + std::string(phase) + " " + std::to_string(done);
  if (total == 0) return line;
  // In floating point: byte counts of large devices times 100 overflow.
  const auto percent = static_cast<unsigned>(static_cast<double>(std::min(done, total)) * 100.0 /
                                             static_cast<double>(total));
  return line + "/" + std::to_string(total) + " (" + std::to_string(percent) + "%)";
}

}  // namespace

ProgressLine::ProgressLine(std::string prefix)
    : ProgressLine(std::move(prefix), isatty(STDERR_FILENO) == 1) {}

ProgressLine::ProgressLine(std::string prefix, bool enabled)
    : prefix_(std::move(prefix)), enabled_(enabled) {}

ProgressLine::~ProgressLine() { clear(); }

void ProgressLine::update(std::string_view phase, uint64_t done, uint64_t total) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool new_phase = phase != phase_;
  if (!new_phase && shown_ && now - drawn_at_ < kRedrawInterval) return;
  phase_ = phase;
  drawn_at_ = now;
  shown_ = true;
  const std::string line = "\r" + format_line(prefix_, phase, done, total) + kEraseToEnd;
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

void ProgressLine::clear() {
  if (!shown_) return;
  shown_ = false;
  phase_.clear();
  std::fprintf(stderr, "\r%s", kEraseToEnd);
  std::fflush(stderr);
}

}  // namespace ecfs::cli
