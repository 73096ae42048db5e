#include "fscrypt/fname.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "crypto/secret.h"

namespace ecfs::fscrypt {
namespace {

// PATH_MAX: fs/readdir.c rejects names this long or longer.
constexpr size_t kPathMax = 4096;

bool valid_padding(size_t padding) {
  return padding == 4 || padding == 8 || padding == 16 || padding == 32;
}

size_t round_up(size_t value, size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace

Result<size_t> encrypted_name_size(size_t name_length, size_t padding, size_t max_length) {
  if (!valid_padding(padding)) {
    return fail(EINVAL, "filename padding must be 4, 8, 16 or 32");
  }
  if (max_length < kFnameMinMessageLength) {
    return fail(EINVAL, "maximum encrypted name length is below 16 bytes");
  }
  if (name_length > max_length) {
    return fail(ENAMETOOLONG, "name too long to encrypt");
  }
  const size_t padded = round_up(std::max(name_length, kFnameMinMessageLength), padding);
  return std::min(padded, max_length);
}

Result<Bytes> encrypt_name(const crypto::Cipher& cipher, const IvParams& iv_params,
                           std::string_view name, size_t padding, size_t max_length) {
  if (name.empty()) {
    return fail(ENOENT, "empty name");
  }
  if (name.find('\0') != std::string_view::npos) {
    return fail(EINVAL, "name contains a NUL byte");
  }
  auto size = encrypted_name_size(name.size(), padding, max_length);
  if (!size) return std::unexpected(std::move(size).error());
  auto iv = generate_iv(iv_params, 0, cipher.iv_size());
  if (!iv) return std::unexpected(std::move(iv).error());

  // NUL-pad in the output buffer and encrypt in place, as
  // fscrypt_fname_encrypt() does; the plaintext copy is then overwritten.
  Bytes out(*size, 0);
  std::memcpy(out.data(), name.data(), name.size());
  if (auto status = cipher.encrypt(iv->span(), out, out); !status) {
    crypto::secure_zero(out);
    return std::unexpected(std::move(status).error());
  }
  return out;
}

Result<std::string> decrypt_name(const crypto::Cipher& cipher, const IvParams& iv_params,
                                 ByteSpan ciphertext) {
  if (is_dot_or_dotdot(ciphertext)) {
    return std::string(reinterpret_cast<const char*>(ciphertext.data()), ciphertext.size());
  }
  if (ciphertext.size() < kFnameMinMessageLength) {
    return fail(EUCLEAN, "encrypted name shorter than 16 bytes");
  }
  auto iv = generate_iv(iv_params, 0, cipher.iv_size());
  if (!iv) return std::unexpected(std::move(iv).error());

  std::string plaintext(ciphertext.size(), '\0');
  const MutableByteSpan plain_bytes(reinterpret_cast<uint8_t*>(plaintext.data()), plaintext.size());
  if (auto status = cipher.decrypt(iv->span(), ciphertext, plain_bytes); !status) {
    crypto::secure_zero(plain_bytes);
    return std::unexpected(std::move(status).error());
  }
  // strnlen(): the name ends at its first NUL (padding, or garbage from a
  // corrupt entry); the bytes after it are wiped before shrinking.
  const size_t length = plaintext.find('\0');
  if (length != std::string::npos) {
    crypto::secure_zero(plain_bytes.subspan(length));
    plaintext.resize(length);
  }
  return plaintext;
}

Status check_dirent_name(std::string_view name) {
  if (name.empty() || name.size() >= kPathMax || name.find('/') != std::string_view::npos) {
    return fail(EIO, "directory entry name is empty, too long or contains '/'");
  }
  return ok();
}

bool is_dot_or_dotdot(ByteSpan name) {
  if (name.size() == 1) return name[0] == '.';
  if (name.size() == 2) return name[0] == '.' && name[1] == '.';
  return false;
}

}  // namespace ecfs::fscrypt
