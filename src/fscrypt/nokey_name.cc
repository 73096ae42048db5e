#include "fscrypt/nokey_name.h"

#include <algorithm>
#include <cstring>

#include "base/base64url.h"
#include "crypto/hash.h"
#include "fscrypt/fname.h"

namespace ecfs::fscrypt {

static_assert(NokeyName::kAbbreviatedSize == 189, "FSCRYPT_NOKEY_NAME_MAX");
static_assert(base64url_encoded_size(NokeyName::kAbbreviatedSize) == NokeyName::kMaxEncodedSize);
static_assert(NokeyName::kMaxEncodedSize <= kFnameMaxNameLength, "must fit NAME_MAX");

Result<std::string> encode_nokey_name(ByteSpan ciphertext, uint32_t hash, uint32_t minor_hash) {
  if (is_dot_or_dotdot(ciphertext)) {
    return std::string(reinterpret_cast<const char*>(ciphertext.data()), ciphertext.size());
  }
  if (ciphertext.size() < kFnameMinMessageLength) {
    return fail(EUCLEAN, "encrypted name shorter than 16 bytes");
  }
  // struct fscrypt_nokey_name laid out by hand: the kernel stores the u32
  // hashes in host order, which is little-endian on every machine ecfs targets.
  std::array<uint8_t, NokeyName::kAbbreviatedSize> payload{};
  store_le32(payload.data(), hash);
  store_le32(payload.data() + 4, minor_hash);
  uint8_t* const bytes = payload.data() + NokeyName::kDirhashSize;
  size_t size;
  if (ciphertext.size() <= NokeyName::kCiphertextPrefixSize) {
    std::memcpy(bytes, ciphertext.data(), ciphertext.size());
    size = NokeyName::kDirhashSize + ciphertext.size();
  } else {
    std::memcpy(bytes, ciphertext.data(), NokeyName::kCiphertextPrefixSize);
    const auto digest = crypto::sha256(ciphertext.subspan(NokeyName::kCiphertextPrefixSize));
    std::memcpy(bytes + NokeyName::kCiphertextPrefixSize, digest.data(), digest.size());
    size = NokeyName::kAbbreviatedSize;
  }
  return base64url_encode({payload.data(), size});
}

Result<NokeyName> NokeyName::decode(std::string_view presented_name) {
  if (presented_name.size() > kMaxEncodedSize) {
    return fail(ENOENT, "not a no-key name: too long");
  }
  // fscrypt_base64url_decode() (fname.c, Linux <= 6.18) accepts a final lone
  // character whose 6 bits are all zero ('A') and ignores it; the canonical
  // decoder rejects a length of 4k+1, so drop that character first. Measured
  // on Linux 6.18: looking up a 32-character no-key name with "A" appended
  // finds the entry, with "B" appended gives ENOENT.
  if (presented_name.size() % 4 == 1 && presented_name.back() == 'A') {
    presented_name.remove_suffix(1);
  }
  auto decoded = base64url_decode(presented_name);
  if (!decoded) {
    return fail(ENOENT, "not a no-key name: not base64url");
  }
  const size_t size = decoded->size();
  // At least one ciphertext byte (offsetof(bytes[1])); above 157 bytes only
  // the abbreviated size is valid.
  if (size < kDirhashSize + 1 || (size > kMaxFullSize && size != kAbbreviatedSize)) {
    return fail(ENOENT, "not a no-key name: wrong decoded length");
  }
  NokeyName name;
  name.hash_ = load_le32(decoded->data());
  name.minor_hash_ = load_le32(decoded->data() + 4);
  name.abbreviated_ = size == kAbbreviatedSize;
  name.bytes_size_ = std::min(size, kMaxFullSize) - kDirhashSize;
  std::memcpy(name.bytes_.data(), decoded->data() + kDirhashSize, name.bytes_size_);
  if (name.abbreviated_) {
    std::memcpy(name.digest_.data(), decoded->data() + kMaxFullSize, kDigestSize);
  }
  return name;
}

bool NokeyName::matches(ByteSpan disk_name) const {
  const ByteSpan known = ciphertext_bytes();
  if (!abbreviated_) {
    return disk_name.size() == known.size() &&
           std::equal(known.begin(), known.end(), disk_name.begin());
  }
  if (disk_name.size() <= kCiphertextPrefixSize) return false;
  if (!std::equal(known.begin(), known.end(), disk_name.begin())) return false;
  const auto digest = crypto::sha256(disk_name.subspan(kCiphertextPrefixSize));
  return std::equal(digest.begin(), digest.end(), digest_.begin());
}

bool NokeyName::matches(ByteSpan disk_name, uint32_t hash, uint32_t minor_hash) const {
  return hash == hash_ && minor_hash == minor_hash_ && matches(disk_name);
}

}  // namespace ecfs::fscrypt
