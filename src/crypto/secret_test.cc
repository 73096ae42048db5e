#include "crypto/secret.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <type_traits>

namespace ecfs::crypto {
namespace {

static_assert(!std::is_copy_constructible_v<SecretBytes>);
static_assert(!std::is_copy_assignable_v<SecretBytes>);
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);

// In a child, so that the test process itself stays dumpable: after the
// call the kernel reports the process not dumpable.
TEST(CoreDumps, KeepSecretsOutOfCoreDumpsMakesTheProcessNotDumpable) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const bool before = ::prctl(PR_GET_DUMPABLE) == 1;
    const bool done = static_cast<bool>(keep_secrets_out_of_core_dumps());
    _exit(before && done && ::prctl(PR_GET_DUMPABLE) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(SecretBytes, StartsZeroed) {
  SecretBytes s(32);
  ASSERT_EQ(s.size(), 32u);
  for (uint8_t b : s.span()) EXPECT_EQ(b, 0);
}

TEST(SecretBytes, MoveLeavesSourceEmpty) {
  Bytes raw = {1, 2, 3, 4};
  SecretBytes a = SecretBytes::copy_of(raw);
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the contract
  EXPECT_TRUE(b.equals(raw));
  EXPECT_FALSE(b.equals(Bytes{1, 2, 3}));
  EXPECT_FALSE(b.equals(Bytes{1, 2, 3, 5}));
}

TEST(SecretBytes, SecureHeapIsUsableAfterInit) {
  init_secure_heap();
  SecretBytes s = SecretBytes::copy_of(Bytes(64, 0xaa));
  EXPECT_EQ(s.span()[63], 0xaa);
}

}  // namespace
}  // namespace ecfs::crypto
