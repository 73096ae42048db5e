// Directory entries and xattr entries as stored: a DIR_ITEM holds every
// name of one hash, a DIR_INDEX item exactly one; the decoders refuse bytes
// that do not make whole entries, so a corrupt item is EUCLEAN, never a
// misread name or value.
#include "fs/items.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <string_view>

namespace ecfs::fs {
namespace {

Bytes name_bytes(std::string_view name) { return Bytes(name.begin(), name.end()); }

Bytes encoded(const std::vector<DirEntry>& entries) {
  Bytes out;
  for (const DirEntry& entry : entries) append_dir_entry(entry, out);
  return out;
}

const DirEntry kFile{300, 7, DT_REG, name_bytes("report.txt")};
const DirEntry kLink{301, 8, DT_LNK, name_bytes("latest")};

TEST(DirEntryItems, ANameHashItemDecodesEveryEntryInOrder) {
  const auto entries = decode_dir_entries(encoded({kFile, kLink}));
  ASSERT_TRUE(entries.has_value()) << entries.error().message();
  EXPECT_EQ(*entries, (std::vector<DirEntry>{kFile, kLink}));
}

TEST(DirEntryItems, AnIndexItemDecodesInPlace) {
  const Bytes data = encoded({kFile});
  const auto entry = decode_dir_index_entry(data);
  ASSERT_TRUE(entry.has_value()) << entry.error().message();
  EXPECT_EQ(entry->ino, kFile.ino);
  EXPECT_EQ(entry->index, kFile.index);
  EXPECT_EQ(entry->type, kFile.type);
  EXPECT_EQ(Bytes(entry->name.begin(), entry->name.end()), kFile.name);
  // A view into the item, not a copy.
  EXPECT_EQ(entry->name.data(), data.data() + kDirEntryHeaderSize);
}

TEST(DirEntryItems, AnIndexItemHoldsExactlyOneEntry) {
  EXPECT_EQ(decode_dir_index_entry(encoded({kFile, kLink})).error().errno_value(), EUCLEAN);
  Bytes trailing = encoded({kFile});
  trailing.push_back(0);
  EXPECT_EQ(decode_dir_index_entry(trailing).error().errno_value(), EUCLEAN);
  EXPECT_EQ(decode_dir_index_entry({}).error().errno_value(), EUCLEAN);
}

TEST(DirEntryItems, TruncatedOrEmptyNamesAreMalformed) {
  const Bytes whole = encoded({kFile, kLink});
  // Every cut short of the whole item: inside the second header, inside
  // its name, and nothing at all.
  for (size_t cut : {size_t{0}, whole.size() - kLink.name.size() - 3, whole.size() - 1}) {
    const ByteSpan part(whole.data(), cut);
    EXPECT_EQ(decode_dir_entries(part).error().errno_value(), EUCLEAN) << "cut at " << cut;
  }
  const Bytes nameless = encoded({DirEntry{300, 7, DT_REG, {}}});
  EXPECT_EQ(decode_dir_entries(nameless).error().errno_value(), EUCLEAN);
  EXPECT_EQ(decode_dir_index_entry(nameless).error().errno_value(), EUCLEAN);
}

// Xattr entries, inline and out of line, side by side in one item; an
// out-of-line entry holds exactly its 8-byte value id, a multiple of 64.
TEST(XattrItems, InlineAndOutOfLineEntriesRoundTrip) {
  const XattrEntry small{"user.small", Bytes{1, 2, 3}};
  const XattrEntry large{"user.large", {}, XattrOutOfLine{64 * 5, 65536}};
  Bytes item;
  append_xattr_entry(small, item);
  append_xattr_entry(large, item);
  EXPECT_EQ(item.size(), 2 * 6 + small.name.size() + 3 + large.name.size() + 8);
  const auto decoded = decode_xattr_entries(item);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(*decoded, (std::vector<XattrEntry>{small, large}));

  const auto refused = [](const XattrEntry& entry) {
    Bytes bad;
    append_xattr_entry(entry, bad);
    return decode_xattr_entries(bad).error().errno_value() == EUCLEAN;
  };
  EXPECT_TRUE(refused({"user.x", {}, XattrOutOfLine{63, 100}}));    // not a multiple of 64
  EXPECT_TRUE(refused({"user.x", {}, XattrOutOfLine{64, 0}}));      // empty
  EXPECT_TRUE(refused({"user.x", {}, XattrOutOfLine{64, 65537}}));  // beyond the VFS limit
  Bytes cut;
  append_xattr_entry(large, cut);
  cut.pop_back();
  EXPECT_EQ(decode_xattr_entries(cut).error().errno_value(), EUCLEAN);
}

}  // namespace
}  // namespace ecfs::fs
