// IV (data unit number) generation for fscrypt contents and filenames, as the
// kernel's fscrypt_generate_iv() (fs/crypto/crypto.c) and
// Documentation/filesystems/fscrypt.rst "Contents encryption" define it.
//
// The IV buffer is zeroed to the mode's IV size (16, or 32 for Adiantum and
// HCTR2) and then filled per scheme (union fscrypt_iv: __le64 index; u8
// nonce[16]):
//   default         le64(index)                    per-file keys; per-extent
//                                                  keys with the index counted
//                                                  from the original extent start
//   DIRECT_KEY      le64(index) || nonce[16]       bytes 0-7 and 8-23
//   IV_INO_LBLK_64  le32(index) || le32(inode)     i.e. le64(ino << 32 | index)
//   IV_INO_LBLK_32  le32((u32)(hashed_ino + index)), wrapping mod 2^32
// Filenames and symlink targets use index 0 with the same scheme.
//
// The little-endian 64-bit words of the IV are also the blk-crypto data unit
// number (inline_crypt.c: dun[0] = index, ...), so the block layer can read
// a DUN straight from these bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::fscrypt {

enum class IvScheme : uint8_t {
  kDefault,
  kDirectKey,
  kInoLblk64,
  kInoLblk32,
};

// The scheme a policy's flags byte selects. Mirrors fscrypt_generate_iv(),
// which tests IV_INO_LBLK_64 (0x08), then IV_INO_LBLK_32 (0x10), then
// DIRECT_KEY (0x04). Policy validation (which rejects combinations of these
// flags with EINVAL) is not done here; the padding bits are ignored.
IvScheme iv_scheme_from_policy_flags(uint8_t flags);

// Everything besides the data unit index that goes into an IV. Plain data;
// holds no key material (nonces and inode numbers are not secret in fscrypt).
struct IvParams {
  static constexpr size_t kNonceSize = 16;           // FSCRYPT_FILE_NONCE_SIZE
  static constexpr size_t kMaxIvSize = 32;           // FSCRYPT_MAX_IV_SIZE
  static constexpr size_t kMinDirectKeyIvSize = 24;  // 8-byte index + nonce

  IvScheme scheme = IvScheme::kDefault;
  // kDirectKey: the nonce from the inode's encryption context (the file's, or
  // the directory's / symlink's for names).
  std::array<uint8_t, kNonceSize> nonce{};
  // kInoLblk64: the inode number; must fit in 32 bits (the kernel requires
  // 32-bit inode numbers for this flag, policy.c supported_iv_ino_lblk_policy).
  uint64_t inode_number = 0;
  // kInoLblk32: the hashed inode number, (u32)SipHash-2-4(inode hash key,
  // le64 ino) (keysetup.c fscrypt_hash_inode_number); computed by the caller.
  uint32_t hashed_inode_number = 0;

  static IvParams default_scheme() { return {}; }
  static IvParams direct_key(const std::array<uint8_t, kNonceSize>& nonce);
  static IvParams ino_lblk_64(uint64_t inode_number);
  static IvParams ino_lblk_32(uint32_t hashed_inode_number);
};

// Checks that `params` can produce IVs of `iv_size` bytes for data unit
// indices first_index .. first_index + count - 1 (count >= 1):
//   EINVAL if iv_size is not 16 or 32; DIRECT_KEY with an IV shorter than 24
//   bytes (the kernel allows DIRECT_KEY only for modes with ivsize >= 24,
//   policy.c supported_direct_key_modes); IV_INO_LBLK_64 with an inode number
//   above 2^32 - 1; an IV_INO_LBLK_* index above 2^32 - 1 (the kernel only
//   WARNs there, but such a file cannot exist: these policies need 32-bit
//   logical block numbers, so the filesystem must stop the file growing with
//   EFBIG before this point); an index range that wraps 2^64.
Status check_iv_params(const IvParams& params, size_t iv_size, uint64_t first_index,
                       uint64_t count = 1);

// Writes the IV for data unit `index` into `iv` (all of it: bytes the scheme
// does not use are zeroed). REQUIRES: check_iv_params(params, iv.size(),
// index) succeeded. Cheap and allocation-free, for the contents hot path.
void write_iv(const IvParams& params, uint64_t index, MutableByteSpan iv);

// An IV held by value.
struct Iv {
  std::array<uint8_t, IvParams::kMaxIvSize> bytes{};
  size_t size = 0;
  ByteSpan span() const { return {bytes.data(), size}; }
};

// Checked form: check_iv_params then write_iv.
Result<Iv> generate_iv(const IvParams& params, uint64_t index, size_t iv_size);

}  // namespace ecfs::fscrypt
