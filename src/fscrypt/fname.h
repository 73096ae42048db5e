// Filename encryption, as the kernel's fs/crypto/fname.c: a name is NUL-padded
// to a multiple of the policy's padding (at least 16 bytes, at most the
// maximum length) and encrypted as one message with the filenames cipher and
// the IV of index 0 (plus the nonce / inode number of DIRECT_KEY and
// IV_INO_LBLK_* policies, taken from the directory, see iv.h).
//
// "." and "..": the kernel never encrypts them (fscrypt_setup_filename passes
// them through). encrypt_name() does not special-case them because symlink
// targets "." and ".." *are* encrypted; the fs layer resolves "." and ".."
// itself and never stores or looks them up as encrypted entries.
// decrypt_name() passes a stored "." or ".." through, as
// fscrypt_fname_disk_to_usr() does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/cipher.h"
#include "fscrypt/iv.h"

namespace ecfs::fscrypt {

// FSCRYPT_FNAME_MIN_MSG_LEN: names shorter than this are padded up to it, and
// stored ciphertexts shorter than this are corrupt.
inline constexpr size_t kFnameMinMessageLength = 16;
// NAME_MAX: the longest name, plaintext or ciphertext, in a directory entry.
inline constexpr size_t kFnameMaxNameLength = 255;

// Ciphertext size of a name of `name_length` bytes:
// min(round_up(max(name_length, 16), padding), max_length)
// (__fscrypt_fname_encrypted_size). ENAMETOOLONG if name_length > max_length;
// EINVAL if padding is not 4, 8, 16 or 32 or max_length < 16.
Result<size_t> encrypted_name_size(size_t name_length, size_t padding,
                                   size_t max_length = kFnameMaxNameLength);

// Encrypts `name` (fscrypt_fname_encrypt). Errors: ENOENT for an empty name
// (the VFS answers an empty path component with ENOENT before fscrypt sees
// it); EINVAL for a name containing NUL (it could not be told from padding on
// decryption); ENAMETOOLONG if longer than max_length; EINVAL for a bad
// padding, or from the cipher. '/' is not rejected here: symlink targets
// contain it, and directory-entry names are checked by the fs layer.
Result<Bytes> encrypt_name(const crypto::Cipher& cipher, const IvParams& iv_params,
                           std::string_view name, size_t padding,
                           size_t max_length = kFnameMaxNameLength);

// Decrypts a stored name with the key (fscrypt_fname_disk_to_usr, key
// present): "." and ".." are returned as they are; a ciphertext shorter than
// 16 bytes is EUCLEAN; otherwise the plaintext up to its first NUL (strnlen)
// is returned. Like the kernel, this does not judge the result: it may be
// empty or contain '/'; see check_dirent_name() for what readdir does then.
Result<std::string> decrypt_name(const crypto::Cipher& cipher, const IvParams& iv_params,
                                 ByteSpan ciphertext);

// The kernel's check on every name readdir returns (fs/readdir.c
// verify_dirent_name; FUSE's fuse_parse_dirfile does the same): EIO if the
// name is empty, 4096 bytes or longer, or contains '/'. A corrupt or
// wrongly-keyed encrypted entry typically fails here.
Status check_dirent_name(std::string_view name);

// True for exactly "." and ".." (fscrypt_is_dot_dotdot).
bool is_dot_or_dotdot(ByteSpan name);
inline bool is_dot_or_dotdot(std::string_view name) { return is_dot_or_dotdot(as_bytes(name)); }

}  // namespace ecfs::fscrypt
