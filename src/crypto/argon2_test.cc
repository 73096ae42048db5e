#include "crypto/argon2.h"

#include <gtest/gtest.h>

#include <chrono>

namespace ecfs::crypto {
namespace {

// RFC 9106 section 5.3: Argon2id, 32 KiB, 3 passes, 4 lanes, 32-byte tag,
// password 32 x 0x01, salt 16 x 0x02, secret 8 x 0x03, associated data
// 12 x 0x04.
TEST(Argon2Test, Rfc9106Argon2idVector) {
  const Bytes password(32, 0x01);
  const Bytes salt(16, 0x02);
  const Bytes secret(8, 0x03);
  const Bytes associated_data(12, 0x04);
  auto tag = argon2id(password, salt, Argon2Params{3, 32, 4}, 32, secret, associated_data);
  ASSERT_TRUE(tag) << tag.error().to_string();
  EXPECT_EQ(to_hex(tag->span()),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
}

TEST(Argon2Test, DifferentInputsGiveDifferentKeys) {
  const Argon2Params params{1, 64, 1};
  const Bytes salt(16, 0x02);
  auto a = argon2id(Bytes{'a'}, salt, params, 32);
  auto b = argon2id(Bytes{'b'}, salt, params, 32);
  auto a_again = argon2id(Bytes{'a'}, salt, params, 32);
  auto other_salt = argon2id(Bytes{'a'}, Bytes(16, 0x03), params, 32);
  auto other_cost = argon2id(Bytes{'a'}, salt, Argon2Params{2, 64, 1}, 32);
  ASSERT_TRUE(a && b && a_again && other_salt && other_cost);
  EXPECT_TRUE(a->equals(a_again->span()));
  EXPECT_FALSE(a->equals(b->span()));
  EXPECT_FALSE(a->equals(other_salt->span()));
  EXPECT_FALSE(a->equals(other_cost->span()));
  // An empty passphrase is a passphrase like any other.
  EXPECT_TRUE(argon2id({}, salt, params, 32));
}

TEST(Argon2Test, BadParametersAreEinval) {
  const Bytes salt(16, 0x02);
  for (const Argon2Params& bad :
       {Argon2Params{0, 64, 1}, Argon2Params{1, 64, 0}, Argon2Params{1, 7, 1},
        Argon2Params{1, 16, 4}, Argon2Params{kArgon2MaxTimeCost + 1, 64, 1},
        Argon2Params{1, kArgon2MaxMemoryKib + 1, 1},
        Argon2Params{1, 1024, kArgon2MaxParallelism + 1}}) {
    auto out = argon2id(Bytes{'x'}, salt, bad, 32);
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().errno_value(), EINVAL);
  }
  EXPECT_FALSE(argon2id(Bytes{'x'}, Bytes(7, 0), Argon2Params{1, 64, 1}, 32));
  EXPECT_FALSE(argon2id(Bytes{'x'}, salt, Argon2Params{1, 64, 1}, 3));
}

// Calibration respects the caps, and a longer target buys more work
// (memory times passes). Time itself is measured by bench/, not here.
TEST(Argon2Test, CalibrationScalesWithTheTargetWithinTheCaps) {
  using std::chrono::milliseconds;
  auto quick = calibrate_argon2id(milliseconds(5), 4096, 2);
  auto slow = calibrate_argon2id(milliseconds(200), 4096, 2);
  ASSERT_TRUE(quick && slow);
  for (const Argon2Params& params : {*quick, *slow}) {
    EXPECT_LE(params.memory_kib, 4096u);
    EXPECT_EQ(params.parallelism, 2u);
    EXPECT_TRUE(check_argon2_params(params));
  }
  const auto work = [](const Argon2Params& p) { return uint64_t{p.time_cost} * p.memory_kib; };
  EXPECT_GT(work(*slow), work(*quick));
  EXPECT_EQ(slow->memory_kib, 4096u);  // memory is raised first
}

}  // namespace
}  // namespace ecfs::crypto
