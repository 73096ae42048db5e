#include "base/base64url.h"

#include <array>

namespace ecfs {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static_assert(kAlphabet.size() == 64);

constexpr int8_t kInvalid = -1;

// Character -> 6-bit value, kInvalid for characters outside the alphabet.
constexpr std::array<int8_t, 256> make_decode_table() {
  std::array<int8_t, 256> table{};
  table.fill(kInvalid);
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  }
  return table;
}
constexpr std::array<int8_t, 256> kDecodeTable = make_decode_table();

}  // namespace

std::string base64url_encode(ByteSpan data) {
  std::string out;
  out.reserve(base64url_encoded_size(data.size()));
  size_t i = 0;
  // RFC 4648 §4: every 3 input bytes become 4 characters, most significant
  // bits first.
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t group = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out.push_back(kAlphabet[(group >> 18) & 0x3f]);
    out.push_back(kAlphabet[(group >> 12) & 0x3f]);
    out.push_back(kAlphabet[(group >> 6) & 0x3f]);
    out.push_back(kAlphabet[group & 0x3f]);
  }
  // A final 1 or 2 bytes become 2 or 3 characters, the unused low bits zero;
  // the '=' padding of §3.2 is left out.
  const size_t rest = data.size() - i;
  if (rest == 1) {
    const uint32_t group = uint32_t{data[i]} << 16;
    out.push_back(kAlphabet[(group >> 18) & 0x3f]);
    out.push_back(kAlphabet[(group >> 12) & 0x3f]);
  } else if (rest == 2) {
    const uint32_t group = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out.push_back(kAlphabet[(group >> 18) & 0x3f]);
    out.push_back(kAlphabet[(group >> 12) & 0x3f]);
    out.push_back(kAlphabet[(group >> 6) & 0x3f]);
  }
  return out;
}

Result<Bytes> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return fail(EINVAL, "base64url: length leaves a partial byte");
  }
  Bytes out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t accumulator = 0;
  int bits = 0;
  for (const char c : text) {
    const int8_t value = kDecodeTable[static_cast<uint8_t>(c)];
    if (value == kInvalid) {
      return fail(EINVAL, "base64url: character outside the alphabet");
    }
    accumulator = ((accumulator << 6) | static_cast<uint32_t>(value)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(accumulator >> bits));
    }
  }
  // The 2 or 4 bits left over after the last whole byte must be zero, or a
  // second string would decode to the same bytes (RFC 4648 §3.5).
  if ((accumulator & ((1u << bits) - 1)) != 0) {
    return fail(EINVAL, "base64url: nonzero unused bits");
  }
  return out;
}

}  // namespace ecfs
