#include "store/checksum.h"

#include <blake2.h>
#include <isa-l.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "crypto/hash.h"

namespace ecfs::store {
namespace {

struct ChecksumInfo {
  ChecksumType type;
  std::string_view name;
  size_t size;
};

constexpr ChecksumInfo kChecksums[] = {
    {ChecksumType::kCrc32c, "crc32c", 4},
    {ChecksumType::kXxhash64, "xxhash64", 8},
    {ChecksumType::kSha256, "sha256", 32},
    {ChecksumType::kBlake2b, "blake2b", 32},
};

const ChecksumInfo& info_of(ChecksumType type) {
  for (const auto& info : kChecksums) {
    if (info.type == type) return info;
  }
  // A ChecksumType outside the enum can only come from a cast that skipped
  // checksum_type_from_number(); carrying on would store a wrong checksum.
  std::abort();
}

// CRC-32C (Castagnoli), as iSCSI (RFC 3720 B.4) and btrfs use it: initial
// value 0xFFFFFFFF and a final complement. ISA-L's crc32_iscsi() takes the
// initial value and does not complement its result, so the raw value chains
// from one call to the next and the complement comes last.
uint32_t crc32c(ByteSpan data) {
  uint32_t crc = 0xFFFFFFFFu;
  constexpr size_t kMaxChunk = 1u << 30;  // crc32_iscsi() takes an int length
  size_t done = 0;
  while (done < data.size()) {
    const size_t chunk = std::min(kMaxChunk, data.size() - done);
    crc = crc32_iscsi(const_cast<unsigned char*>(data.data() + done), static_cast<int>(chunk), crc);
    done += chunk;
  }
  return ~crc;
}

}  // namespace

size_t checksum_size(ChecksumType type) { return info_of(type).size; }

std::string_view checksum_name(ChecksumType type) { return info_of(type).name; }

std::optional<ChecksumType> checksum_type_from_name(std::string_view name) {
  for (const auto& info : kChecksums) {
    if (info.name == name) return info.type;
  }
  return std::nullopt;
}

std::optional<ChecksumType> checksum_type_from_number(uint16_t number) {
  for (const auto& info : kChecksums) {
    if (static_cast<uint16_t>(info.type) == number) return info.type;
  }
  return std::nullopt;
}

Checksum compute_checksum(ChecksumType type, ByteSpan data) {
  Checksum out{};
  switch (type) {
    case ChecksumType::kCrc32c:
      // Stored little-endian, as btrfs stores its crc32c.
      store_le32(out.data(), crc32c(data));
      break;
    case ChecksumType::kXxhash64:
      // XXH64 with seed 0, stored little-endian (btrfs does the same).
      store_le64(out.data(), XXH64(data.data(), data.size(), 0));
      break;
    case ChecksumType::kSha256: {
      const auto digest = crypto::sha256(data);
      std::copy(digest.begin(), digest.end(), out.begin());
      break;
    }
    case ChecksumType::kBlake2b:
      // Unkeyed BLAKE2b with a 32-byte digest (RFC 7693; the digest length is
      // part of the parameter block, so this is not a truncated BLAKE2b-512).
      if (blake2b(out.data(), data.data(), nullptr, 32, data.size(), 0) != 0) std::abort();
      break;
    default:
      std::abort();
  }
  return out;
}

bool checksum_matches(ChecksumType type, ByteSpan data, ByteSpan stored) {
  const size_t size = checksum_size(type);
  if (stored.size() < size) return false;
  const Checksum computed = compute_checksum(type, data);
  // Accumulate the difference over every byte: the time taken does not
  // depend on where the first difference is.
  uint8_t difference = 0;
  for (size_t i = 0; i < size; ++i) difference |= static_cast<uint8_t>(computed[i] ^ stored[i]);
  return difference == 0;
}

}  // namespace ecfs::store
