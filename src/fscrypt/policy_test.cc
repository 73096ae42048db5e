#include "fscrypt/policy.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace ecfs::fscrypt {
namespace {

Bytes hex(std::string_view text) { return *from_hex(text); }

KeyIdentifier test_identifier() {
  KeyIdentifier id{};
  auto bytes = hex("69b2f6edeee720cce0577937eb8a6751");
  std::copy(bytes.begin(), bytes.end(), id.begin());
  return id;
}

PolicyV2 v2(uint8_t contents, uint8_t filenames, uint8_t flags = 0, uint8_t log2_du = 0) {
  PolicyV2 policy;
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  policy.log2_data_unit_size = log2_du;
  policy.master_key_identifier = test_identifier();
  return policy;
}

PolicyV1 v1(uint8_t contents, uint8_t filenames, uint8_t flags = 0) {
  PolicyV1 policy;
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  policy.master_key_descriptor = {0x00, 0x00, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33};
  return policy;
}

void expect_supported(const Policy& policy, const FsTraits& traits) {
  auto status = check_policy_supported(policy, traits);
  EXPECT_TRUE(status) << status.error().to_string();
}

void expect_unsupported(const Policy& policy, const FsTraits& traits) {
  auto status = check_policy_supported(policy, traits);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().errno_value(), EINVAL) << status.error().message();
}

// ---- Layouts ----

TEST(PolicyLayout, V1Bytes) {
  const Policy policy = v1(kModeAes256Xts, kModeAes256Cts, kPolicyFlagsPad32);
  const Bytes bytes = serialize_policy(policy);
  EXPECT_EQ(to_hex(bytes),
            "00010403"
            "0000111122223333");
  EXPECT_EQ(bytes.size(), kPolicyV1Size);
  auto parsed = parse_policy(bytes);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, policy);
  EXPECT_EQ(policy_version(policy), kPolicyV1);
  EXPECT_EQ(policy_key_specifier(policy).to_string(), "descriptor 0000111122223333");
}

TEST(PolicyLayout, V2Bytes) {
  PolicyV2 p = v2(kModeAes256Xts, kModeAes256Hctr2, kPolicyFlagsPad16, 12);
  p.reserved = {0xa, 0xb, 0xc};
  const Bytes bytes = serialize_policy(p);
  EXPECT_EQ(to_hex(bytes),
            "02010a02"
            "0c0a0b0c"
            "69b2f6edeee720cce0577937eb8a6751");
  EXPECT_EQ(bytes.size(), kPolicyV2Size);
  auto parsed = parse_policy(bytes);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, Policy(p));  // reserved bytes survive the round trip
  EXPECT_EQ(policy_version(*parsed), kPolicyV2);
  EXPECT_EQ(policy_log2_data_unit_size(*parsed), 12);
  EXPECT_EQ(policy_key_specifier(*parsed).to_string(),
            "identifier 69b2f6edeee720cce0577937eb8a6751");
}

TEST(PolicyLayout, ParseRejectsWrongSizesAndVersions) {
  const Bytes good_v1 = serialize_policy(v1(1, 4));
  const Bytes good_v2 = serialize_policy(v2(1, 4));
  auto expect_einval = [](ByteSpan bytes) {
    auto parsed = parse_policy(bytes);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().errno_value(), EINVAL);
  };
  expect_einval({});
  expect_einval(ByteSpan(good_v1).first(11));
  expect_einval(ByteSpan(good_v2).first(23));
  expect_einval(ByteSpan(good_v2).first(12));  // v2 version byte, v1 size
  Bytes v1_as_v2 = good_v2;
  v1_as_v2[0] = kPolicyV1;  // v1 version byte, v2 size
  expect_einval(v1_as_v2);
  for (uint8_t version : {1, 3, 0xff}) {
    Bytes bad = good_v2;
    bad[0] = version;
    expect_einval(bad);
  }
}

