// No-key names: how an encrypted directory entry is presented, and found
// again, without the key (fs/crypto/fname.c, struct fscrypt_nokey_name,
// fscrypt_fname_disk_to_usr, fscrypt_setup_filename, fscrypt_match_name).
//
// The presented name is the base64url (no '=') encoding of
//   u32 dirhash[2] (host order, little-endian here; zeros if none) ||
//   ciphertext                                   if it is <= 149 bytes, or
//   ciphertext[0..149) || SHA-256(ciphertext[149..))   otherwise (189 bytes,
//                                                 252 characters <= NAME_MAX).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::fscrypt {

// Encodes stored ciphertext name `ciphertext` with its directory hashes
// (fscrypt_fname_disk_to_usr without the key). A stored "." or ".." is
// returned as it is; a ciphertext shorter than 16 bytes is EUCLEAN.
Result<std::string> encode_nokey_name(ByteSpan ciphertext, uint32_t hash = 0,
                                      uint32_t minor_hash = 0);

// A no-key name a user passed in (e.g. to lookup or unlink), decoded.
// Immutable value; safe to share between threads.
class NokeyName {
 public:
  static constexpr size_t kDirhashSize = 8;             // u32 dirhash[2]
  static constexpr size_t kCiphertextPrefixSize = 149;  // u8 bytes[149]
  static constexpr size_t kDigestSize = 32;             // u8 sha256[32]
  // Largest decoded size that still holds the whole ciphertext (157), and the
  // size of the abbreviated form (FSCRYPT_NOKEY_NAME_MAX, 189).
  static constexpr size_t kMaxFullSize = kDirhashSize + kCiphertextPrefixSize;
  static constexpr size_t kAbbreviatedSize = kMaxFullSize + kDigestSize;
  // FSCRYPT_NOKEY_NAME_MAX_ENCODED: base64url characters of 189 bytes.
  static constexpr size_t kMaxEncodedSize = 252;

  // Decodes as fscrypt_setup_filename does for a keyless lookup: ENOENT if the
  // name is longer than 252 characters, is not unpadded base64url, or decodes
  // to fewer than 9 bytes or to more than 157 bytes but not exactly 189.
  // Like the kernel's own decoder (Linux 6.18), a superfluous final 'A' after
  // 4k characters is accepted and ignored; other non-canonical spellings
  // (nonzero unused bits) are ENOENT. "." and ".." are not no-key names: the
  // caller resolves them before calling this (fscrypt_setup_filename passes
  // them through).
  static Result<NokeyName> decode(std::string_view presented_name);

  uint32_t hash() const { return hash_; }
  uint32_t minor_hash() const { return minor_hash_; }
  // True for the 189-byte form, which carries only a prefix and a digest.
  bool is_abbreviated() const { return abbreviated_; }
  // The whole ciphertext (full form) or its first 149 bytes (abbreviated).
  ByteSpan ciphertext_bytes() const { return {bytes_.data(), bytes_size_}; }

  // fscrypt_match_name(): whether stored ciphertext `disk_name` is the entry
  // this name denotes. Full form: equal length and bytes. Abbreviated form:
  // `disk_name` is longer than 149 bytes, its first 149 bytes are equal, and
  // the SHA-256 of the rest equals the digest. Hashes are not compared, as in
  // the kernel, where the filesystem uses them only to find the candidates.
  bool matches(ByteSpan disk_name) const;

  // matches() plus equal hashes, for a directory index keyed by the hash
  // (what ext4_match does in casefolded directories).
  bool matches(ByteSpan disk_name, uint32_t hash, uint32_t minor_hash) const;

 private:
  NokeyName() = default;

  uint32_t hash_ = 0;
  uint32_t minor_hash_ = 0;
  bool abbreviated_ = false;
  size_t bytes_size_ = 0;
  std::array<uint8_t, kCiphertextPrefixSize> bytes_{};
  std::array<uint8_t, kDigestSize> digest_{};
};

}  // namespace ecfs::fscrypt
