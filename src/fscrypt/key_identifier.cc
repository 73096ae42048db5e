#include "fscrypt/key_identifier.h"

#include <algorithm>
#include <cerrno>

#include "crypto/hash.h"
#include "fscrypt/hkdf.h"

namespace ecfs::fscrypt {

Result<KeyIdentifier> compute_key_identifier(const FscryptHkdf& hkdf) {
  KeyIdentifier identifier{};
  ECFS_TRY(hkdf.expand(HkdfContext::kKeyIdentifier, {}, identifier));
  return identifier;
}

Result<KeyIdentifier> compute_key_identifier(ByteSpan raw_master_key) {
  auto hkdf = FscryptHkdf::create(raw_master_key);
  if (!hkdf) return std::unexpected(std::move(hkdf).error());
  return compute_key_identifier(*hkdf);
}

KeyDescriptor compute_v1_key_descriptor(ByteSpan raw_master_key) {
  // Double hashing, as fscryptctl and the fscrypt tool do, so the descriptor
  // reveals nothing usable about the key.
  const auto inner = crypto::sha512(raw_master_key);
  const auto outer = crypto::sha512(inner);
  KeyDescriptor descriptor{};
  std::copy_n(outer.begin(), descriptor.size(), descriptor.begin());
  return descriptor;
}

KeySpecifier::KeySpecifier(KeySpecifierType type, ByteSpan bytes) : type_(type) {
  std::copy_n(bytes.begin(), std::min(bytes.size(), bytes_.size()), bytes_.begin());
}

KeySpecifier KeySpecifier::from_descriptor(const KeyDescriptor& descriptor) {
  return KeySpecifier(KeySpecifierType::kDescriptor, descriptor);
}

KeySpecifier KeySpecifier::from_identifier(const KeyIdentifier& identifier) {
  return KeySpecifier(KeySpecifierType::kIdentifier, identifier);
}

Result<KeySpecifier> KeySpecifier::from_hex(std::string_view hex) {
  if (hex.size() != 2 * kKeyDescriptorSize && hex.size() != 2 * kKeyIdentifierSize) {
    return fail(EINVAL, "a key descriptor is 16 hex digits and a key identifier 32, not " +
                            std::to_string(hex.size()));
  }
  auto bytes = ecfs::from_hex(hex);
  if (!bytes) return std::unexpected(std::move(bytes).error());
  const auto type = bytes->size() == kKeyDescriptorSize ? KeySpecifierType::kDescriptor
                                                        : KeySpecifierType::kIdentifier;
  return KeySpecifier(type, *bytes);
}

Result<KeySpecifier> KeySpecifier::parse(ByteSpan bytes) {
  if (bytes.size() != kKeySpecifierSize) {
    return fail(EINVAL, "a key specifier is 40 bytes, not " + std::to_string(bytes.size()));
  }
  // keyring.c `valid_key_spec`: the reserved word must be zero and the
  // type known.
  if (load_le32(bytes.data() + 4) != 0) return fail(EINVAL, "key specifier reserved field set");
  const uint32_t type = load_le32(bytes.data());
  const ByteSpan key_bytes = bytes.subspan(8);
  switch (type) {
    case static_cast<uint32_t>(KeySpecifierType::kDescriptor):
      return KeySpecifier(KeySpecifierType::kDescriptor, key_bytes.first(kKeyDescriptorSize));
    case static_cast<uint32_t>(KeySpecifierType::kIdentifier):
      return KeySpecifier(KeySpecifierType::kIdentifier, key_bytes.first(kKeyIdentifierSize));
  }
  return fail(EINVAL, "unknown key specifier type " + std::to_string(type));
}

std::array<uint8_t, kKeySpecifierSize> KeySpecifier::serialize() const {
  std::array<uint8_t, kKeySpecifierSize> out{};
  store_le32(out.data(), static_cast<uint32_t>(type_));
  std::copy_n(bytes_.begin(), size(), out.begin() + 8);
  return out;
}

std::string KeySpecifier::to_hex() const { return ecfs::to_hex(bytes()); }

std::string KeySpecifier::to_string() const {
  return (type_ == KeySpecifierType::kDescriptor ? "descriptor " : "identifier ") + to_hex();
}

}  // namespace ecfs::fscrypt
