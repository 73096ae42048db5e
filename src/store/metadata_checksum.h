// The checksum of a metadata block (tree node or superblock): stored in the
// block's first kChecksumFieldSize bytes, computed over everything after
// them, zero-padded when the algorithm's output is shorter (docs/FORMAT.md,
// "Checksums"). Shared by the node and superblock codecs so both seal and
// verify blocks the same way.
#pragma once

#include "base/bytes.h"
#include "store/checksum.h"
#include "store/format.h"

namespace ecfs::store {

// Computes the checksum of block[32, end) and writes it, zero-padded, into
// block[0, 32). REQUIRES: block.size() > kChecksumFieldSize and a known type.
void seal_metadata_block(ChecksumType type, MutableByteSpan block);

// True when block[0, 32) holds the checksum of block[32, end) followed by
// zero padding. The padding is checked too: it lies outside the checksummed
// range, so without this a flipped padding byte would go unnoticed.
// REQUIRES: block.size() > kChecksumFieldSize and a known type.
bool metadata_block_checksum_valid(ChecksumType type, ByteSpan block);

}  // namespace ecfs::store
