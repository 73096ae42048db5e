#include "fscrypt/protector.h"

#include <algorithm>
#include <cerrno>

namespace ecfs::fscrypt {
namespace {

constexpr uint8_t kRecordVersion = 1;
constexpr size_t kProtectorHeadSize = 108;  // everything before the name
constexpr size_t kWrappedKeySize = 116;

template <size_t N>
void put_wrapped(uint8_t* p, const WrappedBytes<N>& wrapped) {
  std::copy(wrapped.nonce.begin(), wrapped.nonce.end(), p);
  std::copy(wrapped.ciphertext.begin(), wrapped.ciphertext.end(), p + kWrapNonceSize);
  std::copy(wrapped.tag.begin(), wrapped.tag.end(), p + kWrapNonceSize + N);
}

template <size_t N>
WrappedBytes<N> get_wrapped(const uint8_t* p) {
  WrappedBytes<N> wrapped;
  std::copy(p, p + kWrapNonceSize, wrapped.nonce.begin());
  std::copy(p + kWrapNonceSize, p + kWrapNonceSize + N, wrapped.ciphertext.begin());
  std::copy(p + kWrapNonceSize + N, p + kWrapNonceSize + N + kWrapTagSize, wrapped.tag.begin());
  return wrapped;
}

bool printable(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

bool known_kind(uint8_t kind) { return kind >= 1 && kind <= 3; }

// What makes a record's fields acceptable, shared by both directions.
std::string record_problem(const ProtectorRecord& record) {
  if (!known_kind(static_cast<uint8_t>(record.kind))) {
    return "unknown protector kind " + std::to_string(static_cast<unsigned>(record.kind));
  }
  if (record.name.size() > kMaxProtectorNameSize || !printable(record.name)) {
    return "a protector name must be at most 64 printable ASCII bytes";
  }
  if (is_passphrase_kind(record.kind)) {
    if (Status costs = crypto::check_argon2_params(record.argon2); !costs) {
      return costs.error().message();
    }
  } else if (record.argon2 != crypto::Argon2Params{0, 0, 0} ||
             record.salt != decltype(record.salt){}) {
    return "a key-file protector with passphrase costs";
  }
  return {};
}

}  // namespace

std::string protector_id_text(const ProtectorId& id) { return to_hex(id); }

Result<ProtectorId> parse_protector_id(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  auto bytes = from_hex(lower);
  if (!bytes || bytes->size() != kProtectorIdSize) {
    return fail(EINVAL, "'" + std::string(text) + "' is not a protector id (16 hex digits)");
  }
  ProtectorId id;
  std::copy(bytes->begin(), bytes->end(), id.begin());
  return id;
}

const char* protector_kind_name(ProtectorKind kind) {
  switch (kind) {
    case ProtectorKind::kPassphrase:
      return "passphrase";
    case ProtectorKind::kKeyFile:
      return "key file";
    case ProtectorKind::kRecoveryPassphrase:
      return "recovery passphrase";
  }
  return "unknown";
}

bool is_passphrase_kind(ProtectorKind kind) {
  return kind == ProtectorKind::kPassphrase || kind == ProtectorKind::kRecoveryPassphrase;
}

Result<Bytes> encode_protector(const ProtectorRecord& record) {
  if (const std::string problem = record_problem(record); !problem.empty()) {
    return fail(EINVAL, problem);
  }
  Bytes out(kProtectorHeadSize + record.name.size(), 0);
  out[0] = kRecordVersion;
  out[1] = static_cast<uint8_t>(record.kind);
  out[2] = static_cast<uint8_t>(record.name.size());
  store_le32(&out[4], record.owner_uid);
  store_le32(&out[8], record.argon2.time_cost);
  store_le32(&out[12], record.argon2.memory_kib);
  store_le32(&out[16], record.argon2.parallelism);
  std::copy(record.salt.begin(), record.salt.end(), out.begin() + 24);
  store_le64(&out[40], static_cast<uint64_t>(record.created_sec));
  put_wrapped(&out[48], record.wrapped_key);
  std::copy(record.name.begin(), record.name.end(), out.begin() + kProtectorHeadSize);
  return out;
}

Result<ProtectorRecord> decode_protector(const ProtectorId& id, ByteSpan data) {
  const auto bad = [&](const std::string& why) {
    return fail(EUCLEAN, "protector " + protector_id_text(id) + ": " + why);
  };
  if (data.size() < kProtectorHeadSize || data.size() != kProtectorHeadSize + data[2]) {
    return bad("record of " + std::to_string(data.size()) + " bytes");
  }
  if (data[0] != kRecordVersion) return bad("unknown record version " + std::to_string(data[0]));
  if (data[3] != 0 || load_le32(&data[20]) != 0) return bad("reserved bytes are not zero");
  if (!known_kind(data[1])) return bad("unknown kind " + std::to_string(data[1]));
  ProtectorRecord record;
  record.id = id;
  record.kind = static_cast<ProtectorKind>(data[1]);
  record.owner_uid = load_le32(&data[4]);
  record.argon2 = {load_le32(&data[8]), load_le32(&data[12]), load_le32(&data[16])};
  std::copy(data.begin() + 24, data.begin() + 40, record.salt.begin());
  record.created_sec = static_cast<int64_t>(load_le64(&data[40]));
  record.wrapped_key = get_wrapped<kProtectorKeySize>(&data[48]);
  record.name.assign(data.begin() + kProtectorHeadSize, data.end());
  if (const std::string problem = record_problem(record); !problem.empty()) return bad(problem);
  return record;
}

Bytes encode_wrapped_key(const WrappedKeyRecord& record) {
  Bytes out(kWrappedKeySize, 0);
  out[0] = kRecordVersion;
  std::copy(record.key_identifier.begin(), record.key_identifier.end(), out.begin() + 8);
  put_wrapped(&out[24], record.wrapped_key);
  return out;
}

Result<WrappedKeyRecord> decode_wrapped_key(const ProtectorId& protector, ByteSpan data) {
  const auto bad = [&](const std::string& why) {
    return fail(EUCLEAN, "wrapped key of protector " + protector_id_text(protector) + ": " + why);
  };
  if (data.size() != kWrappedKeySize)
    return bad("record of " + std::to_string(data.size()) + " bytes");
  if (data[0] != kRecordVersion) return bad("unknown record version " + std::to_string(data[0]));
  if (std::any_of(data.begin() + 1, data.begin() + 8, [](uint8_t b) { return b != 0; })) {
    return bad("reserved bytes are not zero");
  }
  WrappedKeyRecord record;
  record.protector = protector;
  std::copy(data.begin() + 8, data.begin() + 24, record.key_identifier.begin());
  record.wrapped_key = get_wrapped<kMasterKeySize>(&data[24]);
  return record;
}

}  // namespace ecfs::fscrypt
