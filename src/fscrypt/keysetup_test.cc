#include "fscrypt/keysetup.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace ecfs::fscrypt {
namespace {

// Vectors: master key = xfstests TEST_RAW_KEY (0x01..0x40), nonce = 00..0f,
// fs UUID = a0..af. HKDF values from fscrypt-format.md §3.3 where listed,
// the rest computed the same way with Python's hmac/hashlib (HKDF-SHA512,
// salt none, info "fscrypt\0" || ctx || info); SipHash-2-4 with a Python
// implementation checked against the SipHash paper's vector; the v1 KDF with
// `openssl enc -aes-128-ecb -nopad -K <nonce>`. None were computed by ecfs.
constexpr char kPerFileKey64[] =
    "badfbae70512e3d28b99414b7887741d848f9283e09b7f59e8cbe78a2b2c05cb"
    "9fee965f0eb2096b15b28c46cfc02a975bfbce9d34ade6ab28417d4e49df2470";
constexpr char kDirectKeyAdiantum[] =
    "119cdfc84d03a78e39bf41d4f29f6d76db9636f6fce4da764411d8f77e31b19e";
constexpr char kIvInoLblk64KeyXts[] =
    "f5879de7071b49c34f2d483316ec2d1439d6a6c4554f087b1fe70cf236505ff6"
    "06180050b4375db3e2b8afcdd5cf3a57035291bb049fd2b60eee2644c9484d9a";
constexpr char kIvInoLblk64KeyCts256[] =
    "83113ebd2d461360a67e74d05f961a7db0b46e648604f001088cb3aaa6cf8d2a";
constexpr char kIvInoLblk32KeyXts[] =
    "1060016bc99b26c3cd9959881d919bb83eac15cf6ff2180b59be875dffdd4d04"
    "97880ff9f75da8a2081a4355f7b81f2619004e1c18c51bb6cac049c40b5f30b5";
constexpr char kV1KeyXts[] =
    "0892085605be8f349f584af993df11f81814c5d95bb42f2278c1dd6b74837f42"
    "e307d06b2dd1f1d6b76cc3978a92662387b5cf520d81ab0a58396bb819bca5a8";

std::vector<uint8_t> test_raw_key(size_t size = 64, uint8_t first = 1) {
  std::vector<uint8_t> key(size);
  for (size_t i = 0; i < size; ++i) key[i] = static_cast<uint8_t>(first + i);
  return key;
}

Nonce test_nonce() {
  Nonce nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(i);
  return nonce;
}

FsUuid test_uuid() {
  FsUuid uuid{};
  for (size_t i = 0; i < uuid.size(); ++i) uuid[i] = static_cast<uint8_t>(0xa0 + i);
  return uuid;
}

MasterKeySecret test_master_key(size_t size = 64, uint8_t first = 1) {
  return std::move(*MasterKeySecret::create(test_raw_key(size, first)));
}

Context v2_context(uint8_t contents, uint8_t filenames, uint8_t flags = 0) {
  PolicyV2 policy;
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  return make_context(policy, test_nonce());
}

Context v1_context(uint8_t contents, uint8_t filenames, uint8_t flags = 0) {
  PolicyV1 policy;
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  return make_context(policy, test_nonce());
}

std::string derive_hex(const MasterKeySecret& mk, const Context& context, FileKind kind,
                       const FsUuid& uuid = {}) {
  FileKeyParams params;
  params.kind = kind;
  params.fs_uuid = uuid;
  auto key = derive_file_key(mk, context, params);
  if (!key) return "error: " + key.error().to_string();
  return to_hex(key->span());
}

const ModeInfo& mode(uint8_t number) { return *find_mode(number); }

// ---- MasterKeySecret ----

TEST(MasterKeySecret, SizeLimitsAreEinval) {
  for (size_t size : {0, 1, 15, 65, 128}) {
    auto mk = MasterKeySecret::create(test_raw_key(size));
    ASSERT_FALSE(mk) << size;
    EXPECT_EQ(mk.error().errno_value(), EINVAL) << size;
  }
  for (size_t size : {16, 32, 64}) {
    auto mk = MasterKeySecret::create(test_raw_key(size));
    ASSERT_TRUE(mk) << size;
    EXPECT_EQ(mk->size(), size);
    EXPECT_EQ(to_hex(mk->raw()), to_hex(test_raw_key(size)));
  }
}

// ---- Mode selection and key sizes ----

TEST(KeySetup, SelectEncryptionMode) {
  const Policy policy = v2_context(kModeAes256Xts, kModeAes256Hctr2).policy;
  EXPECT_EQ((*select_encryption_mode(policy, FileKind::kRegular))->number, kModeAes256Xts);
  EXPECT_EQ((*select_encryption_mode(policy, FileKind::kDirectory))->number, kModeAes256Hctr2);
  EXPECT_EQ((*select_encryption_mode(policy, FileKind::kSymlink))->number, kModeAes256Hctr2);
  const Policy unknown = v2_context(3, 4).policy;
  EXPECT_EQ(select_encryption_mode(unknown, FileKind::kRegular).error().errno_value(), EINVAL);
  EXPECT_TRUE(select_encryption_mode(unknown, FileKind::kDirectory));
}

TEST(KeySetup, MasterKeySizeRules) {
  // v1: at least the mode key size.
  EXPECT_TRUE(check_master_key_size(kPolicyV1, mode(kModeAes256Xts), 64));
  EXPECT_EQ(check_master_key_size(kPolicyV1, mode(kModeAes256Xts), 63).error().errno_value(),
            ENOKEY);
  EXPECT_TRUE(check_master_key_size(kPolicyV1, mode(kModeAes128Cbc), 16));
  // v2: at least the security strength.
  EXPECT_TRUE(check_master_key_size(kPolicyV2, mode(kModeAes256Xts), 32));
  EXPECT_EQ(check_master_key_size(kPolicyV2, mode(kModeAes256Xts), 31).error().errno_value(),
            ENOKEY);
  EXPECT_TRUE(check_master_key_size(kPolicyV2, mode(kModeSm4Xts), 16));
  EXPECT_EQ(check_master_key_size(kPolicyV2, mode(kModeAdiantum), 16).error().errno_value(),
            ENOKEY);
}

// ---- v2 rules ----

TEST(KeySetup, V2PerFileKey) {
  const auto mk = test_master_key();
  const Context context = v2_context(kModeAes256Xts, kModeAes256Cts);
  EXPECT_EQ(derive_hex(mk, context, FileKind::kRegular), kPerFileKey64);
  // A directory's key is for the filenames mode: 32 bytes, the same HKDF
  // stream cut shorter.
  EXPECT_EQ(derive_hex(mk, context, FileKind::kDirectory), std::string(kPerFileKey64, 64));
  EXPECT_EQ(derive_hex(mk, context, FileKind::kSymlink), std::string(kPerFileKey64, 64));
  EXPECT_EQ(to_hex(derive_per_file_key(mk.hkdf(), test_nonce(), mode(1))->span()), kPerFileKey64);
}

TEST(KeySetup, V2PerFileKeyFrom32ByteMasterKey) {
  // A 256-bit master key is enough for AES-256-XTS under v2.
  const auto mk = test_master_key(32, 0x20);
  EXPECT_EQ(derive_hex(mk, v2_context(1, 4), FileKind::kRegular),
            "5eb6d37b3f3ff3d91fd9bb340977e84167f5b2f726fef160cda2bdb8d10f7eaf"
            "2f3749ed87b9c4f981844d9c709ac34c4d2fbe33701dc86147170ab092cf854b");
}

TEST(KeySetup, V2DirectKeyIsPerMode) {
  const auto mk = test_master_key();
  const Context context = v2_context(kModeAdiantum, kModeAdiantum, kPolicyFlagDirectKey);
  EXPECT_EQ(derive_hex(mk, context, FileKind::kRegular), kDirectKeyAdiantum);
  // The nonce does not matter: every file shares the per-mode key.
  Context other = context;
  other.nonce[0] ^= 0xff;
  EXPECT_EQ(derive_hex(mk, other, FileKind::kDirectory), kDirectKeyAdiantum);
  EXPECT_EQ(to_hex(derive_direct_key(mk.hkdf(), mode(kModeAdiantum))->span()), kDirectKeyAdiantum);
}

TEST(KeySetup, IvInoLblk64Key) {
  const auto mk = test_master_key();
  const Context context = v2_context(kModeAes256Xts, kModeAes256Cts, kPolicyFlagIvInoLblk64);
  EXPECT_EQ(derive_hex(mk, context, FileKind::kRegular, test_uuid()), kIvInoLblk64KeyXts);
  EXPECT_EQ(derive_hex(mk, context, FileKind::kDirectory, test_uuid()), kIvInoLblk64KeyCts256);
  // The UUID is part of the key.
  EXPECT_NE(derive_hex(mk, context, FileKind::kRegular, FsUuid{}), kIvInoLblk64KeyXts);
  EXPECT_EQ(to_hex(derive_iv_ino_lblk_64_key(mk.hkdf(), mode(1), test_uuid())->span()),
            kIvInoLblk64KeyXts);
}

TEST(KeySetup, IvInoLblk32KeyAndInodeHash) {
  const auto mk = test_master_key();
  const Context context = v2_context(kModeAes256Xts, kModeAes256Cts, kPolicyFlagIvInoLblk32);
  EXPECT_EQ(derive_hex(mk, context, FileKind::kRegular, test_uuid()), kIvInoLblk32KeyXts);
  EXPECT_EQ(to_hex(derive_iv_ino_lblk_32_key(mk.hkdf(), mode(1), test_uuid())->span()),
            kIvInoLblk32KeyXts);

  // HKDF ctx 7 gives 47646c0b607504d3 27bc9a6569f9a372, read as LE u64s.
  auto hash_key = derive_inode_hash_key(mk.hkdf());
  ASSERT_TRUE(hash_key);
  EXPECT_EQ(hash_key->k0, 0xd30475600b6c6447u);
  EXPECT_EQ(hash_key->k1, 0x72a3f969659abc27u);
  EXPECT_EQ(hash_inode_number(*hash_key, 1), 0xe2f70369u);
  EXPECT_EQ(hash_inode_number(*hash_key, 257), 0x7b1830f3u);
  EXPECT_EQ(hash_inode_number(*hash_key, 0x12345678), 0xa28a90a6u);
  EXPECT_EQ(hash_inode_number(*hash_key, 0xffffffff), 0x9f5b406cu);
}

TEST(KeySetup, DirhashKeyIsTwoLittleEndianWords) {
  // fscrypt-format.md §3.3: 56a94d5d52f8532a 98e25757f4979543.
  const auto mk = test_master_key();
  auto key = derive_dirhash_key(mk.hkdf(), test_nonce());
  ASSERT_TRUE(key);
  EXPECT_EQ(key->k0, 0x2a53f8525d4da956u);
  EXPECT_EQ(key->k1, 0x439597f45757e298u);
}

TEST(KeySetup, V2MasterKeyTooShortIsEnokey) {
  const auto mk16 = test_master_key(16);
  FileKeyParams params;
  auto key = derive_file_key(mk16, v2_context(kModeAes256Xts, kModeAes256Cts), params);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().errno_value(), ENOKEY);
  // AES-128 modes need only 16 bytes.
  EXPECT_TRUE(derive_file_key(mk16, v2_context(kModeAes128Cbc, kModeAes128Cts), params));
}

