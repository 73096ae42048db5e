#include "fscrypt/extent.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "fscrypt/keysetup.h"

namespace ecfs::fscrypt {
namespace {

// Daniel Vacek's btrfs dump (fscrypt-format.md §2.6), key = xfstests
// TEST_RAW_KEY: the inode context (257 FSCRYPT_INODE_CTX 0) and the context
// of the extent at file offset 4096 (257 FSCRYPT_CTX 4096).
constexpr char kDumpInodeContext[] =
    "0201040200000000"
    "69b2f6edeee720cce0577937eb8a6751"
    "77d5a7f82d59cb4c7c8c5a33fde3c603";
constexpr char kDumpExtentContext[] =
    "0101"
    "69b2f6edeee720cce0577937eb8a6751"
    "d0dd42ea7ba43ee8c55a2f79cbc890bd";

// Per-extent keys for master key 0x01..0x40 and extent nonce 00..0f:
// HKDF-SHA512 with context byte 9 (v7) and 8 (v5), 64 bytes. The first 16
// bytes of each are in fscrypt-format.md §3.3; the rest computed the same
// way with Python's hmac/hashlib.
constexpr char kExtentKeyCtx9[] =
    "a8c26f6033618f12cb6107c62d18d50e2b35239dc6e7351e238894be44d523e1"
    "86f908b107f42992cb3d964fda4ed7e280584a1e41c945c059f77b13461e84b4";
constexpr char kExtentKeyCtx8[] =
    "692e63c78fdf482005c5b45f6e237eb647047e277b922dd44d3d258bea976c19"
    "c9f65902cd5555713a7b38b356b452e7562515b7cdb3209260df23098483834a";

Bytes hex(std::string_view text) { return *from_hex(text); }

std::vector<uint8_t> test_raw_key(size_t size = 64) {
  std::vector<uint8_t> key(size);
  for (size_t i = 0; i < size; ++i) key[i] = static_cast<uint8_t>(i + 1);
  return key;
}

Nonce test_nonce() {
  Nonce nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(i);
  return nonce;
}

Policy dump_policy() { return parse_context(hex(kDumpInodeContext))->policy; }

PolicyV2 v2(uint8_t contents, uint8_t filenames, uint8_t flags = 0) {
  PolicyV2 policy = std::get<PolicyV2>(dump_policy());
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  return policy;
}

TEST(ExtentContext, ParsesBtrfsDump) {
  const Bytes bytes = hex(kDumpExtentContext);
  ASSERT_EQ(bytes.size(), kExtentContextSize);
  auto context = parse_extent_context(bytes);
  ASSERT_TRUE(context) << context.error().to_string();
  EXPECT_EQ(context->contents_mode, kModeAes256Xts);
  EXPECT_EQ(to_hex(context->master_key_identifier), "69b2f6edeee720cce0577937eb8a6751");
  EXPECT_EQ(to_hex(context->nonce), "d0dd42ea7ba43ee8c55a2f79cbc890bd");
  EXPECT_EQ(to_hex(serialize_extent_context(*context)), to_hex(bytes));

  // It belongs to the dumped inode.
  auto loaded = load_extent_context(bytes, dump_policy());
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(*loaded, *context);
}

TEST(ExtentContext, ParseRejectsShortInputAndUnknownVersions) {
  const Bytes good = hex(kDumpExtentContext);
  for (size_t size : {0, 1, 17, 33}) {
    auto context = parse_extent_context(ByteSpan(good).first(size));
    ASSERT_FALSE(context) << size;
    EXPECT_EQ(context.error().errno_value(), EINVAL) << size;
  }
  for (uint8_t version : {0, 2, 0xff}) {
    Bytes bad = good;
    bad[0] = version;
    auto context = parse_extent_context(bad);
    ASSERT_FALSE(context) << int(version);
    EXPECT_EQ(context.error().errno_value(), EINVAL);
  }
}

TEST(ExtentContext, ParseIgnoresBytesPastTheContext) {
  // As the series: only sizes below sizeof(ctx) are rejected.
  Bytes longer = hex(kDumpExtentContext);
  longer.resize(40, 0xee);
  auto context = parse_extent_context(longer);
  ASSERT_TRUE(context);
  EXPECT_EQ(*context, *parse_extent_context(hex(kDumpExtentContext)));
}

TEST(ExtentContext, LoadChecksModeAndIdentifierAgainstTheInode) {
  const Bytes bytes = hex(kDumpExtentContext);
  // Another contents mode.
  Bytes other_mode = bytes;
  other_mode[1] = kModeAes128Cbc;
  auto loaded = load_extent_context(other_mode, dump_policy());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().errno_value(), EINVAL);
  // The inode's policy uses another contents mode.
  EXPECT_EQ(load_extent_context(bytes, v2(kModeAes128Cbc, kModeAes128Cts)).error().errno_value(),
            EINVAL);
  // Another master key.
  Bytes other_key = bytes;
  other_key[2 + 15] ^= 1;
  EXPECT_EQ(load_extent_context(other_key, dump_policy()).error().errno_value(), EINVAL);
  // A short buffer is still EINVAL.
  EXPECT_EQ(load_extent_context(ByteSpan(bytes).first(33), dump_policy()).error().errno_value(),
            EINVAL);
  // Filenames mode and padding of the inode do not matter.
  EXPECT_TRUE(load_extent_context(bytes, v2(kModeAes256Xts, kModeAes256Hctr2, kPolicyFlagsPad32)));
}

TEST(ExtentContext, LoadRejectsPoliciesWithoutExtentEncryption) {
  const Bytes bytes = hex(kDumpExtentContext);
  EXPECT_EQ(load_extent_context(bytes, v2(1, 4, kPolicyFlagIvInoLblk64)).error().errno_value(),
            EINVAL);
  PolicyV1 v1;
  v1.contents_mode = kModeAes256Xts;
  v1.filenames_mode = kModeAes256Cts;
  EXPECT_EQ(load_extent_context(bytes, v1).error().errno_value(), EINVAL);
}

TEST(ExtentEncryptionAllowed, V2WithoutIvFlagsOnly) {
  for (auto [c, f] : {std::pair{1, 4}, {5, 6}, {9, 9}, {1, 10}, {7, 8}}) {
    for (uint8_t pad : {kPolicyFlagsPad4, kPolicyFlagsPad32}) {
      EXPECT_TRUE(check_extent_encryption_allowed(v2(c, f, pad))) << c << "," << f;
    }
  }
  for (uint8_t flag : {kPolicyFlagDirectKey, kPolicyFlagIvInoLblk64, kPolicyFlagIvInoLblk32}) {
    auto status = check_extent_encryption_allowed(v2(9, 9, flag));
    ASSERT_FALSE(status) << int(flag);
    EXPECT_EQ(status.error().errno_value(), EINVAL);
  }
  PolicyV1 v1;
  auto status = check_extent_encryption_allowed(v1);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().errno_value(), EINVAL);
}

