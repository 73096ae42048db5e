// Keyring: the key-management ioctls' semantics (fscrypt.rst "User API",
// fs/crypto/keyring.c) and key setup through the keyring.
#include "fscrypt/keyring.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "crypto/adiantum.h"
#include "crypto/aes_xts.h"
#include "fscrypt/keyring_for_test.h"
#include "fscrypt/keysetup.h"
#include "fscrypt/master_key_secret.h"

namespace ecfs::fscrypt {
namespace {

using test_support::counting_nonce;
using test_support::filled_key;
using test_support::patterned_key;
using test_support::probe;
using test_support::root;
using test_support::user;
using test_support::v1_context;
using test_support::v2_context;
using test_support::xfstests_raw_key;

constexpr KeyDescriptor kDescriptor = {0x00, 0x00, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33};

KeyIdentifier identifier_from_hex(std::string_view hex) {
  auto bytes = from_hex(hex);
  EXPECT_TRUE(bytes.has_value());
  KeyIdentifier identifier{};
  std::copy(bytes->begin(), bytes->end(), identifier.begin());
  return identifier;
}

template <typename T>
int error_of(const Result<T>& result) {
  return result ? 0 : result.error().errno_value();
}

// --- Adding ---

TEST(KeyringAdd, V2ReturnsTheIdentifierXfstestsPublishes) {
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1000), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value()) << identifier.error().to_string();
  // xfstests common/encrypt: TEST_KEY_IDENTIFIER for TEST_RAW_KEY.
  EXPECT_EQ(*identifier, identifier_from_hex("69b2f6edeee720cce0577937eb8a6751"));

  const KeyStatusReport status =
      keyring.key_status(user(1000), KeySpecifier::from_identifier(*identifier));
  EXPECT_EQ(status.status, KeyStatus::kPresent);
  EXPECT_EQ(status.status_flags, kKeyStatusFlagAddedBySelf);
  EXPECT_EQ(status.user_count, 1u);
}

TEST(KeyringAdd, RawKeySizeMustBe16To64Bytes) {
  Keyring keyring;
  // keyring.c `fscrypt_ioctl_add_key`: FSCRYPT_MIN_KEY_SIZE..FSCRYPT_MAX_KEY_SIZE.
  EXPECT_EQ(error_of(keyring.add_v2_key(user(1), filled_key(1, 15))), EINVAL);
  EXPECT_EQ(error_of(keyring.add_v2_key(user(1), filled_key(1, 65))), EINVAL);
  EXPECT_EQ(error_of(keyring.add_v2_key(user(1), Bytes{})), EINVAL);
  EXPECT_EQ(error_of(keyring.add_v2_key(user(1), filled_key(1, 16))), 0);
  EXPECT_EQ(error_of(keyring.add_v2_key(user(1), filled_key(2, 64))), 0);
  EXPECT_EQ(error_of(keyring.add_v1_key(root(), kDescriptor, filled_key(3, 15))), EINVAL);
  EXPECT_EQ(error_of(keyring.add_v1_key(root(), kDescriptor, filled_key(3, 65))), EINVAL);
  EXPECT_EQ(error_of(keyring.add_v1_key(root(), kDescriptor, filled_key(3, 16))), 0);
}

TEST(KeyringAdd, V1NeedsPrivilegeCheckedBeforeTheSize) {
  Keyring keyring;
  EXPECT_EQ(error_of(keyring.add_v1_key(user(1000), kDescriptor, filled_key(1))), EACCES);
  EXPECT_EQ(error_of(keyring.add_v1_key(user(1000), kDescriptor, filled_key(1, 3))), EACCES);
  EXPECT_EQ(keyring.key_status(root(), KeySpecifier::from_descriptor(kDescriptor)).status,
            KeyStatus::kAbsent);
}

TEST(KeyringAdd, V1ReAddOfAPresentKeyKeepsTheFirstSecret) {
  Keyring keyring;
  const Bytes first = patterned_key(0x11);
  const Bytes second = patterned_key(0x22);
  ASSERT_TRUE(keyring.add_v1_key(root(), kDescriptor, first));
  ASSERT_TRUE(keyring.add_v1_key(root(), kDescriptor, second));

  const Context context = v1_context(kDescriptor, counting_nonce(0));
  auto info = keyring.setup_file_info(context, FileKind::kRegular, 12);
  ASSERT_TRUE(info.has_value()) << info.error().to_string();
  // keyring.c `add_existing_master_key` leaves a present v1 key alone.
  auto expected_secret = MasterKeySecret::create(first);
  auto expected = setup_file_key(*expected_secret, context, {});
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(probe((*info)->cipher()), probe(*expected->cipher));
}

