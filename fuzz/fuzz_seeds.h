// Seed inputs for the fuzz targets: valid encodings the fuzzer starts from
// and mutates, so that it begins past the magic and the checksum instead of
// having to discover them. Written to a directory by make_fuzz_seeds.cc.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "store/format.h"

namespace ecfs::fuzz {

// The filesystem id and node address the seeds carry and the node target
// expects (unless the input's control byte says otherwise).
inline constexpr std::array<uint8_t, store::kFsidSize> kFuzzFsid = {
    0xec, 0xf5, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d};
inline constexpr uint64_t kFuzzBytenr = 1ull << 20;

// Bits of the first input byte (the rest is the block under test).
inline constexpr uint8_t kControlChecksumTypeMask = 0x03;  // node: index into the checksum types
inline constexpr uint8_t kControlReseal = 0x04;            // recompute the checksum before decoding
inline constexpr uint8_t kControlFsidFromBlock = 0x08;     // node: expect the block's own fsid
inline constexpr uint8_t kControlExpectGeneration = 0x10;  // node: expect the header's generation
inline constexpr uint8_t kControlExpectLevel = 0x20;       // node: expect the header's level
inline constexpr uint8_t kControlBytenrFromBlock = 0x40;   // expect the header's bytenr

inline constexpr store::ChecksumType kFuzzChecksumTypes[] = {
    store::ChecksumType::kCrc32c, store::ChecksumType::kXxhash64, store::ChecksumType::kSha256,
    store::ChecksumType::kBlake2b};

// Control byte followed by a valid node / superblock encoding.
std::vector<Bytes> node_seeds();
std::vector<Bytes> superblock_seeds();

}  // namespace ecfs::fuzz
