// Unit tests of the text helpers behind `ecfs mkfs`, `fsck` and `inspect`:
// size parsing and printing (binary units, as mkfs.btrfs and truncate(1)),
// UUID text (RFC 9562 section 4 layout), and the JSON writer (RFC 8259
// escaping, checked by parsing the output with python3's json module).
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "cli/help_formatter.h"
#include "cli/json_writer.h"
#include "cli/size_parse.h"
#include "cli/store_text.h"
#include "cli_test_util.h"
#include "store/superblock.h"
#include "store/tree_ids.h"

namespace ecfs::cli {
namespace {

TEST(ParseSizeTest, PlainNumbersAreBytes) {
  EXPECT_EQ(parse_size("0").value(), 0u);
  EXPECT_EQ(parse_size("4096").value(), 4096u);
  EXPECT_EQ(parse_size("18446744073709551615").value(), UINT64_MAX);
}

TEST(ParseSizeTest, UnitsAreBinaryInEitherCaseWithOptionalBOrIB) {
  EXPECT_EQ(parse_size("16K").value(), 16384u);
  EXPECT_EQ(parse_size("16k").value(), 16384u);
  EXPECT_EQ(parse_size("128M").value(), 128ull << 20);
  EXPECT_EQ(parse_size("8G").value(), 8ull << 30);
  EXPECT_EQ(parse_size("8GiB").value(), 8ull << 30);
  EXPECT_EQ(parse_size("8GB").value(), 8ull << 30);
  EXPECT_EQ(parse_size("2T").value(), 2ull << 40);
  EXPECT_EQ(parse_size("3P").value(), 3ull << 50);
  EXPECT_EQ(parse_size("15E").value(), 15ull << 60);
}

TEST(ParseSizeTest, RejectsEverythingElseWithEinval) {
  for (const char* text : {"", "K", "-1", "+1", " 1", "1 ", "1.5G", "8Q", "8KK", "8Gi", "8GiBs",
                           "0x10", "18446744073709551616", "16E", "16777216T"}) {
    SCOPED_TRACE(text);
    auto parsed = parse_size(text);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().errno_value(), EINVAL);
    EXPECT_NE(parsed.error().message().find(std::string("'") + text + "'"), std::string::npos);
  }
}

TEST(FormatSizeTest, TwoDecimalsInTheLargestUnit) {
  EXPECT_EQ(format_size(0), "0B");
  EXPECT_EQ(format_size(1023), "1023B");
  EXPECT_EQ(format_size(1024), "1.00KiB");
  EXPECT_EQ(format_size(65536), "64.00KiB");
  EXPECT_EQ(format_size(1536ull << 20), "1.50GiB");
  EXPECT_EQ(format_size(8ull << 30), "8.00GiB");
  EXPECT_EQ(format_size(UINT64_MAX), "16.00EiB");
}

TEST(UuidTest, RoundTripsAndAcceptsUpperCase) {
  const Fsid fsid = {0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78,
                     0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0};
  EXPECT_EQ(format_uuid(fsid), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  EXPECT_EQ(parse_uuid("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0").value(), fsid);
  EXPECT_EQ(parse_uuid("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0").value(), fsid);
}

TEST(UuidTest, RejectsOtherShapes) {
  for (const char* text :
       {"", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f",
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f00", "0f1e2d3c-4b5a6-978-8796-a5b4c3d2e1f0",
        "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg", "{0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1}"}) {
    SCOPED_TRACE(text);
    auto parsed = parse_uuid(text);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().errno_value(), EINVAL);
  }
}

TEST(StoreNamesTest, WellKnownTreesAndItemTypes) {
  EXPECT_EQ(tree_name(store::kRootTreeId), "ROOT_TREE");
  EXPECT_EQ(tree_name(store::kExtentTreeId), "EXTENT_TREE");
  EXPECT_EQ(tree_name(store::kFsTreeId), "FS_TREE");
  EXPECT_EQ(tree_name(store::kCsumTreeId), "CSUM_TREE");
  EXPECT_EQ(tree_name(256), "SUBVOLUME");
  EXPECT_EQ(tree_name(3), "TREE");
  // btrfs_tree.h numbers.
  EXPECT_EQ(item_type_name(132), "ROOT_ITEM");
  EXPECT_EQ(item_type_name(168), "EXTENT_ITEM");
  EXPECT_EQ(item_type_name(169), "METADATA_ITEM");
  EXPECT_EQ(item_type_name(178), "EXTENT_DATA_REF");
  EXPECT_EQ(item_type_name(108), "EXTENT_DATA");
  EXPECT_EQ(item_type_name(1), "UNKNOWN");
}

TEST(StoreNamesTest, FilesystemTreesAreFsTreeAndSubvolumes) {
  EXPECT_TRUE(is_filesystem_tree(store::kFsTreeId));
  EXPECT_TRUE(is_filesystem_tree(256));
  EXPECT_TRUE(is_filesystem_tree(300));
  EXPECT_FALSE(is_filesystem_tree(store::kRootTreeId));
  EXPECT_FALSE(is_filesystem_tree(store::kExtentTreeId));
  EXPECT_FALSE(is_filesystem_tree(store::kCsumTreeId));
  EXPECT_FALSE(is_filesystem_tree(3));
  EXPECT_FALSE(is_filesystem_tree(255));
}

TEST(StoreNamesTest, ItemTypesAreNamedByTheirTree) {
  struct Case {
    uint64_t tree_id;
    uint8_t type;
    const char* name;
  };
  const Case cases[] = {
      // Filesystem items (docs/FORMAT.md "Filesystem items") in FS_TREE and
      // in subvolumes.
      {store::kFsTreeId, 1, "INODE_ITEM"},
      {store::kFsTreeId, 12, "INODE_REF"},
      {store::kFsTreeId, 24, "XATTR_ITEM"},
      {store::kFsTreeId, 41, "FSCRYPT_INODE_CTX"},
      {store::kFsTreeId, 48, "ORPHAN_ITEM"},
      {store::kFsTreeId, 84, "DIR_ITEM"},
      {store::kFsTreeId, 96, "DIR_INDEX"},
      {store::kFsTreeId, 108, "EXTENT_DATA"},
      {store::kFsTreeId, 110, "SYMLINK_TARGET"},
      {256, 1, "INODE_ITEM"},
      // An engine type has no place in a filesystem tree, nor a filesystem
      // type in the engine's own trees.
      {store::kFsTreeId, 132, "UNKNOWN"},
      {store::kRootTreeId, 1, "UNKNOWN"},
      {store::kExtentTreeId, 84, "UNKNOWN"},
      // The engine's trees keep the engine's names.
      {store::kRootTreeId, 132, "ROOT_ITEM"},
      {store::kExtentTreeId, 169, "METADATA_ITEM"},
      {store::kCsumTreeId, 128, "EXTENT_CSUM"},
      {3, 108, "EXTENT_DATA"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("tree " + std::to_string(c.tree_id) + " type " + std::to_string(c.type));
    EXPECT_EQ(item_type_name(c.tree_id, c.type), c.name);
  }
}

TEST(StoreNamesTest, KeyTextNamesTheTypeOrGivesItsNumber) {
  EXPECT_EQ(key_text(store::kFsTreeId, store::Key{256, 1, 0}), "(256 INODE_ITEM 0)");
  EXPECT_EQ(key_text(257, store::Key{258, 84, 12345}), "(258 DIR_ITEM 12345)");
  EXPECT_EQ(key_text(store::kRootTreeId, store::Key{5, 132, 0}), "(5 ROOT_ITEM 0)");
  EXPECT_EQ(key_text(store::kFsTreeId, store::Key{256, 200, 7}), "(256 UNKNOWN/200 7)");
  EXPECT_EQ(key_text(store::kExtentTreeId, store::Key{4096, 1, 0}), "(4096 UNKNOWN/1 0)");
}

TEST(JsonQuoteTest, EscapesPerRfc8259) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_quote("\n\t\r"), "\"\\n\\t\\r\"");
  EXPECT_EQ(json_quote(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(json_quote(std::string("\0", 1)), "\"\\u0000\"");
  // Valid UTF-8 passes through; invalid bytes become \u00XX.
  EXPECT_EQ(json_quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(json_quote("\xff\xc3"), "\"\\u00ff\\u00c3\"");
  EXPECT_EQ(json_quote("\xc0\xaf"), "\"\\u00c0\\u00af\"");             // overlong '/'
  EXPECT_EQ(json_quote("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");  // a surrogate
}

TEST(JsonWriterTest, NestedDocumentIsExactAndParses) {
  JsonWriter json;
  json.begin_object();
  json.field("name", "tree");
  json.field("id", uint64_t{5});
  json.field("big", UINT64_MAX);
  json.field("before", int64_t{-1796671104});
  json.field("lowest", INT64_MIN);
  json.field("clean", true);
  json.key("empty");
  json.begin_array();
  json.end_array();
  json.key("list");
  json.begin_array();
  json.value(uint8_t{1});
  json.null_value();
  json.begin_object();
  json.end_object();
  json.end_array();
  json.end_object();
  EXPECT_EQ(json.text(),
            "{\n"
            "  \"name\": \"tree\",\n"
            "  \"id\": 5,\n"
            "  \"big\": 18446744073709551615,\n"
            "  \"before\": -1796671104,\n"
            "  \"lowest\": -9223372036854775808,\n"
            "  \"clean\": true,\n"
            "  \"empty\": [],\n"
            "  \"list\": [\n"
            "    1,\n"
            "    null,\n"
            "    {}\n"
            "  ]\n"
            "}\n");
  if (!cli_test::python3_available()) GTEST_SKIP() << "python3 not installed";
  cli_test::ScratchDir scratch;
  const cli_test::Outcome parsed = cli_test::python_json(
      json.text(), "d['big'], d['before'], d['list'], d['clean']", scratch.path());
  EXPECT_EQ(parsed.exit_status, 0) << parsed.describe();
  EXPECT_EQ(parsed.out, "18446744073709551615 -1796671104 [1, None, {}] True");
}

// A description's usage forms are found only in the paragraph after the
// summary, and only when the paragraph is nothing else.
TEST(HelpFormatterTest, SplitsSummaryFormsAndRest) {
  const HelpDescription full = split_description(
      "do a thing\n"
      "\n"
      "  ecfs thing add X\n"
      "  ecfs thing set DIR KEY [--long N]\n"
      "                 [--longer M]\n"
      "\n"
      "More text.\n"
      "\n"
      "  ecfs thing example inside prose");
  EXPECT_EQ(full.summary, "do a thing");
  EXPECT_EQ(full.forms, (std::vector<std::string>{
                            "ecfs thing add X", "ecfs thing set DIR KEY [--long N] [--longer M]"}));
  EXPECT_EQ(full.rest, "More text.\n\n  ecfs thing example inside prose");

  const HelpDescription prose = split_description("summary\n\nText first.\n  ecfs x");
  EXPECT_TRUE(prose.forms.empty());
  EXPECT_EQ(prose.rest, "Text first.\n  ecfs x");
  const HelpDescription mixed = split_description("summary\n\n  ecfs x\nthen text");
  EXPECT_TRUE(mixed.forms.empty());
  EXPECT_EQ(mixed.rest, "  ecfs x\nthen text");
  // A line of spaces ends the forms (it is not a continuation).
  const HelpDescription blank = split_description("s\n\n  ecfs x\n     \nrest");
  EXPECT_TRUE(blank.forms.empty());
  const HelpDescription alone = split_description("just a summary");
  EXPECT_EQ(alone.summary, "just a summary");
  EXPECT_TRUE(alone.forms.empty() && alone.rest.empty());
  EXPECT_EQ(split_description("").summary, "");
}

// The superblock's feature bits by name, unknown bits in hex; each mask has
// its own names (bit 0 is a different feature in each).
TEST(StoreTextTest, FeatureNames) {
  EXPECT_EQ(feature_names(FeatureMask::kIncompat, 0), "");
  EXPECT_EQ(feature_names(FeatureMask::kIncompat, 0x3), "large_xattr_values, subvolumes");
  EXPECT_EQ(feature_names(FeatureMask::kCompatRo, 0x1), "free_space_tree");
  EXPECT_EQ(feature_names(FeatureMask::kCompat, 0x1), "image_origin");
  EXPECT_EQ(feature_names(FeatureMask::kCompat, 0x11), "image_origin, unknown 0x10");
  EXPECT_EQ(feature_names(FeatureMask::kCompatRo, 0x8000000000000000ull),
            "unknown 0x8000000000000000");
  EXPECT_EQ(item_type_name(249), "PERSISTENT_ITEM");
  // Every bit this build knows has a name (ecfs --version lists them).
  EXPECT_EQ(feature_names(FeatureMask::kIncompat, store::kIncompatKnown).find("unknown"),
            std::string::npos);
  EXPECT_EQ(feature_names(FeatureMask::kCompatRo, store::kCompatRoKnown).find("unknown"),
            std::string::npos);
  EXPECT_EQ(feature_names(FeatureMask::kCompat, store::kCompatKnown).find("unknown"),
            std::string::npos);
}

TEST(JsonWriterTest, HostileStringsStillParse) {
  if (!cli_test::python3_available()) GTEST_SKIP() << "python3 not installed";
  std::string every_byte;
  for (int c = 0; c < 256; ++c) every_byte.push_back(static_cast<char>(c));
  JsonWriter json;
  json.begin_object();
  json.field(every_byte, every_byte);
  json.end_object();
  cli_test::ScratchDir scratch;
  const cli_test::Outcome parsed = cli_test::python_json(
      json.text(), "[len(k) for k in d], list(d.values())[0] == list(d)[0]", scratch.path());
  EXPECT_EQ(parsed.exit_status, 0) << parsed.describe();
  EXPECT_EQ(parsed.out, "[256] True");  // each byte became one character
}

}  // namespace
}  // namespace ecfs::cli
