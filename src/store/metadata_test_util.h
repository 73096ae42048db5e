// Helpers for the node and superblock codec tests (only *_test.cc include
// this): an independent CRC-32C to pin the checksum bytes, and re-sealing of
// a block after a test has changed a field behind the encoder's back.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "store/metadata_checksum.h"

namespace ecfs::store::testing {

// CRC-32C (Castagnoli), bit by bit, as RFC 3720 section 12.1 and B.4 define
// it: reflected polynomial 0x82F63B78, initial value and final XOR
// 0xFFFFFFFF. Written independently of checksum.cc so the layout tests pin
// the stored checksum bytes rather than trusting the code under test.
inline uint32_t reference_crc32c(ByteSpan data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t byte : data) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// Recomputes the checksum of a block whose contents a test changed, so that
// decoding gets past the checksum to the rule under test.
inline void reseal(MutableByteSpan block, ChecksumType type = ChecksumType::kCrc32c) {
  seal_metadata_block(type, block);
}

// The errno of a failed Result, or 0 when it succeeded.
template <typename R>
int error_of(const R& result) {
  return result ? 0 : result.error().errno_value();
}

template <typename R>
std::string message_of(const R& result) {
  return result ? std::string("(success)") : result.error().message();
}

inline constexpr ChecksumType kAllChecksumTypes[] = {ChecksumType::kCrc32c, ChecksumType::kXxhash64,
                                                     ChecksumType::kSha256, ChecksumType::kBlake2b};

}  // namespace ecfs::store::testing