// ---- v1 rules ----

TEST(KeySetup, V1AesEcbKdf) {
  const auto mk = test_master_key();
  EXPECT_EQ(derive_hex(mk, v1_context(1, 4), FileKind::kRegular), kV1KeyXts);
  // ECB: shorter keys are the same blocks.
  EXPECT_EQ(derive_hex(mk, v1_context(1, 4), FileKind::kDirectory), std::string(kV1KeyXts, 64));
  EXPECT_EQ(derive_hex(mk, v1_context(5, 6), FileKind::kRegular), std::string(kV1KeyXts, 32));
  EXPECT_EQ(to_hex(derive_v1_file_key(test_raw_key(), test_nonce(), mode(1))->span()), kV1KeyXts);
}

TEST(KeySetup, V1MasterKeyTooShortIsEnokey) {
  const auto mk32 = test_master_key(32);
  FileKeyParams params;
  auto key = derive_file_key(mk32, v1_context(1, 4), params);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().errno_value(), ENOKEY);
  // Its filenames key (32 bytes) is fine.
  params.kind = FileKind::kDirectory;
  EXPECT_TRUE(derive_file_key(mk32, v1_context(1, 4), params));
  EXPECT_EQ(derive_v1_file_key(test_raw_key(63), test_nonce(), mode(1)).error().errno_value(),
            ENOKEY);
}

