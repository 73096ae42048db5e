// Helpers for the fs tests that check whole images (fs_check_test,
// namespace_model_test, fs_crash_test; only *_test.cc include this): making
// a filesystem on a device, unwrapping results, and the full fsck (engine
// and filesystem) of a device's committed state.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "block/block_device.h"
#include "fs/filesystem.h"
#include "fs/fs_check.h"
#include "store/engine.h"

namespace ecfs::fs::testing {

// The value of `result`; a failed result fails the test and aborts (the
// tests cannot go on without it).
template <typename T>
T must(Result<T> result, const char* what = "") {
  if (!result) {
    ADD_FAILURE() << what << ": " << result.error().to_string();
    std::abort();
  }
  return std::move(*result);
}
inline void must(Status status, const char* what = "") {
  if (!status) {
    ADD_FAILURE() << what << ": " << status.error().to_string();
    std::abort();
  }
}

template <typename T>
int error_of(const Result<T>& result) {
  return result ? 0 : result.error().errno_value();
}

inline std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

inline constexpr Caller kRootCaller{0, 0, 022};

// An engine image with the root directory, as `ecfs mkfs` makes it.
inline void make_filesystem(block::BlockDevice& device, const store::MkfsOptions& options = {}) {
  must(store::mkfs(device, options), "mkfs");
  auto engine = must(store::Engine::open(device), "open");
  must(format_filesystem(*engine, kRootCaller), "format_filesystem");
}

// Both checks of the committed state of `device` (which nothing may have
// open): Engine::check's problems, then check_filesystem's.
struct FullCheck {
  store::CheckReport engine;
  FsCheckReport filesystem;
  bool clean() const { return engine.clean() && filesystem.clean(); }
  std::string problems() const {
    return "engine:\n" + joined(engine.problems) + "filesystem:\n" + joined(filesystem.problems);
  }
};

inline FullCheck full_check(block::BlockDevice& device) {
  store::OpenOptions options;
  options.read_only = true;
  auto engine = must(store::Engine::open(device, options), "open for fsck");
  FullCheck check;
  check.engine = must(engine->check(), "Engine::check");
  check.filesystem = must(check_all_subvolumes(*engine), "check_all_subvolumes");
  return check;
}

// Expects both checks of `device`'s committed state to be clean, listing
// the problems otherwise.
inline void expect_full_check_clean(block::BlockDevice& device) {
  const FullCheck check = full_check(device);
  EXPECT_TRUE(check.clean()) << check.problems();
}

}  // namespace ecfs::fs::testing
