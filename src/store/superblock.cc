#include "store/superblock.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "store/metadata_checksum.h"

namespace ecfs::store {
namespace {

// Field offsets (docs/FORMAT.md "Superblock"). Bytes [0, 78), from the
// checksum to checksum_type, keep their meaning in every format version, so
// a reader can always tell an ecfs image, check its checksum and name its
// version.
constexpr size_t kFsidOffset = kChecksumFieldSize;                  // 32
constexpr size_t kBytenrOffset = kFsidOffset + kFsidSize;           // 48
constexpr size_t kMagicOffset = kBytenrOffset + 8;                  // 56
constexpr size_t kGenerationOffset = kMagicOffset + 8;              // 64
constexpr size_t kFormatVersionOffset = kGenerationOffset + 8;      // 72
constexpr size_t kChecksumTypeOffset = kFormatVersionOffset + 4;    // 76
constexpr size_t kVersionIndependentEnd = kChecksumTypeOffset + 2;  // 78
constexpr size_t kRootLevelOffset = kVersionIndependentEnd;         // 78
constexpr size_t kPad0Offset = kRootLevelOffset + 1;                // 79, one zero byte
constexpr size_t kSectorSizeOffset = kPad0Offset + 1;               // 80
constexpr size_t kNodeSizeOffset = kSectorSizeOffset + 4;           // 84
constexpr size_t kIncompatOffset = kNodeSizeOffset + 4;             // 88
constexpr size_t kCompatRoOffset = kIncompatOffset + 8;             // 96
constexpr size_t kCompatOffset = kCompatRoOffset + 8;               // 104
constexpr size_t kTotalBytesOffset = kCompatOffset + 8;             // 112
constexpr size_t kBytesUsedOffset = kTotalBytesOffset + 8;          // 120
constexpr size_t kRootBytenrOffset = kBytesUsedOffset + 8;          // 128
constexpr size_t kRootGenerationOffset = kRootBytenrOffset + 8;     // 136
constexpr size_t kLabelOffset = kRootGenerationOffset + 8;          // 144
constexpr size_t kLabelFieldSize = kMaxLabelSize + 1;               // NUL-terminated
constexpr size_t kReservedOffset = kLabelOffset + kLabelFieldSize;  // 400
static_assert(kIncompatOffset == 88 && kReservedOffset == 400);
static_assert(kReservedOffset < kSuperblockSize);

// The smallest device that holds the primary superblock and one node.
constexpr uint64_t kMinTotalBytes = kSuperblockOffsets[0] + kSuperblockSize + kMinNodeSize;

bool all_zero(ByteSpan bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// "64 KiB", "64 MiB", "256 GiB", or bytes when not a whole unit.
std::string offset_string(uint64_t offset) {
  if (offset != 0 && offset % (1ull << 30) == 0) return std::to_string(offset >> 30) + " GiB";
  if (offset != 0 && offset % (1ull << 20) == 0) return std::to_string(offset >> 20) + " MiB";
  if (offset != 0 && offset % (1ull << 10) == 0) return std::to_string(offset >> 10) + " KiB";
  return std::to_string(offset) + " bytes";
}

std::string hex64(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  bool started = false;
  for (int shift = 60; shift >= 0; shift -= 4) {
    const unsigned digit = (value >> shift) & 0xf;
    if (digit != 0 || started || shift == 0) {
      out += kDigits[digit];
      started = true;
    }
  }
  return out;
}

// The range rules on fields, shared by encoder (EINVAL) and decoder (EIO).
// Returns a description of the first broken rule, or an empty string.
std::string field_problem(const Superblock& sb) {
  if (!checksum_type_from_number(static_cast<uint16_t>(sb.checksum_type))) {
    return "unknown checksum type " + std::to_string(static_cast<uint16_t>(sb.checksum_type));
  }
  if (sb.sector_size != kSectorSize) {
    return "sector size " + std::to_string(sb.sector_size) + " is not " +
           std::to_string(kSectorSize);
  }
  if (!(sb.node_size >= kMinNodeSize && sb.node_size <= kMaxNodeSize &&
        (sb.node_size & (sb.node_size - 1)) == 0)) {
    return "node size " + std::to_string(sb.node_size) + " is not a power of two in [" +
           std::to_string(kMinNodeSize) + ", " + std::to_string(kMaxNodeSize) + "]";
  }
  if (sb.total_bytes < kMinTotalBytes || sb.total_bytes % sb.sector_size != 0) {
    return "total size " + std::to_string(sb.total_bytes) +
           " bytes is not a multiple of the sector size of at least " +
           std::to_string(kMinTotalBytes);
  }
  if (sb.bytes_used > sb.total_bytes) {
    return "bytes used " + std::to_string(sb.bytes_used) + " exceed the total size " +
           std::to_string(sb.total_bytes);
  }
  if (sb.root_tree_bytenr == 0 || sb.root_tree_bytenr % sb.node_size != 0) {
    return "root tree at byte " + std::to_string(sb.root_tree_bytenr) +
           " is zero or not aligned to the node size";
  }
  if (sb.root_tree_bytenr > sb.total_bytes - sb.node_size) {
    return "root tree at byte " + std::to_string(sb.root_tree_bytenr) +
           " lies beyond the total size " + std::to_string(sb.total_bytes);
  }
  if (sb.root_tree_generation > sb.generation) {
    return "root tree generation " + std::to_string(sb.root_tree_generation) +
           " is newer than the superblock's " + std::to_string(sb.generation);
  }
  if (sb.root_tree_level > kMaxTreeLevel) {
    return "root tree level " + std::to_string(sb.root_tree_level) + " exceeds " +
           std::to_string(kMaxTreeLevel);
  }
  return {};
}

std::string version_problem(uint32_t version) {
  if (version == kFormatVersion) return {};
  return "format version " + std::to_string(version) +
         " is not supported (this build reads version " + std::to_string(kFormatVersion) + ")";
}

std::string incompat_problem(uint64_t incompat_flags) {
  const uint64_t unknown = incompat_flags & ~kIncompatKnown;
  if (unknown == 0) return {};
  return "unknown incompatible features " + hex64(unknown);
}

std::unexpected<Error> superblock_error(int errno_value, uint64_t bytenr, const std::string& why) {
  return fail(errno_value, "superblock at byte " + std::to_string(bytenr) + ": " + why);
}

}  // namespace

Result<std::array<uint8_t, kSuperblockSize>> encode_superblock(const Superblock& sb) {
  const auto error = [&](const std::string& why) {
    return fail(EINVAL,
                "cannot encode superblock for byte " + std::to_string(sb.bytenr) + ": " + why);
  };
  if (auto problem = version_problem(sb.format_version); !problem.empty()) return error(problem);
  if (auto problem = incompat_problem(sb.incompat_flags); !problem.empty()) return error(problem);
  if (auto problem = field_problem(sb); !problem.empty()) return error(problem);
  if (sb.label.size() > kMaxLabelSize) {
    return error("label of " + std::to_string(sb.label.size()) + " bytes is longer than " +
                 std::to_string(kMaxLabelSize));
  }
  if (sb.label.find('\0') != std::string::npos) return error("label contains a NUL byte");

  std::array<uint8_t, kSuperblockSize> block{};
  uint8_t* p = block.data();
  std::copy(sb.fsid.begin(), sb.fsid.end(), p + kFsidOffset);
  store_le64(p + kBytenrOffset, sb.bytenr);
  store_le64(p + kMagicOffset, kSuperblockMagic);
  store_le64(p + kGenerationOffset, sb.generation);
  store_le32(p + kFormatVersionOffset, sb.format_version);
  store_le32(p + kSectorSizeOffset, sb.sector_size);
  store_le32(p + kNodeSizeOffset, sb.node_size);
  const auto type = static_cast<uint16_t>(sb.checksum_type);
  p[kChecksumTypeOffset] = static_cast<uint8_t>(type);
  p[kChecksumTypeOffset + 1] = static_cast<uint8_t>(type >> 8);
  p[kRootLevelOffset] = sb.root_tree_level;
  store_le64(p + kIncompatOffset, sb.incompat_flags);
  store_le64(p + kCompatRoOffset, sb.compat_ro_flags);
  store_le64(p + kCompatOffset, sb.compat_flags);
  store_le64(p + kTotalBytesOffset, sb.total_bytes);
  store_le64(p + kBytesUsedOffset, sb.bytes_used);
  store_le64(p + kRootBytenrOffset, sb.root_tree_bytenr);
  store_le64(p + kRootGenerationOffset, sb.root_tree_generation);
  std::copy(sb.label.begin(), sb.label.end(), p + kLabelOffset);
  seal_metadata_block(sb.checksum_type, block);
  return block;
}

Result<Superblock> decode_superblock(ByteSpan block, uint64_t expected_bytenr) {
  if (block.size() != kSuperblockSize) {
    return superblock_error(EIO, expected_bytenr,
                            "block is " + std::to_string(block.size()) + " bytes, not " +
                                std::to_string(kSuperblockSize));
  }
  const uint8_t* p = block.data();
  if (load_le64(p + kMagicOffset) != kSuperblockMagic) {
    return superblock_error(EIO, expected_bytenr, "no superblock magic");
  }
  // The checksum type is read before the checksum is verified: it says how
  // to verify. A corrupted type either is unknown or fails the checksum.
  const uint16_t type_number =
      static_cast<uint16_t>(p[kChecksumTypeOffset] | (p[kChecksumTypeOffset + 1] << 8));
  const std::optional<ChecksumType> type = checksum_type_from_number(type_number);
  if (!type) {
    return superblock_error(EIO, expected_bytenr,
                            "unknown checksum type " + std::to_string(type_number));
  }
  if (!metadata_block_checksum_valid(*type, block)) {
    return fail(EIO, "checksum mismatch in superblock at byte " + std::to_string(expected_bytenr));
  }

  Superblock sb;
  std::copy(p + kFsidOffset, p + kFsidOffset + kFsidSize, sb.fsid.begin());
  sb.bytenr = load_le64(p + kBytenrOffset);
  sb.generation = load_le64(p + kGenerationOffset);
  sb.format_version = load_le32(p + kFormatVersionOffset);
  if (sb.bytenr != expected_bytenr) {
    return superblock_error(
        EIO, expected_bytenr,
        "header names byte " + std::to_string(sb.bytenr) + " (misplaced or misdirected write)");
  }
  // Version and incompat features before the other fields: another version
  // may lay them out differently, and the user should hear "upgrade ecfs",
  // not "corrupt".
  if (auto problem = version_problem(sb.format_version); !problem.empty()) {
    return superblock_error(EINVAL, expected_bytenr, problem);
  }
  sb.incompat_flags = load_le64(p + kIncompatOffset);
  if (auto problem = incompat_problem(sb.incompat_flags); !problem.empty()) {
    return superblock_error(EOPNOTSUPP, expected_bytenr, problem);
  }
  sb.compat_ro_flags = load_le64(p + kCompatRoOffset);
  sb.compat_flags = load_le64(p + kCompatOffset);
  sb.checksum_type = *type;
  sb.sector_size = load_le32(p + kSectorSizeOffset);
  sb.node_size = load_le32(p + kNodeSizeOffset);
  sb.root_tree_level = p[kRootLevelOffset];
  sb.total_bytes = load_le64(p + kTotalBytesOffset);
  sb.bytes_used = load_le64(p + kBytesUsedOffset);
  sb.root_tree_bytenr = load_le64(p + kRootBytenrOffset);
  sb.root_tree_generation = load_le64(p + kRootGenerationOffset);
  if (auto problem = field_problem(sb); !problem.empty()) {
    return superblock_error(EIO, expected_bytenr, problem);
  }

  const ByteSpan label_field = block.subspan(kLabelOffset, kLabelFieldSize);
  const auto nul = std::find(label_field.begin(), label_field.end(), uint8_t{0});
  if (nul == label_field.end()) {
    return superblock_error(EIO, expected_bytenr, "label is not NUL-terminated");
  }
  if (!all_zero(ByteSpan(nul, label_field.end()))) {
    return superblock_error(EIO, expected_bytenr, "bytes after the label's NUL are not zero");
  }
  sb.label.assign(label_field.begin(), nul);
  if (p[kPad0Offset] != 0 || !all_zero(block.subspan(kReservedOffset))) {
    return superblock_error(EIO, expected_bytenr, "reserved bytes are not zero");
  }
  return sb;
}

std::vector<uint64_t> superblock_offsets_for(uint64_t device_size) {
  std::vector<uint64_t> offsets;
  for (uint64_t offset : kSuperblockOffsets) {
    if (offset <= device_size && device_size - offset >= kSuperblockSize) offsets.push_back(offset);
  }
  return offsets;
}

namespace {

// A copy whose checksum holds but which this build cannot read: newer
// format version or unknown incompat features.
struct UnsupportedCopy {
  uint64_t generation;
  std::array<uint8_t, kFsidSize> fsid;
  Error error;
};

}  // namespace

Result<Superblock> read_newest_superblock(block::BlockDevice& device,
                                          std::vector<std::string>* problems) {
  std::vector<std::string> found;  // why copies were skipped
  const auto note = [&](uint64_t offset, const std::string& why) {
    found.push_back("copy at " + offset_string(offset) + ": " + why);
    if (problems != nullptr) problems->push_back(found.back());
  };
  const std::vector<uint64_t> offsets = superblock_offsets_for(device.size());
  if (offsets.empty()) {
    return fail(EIO, device.describe() + ": not an ecfs image (" + std::to_string(device.size()) +
                         " bytes, too small for a superblock at " +
                         offset_string(kSuperblockOffsets[0]) + ")");
  }

  std::vector<Superblock> valid;
  std::vector<UnsupportedCopy> unsupported;
  std::optional<std::array<uint8_t, kFsidSize>> primary_fsid;
  bool saw_magic = false;
  std::array<uint8_t, kSuperblockSize> block;
  for (uint64_t offset : offsets) {
    if (auto read = device.read(offset, block); !read) {
      note(offset, read.error().message());
      continue;
    }
    saw_magic = saw_magic || load_le64(block.data() + kMagicOffset) == kSuperblockMagic;
    std::array<uint8_t, kFsidSize> fsid;
    std::copy(block.begin() + kFsidOffset, block.begin() + kFsidOffset + kFsidSize, fsid.begin());
    auto decoded = decode_superblock(block, offset);
    if (decoded) {
      if (decoded->total_bytes > device.size()) {
        note(offset, "total size " + std::to_string(decoded->total_bytes) +
                         " bytes exceeds the device's " + std::to_string(device.size()) +
                         " (truncated image?)");
        continue;
      }
      valid.push_back(std::move(*decoded));
    } else if (const int e = decoded.error().errno_value(); e == EINVAL || e == EOPNOTSUPP) {
      // decode_superblock verified the checksum before the version and
      // features, so the generation and fsid are what the writer meant.
      note(offset, decoded.error().message());
      unsupported.push_back(
          {load_le64(block.data() + kGenerationOffset), fsid, std::move(decoded).error()});
    } else {
      note(offset, decoded.error().message());
      continue;
    }
    if (offset == kSuperblockOffsets[0]) primary_fsid = fsid;
  }

  // A copy with another fsid than a readable primary is left over from an
  // earlier filesystem on the same device (mkfs of a smaller filesystem
  // leaves the far copies alone on some devices); it must never win.
  const auto same_filesystem = [&](const std::array<uint8_t, kFsidSize>& fsid, uint64_t offset) {
    if (!primary_fsid || fsid == *primary_fsid) return true;
    note(offset, "belongs to another filesystem than the primary copy; ignored");
    return false;
  };
  const Superblock* best = nullptr;
  for (const Superblock& copy : valid) {
    if (!same_filesystem(copy.fsid, copy.bytenr)) continue;
    if (best == nullptr || copy.generation > best->generation) best = &copy;
  }
  const UnsupportedCopy* newest_unsupported = nullptr;
  for (const UnsupportedCopy& copy : unsupported) {
    if (primary_fsid && copy.fsid != *primary_fsid) continue;
    if (newest_unsupported == nullptr || copy.generation > newest_unsupported->generation) {
      newest_unsupported = &copy;
    }
  }
  if (newest_unsupported != nullptr &&
      (best == nullptr || newest_unsupported->generation >= best->generation)) {
    return std::unexpected(Error(newest_unsupported->error.errno_value(),
                                 device.describe() + ": " + newest_unsupported->error.message()));
  }
  if (best != nullptr) return *best;
  if (!saw_magic) {
    std::string where;
    for (size_t i = 0; i < offsets.size(); ++i) {
      where += (i == 0 ? "" : i + 1 == offsets.size() ? " or " : ", ") + offset_string(offsets[i]);
    }
    return fail(EIO,
                device.describe() + ": not an ecfs image (no superblock magic at " + where + ")");
  }
  std::string reasons;
  for (const std::string& problem : found) reasons += (reasons.empty() ? "" : "; ") + problem;
  return fail(EIO, device.describe() + ": no valid superblock (" + reasons + ")");
}

}  // namespace ecfs::store
