#include "base/log.h"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

namespace ecfs::log {
namespace {

std::mutex seen_mutex;
std::vector<std::pair<Level, std::string>> seen;

void remember(Level level, std::string_view message) {
  std::lock_guard lock(seen_mutex);
  seen.emplace_back(level, std::string(message));
}

TEST(Log, GoesToTheSinkWithItsLevel) {
  seen.clear();
  set_sink_for_test(remember);
  error("turned read-only");
  warning("a warning");
  set_sink_for_test(nullptr);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, Level::kError);
  EXPECT_EQ(seen[0].second, "turned read-only");
  EXPECT_EQ(seen[1].first, Level::kWarning);
}

TEST(Log, WritesOneLineToStandardErrorByDefault) {
  testing::internal::CaptureStderr();
  error("mount turned read-only");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "ecfs: mount turned read-only\n");
}

}  // namespace
}  // namespace ecfs::log
