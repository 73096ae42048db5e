#include "fscrypt/symlink.h"

#include <cstring>

#include "fscrypt/fname.h"
#include "fscrypt/nokey_name.h"

namespace ecfs::fscrypt {
namespace {

// sizeof(struct fscrypt_symlink_data): the __le16 ciphertext length.
constexpr size_t kLengthFieldSize = 2;

// The ciphertext inside a record, validated as fscrypt_get_symlink() does
// before it decrypts or encodes.
Result<ByteSpan> record_ciphertext(ByteSpan record) {
  if (record.size() < kLengthFieldSize + 1) {
    return fail(EUCLEAN, "encrypted symlink record too short");
  }
  const size_t length = size_t{record[0]} | (size_t{record[1]} << 8);
  if (length == 0) {
    return fail(EUCLEAN, "encrypted symlink has an empty ciphertext");
  }
  // The kernel checks len + 2 against the record size, not len + 3: the NUL
  // after the ciphertext may be missing.
  if (length + kLengthFieldSize > record.size()) {
    return fail(EUCLEAN, "encrypted symlink length exceeds its record");
  }
  return record.subspan(kLengthFieldSize, length);
}

}  // namespace

Result<size_t> encrypted_symlink_size(size_t target_length, size_t padding,
                                      size_t max_record_size) {
  if (max_record_size < kSymlinkRecordOverhead + kFnameMinMessageLength) {
    return fail(EINVAL, "symlink record space below 19 bytes");
  }
  auto ciphertext_size =
      encrypted_name_size(target_length, padding, max_record_size - kSymlinkRecordOverhead);
  if (!ciphertext_size) return std::unexpected(std::move(ciphertext_size).error());
  return *ciphertext_size + kSymlinkRecordOverhead;
}

Result<Bytes> encrypt_symlink(const crypto::Cipher& cipher, const IvParams& iv_params,
                              std::string_view target, size_t padding, size_t max_record_size) {
  auto record_size = encrypted_symlink_size(target.size(), padding, max_record_size);
  if (!record_size) return std::unexpected(std::move(record_size).error());
  // The __le16 length field caps the ciphertext at 65535 bytes; block sizes
  // up to 64 KiB stay below it, larger record spaces could not.
  if (*record_size - kSymlinkRecordOverhead > 0xffff) {
    return fail(ENAMETOOLONG, "encrypted symlink target exceeds the 16-bit length field");
  }
  auto ciphertext =
      encrypt_name(cipher, iv_params, target, padding, max_record_size - kSymlinkRecordOverhead);
  if (!ciphertext) return std::unexpected(std::move(ciphertext).error());
  Bytes record(kLengthFieldSize + ciphertext->size() + 1, 0);
  record[0] = static_cast<uint8_t>(ciphertext->size());
  record[1] = static_cast<uint8_t>(ciphertext->size() >> 8);
  std::memcpy(record.data() + kLengthFieldSize, ciphertext->data(), ciphertext->size());
  // record.back() stays 0: the counted but meaningless terminator.
  return record;
}

Result<std::string> decrypt_symlink(const crypto::Cipher& cipher, const IvParams& iv_params,
                                    ByteSpan record) {
  auto ciphertext = record_ciphertext(record);
  if (!ciphertext) return std::unexpected(std::move(ciphertext).error());
  auto target = decrypt_name(cipher, iv_params, *ciphertext);
  if (!target) return std::unexpected(std::move(target).error());
  if (target->empty()) {
    return fail(EUCLEAN, "encrypted symlink decrypts to an empty target");
  }
  return target;
}

Result<std::string> nokey_symlink_target(ByteSpan record) {
  auto ciphertext = record_ciphertext(record);
  if (!ciphertext) return std::unexpected(std::move(ciphertext).error());
  return encode_nokey_name(*ciphertext, 0, 0);
}

}  // namespace ecfs::fscrypt
