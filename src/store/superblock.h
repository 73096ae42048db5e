// The superblock: the root of everything on an ecfs image. Several copies
// (format.h kSuperblockOffsets), each checksummed; a commit writes all of
// them with the next generation; mounting picks the newest valid copy.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "block/block_device.h"
#include "store/checksum.h"
#include "store/format.h"

namespace ecfs::store {

// Feature flags. incompat: a reader that does not know the bit must refuse
// the image; compat_ro: it may only mount read-only; compat: informational.
//
// kIncompatLargeXattrValues: the filesystem stores xattr values that do not
// fit in a tree leaf out of line, in XATTR_VALUE items (docs/FORMAT.md
// "Filesystem items"); set at the commit that first writes one.
inline constexpr uint64_t kIncompatLargeXattrValues = 1ull << 0;
// kIncompatSubvolumes: the root tree holds the subvolume catalog
// (subvolume_items.h) and filesystem trees may hold entries that name
// another tree; set at the commit that creates the first subvolume or
// snapshot.
inline constexpr uint64_t kIncompatSubvolumes = 1ull << 1;
// kIncompatKeyRotation: encrypted inodes may hold extents under master keys
// they were under before a rotation, listed in their KEY_HISTORY items
// (fs/key_history.h); a reader that does not know it would take those
// extents for damage. Set at the commit of the first rotation.
inline constexpr uint64_t kIncompatKeyRotation = 1ull << 2;
inline constexpr uint64_t kIncompatKnown =
    kIncompatLargeXattrValues | kIncompatSubvolumes | kIncompatKeyRotation;
// kCompatRoFreeSpaceTree: the free-space tree (tree 10) lists every
// unallocated range, so a mount reads it instead of the whole extent tree. A
// reader that does not know it could read the image but, writing, would
// leave the tree stale: read-only for it (btrfs FREE_SPACE_TREE is compat_ro
// for the same reason). Set by mkfs, and by the first commit of a
// read-write mount of an image made without it.
inline constexpr uint64_t kCompatRoFreeSpaceTree = 1ull << 0;
inline constexpr uint64_t kCompatRoKnown = kCompatRoFreeSpaceTree;
// kCompatImageOrigin: the root tree holds an IMAGE_ORIGIN item naming the
// program that made the image (image_origin.h). Set by mkfs; informational.
inline constexpr uint64_t kCompatImageOrigin = 1ull << 0;
// kCompatProtectors: the image holds a protector tree (tree 11) with
// passphrase and key-file protectors and wrapped master keys. Builds that
// predate it neither read nor change that tree, and keep it through their
// commits; set by the commit that creates the tree.
inline constexpr uint64_t kCompatProtectors = 1ull << 1;
inline constexpr uint64_t kCompatKnown = kCompatImageOrigin | kCompatProtectors;
// The longest label; the on-disk field is NUL-terminated (docs/FORMAT.md).
inline constexpr size_t kMaxLabelSize = 255;

struct Superblock {
  std::array<uint8_t, kFsidSize> fsid{};
  uint64_t bytenr = 0;  // offset of this copy
  uint64_t generation = 0;
  uint32_t format_version = kFormatVersion;
  uint64_t incompat_flags = 0;
  uint64_t compat_ro_flags = 0;
  uint64_t compat_flags = 0;
  ChecksumType checksum_type = ChecksumType::kCrc32c;
  uint32_t sector_size = kSectorSize;
  uint32_t node_size = kDefaultNodeSize;
  uint64_t total_bytes = 0;  // usable size of the device
  uint64_t bytes_used = 0;
  // The root tree, which points at every other tree.
  uint64_t root_tree_bytenr = 0;
  uint64_t root_tree_generation = 0;
  uint8_t root_tree_level = 0;
  std::string label;  // at most 255 bytes, no NUL

  friend bool operator==(const Superblock&, const Superblock&) = default;
};

// The compat_ro features this build does not know: when non-zero the image
// may be mounted read-only only.
inline uint64_t unknown_compat_ro_flags(const Superblock& sb) {
  return sb.compat_ro_flags & ~kCompatRoKnown;
}

// 4096-byte encoding with magic and checksum over bytes [32, 4096). EINVAL
// for anything decode_superblock would reject (a field out of range, a
// label too long or containing NUL, another format version, unknown incompat
// features), so that what is written can always be read back.
Result<std::array<uint8_t, kSuperblockSize>> encode_superblock(const Superblock& sb);
// EIO (naming the offset and the reason) for a bad magic or checksum or
// malformed fields, or a block that is not kSuperblockSize bytes; EINVAL for
// an unsupported format version; EOPNOTSUPP for unknown incompat features.
// Whatever `block` holds, reads stay within it.
Result<Superblock> decode_superblock(ByteSpan block, uint64_t expected_bytenr);

// The copy offsets that fit on a device of `device_size` bytes.
std::vector<uint64_t> superblock_offsets_for(uint64_t device_size);

// Reads every copy and returns the valid one with the highest generation.
// Copies that fail to decode are skipped (and reported through `problems`
// when non-null); EIO if none is valid ("not an ecfs image" when no copy has
// the magic). When the primary copy (64 KiB) is valid, copies with another
// fsid are stale leftovers and are skipped too. A copy that passes its
// checksum but has an unsupported version or incompat feature is never
// skipped in favour of an older copy: if it is at least as new as the best
// valid copy, its error (EINVAL / EOPNOTSUPP) is returned, because mounting
// the older copy would roll the filesystem back. A copy whose total_bytes
// exceeds the device size is a problem too (a truncated image).
Result<Superblock> read_newest_superblock(block::BlockDevice& device,
                                          std::vector<std::string>* problems = nullptr);

}  // namespace ecfs::store
