// base64url: "Base 64 Encoding with URL and Filename Safe Alphabet" (RFC 4648
// §5, alphabet A-Z a-z 0-9 '-' '_'), written without '=' padding (which
// RFC 4648 §3.2 allows when the length is known). fscrypt presents no-key
// filenames and symlink targets in this form (fs/crypto/fname.c).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/error.h"

namespace ecfs {

// Characters needed for `byte_count` bytes: ceil(byte_count * 4 / 3).
constexpr size_t base64url_encoded_size(size_t byte_count) { return (byte_count * 4 + 2) / 3; }

// Encodes `data`; the result has base64url_encoded_size(data.size()) characters.
std::string base64url_encode(ByteSpan data);

// Decodes canonical unpadded base64url. EINVAL for a character outside the
// alphabet (including '=' and whitespace), a length of 4k+1 characters (no
// whole byte can end there), or nonzero unused bits in the last character
// (non-canonical, RFC 4648 §3.5), so every byte string has exactly one
// accepted encoding.
Result<Bytes> base64url_decode(std::string_view text);

}  // namespace ecfs
