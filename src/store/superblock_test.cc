#include "store/superblock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "block/memory_device.h"
#include "store/metadata_test_util.h"

namespace ecfs::store {
namespace {

using ::testing::ElementsAre;
using testing::error_of;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::kAllChecksumTypes;
using testing::message_of;
using testing::reference_crc32c;
using testing::reseal;
using ::testing::SizeIs;

constexpr uint64_t kPrimary = 64ull << 10;
constexpr uint64_t kSecond = 64ull << 20;
constexpr uint64_t kThird = 256ull << 30;

Superblock sample_superblock(uint64_t bytenr = kPrimary) {
  Superblock sb;
  for (size_t i = 0; i < kFsidSize; ++i) sb.fsid[i] = static_cast<uint8_t>(0x10 + i);
  sb.bytenr = bytenr;
  sb.generation = 0x1112131415161718;
  sb.compat_ro_flags = 0;
  sb.compat_flags = 0x8000000000000001;
  sb.checksum_type = ChecksumType::kCrc32c;
  sb.node_size = 16384;
  sb.total_bytes = 1ull << 30;
  sb.bytes_used = 0x2000000;
  sb.root_tree_bytenr = 0x404000;
  sb.root_tree_generation = 0x1112131415161700;
  sb.root_tree_level = 3;
  sb.label = "scratch";
  return sb;
}

std::array<uint8_t, kSuperblockSize> encode_or_fail(const Superblock& sb) {
  auto block = encode_superblock(sb);
  EXPECT_TRUE(block) << message_of(block);
  return block.value_or(std::array<uint8_t, kSuperblockSize>{});
}

// ---- Layout -----------------------------------------------------------------

TEST(SuperblockTest, LayoutIsPinned) {
  const auto block = encode_or_fail(sample_superblock());
  const Bytes expected = {// [32] fsid
                          0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b,
                          0x1c, 0x1d, 0x1e, 0x1f,
                          // [48] bytenr 64 KiB
                          0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                          // [56] magic "ECFS_SB1"
                          'E', 'C', 'F', 'S', '_', 'S', 'B', '1',
                          // [64] generation
                          0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
                          // [72] format version 1
                          0x01, 0x00, 0x00, 0x00,
                          // [76] checksum type 0 (crc32c), [78] root level 3, [79] zero
                          0x00, 0x00, 0x03, 0x00,
                          // [80] sector size 4096
                          0x00, 0x10, 0x00, 0x00,
                          // [84] node size 16384
                          0x00, 0x40, 0x00, 0x00,
                          // [88] incompat
                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                          // [96] compat_ro
                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                          // [104] compat
                          0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
                          // [112] total bytes 1 GiB
                          0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00,
                          // [120] bytes used
                          0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
                          // [128] root tree bytenr
                          0x00, 0x40, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
                          // [136] root tree generation
                          0x00, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
                          // [144] label, NUL-terminated
                          's', 'c', 'r', 'a', 't', 'c', 'h', 0x00};
  EXPECT_EQ(Bytes(block.begin() + 32, block.begin() + 152), expected);
  // The rest of the label field and everything up to the end is zero.
  for (size_t i = 152; i < kSuperblockSize; ++i) ASSERT_EQ(block[i], 0) << "byte " << i;
  EXPECT_EQ(load_le32(block.data()), reference_crc32c(ByteSpan(block).subspan(32)));
  for (size_t i = 4; i < 32; ++i) EXPECT_EQ(block[i], 0) << "checksum padding byte " << i;
}

TEST(SuperblockTest, MagicSpellsEcfsSb1) {
  uint8_t bytes[8];
  store_le64(bytes, kSuperblockMagic);
  EXPECT_EQ(std::string(bytes, bytes + 8), "ECFS_SB1");
}

TEST(SuperblockTest, ChecksumTypeIsStoredAndUsed) {
  for (ChecksumType type : kAllChecksumTypes) {
    Superblock sb = sample_superblock();
    sb.checksum_type = type;
    const auto block = encode_or_fail(sb);
    EXPECT_EQ(block[76] | (block[77] << 8), static_cast<int>(type));
    const Checksum expected = compute_checksum(type, ByteSpan(block).subspan(32));
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), block.begin())) << checksum_name(type);
  }
}