TEST(ContextLayout, BtrfsInodeContextDump) {
  // Daniel Vacek's btrfs dump (fscrypt-format.md §2.6): item
  // (257 FSCRYPT_INODE_CTX 0), 40 bytes, key = xfstests TEST_RAW_KEY.
  const Bytes bytes =
      hex("02010402"
          "00000000"
          "69b2f6edeee720cce0577937eb8a6751"
          "77d5a7f82d59cb4c7c8c5a33fde3c603");
  ASSERT_EQ(bytes.size(), kContextV2Size);
  auto context = parse_context(bytes);
  ASSERT_TRUE(context) << context.error().to_string();
  EXPECT_EQ(context->version(), kContextV2);
  const auto& policy = std::get<PolicyV2>(context->policy);
  EXPECT_EQ(policy.contents_mode, kModeAes256Xts);
  EXPECT_EQ(policy.filenames_mode, kModeAes256Cts);
  EXPECT_EQ(policy.flags, kPolicyFlagsPad16);
  EXPECT_EQ(filename_padding(policy.flags), 16u);
  EXPECT_EQ(policy.log2_data_unit_size, 0);
  EXPECT_EQ(policy.master_key_identifier, test_identifier());
  EXPECT_EQ(to_hex(context->nonce), "77d5a7f82d59cb4c7c8c5a33fde3c603");
  EXPECT_EQ(serialize_context(*context), bytes);
  expect_supported(context->policy, FsTraits{});
  // The policy is the context minus the nonce.
  EXPECT_EQ(to_hex(serialize_policy(policy_from_context(*context))),
            "02010402"
            "00000000"
            "69b2f6edeee720cce0577937eb8a6751");
  EXPECT_EQ(*policy_from_context_bytes(bytes), context->policy);
}

TEST(ContextLayout, V1ContextVersionByteIsOne) {
  Nonce nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(i);
  const Context context =
      make_context(v1(kModeAdiantum, kModeAdiantum, kPolicyFlagDirectKey), nonce);
  const Bytes bytes = serialize_context(context);
  EXPECT_EQ(to_hex(bytes),
            "01090904"
            "0000111122223333"
            "000102030405060708090a0b0c0d0e0f");
  auto parsed = parse_context(bytes);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, context);
  // ...while the policy's version byte is 0.
  EXPECT_EQ(serialize_policy(policy_from_context(*parsed))[0], 0);
}

TEST(ContextLayout, SizeMustMatchVersion) {
  const Bytes v1_bytes = serialize_context(make_context(v1(1, 4), {}));
  const Bytes v2_bytes = serialize_context(make_context(v2(1, 4), {}));
  ASSERT_EQ(v1_bytes.size(), kContextV1Size);
  ASSERT_EQ(v2_bytes.size(), kContextV2Size);
  auto expect_einval = [](ByteSpan bytes) {
    auto parsed = parse_context(bytes);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().errno_value(), EINVAL);
    EXPECT_EQ(policy_from_context_bytes(bytes).error().errno_value(), EINVAL);
  };
  expect_einval({});
  expect_einval(ByteSpan(v1_bytes).first(27));
  expect_einval(ByteSpan(v2_bytes).first(39));
  expect_einval(ByteSpan(v2_bytes).first(28));  // v2 byte with the v1 size
  Bytes v2_padded = v2_bytes;
  v2_padded.push_back(0);
  expect_einval(v2_padded);
  Bytes v1_byte_v2_size = v2_bytes;
  v1_byte_v2_size[0] = kContextV1;
  expect_einval(v1_byte_v2_size);
  for (uint8_t version : {0, 3, 0xff}) {  // 0 is a policy version, not a context one
    Bytes bad = v2_bytes;
    bad[0] = version;
    expect_einval(bad);
  }
}

TEST(ContextLayout, NewContextHasFreshNonce) {
  auto a = new_context(v2(1, 4));
  auto b = new_context(v2(1, 4));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->policy, b->policy);
  EXPECT_NE(a->nonce, b->nonce);
}

TEST(PoliciesEqual, MemcmpSemantics) {
  EXPECT_TRUE(policies_equal(v2(1, 4), v2(1, 4)));
  EXPECT_FALSE(policies_equal(v2(1, 4), v2(1, 10)));
  EXPECT_FALSE(policies_equal(v2(1, 4, 0), v2(1, 4, 1)));
  EXPECT_FALSE(policies_equal(v2(1, 4, 0, 0), v2(1, 4, 0, 12)));
  PolicyV2 reserved = v2(1, 4);
  reserved.reserved[2] = 1;
  EXPECT_FALSE(policies_equal(v2(1, 4), reserved));
  PolicyV2 other_key = v2(1, 4);
  other_key.master_key_identifier[15] ^= 1;
  EXPECT_FALSE(policies_equal(v2(1, 4), other_key));
  // Different versions never compare equal, even with "the same" settings.
  EXPECT_FALSE(policies_equal(v1(1, 4), v2(1, 4)));
}

// ---- Validation (policy.c fscrypt_supported_policy) ----