TEST(NewExtentContext, CopiesThePolicyWithAFreshNonce) {
  const Policy policy = v2(kModeAdiantum, kModeAdiantum, kPolicyFlagsPad16);
  auto a = new_extent_context(policy);
  auto b = new_extent_context(policy);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->contents_mode, kModeAdiantum);
  EXPECT_EQ(to_hex(a->master_key_identifier), "69b2f6edeee720cce0577937eb8a6751");
  EXPECT_NE(a->nonce, b->nonce);
  // It loads back against the same inode.
  EXPECT_TRUE(load_extent_context(serialize_extent_context(*a), policy));

  auto made = make_extent_context(policy, test_nonce());
  ASSERT_TRUE(made);
  EXPECT_EQ(to_hex(serialize_extent_context(*made)),
            "0109"
            "69b2f6edeee720cce0577937eb8a6751"
            "000102030405060708090a0b0c0d0e0f");

  EXPECT_EQ(new_extent_context(v2(9, 9, kPolicyFlagDirectKey)).error().errno_value(), EINVAL);
  EXPECT_EQ(new_extent_context(PolicyV1{}).error().errno_value(), EINVAL);
}

TEST(ExtentKey, DerivedWithContextByteNine) {
  auto hkdf = FscryptHkdf::create(test_raw_key());
  ASSERT_TRUE(hkdf);
  ExtentContext context{kModeAes256Xts, {}, test_nonce()};
  auto key = derive_extent_key(*hkdf, context);
  ASSERT_TRUE(key);
  EXPECT_EQ(to_hex(key->span()), kExtentKeyCtx9);
  // The v5 byte, for reading data written by that series.
  auto v5_key = derive_extent_key(*hkdf, context, static_cast<HkdfContext>(8));
  ASSERT_TRUE(v5_key);
  EXPECT_EQ(to_hex(v5_key->span()), kExtentKeyCtx8);
  // Length follows the extent's mode.
  context.contents_mode = kModeAdiantum;
  EXPECT_EQ(to_hex(derive_extent_key(*hkdf, context)->span()), std::string(kExtentKeyCtx9, 64));
  context.contents_mode = 3;
  EXPECT_EQ(derive_extent_key(*hkdf, context).error().errno_value(), EINVAL);
}