// ---- Round trips ------------------------------------------------------------

TEST(SuperblockTest, RoundTripsEveryChecksumTypeAndLabelLength) {
  for (ChecksumType type : kAllChecksumTypes) {
    for (size_t label_size : {size_t{0}, size_t{1}, size_t{100}, kMaxLabelSize}) {
      Superblock sb = sample_superblock(kSecond);
      sb.checksum_type = type;
      sb.label = std::string(label_size, 'L');
      if (label_size > 1) sb.label[1] = '\xff';  // any non-NUL byte is allowed
      auto decoded = decode_superblock(encode_or_fail(sb), kSecond);
      ASSERT_TRUE(decoded) << message_of(decoded);
      EXPECT_EQ(*decoded, sb);
    }
  }
}

TEST(SuperblockTest, RoundTripsExtremeValues) {
  Superblock sb = sample_superblock(kThird);
  sb.generation = UINT64_MAX;
  sb.root_tree_generation = UINT64_MAX;
  sb.compat_flags = UINT64_MAX;
  sb.compat_ro_flags = UINT64_MAX;  // unknown compat_ro: readable, read-only
  sb.node_size = kMaxNodeSize;
  sb.total_bytes = UINT64_MAX - (kSectorSize - 1);
  sb.bytes_used = sb.total_bytes;
  sb.root_tree_bytenr = (sb.total_bytes / kMaxNodeSize - 1) * kMaxNodeSize;  // the last node
  sb.root_tree_level = kMaxTreeLevel;
  auto decoded = decode_superblock(encode_or_fail(sb), kThird);
  ASSERT_TRUE(decoded) << message_of(decoded);
  EXPECT_EQ(*decoded, sb);
  EXPECT_EQ(unknown_compat_ro_flags(*decoded), UINT64_MAX & ~kCompatRoKnown);

  sb = sample_superblock();
  sb.node_size = kMinNodeSize;
  sb.total_bytes = kPrimary + kSuperblockSize + kMinNodeSize;  // the smallest image
  sb.root_tree_bytenr = sb.total_bytes - kMinNodeSize;
  sb.bytes_used = 0;
  decoded = decode_superblock(encode_or_fail(sb), kPrimary);
  ASSERT_TRUE(decoded) << message_of(decoded);
  EXPECT_EQ(*decoded, sb);
}

// ---- Encoder refusals -------------------------------------------------------

TEST(SuperblockTest, EncodeRefusesWhatCouldNotBeRead) {
  const auto refused = [](auto change) {
    Superblock sb = sample_superblock();
    change(sb);
    return error_of(encode_superblock(sb)) == EINVAL;
  };
  EXPECT_TRUE(refused([](Superblock& sb) { sb.label = std::string(256, 'x'); }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.label = std::string("a\0b", 3); }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.format_version = 2; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.incompat_flags = 1ull << 40; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.checksum_type = static_cast<ChecksumType>(4); }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.sector_size = 512; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.node_size = 2048; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.node_size = 16385; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.node_size = 12288; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.node_size = 131072; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.root_tree_bytenr = 0; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.root_tree_bytenr += 4096; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.root_tree_bytenr = sb.total_bytes; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.total_bytes = 4096; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.total_bytes += 1; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.bytes_used = sb.total_bytes + 1; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.root_tree_generation = sb.generation + 1; }));
  EXPECT_TRUE(refused([](Superblock& sb) { sb.root_tree_level = kMaxTreeLevel + 1; }));
  EXPECT_FALSE(refused([](Superblock&) {}));
}

// ---- Decoder: corruption ----------------------------------------------------

