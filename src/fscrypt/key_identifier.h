// How fscrypt names a master key: v1 policies by an 8-byte descriptor the
// user picks, v2 policies by a 16-byte identifier derived from the key
// itself. Also the key specifier the keyring ioctls take.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs::fscrypt {

class FscryptHkdf;

// FSCRYPT_KEY_DESCRIPTOR_SIZE / FSCRYPT_KEY_IDENTIFIER_SIZE: stored in every
// v1 / v2 policy and context, so fixed forever.
inline constexpr size_t kKeyDescriptorSize = 8;
inline constexpr size_t kKeyIdentifierSize = 16;

using KeyDescriptor = std::array<uint8_t, kKeyDescriptorSize>;
using KeyIdentifier = std::array<uint8_t, kKeyIdentifierSize>;

// The v2 master key identifier: HKDF-SHA512 Expand with context byte 1
// (KEY_IDENTIFIER) and no further info, 16 bytes (fs/crypto/keyring.c
// `add_master_key`; fscrypt.rst "Key identifiers").
Result<KeyIdentifier> compute_key_identifier(const FscryptHkdf& hkdf);
// Same, from the raw master key (runs HKDF-Extract first).
Result<KeyIdentifier> compute_key_identifier(ByteSpan raw_master_key);

// The conventional v1 descriptor: the first 8 bytes of SHA-512(SHA-512(key)).
// A convention of fscrypt tools (fscrypt.rst; google/fscryptctl), not a
// kernel rule: v1 descriptors may be anything.
KeyDescriptor compute_v1_key_descriptor(ByteSpan raw_master_key);

// FSCRYPT_KEY_SPEC_TYPE_* (uapi): part of the ioctl ABI, so fixed forever.
enum class KeySpecifierType : uint32_t {
  kDescriptor = 1,  // FSCRYPT_KEY_SPEC_TYPE_DESCRIPTOR (v1 policies)
  kIdentifier = 2,  // FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER (v2 policies)
};

// Size of `struct fscrypt_key_specifier`: u32 type, u32 reserved, 32-byte union.
inline constexpr size_t kKeySpecifierSize = 40;

// Names one master key: a descriptor or an identifier. A value type; ordered
// and hashable-by-bytes so a keyring can use it as a map key.
class KeySpecifier {
 public:
  static KeySpecifier from_descriptor(const KeyDescriptor& descriptor);
  static KeySpecifier from_identifier(const KeyIdentifier& identifier);

  // Parses 16 hex digits as a descriptor or 32 as an identifier (the forms
  // fscryptctl and the kernel's messages use). EINVAL otherwise.
  static Result<KeySpecifier> from_hex(std::string_view hex);

  // Parses `struct fscrypt_key_specifier` (exactly 40 bytes). EINVAL for a
  // wrong size, an unknown type or a nonzero reserved word, as keyring.c
  // `valid_key_spec`. Union bytes past the key's length are ignored.
  static Result<KeySpecifier> parse(ByteSpan bytes);
  // The 40-byte ABI form, unused union bytes zero.
  std::array<uint8_t, kKeySpecifierSize> serialize() const;

  KeySpecifierType type() const { return type_; }
  // The descriptor (8 bytes) or identifier (16 bytes).
  ByteSpan bytes() const { return {bytes_.data(), size()}; }
  size_t size() const {
    return type_ == KeySpecifierType::kDescriptor ? kKeyDescriptorSize : kKeyIdentifierSize;
  }
  std::string to_hex() const;
  // "descriptor 0011223344556677" / "identifier 69b2...", for messages.
  std::string to_string() const;

  friend bool operator==(const KeySpecifier&, const KeySpecifier&) = default;
  friend auto operator<=>(const KeySpecifier&, const KeySpecifier&) = default;

 private:
  KeySpecifier(KeySpecifierType type, ByteSpan bytes);

  KeySpecifierType type_ = KeySpecifierType::kIdentifier;
  std::array<uint8_t, kKeyIdentifierSize> bytes_{};  // descriptors use the first 8
};

}  // namespace ecfs::fscrypt
