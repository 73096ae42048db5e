#include "base/mountinfo.h"

#include <gtest/gtest.h>

namespace ecfs {
namespace {

TEST(Mountinfo, EscapedCharactersComeBack) {
  EXPECT_EQ(unescape_mountinfo_field("/mnt/a\\040b\\011c\\012d\\134e"), "/mnt/a b\tc\nd\\e");
  EXPECT_EQ(unescape_mountinfo_field("/plain/path"), "/plain/path");
  // Not an escape: kept as it is.
  EXPECT_EQ(unescape_mountinfo_field("a\\9xy"), "a\\9xy");
  EXPECT_EQ(unescape_mountinfo_field("end\\04"), "end\\04");
}

}  // namespace
}  // namespace ecfs
