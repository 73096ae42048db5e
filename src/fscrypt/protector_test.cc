// Protector records and their cryptography: round trips, the documented
// layout, a frozen record that later builds must keep opening, wrong
// secrets, and tampering with every byte that is bound.
#include "fscrypt/protector.h"

#include <gtest/gtest.h>

#include <string>

#include "crypto/random.h"
#include "fscrypt/protector_wrap.h"

namespace ecfs::fscrypt {
namespace {

// Cheap costs: these tests are about the records, not the hash.
constexpr crypto::Argon2Params kCheap{1, 64, 1};

ByteSpan text(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

crypto::SecretBytes random_master_key() {
  crypto::SecretBytes key(kMasterKeySize);
  EXPECT_TRUE(crypto::random_bytes(key.mutable_span()));
  return key;
}

template <typename T>
T must(Result<T> result) {
  EXPECT_TRUE(result) << result.error().to_string();
  if (!result) std::abort();
  return std::move(*result);
}

TEST(ProtectorTest, PassphraseProtectorUnwrapsItsKeysAndNothingElse) {
  NewProtector made = must(create_protector(ProtectorKind::kPassphrase, text("correct horse"),
                                            kCheap, 1000, "laptop", 1796688000));
  const crypto::SecretBytes master = random_master_key();
  const WrappedKeyRecord wrapped =
      must(wrap_master_key(made.record.id, made.protector_key, master));
  EXPECT_EQ(wrapped.key_identifier, must(compute_key_identifier(master.span())));

  // Through the stored bytes, as a later mount would.
  const ProtectorRecord stored =
      must(decode_protector(made.record.id, must(encode_protector(made.record))));
  EXPECT_EQ(stored, made.record);
  const WrappedKeyRecord stored_key =
      must(decode_wrapped_key(made.record.id, encode_wrapped_key(wrapped)));
  EXPECT_EQ(stored_key, wrapped);
  const crypto::SecretBytes protector_key = must(open_protector(stored, text("correct horse")));
  EXPECT_TRUE(must(unwrap_master_key(stored_key, protector_key)).equals(master.span()));

  auto wrong = open_protector(stored, text("correct horse "));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().errno_value(), EKEYREJECTED);
  EXPECT_NE(wrong.error().message().find("wrong passphrase"), std::string::npos);
  EXPECT_EQ(wrong.error().message().find("correct horse"), std::string::npos);
}

TEST(ProtectorTest, KeyFileProtectorTakesExactly32Bytes) {
  Bytes key_file(32);
  ASSERT_TRUE(crypto::random_bytes(key_file));
  NewProtector made = must(create_protector(ProtectorKind::kKeyFile, key_file, kCheap, 0, "", 0));
  EXPECT_EQ(made.record.argon2, (crypto::Argon2Params{0, 0, 0}));  // no costs kept
  EXPECT_TRUE(must(open_protector(made.record, key_file)).equals(made.protector_key.span()));
  Bytes other = key_file;
  other[31] ^= 1;
  EXPECT_EQ(open_protector(made.record, other).error().errno_value(), EKEYREJECTED);
  EXPECT_NE(open_protector(made.record, other).error().message().find("wrong key file"),
            std::string::npos);
  EXPECT_EQ(open_protector(made.record, Bytes(31)).error().errno_value(), EINVAL);
  EXPECT_EQ(
      create_protector(ProtectorKind::kKeyFile, Bytes(64), kCheap, 0, "", 0).error().errno_value(),
      EINVAL);
}

// A passphrase change keeps the protector key, so every wrapped master key
// stays valid; the old passphrase stops working.
TEST(ProtectorTest, RewrapChangesThePassphraseOnly) {
  NewProtector made =
      must(create_protector(ProtectorKind::kPassphrase, text("old"), kCheap, 0, "x", 0));
  const crypto::SecretBytes master = random_master_key();
  const WrappedKeyRecord wrapped =
      must(wrap_master_key(made.record.id, made.protector_key, master));
  const ProtectorRecord changed = must(rewrap_protector(
      made.record, made.protector_key, text("new"), crypto::Argon2Params{2, 64, 1}));
  EXPECT_NE(changed.salt, made.record.salt);
  EXPECT_EQ(changed.argon2.time_cost, 2u);
  EXPECT_EQ(open_protector(changed, text("old")).error().errno_value(), EKEYREJECTED);
  const crypto::SecretBytes key = must(open_protector(changed, text("new")));
  EXPECT_TRUE(must(unwrap_master_key(wrapped, key)).equals(master.span()));
}

// Every byte the wrapping binds, changed, makes the record fail to open:
// the ciphertext, tag and nonce, and the record fields in the additional
// data (id, kind, costs, salt; protector id and key identifier).
TEST(ProtectorTest, TamperedRecordsDoNotOpen) {
  NewProtector made =
      must(create_protector(ProtectorKind::kPassphrase, text("pw"), kCheap, 0, "", 0));
  const Bytes encoded = must(encode_protector(made.record));
  // Bytes 8..108: costs, salt, time (not bound), wrapped key. The time is
  // informational; everything else must be bound.
  for (size_t i = 8; i < encoded.size(); ++i) {
    if (i >= 40 && i < 48) continue;  // created_sec
    Bytes changed = encoded;
    changed[i] ^= 0x01;
    auto record = decode_protector(made.record.id, changed);
    if (!record) continue;  // refused already (costs out of range)
    EXPECT_FALSE(open_protector(*record, text("pw"))) << "byte " << i;
  }
  ProtectorId other_id = made.record.id;
  other_id[0] ^= 1;
  EXPECT_FALSE(open_protector(must(decode_protector(other_id, encoded)), text("pw")));

  const crypto::SecretBytes master = random_master_key();
  const WrappedKeyRecord wrapped =
      must(wrap_master_key(made.record.id, made.protector_key, master));
  const Bytes key_bytes = encode_wrapped_key(wrapped);
  for (size_t i = 8; i < key_bytes.size(); ++i) {
    Bytes changed = key_bytes;
    changed[i] ^= 0x80;
    auto record = must(decode_wrapped_key(made.record.id, changed));
    auto opened = unwrap_master_key(record, made.protector_key);
    ASSERT_FALSE(opened) << "byte " << i;
    EXPECT_EQ(opened.error().errno_value(), EKEYREJECTED) << "byte " << i;
  }
  EXPECT_FALSE(
      unwrap_master_key(must(decode_wrapped_key(other_id, key_bytes)), made.protector_key));
}

// Records made by an earlier build, frozen: every later build must open
// them the same way (docs/FORMAT.md "Protectors"). Passphrase "ecfs golden
// passphrase", costs {2 passes, 64 KiB, 1 lane}, owner 1000, name "golden";
// the master key's byte i is 7i + 1.
TEST(ProtectorTest, RecordsOfAnEarlierBuildOpen) {
  const ProtectorId id = must(parse_protector_id("22fc561c5e9afe83"));
  const ProtectorRecord record = must(decode_protector(
      id, must(from_hex("01010600e8030000020000004000000001000000000000006a8fbca88e724884730e3a"
                        "ea155240418048176b0000000003e2b4a7f2f6102910d787bd6148b2e9af35c2c9af77"
                        "906416ec69929baecba2b6a67cb317ceeffc43efbf4aad47e322610e345b0b32c92094"
                        "cc5031676f6c64656e"))));
  EXPECT_EQ(record.kind, ProtectorKind::kPassphrase);
  EXPECT_EQ(record.owner_uid, 1000u);
  EXPECT_EQ(record.name, "golden");
  EXPECT_EQ(record.argon2, (crypto::Argon2Params{2, 64, 1}));
  EXPECT_EQ(record.created_sec, 1796688000);
  const WrappedKeyRecord wrapped = must(decode_wrapped_key(
      id, must(from_hex("0100000000000000106febaab6f204fb554357b2adefc46b143d0a267a091cc714454"
                        "21ea20a128e747521e4760182e450d1c34e54c72a22799dda27addc08d3636893a488"
                        "903c6bdb8dfc5df4b0e4705aac69606a56914644e296da19ea946cfd1c7210ff4c0adc"
                        "0d6fdf04ce123f26c6c3b14a"))));
  const crypto::SecretBytes protector_key =
      must(open_protector(record, text("ecfs golden passphrase")));
  const crypto::SecretBytes master = must(unwrap_master_key(wrapped, protector_key));
  ASSERT_EQ(master.size(), kMasterKeySize);
  for (size_t i = 0; i < kMasterKeySize; ++i) {
    EXPECT_EQ(master.data()[i], static_cast<uint8_t>(i * 7 + 1)) << i;
  }
  EXPECT_EQ(to_hex(wrapped.key_identifier), to_hex(must(compute_key_identifier(master.span()))));
}

TEST(ProtectorTest, MalformedRecordsAreEuclean) {
  NewProtector made =
      must(create_protector(ProtectorKind::kPassphrase, text("pw"), kCheap, 0, "name", 0));
  const Bytes good = must(encode_protector(made.record));
  std::vector<std::pair<size_t, uint8_t>> edits = {
      {0, 2},   // version
      {1, 0},   // kind
      {1, 9},   // kind
      {3, 1},   // reserved
      {20, 1},  // reserved
      {8, 0},   // no passes
  };
  for (const auto& [at, value] : edits) {
    Bytes bad = good;
    bad[at] = value;
    auto decoded = decode_protector(made.record.id, bad);
    ASSERT_FALSE(decoded) << at;
    EXPECT_EQ(decoded.error().errno_value(), EUCLEAN) << at;
  }
  Bytes shorter(good.begin(), good.end() - 1);
  EXPECT_EQ(decode_protector(made.record.id, shorter).error().errno_value(), EUCLEAN);
  Bytes unprintable = good;
  unprintable.back() = '\n';
  EXPECT_EQ(decode_protector(made.record.id, unprintable).error().errno_value(), EUCLEAN);
  ProtectorRecord long_name = made.record;
  long_name.name = std::string(65, 'a');
  EXPECT_EQ(encode_protector(long_name).error().errno_value(), EINVAL);
  Bytes wrapped(116, 0);
  wrapped[0] = 1;
  EXPECT_TRUE(decode_wrapped_key(made.record.id, wrapped));
  wrapped[5] = 1;
  EXPECT_EQ(decode_wrapped_key(made.record.id, wrapped).error().errno_value(), EUCLEAN);
  EXPECT_EQ(decode_wrapped_key(made.record.id, Bytes(115, 0)).error().errno_value(), EUCLEAN);
}

TEST(ProtectorTest, RecoveryPassphrasesAreRandomAndTypeable) {
  const crypto::SecretBytes a = must(generate_recovery_passphrase());
  const crypto::SecretBytes b = must(generate_recovery_passphrase());
  const std::string text_a(a.span().begin(), a.span().end());
  EXPECT_EQ(text_a.size(), 26u + 5u);
  EXPECT_FALSE(a.equals(b.span()));
  for (size_t i = 0; i < text_a.size(); ++i) {
    if (i % 6 == 5) {
      EXPECT_EQ(text_a[i], '-') << text_a;
    } else {
      EXPECT_NE(std::string("abcdefghjkmnpqrstuvwxyz23456789").find(text_a[i]), std::string::npos)
          << text_a;
    }
  }
  // Typed in upper case with spaces, it hashes the same.
  std::string typed;
  for (char c : text_a) typed += (c == '-') ? ' ' : static_cast<char>(std::toupper(c));
  const crypto::SecretBytes normalized = normalize_recovery_passphrase(text(typed));
  EXPECT_TRUE(normalize_recovery_passphrase(a.span()).equals(normalized.span()));
  EXPECT_EQ(normalized.size(), 26u);
}

TEST(ProtectorTest, ProtectorIdsReadBothCases) {
  const ProtectorId id = must(parse_protector_id("0123456789ABCDEF"));
  EXPECT_EQ(protector_id_text(id), "0123456789abcdef");
  EXPECT_FALSE(parse_protector_id("0123"));
  EXPECT_FALSE(parse_protector_id("0123456789abcdeg"));
}

}  // namespace
}  // namespace ecfs::fscrypt
