// The cryptography of protectors (protector.h): from the user's secret to
// the protector key, and from the protector key to each master key.
//
//   wrapping key  = Argon2id(passphrase, salt, costs) (32 bytes), or the 32
//                   bytes of a key file
//   protector key = AES-256-GCM-open(HKDF-SHA512(wrapping key, info
//                   "ecfs protector key"), record's nonce, aad)
//   master key    = AES-256-GCM-open(HKDF-SHA512(protector key, info
//                   "ecfs master key"), nonce, aad)
//
// The additional data binds each wrapped secret to the record around it
// (protector id, kind, costs and salt; protector id and key identifier), so
// a record moved or edited fails to open. An unwrapped master key must also
// hash to the identifier it is filed under (fscrypt's key identifier), so a
// wrong key can never come out. docs/FORMAT.md "Protectors" has the bytes.
#pragma once

#include <string>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/secret.h"
#include "fscrypt/protector.h"

namespace ecfs::fscrypt {

// The key a protector's secret gives: Argon2id for the passphrase kinds (the
// record's costs and salt), the key file's 32 bytes for kKeyFile (EINVAL
// for any other size).
Result<crypto::SecretBytes> protector_wrapping_key(const ProtectorRecord& record, ByteSpan secret);

// A new protector of `kind` (id, salt, protector key and nonce random) for
// `secret`, with the given costs (ignored for a key file). The record is
// complete; the protector key is returned beside it to wrap master keys.
struct NewProtector {
  ProtectorRecord record;
  crypto::SecretBytes protector_key;
};
Result<NewProtector> create_protector(ProtectorKind kind, ByteSpan secret,
                                      const crypto::Argon2Params& costs, uint32_t owner_uid,
                                      std::string name, int64_t created_sec);

// The protector key, from the user's secret. EKEYREJECTED ("wrong
// passphrase" / "wrong key file") when it does not open the record.
Result<crypto::SecretBytes> open_protector(const ProtectorRecord& record, ByteSpan secret);

// The record with the same protector key under a new secret (new salt and
// nonce; `costs` for the passphrase kinds): a passphrase change.
Result<ProtectorRecord> rewrap_protector(const ProtectorRecord& record,
                                         const crypto::SecretBytes& protector_key,
                                         ByteSpan new_secret, const crypto::Argon2Params& costs);

// `master_key` (16..64 bytes; ecfs makes 64) wrapped for `protector`. Keys
// shorter than 64 bytes are not wrapped: EINVAL.
Result<WrappedKeyRecord> wrap_master_key(const ProtectorId& protector,
                                         const crypto::SecretBytes& protector_key,
                                         const crypto::SecretBytes& master_key);
// The master key. EKEYREJECTED when the record does not open with this
// protector key; EUCLEAN when it opens but the key does not match its
// identifier (a record filed under the wrong identifier).
Result<crypto::SecretBytes> unwrap_master_key(const WrappedKeyRecord& record,
                                              const crypto::SecretBytes& protector_key);

// A recovery passphrase: 26 random letters and digits from a 31-symbol
// alphabet without look-alikes (128 bits), in groups of five with dashes.
// The text, in secure memory.
Result<crypto::SecretBytes> generate_recovery_passphrase();
// How a recovery passphrase is hashed: lower case, without spaces and
// dashes, so that it may be typed in any grouping or case.
crypto::SecretBytes normalize_recovery_passphrase(ByteSpan typed);

}  // namespace ecfs::fscrypt