// --- Status and v1 removal ---

TEST(KeyringRemove, V1KeysNeedPrivilegeToRemoveButNotForStatus) {
  Keyring keyring;
  const KeySpecifier spec = KeySpecifier::from_descriptor(kDescriptor);
  ASSERT_TRUE(keyring.add_v1_key(root(), kDescriptor, filled_key(5)));

  // v1 keys have no user claims: no ADDED_BY_SELF, user count 0.
  const KeyStatusReport status = keyring.key_status(user(1000), spec);
  EXPECT_EQ(status.status, KeyStatus::kPresent);
  EXPECT_EQ(status.status_flags, 0u);
  EXPECT_EQ(status.user_count, 0u);

  EXPECT_EQ(error_of(keyring.remove_key(user(1000), spec)), EACCES);
  EXPECT_EQ(keyring.key_status(user(1000), spec).status, KeyStatus::kPresent);

  auto flags = keyring.remove_key(root(), spec);
  ASSERT_TRUE(flags.has_value());
  EXPECT_EQ(*flags, 0u);
  EXPECT_EQ(keyring.key_status(root(), spec).status, KeyStatus::kAbsent);
  EXPECT_EQ(error_of(keyring.remove_key(root(), spec)), ENOKEY);
}

TEST(KeyringRemove, AbsentKeysAreEnokeyAndReportAbsent) {
  Keyring keyring;
  const KeySpecifier spec =
      KeySpecifier::from_identifier(identifier_from_hex("69b2f6edeee720cce0577937eb8a6751"));
  EXPECT_EQ(error_of(keyring.remove_key(user(1), spec)), ENOKEY);
  EXPECT_EQ(error_of(keyring.remove_key_all_users(root(), spec)), ENOKEY);
  const KeyStatusReport status = keyring.key_status(user(1), spec);
  EXPECT_EQ(status.status, KeyStatus::kAbsent);
  EXPECT_EQ(status.status_flags, 0u);
  EXPECT_EQ(status.user_count, 0u);
}

// --- v2 claims ---

TEST(KeyringClaims, EachUserHoldsOneClaimAndTheLastRemovalRemovesTheKey) {
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1000), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  const KeySpecifier spec = KeySpecifier::from_identifier(*identifier);
  ASSERT_TRUE(keyring.add_v2_key(user(2000), xfstests_raw_key()));
  ASSERT_TRUE(keyring.add_v2_key(user(1000), xfstests_raw_key()));  // again: no new claim

  EXPECT_EQ(keyring.key_status(user(1000), spec).user_count, 2u);
  EXPECT_EQ(keyring.key_status(user(1000), spec).status_flags, kKeyStatusFlagAddedBySelf);
  EXPECT_EQ(keyring.key_status(user(2000), spec).status_flags, kKeyStatusFlagAddedBySelf);
  EXPECT_EQ(keyring.key_status(user(3000), spec).status_flags, 0u);
  EXPECT_EQ(keyring.key_status(user(3000), spec).user_count, 2u);

  // A user without a claim cannot remove it, even though it knows the spec.
  EXPECT_EQ(error_of(keyring.remove_key(user(3000), spec)), ENOKEY);

  auto flags = keyring.remove_key(user(1000), spec);
  ASSERT_TRUE(flags.has_value());
  EXPECT_EQ(*flags, kKeyRemovalStatusFlagOtherUsers);
  const KeyStatusReport after = keyring.key_status(user(1000), spec);
  EXPECT_EQ(after.status, KeyStatus::kPresent);
  EXPECT_EQ(after.user_count, 1u);
  EXPECT_EQ(after.status_flags, 0u);
  EXPECT_EQ(error_of(keyring.remove_key(user(1000), spec)), ENOKEY);  // claim gone

  flags = keyring.remove_key(user(2000), spec);
  ASSERT_TRUE(flags.has_value());
  EXPECT_EQ(*flags, 0u);
  EXPECT_EQ(keyring.key_status(user(2000), spec).status, KeyStatus::kAbsent);
}

