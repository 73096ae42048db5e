#include "base/bytes.h"

#include <gtest/gtest.h>

namespace ecfs {
namespace {

TEST(Hex, RoundTrips) {
  Bytes data = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(to_hex(data), "0001abff");
  auto parsed = from_hex("0001ABff");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, data);
}

TEST(Hex, RejectsMalformed) {
  EXPECT_EQ(from_hex("abc").error().errno_value(), EINVAL);
  EXPECT_EQ(from_hex("zz").error().errno_value(), EINVAL);
  EXPECT_TRUE(from_hex("")->empty());
}

TEST(LittleEndian, StoresAndLoads) {
  uint8_t buf[8];
  store_le64(buf, 0x0102030405060708ull);
  EXPECT_EQ(buf[0], 0x08);
  EXPECT_EQ(buf[7], 0x01);
  EXPECT_EQ(load_le64(buf), 0x0102030405060708ull);
  store_le32(buf, 0xdeadbeef);
  EXPECT_EQ(buf[0], 0xef);
  EXPECT_EQ(load_le32(buf), 0xdeadbeefu);
}

}  // namespace
}  // namespace ecfs
