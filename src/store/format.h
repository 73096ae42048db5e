// On-disk constants of the ecfs image format (docs/FORMAT.md). Every value
// here is stored in images; changing one makes existing images unreadable,
// so a change needs a new format version or feature flag.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>

namespace ecfs::store {

// The unit of data allocation and of data checksums.
inline constexpr uint32_t kSectorSize = 4096;
// Tree node sizes: a power of two from 4 KiB to 64 KiB; 16 KiB by default.
inline constexpr uint32_t kDefaultNodeSize = 16384;
inline constexpr uint32_t kMinNodeSize = 4096;
inline constexpr uint32_t kMaxNodeSize = 65536;

// Every checksum field is this wide; shorter checksums are zero-padded.
inline constexpr size_t kChecksumFieldSize = 32;
// Filesystem UUID size.
inline constexpr size_t kFsidSize = 16;

// The 17-byte item key of every tree: (objectid, type, offset), compared in
// that order. Stored little-endian, packed: objectid u64 | type u8 | offset u64.
struct Key {
  uint64_t objectid = 0;
  uint8_t type = 0;
  uint64_t offset = 0;

  friend constexpr auto operator<=>(const Key&, const Key&) = default;
  static constexpr Key min() { return {0, 0, 0}; }
  static constexpr Key max() { return {UINT64_MAX, UINT8_MAX, UINT64_MAX}; }
};
inline constexpr size_t kKeySize = 17;

// Node layout (all little-endian, packed):
//   header:  csum[32] | fsid[16] | bytenr u64 | generation u64 | owner u64 |
//            flags u32 | nritems u32 | level u8 | reserved[7]
//   leaf (level 0): item headers {key[17] | data_offset u32 | data_size u32}
//            grow from the front; item data grows from the end of the node.
//            data_offset counts from the end of the header.
//   internal (level > 0): key pointers {key[17] | blockptr u64 | generation u64}.
// The checksum covers bytes [32, node_size).
inline constexpr size_t kNodeHeaderSize = 88;
inline constexpr size_t kLeafItemHeaderSize = kKeySize + 4 + 4;  // 25
inline constexpr size_t kKeyPtrSize = kKeySize + 8 + 8;          // 33
inline constexpr uint8_t kMaxTreeLevel = 8;

// Superblock copies: 4 KiB each at these byte offsets (as btrfs: 64 KiB,
// 64 MiB, 256 GiB); a copy beyond the end of the device is not used.
inline constexpr uint64_t kSuperblockOffsets[] = {64ull << 10, 64ull << 20, 256ull << 30};
inline constexpr size_t kSuperblockSize = 4096;
// "ECFS_SB1" read as a little-endian u64 identifies a superblock.
inline constexpr uint64_t kSuperblockMagic = 0x3142535f53464345ull;
// The format this build writes. Readers refuse other versions (EINVAL) and
// unknown incompat features (EOPNOTSUPP); unknown compat_ro features allow
// read-only mounts only.
inline constexpr uint32_t kFormatVersion = 1;

// Checksum algorithms (numbers as btrfs uses them).
enum class ChecksumType : uint16_t {
  kCrc32c = 0,
  kXxhash64 = 1,
  kSha256 = 2,
  kBlake2b = 3,  // BLAKE2b-256
};

}  // namespace ecfs::store
