// Checksums of tree nodes, superblocks and data sectors. Data checksums are
// computed over what is on disk, i.e. ciphertext for encrypted files.
#pragma once

#include <array>
#include <optional>
#include <string_view>

#include "base/bytes.h"
#include "store/format.h"

namespace ecfs::store {

// A checksum as stored: the algorithm's output, zero-padded to 32 bytes.
using Checksum = std::array<uint8_t, kChecksumFieldSize>;

// Size of the algorithm's own output: 4 (crc32c, stored little-endian),
// 8 (xxhash64, little-endian), 32 (sha256, blake2b-256).
size_t checksum_size(ChecksumType type);
std::string_view checksum_name(ChecksumType type);  // "crc32c", "xxhash64", ...
std::optional<ChecksumType> checksum_type_from_name(std::string_view name);
// A known type number from disk, or nullopt.
std::optional<ChecksumType> checksum_type_from_number(uint16_t number);

Checksum compute_checksum(ChecksumType type, ByteSpan data);

// Constant-size comparison of the first checksum_size(type) bytes.
bool checksum_matches(ChecksumType type, ByteSpan data, ByteSpan stored);

}  // namespace ecfs::store