TEST(ExtentKey, DiffersFromThePerFileKeyOfTheSameNonce) {
  auto hkdf = FscryptHkdf::create(test_raw_key());
  ASSERT_TRUE(hkdf);
  const ExtentContext context{kModeAes256Xts, {}, test_nonce()};
  auto extent_key = derive_extent_key(*hkdf, context);
  auto file_key = derive_per_file_key(*hkdf, test_nonce(), *find_mode(kModeAes256Xts));
  ASSERT_TRUE(extent_key && file_key);
  EXPECT_FALSE(extent_key->equals(file_key->span()));
}

TEST(ExtentKey, SetupPreparesTheCipher) {
  auto mk = MasterKeySecret::create(test_raw_key());
  ASSERT_TRUE(mk);
  const ExtentContext context{kModeAes256Xts, {}, test_nonce()};
  auto key = setup_extent_key(*mk, context);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(key->mode->number, kModeAes256Xts);
  EXPECT_EQ(to_hex(key->raw_key.span()), kExtentKeyCtx9);
  auto reference = prepare_key(kModeAes256Xts, hex(kExtentKeyCtx9));
  ASSERT_TRUE(reference);
  std::vector<uint8_t> iv(16, 0), plain(512, 7), a(512), b(512);
  ASSERT_TRUE(key->cipher->encrypt(iv, plain, a));
  ASSERT_TRUE((*reference)->encrypt(iv, plain, b));
  EXPECT_EQ(a, b);

  // v2 master key size rule: AES-256-XTS needs 32 bytes.
  auto short_mk = MasterKeySecret::create(test_raw_key(16));
  ASSERT_TRUE(short_mk);
  EXPECT_EQ(setup_extent_key(*short_mk, context).error().errno_value(), ENOKEY);
}

TEST(ExtentDataUnitNumber, CountsFromTheOriginalExtentStart) {
  EXPECT_EQ(*extent_data_unit_number(0, 12), 0u);
  EXPECT_EQ(*extent_data_unit_number(4096, 12), 1u);
  EXPECT_EQ(*extent_data_unit_number(5 * 4096, 12), 5u);
  EXPECT_EQ(*extent_data_unit_number(3 * 512, 9), 3u);
  // A reflink of the range [8192, 16384) of an extent, placed at file offset
  // 1 MiB: its first data unit is still unit 2 of the extent, not unit 0 of
  // the reference nor unit 256 of the file (btrfs: off = file_offset -
  // em->orig_start, with orig_start the start of the original extent).
  const uint64_t reference_file_start = 1 << 20;
  const uint64_t reference_extent_offset = 8192;
  const uint64_t file_offset = reference_file_start + 4096;
  const uint64_t offset_in_extent = file_offset - reference_file_start + reference_extent_offset;
  EXPECT_EQ(*extent_data_unit_number(offset_in_extent, 12), 3u);
}

TEST(ExtentDataUnitNumber, MisalignedOffsetsAreEinval) {
  EXPECT_EQ(extent_data_unit_number(1, 12).error().errno_value(), EINVAL);
  EXPECT_EQ(extent_data_unit_number(4096 + 512, 12).error().errno_value(), EINVAL);
  EXPECT_TRUE(extent_data_unit_number(4096 + 512, 9));
  EXPECT_EQ(extent_data_unit_number(0, 64).error().errno_value(), EINVAL);
}

}  // namespace
}  // namespace ecfs::fscrypt
