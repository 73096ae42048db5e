#include "store/metadata_checksum.h"

#include <algorithm>

namespace ecfs::store {

void seal_metadata_block(ChecksumType type, MutableByteSpan block) {
  const Checksum checksum = compute_checksum(type, block.subspan(kChecksumFieldSize));
  std::copy(checksum.begin(), checksum.end(), block.begin());
}

bool metadata_block_checksum_valid(ChecksumType type, ByteSpan block) {
  const ByteSpan stored = block.first(kChecksumFieldSize);
  const ByteSpan padding = stored.subspan(checksum_size(type));
  const bool padding_zero =
      std::all_of(padding.begin(), padding.end(), [](uint8_t b) { return b == 0; });
  // Both checks run whatever the first says: no early exit on stored data.
  const bool matches = checksum_matches(type, block.subspan(kChecksumFieldSize), stored);
  return matches && padding_zero;
}

}  // namespace ecfs::store