TEST(KeySetup, V1DirectKeyIsTheMasterKey) {
  const auto mk = test_master_key();
  const Context context = v1_context(kModeAdiantum, kModeAdiantum, kPolicyFlagDirectKey);
  EXPECT_EQ(derive_hex(mk, context, FileKind::kRegular), to_hex(test_raw_key(32)));
  auto too_short = derive_v1_direct_key(test_raw_key(31), mode(kModeAdiantum));
  EXPECT_EQ(too_short.error().errno_value(), ENOKEY);
  // A 16-byte IV has no room for the nonce.
  EXPECT_EQ(derive_v1_direct_key(test_raw_key(), mode(kModeAes256Xts)).error().errno_value(),
            EINVAL);
}

// ---- setup_file_key ----

TEST(SetupFileKey, PreparesTheDerivedKey) {
  const auto mk = test_master_key();
  FileKeyParams params;
  auto key = setup_file_key(mk, v2_context(kModeAes256Xts, kModeAes256Cts), params);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(key->mode->number, kModeAes256Xts);
  EXPECT_EQ(to_hex(key->raw_key.span()), kPerFileKey64);
  EXPECT_EQ(key->hashed_ino, 0u);
  EXPECT_FALSE(key->dirhash_key);
  // The cipher is keyed with raw_key: same output as one prepared directly.
  auto reference = prepare_key(kModeAes256Xts, *from_hex(kPerFileKey64));
  ASSERT_TRUE(reference);
  std::vector<uint8_t> iv(16, 0), plain(4096, 0x42), a(4096), b(4096);
  iv[0] = 5;
  ASSERT_TRUE(key->cipher->encrypt(iv, plain, a));
  ASSERT_TRUE((*reference)->encrypt(iv, plain, b));
  EXPECT_EQ(a, b);
}