TEST(SuperblockTest, EveryByteFlipIsDetected) {
  for (ChecksumType type : {ChecksumType::kCrc32c, ChecksumType::kSha256}) {
    Superblock sb = sample_superblock();
    sb.checksum_type = type;
    auto block = encode_or_fail(sb);
    ASSERT_TRUE(decode_superblock(block, kPrimary));
    for (size_t i = 0; i < kSuperblockSize; ++i) {
      for (uint8_t mask : {uint8_t{0x01}, uint8_t{0xff}}) {
        block[i] ^= mask;
        auto decoded = decode_superblock(block, kPrimary);
        ASSERT_EQ(error_of(decoded), EIO) << "byte " << i << " mask " << int(mask);
        ASSERT_THAT(message_of(decoded), HasSubstr("superblock at byte 65536"));
        block[i] ^= mask;
      }
    }
  }
}

TEST(SuperblockTest, ChecksumMismatchIsNamed) {
  auto block = encode_or_fail(sample_superblock());
  block[300] ^= 4;
  auto decoded = decode_superblock(block, kPrimary);
  EXPECT_EQ(error_of(decoded), EIO);
  EXPECT_EQ(message_of(decoded), "checksum mismatch in superblock at byte 65536");
}

TEST(SuperblockTest, MissingMagicIsNamed) {
  std::array<uint8_t, kSuperblockSize> zeros{};
  auto decoded = decode_superblock(zeros, kPrimary);
  EXPECT_EQ(error_of(decoded), EIO);
  EXPECT_THAT(message_of(decoded), HasSubstr("no superblock magic"));
}

TEST(SuperblockTest, WrongSizeBlocksAreRefused) {
  const auto block = encode_or_fail(sample_superblock());
  for (size_t size : {size_t{0}, size_t{64}, size_t{4095}}) {
    EXPECT_EQ(error_of(decode_superblock(ByteSpan(block).first(size), kPrimary)), EIO) << size;
  }
  Bytes longer(block.begin(), block.end());
  longer.push_back(0);
  EXPECT_EQ(error_of(decode_superblock(longer, kPrimary)), EIO);
}

TEST(SuperblockTest, GarbageIsRefused) {
  std::mt19937_64 rng(5);
  std::array<uint8_t, kSuperblockSize> block;
  for (int round = 0; round < 200; ++round) {
    for (auto& b : block) b = static_cast<uint8_t>(rng());
    EXPECT_EQ(error_of(decode_superblock(block, kPrimary)), EIO);
    // With the magic and a valid checksum, the fields are still nonsense.
    store_le64(block.data() + 56, kSuperblockMagic);
    block[76] = 0;
    block[77] = 0;
    reseal(block);
    EXPECT_NE(error_of(decode_superblock(block, kPrimary)), 0);
  }
}

TEST(SuperblockTest, CopyAtAnotherOffsetIsRefused) {
  const auto block = encode_or_fail(sample_superblock(kPrimary));
  auto decoded = decode_superblock(block, kSecond);
  EXPECT_EQ(error_of(decoded), EIO);
  EXPECT_THAT(message_of(decoded), HasSubstr("header names byte 65536"));
}

// ---- Decoder: versions, features, field ranges (re-sealed) ------------------

// Applies `change` to an encoded sample and re-seals it.
template <typename Change>
Result<Superblock> decode_changed(Change change, ChecksumType type = ChecksumType::kCrc32c) {
  Superblock sb = sample_superblock();
  sb.checksum_type = type;
  auto block = encode_or_fail(sb);
  change(block.data());
  reseal(block, type);
  return decode_superblock(block, kPrimary);
}

TEST(SuperblockTest, OtherFormatVersionIsEinvalAndNamed) {
  for (uint32_t version : {0u, 2u, 0xFFFFFFFFu}) {
    auto decoded = decode_changed([&](uint8_t* p) { store_le32(p + 72, version); });
    EXPECT_EQ(error_of(decoded), EINVAL);
    EXPECT_THAT(message_of(decoded), HasSubstr("format version " + std::to_string(version) +
                                               " is not supported (this build reads version 1)"));
  }
}

TEST(SuperblockTest, UnknownIncompatFeaturesAreEopnotsupp) {
  auto decoded = decode_changed([](uint8_t* p) { store_le64(p + 88, 0x20); });
  EXPECT_EQ(error_of(decoded), EOPNOTSUPP);
  EXPECT_THAT(message_of(decoded), HasSubstr("unknown incompatible features 0x20"));
  decoded = decode_changed([](uint8_t* p) { store_le64(p + 88, 1ull << 63); });
  EXPECT_EQ(error_of(decoded), EOPNOTSUPP);
  EXPECT_THAT(message_of(decoded), HasSubstr("0x8000000000000000"));
}

