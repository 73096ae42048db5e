#include "fscrypt/protector_wrap.h"

#include <cctype>
#include <cerrno>

#include "crypto/aes_gcm.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"

namespace ecfs::fscrypt {
namespace {

constexpr std::string_view kProtectorKeyInfo = "ecfs protector key";
constexpr std::string_view kMasterKeyInfo = "ecfs master key";
// No 0/o, 1/l/i: nothing that reads as another symbol (31 symbols).
constexpr std::string_view kRecoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789";
constexpr size_t kRecoveryLength = 26;

ByteSpan text_span(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// The AES-256-GCM key for one purpose, from a wrapping or protector key.
Result<crypto::Aes256Gcm> wrap_cipher(ByteSpan key, std::string_view info) {
  auto hkdf = crypto::HkdfSha512::extract({}, key);
  if (!hkdf) return std::unexpected(hkdf.error());
  crypto::SecretBytes cipher_key(crypto::Aes256Gcm::kKeySize);
  ECFS_TRY(hkdf->expand({text_span(info)}, cipher_key.mutable_span()));
  return crypto::Aes256Gcm::create(cipher_key.span());
}

Bytes protector_aad(const ProtectorRecord& record) {
  Bytes aad(record.id.begin(), record.id.end());
  aad.push_back(static_cast<uint8_t>(record.kind));
  for (uint32_t value :
       {record.argon2.time_cost, record.argon2.memory_kib, record.argon2.parallelism}) {
    uint8_t le[4];
    store_le32(le, value);
    aad.insert(aad.end(), le, le + 4);
  }
  aad.insert(aad.end(), record.salt.begin(), record.salt.end());
  return aad;
}

Bytes master_key_aad(const ProtectorId& protector, const KeyIdentifier& identifier) {
  Bytes aad(protector.begin(), protector.end());
  aad.insert(aad.end(), identifier.begin(), identifier.end());
  return aad;
}

template <size_t N>
Result<WrappedBytes<N>> seal(ByteSpan key, std::string_view info, ByteSpan aad, ByteSpan secret) {
  if (secret.size() != N) return fail(EINVAL, "wrong size of the secret to wrap");
  auto cipher = wrap_cipher(key, info);
  if (!cipher) return std::unexpected(cipher.error());
  WrappedBytes<N> wrapped;
  ECFS_TRY(crypto::random_bytes(wrapped.nonce));
  ECFS_TRY(cipher->seal(wrapped.nonce, aad, secret, wrapped.ciphertext, wrapped.tag));
  return wrapped;
}

template <size_t N>
Result<crypto::SecretBytes> open(ByteSpan key, std::string_view info, ByteSpan aad,
                                 const WrappedBytes<N>& wrapped) {
  auto cipher = wrap_cipher(key, info);
  if (!cipher) return std::unexpected(cipher.error());
  crypto::SecretBytes out(N);
  if (Status opened =
          cipher->open(wrapped.nonce, aad, wrapped.ciphertext, wrapped.tag, out.mutable_span());
      !opened) {
    if (opened.error().errno_value() == EBADMSG) return fail(EKEYREJECTED, "does not open");
    return std::unexpected(opened.error());
  }
  return out;
}

Status fill_costs(ProtectorRecord& record, const crypto::Argon2Params& costs) {
  if (is_passphrase_kind(record.kind)) {
    ECFS_TRY(crypto::check_argon2_params(costs));
    record.argon2 = costs;
    return crypto::random_bytes(record.salt);
  }
  record.argon2 = {0, 0, 0};
  record.salt = {};
  return ok();
}

}  // namespace

Result<crypto::SecretBytes> protector_wrapping_key(const ProtectorRecord& record, ByteSpan secret) {
  if (is_passphrase_kind(record.kind)) {
    return crypto::argon2id(secret, record.salt, record.argon2, kProtectorKeySize);
  }
  if (secret.size() != kProtectorKeySize) {
    return fail(EINVAL,
                "a key file must hold exactly 32 bytes, not " + std::to_string(secret.size()));
  }
  return crypto::SecretBytes::copy_of(secret);
}

Result<NewProtector> create_protector(ProtectorKind kind, ByteSpan secret,
                                      const crypto::Argon2Params& costs, uint32_t owner_uid,
                                      std::string name, int64_t created_sec) {
  NewProtector made;
  made.record.kind = kind;
  made.record.owner_uid = owner_uid;
  made.record.name = std::move(name);
  made.record.created_sec = created_sec;
  ECFS_TRY(crypto::random_bytes(made.record.id));
  ECFS_TRY(fill_costs(made.record, costs));
  made.protector_key = crypto::SecretBytes(kProtectorKeySize);
  ECFS_TRY(crypto::random_bytes(made.protector_key.mutable_span()));
  auto wrapping = protector_wrapping_key(made.record, secret);
  if (!wrapping) return std::unexpected(wrapping.error());
  auto wrapped = seal<kProtectorKeySize>(wrapping->span(), kProtectorKeyInfo,
                                         protector_aad(made.record), made.protector_key.span());
  if (!wrapped) return std::unexpected(wrapped.error());
  made.record.wrapped_key = *wrapped;
  // What the record says must also encode (name rules and costs).
  if (auto encoded = encode_protector(made.record); !encoded) {
    return std::unexpected(encoded.error());
  }
  return made;
}

Result<crypto::SecretBytes> open_protector(const ProtectorRecord& record, ByteSpan secret) {
  auto wrapping = protector_wrapping_key(record, secret);
  if (!wrapping) return std::unexpected(wrapping.error());
  auto key = open(wrapping->span(), kProtectorKeyInfo, protector_aad(record), record.wrapped_key);
  if (!key && key.error().errno_value() == EKEYREJECTED) {
    return fail(EKEYREJECTED, std::string("wrong ") + protector_kind_name(record.kind) +
                                  " for protector " + protector_id_text(record.id));
  }
  return key;
}

Result<ProtectorRecord> rewrap_protector(const ProtectorRecord& record,
                                         const crypto::SecretBytes& protector_key,
                                         ByteSpan new_secret, const crypto::Argon2Params& costs) {
  ProtectorRecord changed = record;
  ECFS_TRY(fill_costs(changed, costs));
  auto wrapping = protector_wrapping_key(changed, new_secret);
  if (!wrapping) return std::unexpected(wrapping.error());
  auto wrapped = seal<kProtectorKeySize>(wrapping->span(), kProtectorKeyInfo,
                                         protector_aad(changed), protector_key.span());
  if (!wrapped) return std::unexpected(wrapped.error());
  changed.wrapped_key = *wrapped;
  return changed;
}

Result<WrappedKeyRecord> wrap_master_key(const ProtectorId& protector,
                                         const crypto::SecretBytes& protector_key,
                                         const crypto::SecretBytes& master_key) {
  if (master_key.size() != kMasterKeySize) {
    return fail(EINVAL, "only 64-byte master keys are kept by protectors");
  }
  WrappedKeyRecord record;
  record.protector = protector;
  auto identifier = compute_key_identifier(master_key.span());
  if (!identifier) return std::unexpected(identifier.error());
  record.key_identifier = *identifier;
  auto wrapped =
      seal<kMasterKeySize>(protector_key.span(), kMasterKeyInfo,
                           master_key_aad(protector, record.key_identifier), master_key.span());
  if (!wrapped) return std::unexpected(wrapped.error());
  record.wrapped_key = *wrapped;
  return record;
}

Result<crypto::SecretBytes> unwrap_master_key(const WrappedKeyRecord& record,
                                              const crypto::SecretBytes& protector_key) {
  auto key = open(protector_key.span(), kMasterKeyInfo,
                  master_key_aad(record.protector, record.key_identifier), record.wrapped_key);
  if (!key) {
    if (key.error().errno_value() == EKEYREJECTED) {
      return fail(EKEYREJECTED, "the wrapped key does not open with protector " +
                                    protector_id_text(record.protector));
    }
    return std::unexpected(key.error());
  }
  auto identifier = compute_key_identifier(key->span());
  if (!identifier) return std::unexpected(identifier.error());
  if (*identifier != record.key_identifier) {
    return fail(EUCLEAN, "the key wrapped by protector " + protector_id_text(record.protector) +
                             " is not the key it is filed under");
  }
  return key;
}

Result<crypto::SecretBytes> generate_recovery_passphrase() {
  static_assert(kRecoveryAlphabet.size() == 31);
  constexpr size_t kGrouped = kRecoveryLength + (kRecoveryLength - 1) / 5;
  crypto::SecretBytes out(kGrouped);
  size_t symbols = 0;
  size_t at = 0;
  crypto::SecretBytes random(kRecoveryLength);
  while (symbols < kRecoveryLength) {
    ECFS_TRY(crypto::random_bytes(random.mutable_span()));
    for (uint8_t byte : random.span()) {
      // Five random bits; the one value past the alphabet is drawn again,
      // so every symbol is equally likely.
      const uint8_t symbol = byte & 0x1f;
      if (symbol >= kRecoveryAlphabet.size() || symbols == kRecoveryLength) continue;
      if (symbols > 0 && symbols % 5 == 0) out.data()[at++] = '-';
      out.data()[at++] = static_cast<uint8_t>(kRecoveryAlphabet[symbol]);
      ++symbols;
    }
  }
  return out;
}

crypto::SecretBytes normalize_recovery_passphrase(ByteSpan typed) {
  size_t kept = 0;
  for (uint8_t c : typed) kept += (c != '-' && !std::isspace(c)) ? 1 : 0;
  crypto::SecretBytes out(kept);
  size_t at = 0;
  for (uint8_t c : typed) {
    if (c == '-' || std::isspace(c)) continue;
    out.data()[at++] = static_cast<uint8_t>(std::tolower(c));
  }
  return out;
}

}  // namespace ecfs::fscrypt