TEST(KeyringClaims, AllUsersRemovalIsPrivilegedAndIgnoresClaims) {
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1000), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  ASSERT_TRUE(keyring.add_v2_key(user(2000), xfstests_raw_key()));
  const KeySpecifier spec = KeySpecifier::from_identifier(*identifier);

  // EACCES even for a claimant (keyring.c checks capable() first).
  EXPECT_EQ(error_of(keyring.remove_key_all_users(user(1000), spec)), EACCES);
  EXPECT_EQ(keyring.key_status(user(1000), spec).user_count, 2u);

  auto flags = keyring.remove_key_all_users(root(), spec);
  ASSERT_TRUE(flags.has_value());
  EXPECT_EQ(*flags, 0u);
  EXPECT_EQ(keyring.key_status(user(1000), spec).status, KeyStatus::kAbsent);
}

TEST(KeyringClaims, CheckKeyAddedAcceptsClaimantsAndPrivilegedCallers) {
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1000), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  EXPECT_TRUE(keyring.check_key_added(user(1000), *identifier));
  EXPECT_EQ(error_of(keyring.check_key_added(user(2000), *identifier)), ENOKEY);
  EXPECT_TRUE(keyring.check_key_added(root(), *identifier));  // CAP_FOWNER

  KeyIdentifier other = *identifier;
  other[0] ^= 1;
  EXPECT_EQ(error_of(keyring.check_key_added(user(1000), other)), ENOKEY);
  EXPECT_TRUE(keyring.check_key_added(root(), other));
}

// --- Setting up file keys ---

TEST(KeyringSetup, PerFileKeyMatchesTheHkdfVector) {
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  auto info =
      keyring.setup_file_info(v2_context(*identifier, counting_nonce(0)), FileKind::kRegular, 5);
  ASSERT_TRUE(info.has_value()) << info.error().to_string();

  // HKDF-SHA512(master = 01..40, info = "fscrypt\0" 02 || nonce 00..0f), 64
  // bytes; fscrypt-format.md §3.3 (recomputed here with Python hmac).
  auto raw = from_hex(
      "badfbae70512e3d28b99414b7887741d848f9283e09b7f59e8cbe78a2b2c05cb"
      "9fee965f0eb2096b15b28c46cfc02a975bfbce9d34ade6ab28417d4e49df2470");
  auto expected = crypto::make_aes_xts(*raw);
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(probe((*info)->cipher()), probe(**expected));
  EXPECT_EQ((*info)->mode().number, kModeAes256Xts);
  EXPECT_FALSE((*info)->uses_per_mode_key());
  EXPECT_EQ((*info)->iv_params().scheme, IvScheme::kDefault);
  EXPECT_EQ((*info)->master_key(), KeySpecifier::from_identifier(*identifier));
  EXPECT_EQ(keyring.stats().file_keys, 1u);
}

TEST(KeyringSetup, DirectoriesUseTheFilenamesMode) {
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  const Context context = v2_context(*identifier, counting_nonce(0x40));
  auto dir = keyring.setup_file_info(context, FileKind::kDirectory, 2, true);
  ASSERT_TRUE(dir.has_value()) << dir.error().to_string();
  EXPECT_EQ((*dir)->mode().number, kModeAes256Cts);
  ASSERT_TRUE((*dir)->dirhash_key().has_value());
  auto secret = MasterKeySecret::create(xfstests_raw_key());
  auto dirhash = derive_dirhash_key(secret->hkdf(), context.nonce);
  EXPECT_EQ((*dir)->dirhash_key()->k0, dirhash->k0);
  EXPECT_EQ((*dir)->dirhash_key()->k1, dirhash->k1);
  EXPECT_EQ(keyring.stats().dirhash_keys, 1u);
}

TEST(KeyringSetup, AbsentKeyIsEnokey) {
  Keyring keyring;
  const KeyIdentifier missing = identifier_from_hex("69b2f6edeee720cce0577937eb8a6751");
  EXPECT_EQ(error_of(keyring.setup_file_info(v2_context(missing, counting_nonce(0)),
                                             FileKind::kRegular, 5)),
            ENOKEY);
  EXPECT_EQ(error_of(keyring.setup_file_info(v1_context(kDescriptor, counting_nonce(0)),
                                             FileKind::kRegular, 5)),
            ENOKEY);
}