TEST(SuperblockTest, UnknownCompatRoAndCompatFeaturesDecode) {
  auto decoded = decode_changed([](uint8_t* p) {
    store_le64(p + 96, 0x4);
    store_le64(p + 104, 0x77);
  });
  ASSERT_TRUE(decoded) << message_of(decoded);
  EXPECT_EQ(decoded->compat_ro_flags, 0x4u);
  EXPECT_EQ(unknown_compat_ro_flags(*decoded), 0x4u);
  EXPECT_EQ(decoded->compat_flags, 0x77u);
}

TEST(SuperblockTest, FieldsOutOfRangeAreEio) {
  struct Case {
    const char* rule;
    void (*change)(uint8_t*);
  };
  const Case cases[] = {
      {"sector size 512", [](uint8_t* p) { store_le32(p + 80, 512); }},
      {"node size 2048", [](uint8_t* p) { store_le32(p + 84, 2048); }},
      {"node size 24576", [](uint8_t* p) { store_le32(p + 84, 24576); }},
      {"node size 131072", [](uint8_t* p) { store_le32(p + 84, 131072); }},
      {"root tree level 9", [](uint8_t* p) { p[78] = 9; }},
      {"total size 4096 bytes", [](uint8_t* p) { store_le64(p + 112, 4096); }},
      {"total size 1073741825", [](uint8_t* p) { store_le64(p + 112, (1ull << 30) + 1); }},
      {"exceed the total size", [](uint8_t* p) { store_le64(p + 120, (1ull << 30) + 1); }},
      {"root tree at byte 0 ", [](uint8_t* p) { store_le64(p + 128, 0); }},
      {"not aligned to the node size", [](uint8_t* p) { store_le64(p + 128, 0x405000); }},
      {"beyond the total size", [](uint8_t* p) { store_le64(p + 128, 1ull << 30); }},
      {"is newer than the superblock's",
       [](uint8_t* p) { store_le64(p + 136, 0x1112131415161719); }},
      {"label is not NUL-terminated", [](uint8_t* p) { std::fill(p + 144, p + 400, 'x'); }},
      {"bytes after the label's NUL", [](uint8_t* p) { p[399] = 'x'; }},
      {"reserved bytes", [](uint8_t* p) { p[79] = 1; }},
      {"reserved bytes", [](uint8_t* p) { p[400] = 1; }},
      {"reserved bytes", [](uint8_t* p) { p[4095] = 0x80; }},
  };
  for (const Case& c : cases) {
    auto decoded = decode_changed(c.change);
    EXPECT_EQ(error_of(decoded), EIO) << c.rule;
    EXPECT_THAT(message_of(decoded), HasSubstr(c.rule));
    EXPECT_THAT(message_of(decoded), HasSubstr("superblock at byte 65536"));
  }
}

TEST(SuperblockTest, UnknownChecksumTypeIsEio) {
  auto block = encode_or_fail(sample_superblock());
  block[76] = 4;
  auto decoded = decode_superblock(block, kPrimary);
  EXPECT_EQ(error_of(decoded), EIO);
  EXPECT_THAT(message_of(decoded), HasSubstr("unknown checksum type 4"));
  block[76] = 0;
  block[77] = 1;  // 256
  EXPECT_THAT(message_of(decode_superblock(block, kPrimary)),
              HasSubstr("unknown checksum type 256"));
}

// ---- Copies -------------------------------------------------------------------

