// Protectors: how a master key ("policy key": 64 random bytes ecfs makes) is
// kept in the image without ever being stored in the clear, after
// google/fscrypt's model. A protector is a secret the user holds (a
// passphrase, a 32-byte key file, or the recovery passphrase ecfs prints
// once) that unwraps the protector's own random 32-byte key; that key
// unwraps each master key the protector protects. So a passphrase change
// rewraps one record, several protectors may protect one master key, and one
// protector may protect several master keys.
//
// Two records, stored as items of the protector tree (docs/FORMAT.md
// "Protectors"): ProtectorRecord, and WrappedKeyRecord for each (protector,
// master key) pair. Both are public: without the user's secret they reveal
// nothing but the costs, the salt, the owner, the name the user gave and
// which key identifiers a protector protects. Wrapping is authenticated
// (protector_wrap.h), so a wrong passphrase is one clear error, never a
// wrong key.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/argon2.h"
#include "fscrypt/key_identifier.h"

namespace ecfs::fscrypt {

inline constexpr size_t kProtectorIdSize = 8;
using ProtectorId = std::array<uint8_t, kProtectorIdSize>;
// "0123456789abcdef": 16 lower-case hex digits (as google/fscrypt's
// protector descriptors), and back (either case; EINVAL otherwise).
std::string protector_id_text(const ProtectorId& id);
Result<ProtectorId> parse_protector_id(std::string_view text);

enum class ProtectorKind : uint8_t {
  kPassphrase = 1,          // Argon2id of a passphrase the user chose
  kKeyFile = 2,             // 32 raw bytes from a file (google/fscrypt raw_key)
  kRecoveryPassphrase = 3,  // Argon2id of a passphrase ecfs generated
};
const char* protector_kind_name(ProtectorKind kind);  // "passphrase", "key file", ...
bool is_passphrase_kind(ProtectorKind kind);

inline constexpr size_t kProtectorKeySize = 32;
inline constexpr size_t kWrapNonceSize = 12;
inline constexpr size_t kWrapTagSize = 16;
inline constexpr size_t kArgon2SaltSize = 16;
inline constexpr size_t kMaxProtectorNameSize = 64;
inline constexpr size_t kMasterKeySize = 64;  // what ecfs makes (FSCRYPT_MAX_KEY_SIZE)

// A secret wrapped with AES-256-GCM: nonce | ciphertext | tag.
template <size_t N>
struct WrappedBytes {
  std::array<uint8_t, kWrapNonceSize> nonce{};
  std::array<uint8_t, N> ciphertext{};
  std::array<uint8_t, kWrapTagSize> tag{};
  friend bool operator==(const WrappedBytes&, const WrappedBytes&) = default;
};

// The id is the record's key in the protector tree, not part of its
// encoding; the same holds for the protector of a WrappedKeyRecord.
struct ProtectorRecord {
  ProtectorId id{};
  ProtectorKind kind = ProtectorKind::kPassphrase;
  uint32_t owner_uid = 0;  // who may change or remove it (and root)
  // Argon2id costs and salt for the passphrase kinds; zero for a key file.
  crypto::Argon2Params argon2{};
  std::array<uint8_t, kArgon2SaltSize> salt{};
  int64_t created_sec = 0;
  std::string name;                             // the user's label, 0..64 printable bytes
  WrappedBytes<kProtectorKeySize> wrapped_key;  // the protector key
  friend bool operator==(const ProtectorRecord&, const ProtectorRecord&) = default;
};

// One master key wrapped with one protector's key.
struct WrappedKeyRecord {
  ProtectorId protector{};
  KeyIdentifier key_identifier{};
  WrappedBytes<kMasterKeySize> wrapped_key;
  friend bool operator==(const WrappedKeyRecord&, const WrappedKeyRecord&) = default;
};

// Encodings (docs/FORMAT.md "Protectors"). Encoding refuses (EINVAL) what
// decoding would reject; decoding gives EUCLEAN for a malformed record:
// wrong size, unknown version or kind, costs outside the limits of
// crypto/argon2.h, costs on a key-file protector, an unprintable name.
Result<Bytes> encode_protector(const ProtectorRecord& record);
Result<ProtectorRecord> decode_protector(const ProtectorId& id, ByteSpan data);
Bytes encode_wrapped_key(const WrappedKeyRecord& record);
Result<WrappedKeyRecord> decode_wrapped_key(const ProtectorId& protector, ByteSpan data);

}  // namespace ecfs::fscrypt