TEST(PolicyRules, V1ValidModePairs) {
  const FsTraits traits;
  for (auto [c, f] : {std::pair{1, 4}, {5, 6}, {9, 9}}) {
    expect_supported(v1(c, f), traits);
  }
  // The v2-only pairs and nonsense.
  for (auto [c, f] : {std::pair{1, 10}, {7, 8}, {1, 6}, {4, 4}, {1, 1}, {0, 0}, {2, 3}, {11, 11}}) {
    SCOPED_TRACE(std::to_string(c) + "," + std::to_string(f));
    expect_unsupported(v1(c, f), traits);
  }
}

TEST(PolicyRules, V2ValidModePairs) {
  const FsTraits traits;
  for (auto [c, f] : {std::pair{1, 4}, {5, 6}, {9, 9}, {1, 10}, {7, 8}}) {
    SCOPED_TRACE(std::to_string(c) + "," + std::to_string(f));
    expect_supported(v2(c, f), traits);
  }
  for (auto [c, f] : {std::pair{4, 1}, {10, 1}, {8, 7}, {7, 4}, {1, 8}, {9, 10}, {3, 3}}) {
    SCOPED_TRACE(std::to_string(c) + "," + std::to_string(f));
    expect_unsupported(v2(c, f), traits);
  }
}

TEST(PolicyRules, PaddingFlags) {
  for (uint8_t pad : {kPolicyFlagsPad4, kPolicyFlagsPad8, kPolicyFlagsPad16, kPolicyFlagsPad32}) {
    expect_supported(v1(1, 4, pad), FsTraits{});
    expect_supported(v2(1, 4, pad), FsTraits{});
  }
  EXPECT_EQ(filename_padding(kPolicyFlagsPad4), 4u);
  EXPECT_EQ(filename_padding(kPolicyFlagsPad8), 8u);
  EXPECT_EQ(filename_padding(kPolicyFlagsPad32 | kPolicyFlagDirectKey), 32u);
}

TEST(PolicyRules, V1FlagsAllowed) {
  const FsTraits traits = FsTraits::ext4();
  expect_supported(v1(9, 9, kPolicyFlagDirectKey), traits);
  // v1 never allows the IV_INO_LBLK flags, even where v2 would.
  expect_unsupported(v1(1, 4, kPolicyFlagIvInoLblk64), traits);
  expect_unsupported(v1(1, 4, kPolicyFlagIvInoLblk32), traits);
  for (uint8_t unknown : {0x20, 0x40, 0x80}) expect_unsupported(v1(1, 4, unknown), traits);
}

TEST(PolicyRules, V2UnknownFlags) {
  for (uint8_t unknown : {0x20, 0x40, 0x80, 0xe0}) {
    expect_unsupported(v2(1, 4, unknown), FsTraits{});
  }
}

TEST(PolicyRules, DirectKeyNeedsSameModesAnd24ByteIv) {
  const FsTraits traits;
  expect_supported(v2(9, 9, kPolicyFlagDirectKey), traits);
  expect_supported(v1(9, 9, kPolicyFlagDirectKey), traits);
  // Different modes.
  expect_unsupported(v2(1, 4, kPolicyFlagDirectKey), traits);
  expect_unsupported(v2(1, 10, kPolicyFlagDirectKey), traits);
  expect_unsupported(v1(1, 4, kPolicyFlagDirectKey), traits);
  expect_unsupported(v1(5, 6, kPolicyFlagDirectKey), traits);
}

TEST(PolicyRules, FlagsMutuallyExclusive) {
  const FsTraits traits = FsTraits::ext4();
  expect_supported(v2(1, 4, kPolicyFlagIvInoLblk64), traits);
  expect_supported(v2(1, 4, kPolicyFlagIvInoLblk32), traits);
  expect_unsupported(v2(9, 9, kPolicyFlagDirectKey | kPolicyFlagIvInoLblk64), traits);
  expect_unsupported(v2(9, 9, kPolicyFlagDirectKey | kPolicyFlagIvInoLblk32), traits);
  expect_unsupported(v2(1, 4, kPolicyFlagIvInoLblk64 | kPolicyFlagIvInoLblk32), traits);
}

TEST(PolicyRules, IvInoLblkNeedsAes256XtsContents) {
  const FsTraits traits = FsTraits::ext4();
  for (uint8_t flag : {kPolicyFlagIvInoLblk64, kPolicyFlagIvInoLblk32}) {
    expect_supported(v2(1, 10, flag), traits);
    expect_unsupported(v2(5, 6, flag), traits);
    expect_unsupported(v2(9, 9, flag), traits);
    expect_unsupported(v2(7, 8, flag), traits);
  }
}