TEST(SuperblockTest, OffsetsThatFit) {
  EXPECT_THAT(superblock_offsets_for(0), IsEmpty());
  EXPECT_THAT(superblock_offsets_for(kPrimary + 4095), IsEmpty());
  EXPECT_THAT(superblock_offsets_for(kPrimary + 4096), ElementsAre(kPrimary));
  EXPECT_THAT(superblock_offsets_for(kSecond + 4095), ElementsAre(kPrimary));
  EXPECT_THAT(superblock_offsets_for(kSecond + 4096), ElementsAre(kPrimary, kSecond));
  EXPECT_THAT(superblock_offsets_for(kThird + 4095), ElementsAre(kPrimary, kSecond));
  EXPECT_THAT(superblock_offsets_for(kThird + 4096), ElementsAre(kPrimary, kSecond, kThird));
  EXPECT_THAT(superblock_offsets_for(UINT64_MAX), ElementsAre(kPrimary, kSecond, kThird));
}

class NewestSuperblockTest : public ::testing::Test {
 protected:
  // Large enough for two copies (sparse: only written blocks take memory).
  static constexpr uint64_t kDeviceSize = kSecond + (1ull << 20);

  Superblock copy(uint64_t bytenr, uint64_t generation) {
    Superblock sb = sample_superblock(bytenr);
    sb.total_bytes = kDeviceSize;
    sb.bytes_used = 1u << 20;
    sb.root_tree_bytenr = 2 * sb.node_size;
    sb.generation = generation;
    sb.root_tree_generation = generation;
    return sb;
  }
  void write(const Superblock& sb) {
    const auto block = encode_or_fail(sb);
    ASSERT_TRUE(device_.write(sb.bytenr, block));
  }
  void flip_byte(uint64_t offset) {
    uint8_t byte;
    ASSERT_TRUE(device_.read_at(offset, {&byte, 1}));
    byte ^= 0x10;
    ASSERT_TRUE(device_.write_at(offset, {&byte, 1}));
  }

  block::MemoryDevice device_{kDeviceSize, "test image"};
  std::vector<std::string> problems_;
};

TEST_F(NewestSuperblockTest, PicksTheHighestGeneration) {
  write(copy(kPrimary, 5));
  write(copy(kSecond, 7));
  auto sb = read_newest_superblock(device_, &problems_);
  ASSERT_TRUE(sb) << message_of(sb);
  EXPECT_EQ(sb->generation, 7u);
  EXPECT_EQ(sb->bytenr, kSecond);
  EXPECT_THAT(problems_, IsEmpty());

  write(copy(kPrimary, 8));
  sb = read_newest_superblock(device_);
  ASSERT_TRUE(sb) << message_of(sb);
  EXPECT_EQ(sb->generation, 8u);
  EXPECT_EQ(sb->bytenr, kPrimary);
}

TEST_F(NewestSuperblockTest, CorruptNewestCopyFallsBackToTheOlderOne) {
  write(copy(kPrimary, 5));
  write(copy(kSecond, 7));
  flip_byte(kSecond + 1000);
  auto sb = read_newest_superblock(device_, &problems_);
  ASSERT_TRUE(sb) << message_of(sb);
  EXPECT_EQ(sb->generation, 5u);
  ASSERT_THAT(problems_, SizeIs(1));
  EXPECT_THAT(problems_[0], HasSubstr("copy at 64 MiB"));
  EXPECT_THAT(problems_[0], HasSubstr("checksum mismatch"));
}

TEST_F(NewestSuperblockTest, MissingCopyIsReportedAndSkipped) {
  write(copy(kSecond, 3));
  auto sb = read_newest_superblock(device_, &problems_);
  ASSERT_TRUE(sb) << message_of(sb);
  EXPECT_EQ(sb->bytenr, kSecond);
  ASSERT_THAT(problems_, SizeIs(1));
  EXPECT_THAT(problems_[0], HasSubstr("copy at 64 KiB"));
  EXPECT_THAT(problems_[0], HasSubstr("no superblock magic"));
}

TEST_F(NewestSuperblockTest, NoMagicAnywhereIsNotAnEcfsImage) {
  auto sb = read_newest_superblock(device_, &problems_);
  EXPECT_EQ(error_of(sb), EIO);
  EXPECT_EQ(message_of(sb),
            "test image: not an ecfs image (no superblock magic at 64 KiB or 64 MiB)");
  EXPECT_THAT(problems_, SizeIs(2));
}