TEST(KeyringSetup, KeysTooShortForTheModeAreEnokey) {
  Keyring keyring;
  // keysetup.c `fscrypt_valid_master_key_size`: v2 needs the mode's
  // security strength (32 for AES-256-XTS, 16 for AES-128-CBC-ESSIV).
  auto short_v2 = keyring.add_v2_key(user(1), filled_key(9, 16));
  ASSERT_TRUE(short_v2.has_value());
  EXPECT_EQ(error_of(keyring.setup_file_info(v2_context(*short_v2, counting_nonce(0)),
                                             FileKind::kRegular, 5)),
            ENOKEY);
  EXPECT_TRUE(keyring.setup_file_info(
      v2_context(*short_v2, counting_nonce(0), kModeAes128Cbc, kModeAes128Cts), FileKind::kRegular,
      5));
  // v1 needs the mode's whole key size (64 for AES-256-XTS).
  ASSERT_TRUE(keyring.add_v1_key(root(), kDescriptor, filled_key(9, 32)));
  EXPECT_EQ(error_of(keyring.setup_file_info(v1_context(kDescriptor, counting_nonce(0)),
                                             FileKind::kRegular, 5)),
            ENOKEY);
  EXPECT_TRUE(keyring.setup_file_info(v1_context(kDescriptor, counting_nonce(0)),
                                      FileKind::kDirectory, 5));  // AES-256-CTS: 32
}

TEST(KeyringSetup, DirhashKeyNeedsAV2Policy) {
  Keyring keyring;
  ASSERT_TRUE(keyring.add_v1_key(root(), kDescriptor, filled_key(9)));
  EXPECT_EQ(error_of(keyring.setup_file_info(v1_context(kDescriptor, counting_nonce(0)),
                                             FileKind::kDirectory, 5, true)),
            EINVAL);
}

TEST(KeyringSetup, IvInoLblk64KeysAreSharedPerModeAndMatchTheVector) {
  KeyringOptions options;
  for (size_t i = 0; i < options.fs_uuid.size(); ++i) {
    options.fs_uuid[i] = static_cast<uint8_t>(0xa0 + i);
  }
  Keyring keyring(options);
  auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  auto first = keyring.setup_file_info(v2_context(*identifier, counting_nonce(0), kModeAes256Xts,
                                                  kModeAes256Cts, kPolicyFlagIvInoLblk64),
                                       FileKind::kRegular, 12);
  auto second =
      keyring.setup_file_info(v2_context(*identifier, counting_nonce(0x50), kModeAes256Xts,
                                         kModeAes256Cts, kPolicyFlagIvInoLblk64),
                              FileKind::kRegular, 13);
  ASSERT_TRUE(first.has_value()) << first.error().to_string();
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE((*first)->uses_per_mode_key());
  EXPECT_EQ(&(*first)->cipher(), &(*second)->cipher());  // one prepared key
  EXPECT_EQ(keyring.stats().mode_keys, 1u);
  EXPECT_EQ(keyring.stats().file_keys, 0u);
  EXPECT_EQ((*second)->iv_params().scheme, IvScheme::kInoLblk64);
  EXPECT_EQ((*second)->iv_params().inode_number, 13u);

  // HKDF ctx 4, info = mode 1 || uuid a0..af (computed with Python hmac).
  auto raw = from_hex(
      "f5879de7071b49c34f2d483316ec2d1439d6a6c4554f087b1fe70cf236505ff6"
      "06180050b4375db3e2b8afcdd5cf3a57035291bb049fd2b60eee2644c9484d9a");
  auto expected = crypto::make_aes_xts(*raw);
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(probe((*first)->cipher()), probe(**expected));

  // Directories use the filenames mode: another slot, another key.
  auto dir = keyring.setup_file_info(v2_context(*identifier, counting_nonce(0x60), kModeAes256Xts,
                                                kModeAes256Cts, kPolicyFlagIvInoLblk64),
                                     FileKind::kDirectory, 14);
  ASSERT_TRUE(dir.has_value());
  EXPECT_NE(&(*dir)->cipher(), &(*first)->cipher());
  EXPECT_EQ(keyring.stats().mode_keys, 2u);
}

