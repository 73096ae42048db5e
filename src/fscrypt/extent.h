// Per-extent encryption contexts, as in the newest btrfs fscrypt series
// (Josef Bacik v5 2024, Daniel Vacek v7 2026; fscrypt-format.md §2.2, §2.4).
// Not upstream. Each data extent carries its own context with a random nonce;
// its key is derived from the inode's master key and that nonce, and its data
// units are numbered from the start of the extent, so the ciphertext stays
// valid wherever the extent is shared (reflink, snapshot) or moved.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/cipher.h"
#include "crypto/secret.h"
#include "fscrypt/hkdf.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/master_key_secret.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"

namespace ecfs::fscrypt {

// FSCRYPT_EXTENT_CONTEXT_V1 (the series names it V1 although its docs say
// "V2"): the first byte of every stored extent context, so fixed.
inline constexpr uint8_t kExtentContextV1 = 1;
// sizeof(struct fscrypt_extent_context): version | encryption_mode |
// master_key_identifier[16] | nonce[16], no padding.
inline constexpr size_t kExtentContextSize = 34;
// FSCRYPT_EXTENT_NONCE_SIZE (asked for by Eric Biggers on v6).
inline constexpr size_t kExtentNonceSize = 16;

// A parsed extent context. A value type.
struct ExtentContext {
  uint8_t contents_mode = kModeAes256Xts;
  KeyIdentifier master_key_identifier{};
  Nonce nonce{};
  friend bool operator==(const ExtentContext&, const ExtentContext&) = default;
};

// The 34-byte on-disk form.
std::array<uint8_t, kExtentContextSize> serialize_extent_context(const ExtentContext& context);
// Reads a stored extent context. As the series' `fscrypt_load_extent_info`,
// EINVAL for fewer than 34 bytes or a version other than 1; bytes past the
// 34th are ignored (the series reads sizeof(ctx) from a buffer that may be
// longer, up to BTRFS_MAX_EXTENT_CTX_SIZE = 40).
Result<ExtentContext> parse_extent_context(ByteSpan bytes);

// Whether an inode with `policy` may use extent encryption: only v2 policies
// without DIRECT_KEY, IV_INO_LBLK_64 or IV_INO_LBLK_32 (the series'
// `has_per_extent_encryption` checks; fscrypt-format.md §2.5). All v2 mode
// pairs and padding flags are fine. EINVAL with the reason otherwise.
Status check_extent_encryption_allowed(const Policy& inode_policy);

// `fscrypt_context_for_new_extent`: the inode's contents mode and master key
// identifier with a fresh random nonce. EINVAL as
// check_extent_encryption_allowed; EIO if the CSPRNG fails.
Result<ExtentContext> new_extent_context(const Policy& inode_policy);
// The same with a given nonce (tests, tools).
Result<ExtentContext> make_extent_context(const Policy& inode_policy, const Nonce& nonce);

// parse_extent_context, then the series' checks against the inode: its
// policy must allow extent encryption and the extent's mode and master key
// identifier must equal the inode policy's. EINVAL otherwise.
Result<ExtentContext> load_extent_context(ByteSpan bytes, const Policy& inode_policy);

// The per-extent key: HKDF-Expand(master key, `hkdf_context`
// (default kPerExtentEncKeyContext = 9), info = extent nonce,
// length = key size of the extent's mode). EINVAL for an unknown mode.
Result<crypto::SecretBytes> derive_extent_key(const FscryptHkdf& hkdf, const ExtentContext& context,
                                              HkdfContext hkdf_context = kPerExtentEncKeyContext);

// An extent's key (the key parts of the series' fscrypt_extent_info).
// Move-only; holds key material.
struct ExtentKey {
  const ModeInfo* mode = nullptr;
  crypto::SecretBytes raw_key;
  crypto::CipherPtr cipher;
};

// derive_extent_key + prepare_key, after checking the master key size as for
// a v2 file (ENOKEY if shorter than the mode's security strength).
Result<ExtentKey> setup_extent_key(const MasterKeySecret& master_key, const ExtentContext& context,
                                   HkdfContext hkdf_context = kPerExtentEncKeyContext);

// The data unit number (DUN) of the data unit at `offset_in_extent` bytes from
// the start of the ORIGINAL on-disk extent: offset >> log2_data_unit_size
// (v7 `dun[0] = pos >> data_unit_size_bits`; btrfs passes
// file_offset - em->orig_start). A partial reference or a split extent keeps
// the original numbering, because the offset is always measured from the
// original start. EINVAL if the offset is not a multiple of the data unit size.
Result<uint64_t> extent_data_unit_number(uint64_t offset_in_extent, unsigned log2_data_unit_size);

}  // namespace ecfs::fscrypt