TEST_F(NewestSuperblockTest, NoValidCopyIsEioWithTheReasons) {
  write(copy(kPrimary, 5));
  write(copy(kSecond, 7));
  flip_byte(kPrimary + 100);
  flip_byte(kSecond + 4000);
  auto sb = read_newest_superblock(device_, &problems_);
  EXPECT_EQ(error_of(sb), EIO);
  EXPECT_THAT(message_of(sb), HasSubstr("test image: no valid superblock"));
  EXPECT_THAT(message_of(sb), HasSubstr("checksum mismatch in superblock at byte 65536"));
  EXPECT_THAT(message_of(sb), HasSubstr("checksum mismatch in superblock at byte 67108864"));
  EXPECT_THAT(problems_, SizeIs(2));
}

TEST_F(NewestSuperblockTest, CopyOfAnotherFilesystemIsIgnored) {
  write(copy(kPrimary, 5));
  Superblock stale = copy(kSecond, 900);
  stale.fsid[0] ^= 0xFF;
  write(stale);
  auto sb = read_newest_superblock(device_, &problems_);
  ASSERT_TRUE(sb) << message_of(sb);
  EXPECT_EQ(sb->generation, 5u);
  ASSERT_THAT(problems_, SizeIs(1));
  EXPECT_THAT(problems_[0], HasSubstr("another filesystem"));
}

TEST_F(NewestSuperblockTest, CopyLargerThanTheDeviceIsSkipped) {
  write(copy(kPrimary, 5));
  Superblock too_big = copy(kSecond, 6);
  too_big.total_bytes = kDeviceSize + kSectorSize;
  write(too_big);
  auto sb = read_newest_superblock(device_, &problems_);
  ASSERT_TRUE(sb) << message_of(sb);
  EXPECT_EQ(sb->generation, 5u);
  ASSERT_THAT(problems_, SizeIs(1));
  EXPECT_THAT(problems_[0], HasSubstr("exceeds the device"));
}

// Writes `sb` with `version` in place of the format version (re-sealed).
void write_with_version(block::MemoryDevice& device, const Superblock& sb, uint32_t version) {
  auto block = encode_or_fail(sb);
  store_le32(block.data() + 72, version);
  reseal(block);
  ASSERT_TRUE(device.write(sb.bytenr, block));
}

TEST_F(NewestSuperblockTest, NewerUnsupportedCopyIsNotRolledBackFrom) {
  write(copy(kPrimary, 5));
  write_with_version(device_, copy(kSecond, 6), 2);
  auto sb = read_newest_superblock(device_, &problems_);
  EXPECT_EQ(error_of(sb), EINVAL);
  EXPECT_THAT(message_of(sb), HasSubstr("format version 2"));
}

TEST_F(NewestSuperblockTest, OlderUnsupportedCopyDoesNotHideTheNewest) {
  write(copy(kPrimary, 9));
  write_with_version(device_, copy(kSecond, 6), 2);
  auto sb = read_newest_superblock(device_, &problems_);
  ASSERT_TRUE(sb) << message_of(sb);
  EXPECT_EQ(sb->generation, 9u);
  EXPECT_THAT(problems_, SizeIs(1));
}

TEST_F(NewestSuperblockTest, OnlyTheCopiesThatFitAreRead) {
  block::MemoryDevice small{1u << 20, "small image"};
  Superblock sb = copy(kPrimary, 4);
  sb.total_bytes = 1u << 20;
  ASSERT_TRUE(small.write(kPrimary, encode_or_fail(sb)));
  auto read = read_newest_superblock(small, &problems_);
  ASSERT_TRUE(read) << message_of(read);
  EXPECT_EQ(*read, sb);
  EXPECT_THAT(problems_, IsEmpty());
}

TEST_F(NewestSuperblockTest, DeviceTooSmallForAnySuperblock) {
  block::MemoryDevice tiny{kPrimary, "tiny image"};
  auto read = read_newest_superblock(tiny);
  EXPECT_EQ(error_of(read), EIO);
  EXPECT_THAT(message_of(read), HasSubstr("tiny image: not an ecfs image"));
}

}  // namespace
}  // namespace ecfs::store
