// Which program made an image, and when: one item of the root tree written
// by mkfs, shown by `ecfs inspect` (docs/FORMAT.md "Image origin"). Behind
// the compat bit image_origin (superblock.h kCompatImageOrigin): builds that
// predate it skip root-tree items they do not know, so the item costs them
// nothing. Images made before it have no origin; they are not given one
// later, because nothing would know which program made them.
#pragma once

#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/error.h"
#include "store/format.h"

namespace ecfs::store {

// The item's key: (kImageOriginObjectid, PERSISTENT_ITEM, 0). btrfs keeps
// device statistics under PERSISTENT_ITEM (249) with the objectid naming the
// kind; ecfs names this kind with an objectid no tree id can take.
inline constexpr uint8_t kPersistentItemKey = 249;
inline constexpr uint64_t kImageOriginObjectid = static_cast<uint64_t>(-20);
inline constexpr Key kImageOriginKey{kImageOriginObjectid, kPersistentItemKey, 0};

// The longest program text, so that the item always fits a 4 KiB node.
inline constexpr size_t kMaxOriginProgramSize = 64;

// ImageOrigin: created_sec i64 | created_nsec u32 | program_len u16 |
// program. `program` is the maker's name and version ("ecfs 0.1.0"), 1..64
// printable ASCII bytes; the time is when mkfs ran (UTC seconds since the
// epoch).
struct ImageOrigin {
  std::string program;
  int64_t created_sec = 0;
  uint32_t created_nsec = 0;
  friend bool operator==(const ImageOrigin&, const ImageOrigin&) = default;
};
// EINVAL for a program text decode_image_origin would reject or a bad time.
Result<Bytes> encode_image_origin(const ImageOrigin& origin);
// EUCLEAN for a malformed item (size that does not add up, an empty,
// over-long or unprintable program text, nsec >= 10^9).
Result<ImageOrigin> decode_image_origin(ByteSpan data);

}  // namespace ecfs::store