TEST(SetupFileKey, IvInoLblk32HashesTheInodeNumber) {
  const auto mk = test_master_key();
  FileKeyParams params;
  params.inode_number = 257;
  params.fs_uuid = test_uuid();
  auto key = setup_file_key(mk, v2_context(1, 4, kPolicyFlagIvInoLblk32), params);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(to_hex(key->raw_key.span()), kIvInoLblk32KeyXts);
  EXPECT_EQ(key->hashed_ino, 0x7b1830f3u);
}

TEST(SetupFileKey, DirhashKeyOnRequest) {
  const auto mk = test_master_key();
  FileKeyParams params;
  params.kind = FileKind::kDirectory;
  params.need_dirhash_key = true;
  auto key = setup_file_key(mk, v2_context(1, 4), params);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(key->mode->number, kModeAes256Cts);
  ASSERT_TRUE(key->dirhash_key);
  EXPECT_EQ(key->dirhash_key->k0, 0x2a53f8525d4da956u);
  // v1 has no dirhash key.
  auto v1 = setup_file_key(mk, v1_context(1, 4), params);
  ASSERT_FALSE(v1);
  EXPECT_EQ(v1.error().errno_value(), EINVAL);
}

TEST(SetupFileKey, Errors) {
  const auto mk = test_master_key();
  FileKeyParams params;
  EXPECT_EQ(setup_file_key(mk, v2_context(3, 3), params).error().errno_value(), EINVAL);
  EXPECT_EQ(setup_file_key(test_master_key(16), v2_context(1, 4), params).error().errno_value(),
            ENOKEY);
  // An SM4 directory needs SM4-CTS-CBC, which ecfs lacks.
  params.kind = FileKind::kDirectory;
  EXPECT_EQ(setup_file_key(mk, v2_context(kModeSm4Xts, kModeSm4Cts), params).error().errno_value(),
            EOPNOTSUPP);
}

}  // namespace
}  // namespace ecfs::fscrypt
