// Helpers for the crypto layer's tests (only *_test.cc include this).
#pragma once

#include <gtest/gtest.h>

#include <string_view>

#include "base/bytes.h"

namespace ecfs::crypto::testing {

// Bytes from hex; a malformed literal fails the calling test.
inline Bytes hex(std::string_view text) {
  auto bytes = from_hex(text);
  EXPECT_TRUE(bytes.has_value()) << "bad hex literal in test: " << text;
  return bytes.value_or(Bytes{});
}

// 0, 1, 2, ... (mod 256), the plaintext pattern of many published vectors.
inline Bytes counting_bytes(size_t size, uint8_t first = 0) {
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(first + i);
  return out;
}

// The errno of a failed Result, or 0 when it succeeded.
template <typename R>
int error_of(const R& result) {
  return result ? 0 : result.error().errno_value();
}

}  // namespace ecfs::crypto::testing
