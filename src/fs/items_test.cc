// Directory entries as stored: a DIR_ITEM holds every name of one hash, a
// DIR_INDEX item exactly one; both decoders refuse bytes that do not make
// whole entries, so a corrupt item is EUCLEAN, never a misread name.
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

}  // namespace
}  // namespace ecfs::fs