TEST(KeyringSetup, IvInoLblk32DerivesTheInodeHashKeyOnce) {
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  auto secret = MasterKeySecret::create(xfstests_raw_key());
  auto hash_key = derive_inode_hash_key(secret->hkdf());
  ASSERT_TRUE(hash_key.has_value());
  for (uint64_t ino : {12u, 13u, 0x12345u}) {
    auto info = keyring.setup_file_info(v2_context(*identifier, counting_nonce(0), kModeAes256Xts,
                                                   kModeAes256Cts, kPolicyFlagIvInoLblk32),
                                        FileKind::kRegular, ino);
    ASSERT_TRUE(info.has_value()) << info.error().to_string();
    EXPECT_EQ((*info)->hashed_inode_number(), hash_inode_number(*hash_key, ino));
    EXPECT_EQ((*info)->iv_params().scheme, IvScheme::kInoLblk32);
    EXPECT_EQ((*info)->iv_params().hashed_inode_number, hash_inode_number(*hash_key, ino));
  }
  EXPECT_EQ(keyring.stats().inode_hash_keys, 1u);
  EXPECT_EQ(keyring.stats().mode_keys, 1u);
}

TEST(KeyringSetup, DirectKeyPoliciesShareOnePerModeKey) {
  Keyring keyring;
  auto identifier = keyring.add_v2_key(user(1), xfstests_raw_key());
  ASSERT_TRUE(identifier.has_value());
  auto context_for = [&](uint8_t nonce_start) {
    return v2_context(*identifier, counting_nonce(nonce_start), kModeAdiantum, kModeAdiantum,
                      kPolicyFlagDirectKey);
  };
  auto file = keyring.setup_file_info(context_for(0), FileKind::kRegular, 12);
  auto dir = keyring.setup_file_info(context_for(0x80), FileKind::kDirectory, 13);
  ASSERT_TRUE(file.has_value()) << file.error().to_string();
  ASSERT_TRUE(dir.has_value());
  // Contents and filenames mode are both Adiantum: one key (keysetup.c
  // mk_direct_keys[mode]), the nonce goes into the IV instead.
  EXPECT_EQ(&(*file)->cipher(), &(*dir)->cipher());
  EXPECT_EQ(keyring.stats().mode_keys, 1u);
  EXPECT_EQ((*dir)->iv_params().scheme, IvScheme::kDirectKey);
  EXPECT_EQ((*dir)->iv_params().nonce, counting_nonce(0x80));

  auto secret = MasterKeySecret::create(xfstests_raw_key());
  auto raw = derive_direct_key(secret->hkdf(), **mode_by_number(kModeAdiantum));
  ASSERT_TRUE(raw.has_value());
  auto expected = crypto::make_adiantum(raw->span());
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(probe((*file)->cipher()), probe(**expected));
}

TEST(KeyringSetup, V1DirectKeyUsesTheMasterKeyItself) {
  Keyring keyring;
  const Bytes raw = patterned_key(0x31);
  ASSERT_TRUE(keyring.add_v1_key(root(), kDescriptor, raw));
  auto first = keyring.setup_file_info(v1_context(kDescriptor, counting_nonce(0), kModeAdiantum,
                                                  kModeAdiantum, kPolicyFlagDirectKey),
                                       FileKind::kRegular, 12);
  auto second = keyring.setup_file_info(v1_context(kDescriptor, counting_nonce(0x40), kModeAdiantum,
                                                   kModeAdiantum, kPolicyFlagDirectKey),
                                        FileKind::kRegular, 13);
  ASSERT_TRUE(first.has_value()) << first.error().to_string();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(&(*first)->cipher(), &(*second)->cipher());
  EXPECT_EQ(keyring.stats().mode_keys, 1u);
  // keysetup_v1.c `setup_v1_file_key_direct`: the first 32 bytes of the key.
  auto expected = crypto::make_adiantum(ByteSpan(raw).first(32));
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(probe((*first)->cipher()), probe(**expected));
}

TEST(KeyringSetup, PerFileKeysOfV1PoliciesUseTheAesEcbKdf) {
  Keyring keyring;
  const Bytes raw = patterned_key(0x5a);
  ASSERT_TRUE(keyring.add_v1_key(root(), kDescriptor, raw));
  const Context context = v1_context(kDescriptor, counting_nonce(3));
  auto info = keyring.setup_file_info(context, FileKind::kRegular, 77);
  ASSERT_TRUE(info.has_value()) << info.error().to_string();
  auto key = derive_v1_file_key(raw, context.nonce, **mode_by_number(kModeAes256Xts));
  ASSERT_TRUE(key.has_value());
  auto expected = crypto::make_aes_xts(key->span());
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(probe((*info)->cipher()), probe(**expected));
}

}  // namespace
}  // namespace ecfs::fscrypt