TEST(PolicyRules, IvInoLblkNeedsStableInodes) {
  FsTraits traits = FsTraits::ext4();
  traits.has_stable_inodes = false;
  expect_unsupported(v2(1, 4, kPolicyFlagIvInoLblk64), traits);
  expect_unsupported(v2(1, 4, kPolicyFlagIvInoLblk32), traits);
  expect_supported(v2(1, 4), traits);  // the default policy does not care
}

TEST(PolicyRules, IvInoLblkNeeds32BitInodes) {
  FsTraits traits = FsTraits::ext4();
  traits.has_32bit_inodes = false;
  // Both flags, even _32 which hashes the inode number (policy.c: i_ino is
  // an unsigned long, so 32 bits is the implementation limit).
  expect_unsupported(v2(1, 4, kPolicyFlagIvInoLblk64), traits);
  expect_unsupported(v2(1, 4, kPolicyFlagIvInoLblk32), traits);
}

TEST(PolicyRules, IvInoLblkNeeds32BitDataUnitIndexes) {
  FsTraits traits = FsTraits::ext4(4096);  // s_maxbytes = (2^32-1) * 4096: 32 bits
  expect_supported(v2(1, 4, kPolicyFlagIvInoLblk64), traits);
  // 512-byte data units on the same fs give 35-bit indexes.
  expect_unsupported(v2(1, 4, kPolicyFlagIvInoLblk64, 9), traits);
  // A filesystem allowing larger files.
  traits.max_file_size = uint64_t{1} << 45;
  expect_unsupported(v2(1, 4, kPolicyFlagIvInoLblk64), traits);
  expect_unsupported(v2(1, 4, kPolicyFlagIvInoLblk32), traits);
  traits.max_file_size = uint64_t{1} << 44;  // exactly 2^32 blocks
  expect_supported(v2(1, 4, kPolicyFlagIvInoLblk64), traits);
}

TEST(PolicyRules, Log2DataUnitSize) {
  const FsTraits traits = FsTraits::ext4(4096);
  for (uint8_t log2 : {0, 9, 10, 11, 12}) {
    expect_supported(v2(1, 4, 0, log2), traits);
  }
  for (uint8_t log2 : {1, 8, 13, 16, 255}) {
    SCOPED_TRACE(int(log2));
    expect_unsupported(v2(1, 4, 0, log2), traits);
  }
  FsTraits small_blocks = FsTraits::ext4(1024);
  expect_supported(v2(1, 4, 0, 10), small_blocks);
  expect_unsupported(v2(1, 4, 0, 11), small_blocks);
  EXPECT_EQ(effective_log2_data_unit_size(v2(1, 4, 0, 0), 4096), 12u);
  EXPECT_EQ(effective_log2_data_unit_size(v2(1, 4, 0, 9), 4096), 9u);
  EXPECT_EQ(effective_log2_data_unit_size(v1(1, 4), 1024), 10u);
}

TEST(PolicyRules, Log2DataUnitSizeNeedsFilesystemSupport) {
  FsTraits traits = FsTraits::ext4();
  traits.supports_subblock_data_units = false;
  expect_supported(v2(1, 4, 0, 0), traits);
  expect_unsupported(v2(1, 4, 0, 12), traits);  // even equal to the block size
  expect_unsupported(v2(1, 4, 0, 9), traits);
}

TEST(PolicyRules, SubBlockDataUnitsNotWithIvInoLblk32) {
  FsTraits traits = FsTraits::ext4(4096);
  traits.max_file_size = uint64_t{1} << 30;  // so the 32-bit index rule holds
  expect_supported(v2(1, 4, kPolicyFlagIvInoLblk32, 12), traits);
  expect_unsupported(v2(1, 4, kPolicyFlagIvInoLblk32, 11), traits);
  expect_supported(v2(1, 4, kPolicyFlagIvInoLblk64, 11), traits);
}

TEST(PolicyRules, ReservedBytesMustBeZero) {
  expect_supported(v2(1, 4), FsTraits{});
  for (size_t i = 0; i < 3; ++i) {
    PolicyV2 policy = v2(1, 4);
    policy.reserved[i] = 0x80;
    expect_unsupported(policy, FsTraits{});
  }
}

TEST(PolicyRules, V1NotOnCasefoldedDirectories) {
  FsTraits traits;
  traits.is_casefolded = true;
  expect_unsupported(v1(1, 4), traits);
  expect_supported(v2(1, 4), traits);
  traits.is_casefolded = false;
  expect_supported(v1(1, 4), traits);
}

}  // namespace
}  // namespace ecfs::fscrypt
