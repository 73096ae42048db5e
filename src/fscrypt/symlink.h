// Encrypted symlink targets (fs/crypto/hooks.c). On disk the target is stored
// as struct fscrypt_symlink_data, packed:
//   __le16 len; u8 ciphertext[len]; u8 NUL        (2 + len + 1 bytes)
// where the ciphertext is the target encrypted as a filename (fname.h) with
// the *symlink inode's* key and IV parameters, index 0, and the policy's
// padding. The NUL terminator is counted but meaningless; the length prefix
// is redundant with i_size and costs 2 bytes of the maximum target length.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/cipher.h"
#include "fscrypt/iv.h"

namespace ecfs::fscrypt {

// sizeof(struct fscrypt_symlink_data) (the __le16 length) plus the NUL.
inline constexpr size_t kSymlinkRecordOverhead = 3;

// Size of the record for a target of `target_length` bytes
// (fscrypt_prepare_symlink): 3 + encrypted_name_size(target_length, padding,
// max_record_size - 3). `max_record_size` is the space the filesystem has for
// the record (ext4 passes the block size), so the longest target is
// max_record_size - 3, two bytes less than an unencrypted target
// (max_record_size - 1). ENAMETOOLONG if the target does not fit; EINVAL for a
// bad padding or max_record_size < 3 + 16.
Result<size_t> encrypted_symlink_size(size_t target_length, size_t padding, size_t max_record_size);

// Builds the record for `target` (fscrypt_prepare_symlink +
// __fscrypt_encrypt_symlink). ENOENT for an empty target (the VFS rejects
// symlink("") with ENOENT), EINVAL for a target containing NUL, ENAMETOOLONG
// if too long, EINVAL for a bad padding or size.
Result<Bytes> encrypt_symlink(const crypto::Cipher& cipher, const IvParams& iv_params,
                              std::string_view target, size_t padding, size_t max_record_size);

// Reads a record of `record.size()` bytes (the symlink's i_size) with the key,
// validating it as fscrypt_get_symlink does: EUCLEAN if the record is shorter
// than 3 bytes, len is 0, 2 + len exceeds the record (the trailing NUL is not
// required), the ciphertext is shorter than 16 bytes, or the plaintext starts
// with NUL. A ciphertext of exactly "." or ".." passes through unencrypted
// (a kernel quirk of fscrypt_fname_disk_to_usr).
Result<std::string> decrypt_symlink(const crypto::Cipher& cipher, const IvParams& iv_params,
                                    ByteSpan record);

// The target the kernel shows without the key: the record validated as above
// and its ciphertext encoded as a no-key name with hash 0
// (fscrypt_get_symlink -> fscrypt_fname_disk_to_usr(inode, 0, 0, ...)).
Result<std::string> nokey_symlink_target(ByteSpan record);

}  // namespace ecfs::fscrypt
