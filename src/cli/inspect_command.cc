#include "cli/inspect_command.h"

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "block/file_device.h"
#include "cli/json_writer.h"
#include "cli/store_text.h"
#include "store/checksum.h"
#include "store/items.h"
#include "store/node.h"
#include "store/superblock.h"
#include "store/tree_ids.h"

namespace ecfs::cli {
namespace {

constexpr const char* kDescription =
    "dump the superblock and trees of an ecfs image (read-only)\n"
    "\n"
    "  ecfs inspect [--json] [--tree ID] IMAGE\n"
    "\n"
    "Prints every superblock copy's state, every field of the superblock in use, and\n"
    "each tree node by node: keys as (objectid TYPE offset), item sizes, and item\n"
    "contents decoded where the engine defines the type (root items, extent items,\n"
    "data references, file extent heads), in hex otherwise. --tree limits the dump to\n"
    "one tree (1 is the root tree, 2 the extent tree, 5 the top-level subvolume).";

constexpr const char* kFooter =
    "Exit status: 0 when everything was read; 1 when the image or part of a tree could\n"
    "not be read (what was read is still printed); 2 for bad options.";

struct InspectArgs {
  std::string image;
  bool json = false;
  std::optional<uint64_t> tree;
};

// An item's contents as named numbers, shared by both output formats.
struct DecodedItem {
  std::string kind;  // "root_item", ...; empty when not decoded
  std::vector<std::pair<std::string, uint64_t>> fields;
  std::string extra_hex;  // bytes after a decoded head (EXTENT_DATA)
  std::optional<std::string> error;
};

DecodedItem decode_item(const store::Key& key, ByteSpan data) {
  DecodedItem out;
  const auto failed = [&](const Error& error) { out.error = error.message(); };
  switch (key.type) {
    case store::kRootItemKey: {
      auto item = store::decode_root_item(data);
      if (!item) {
        failed(item.error());
        break;
      }
      out.kind = "root_item";
      out.fields = {{"bytenr", item->root.bytenr},
                    {"generation", item->root.generation},
                    {"level", item->root.level},
                    {"refs", item->refs},
                    {"last_snapshot", item->last_snapshot},
                    {"flags", item->flags}};
      break;
    }
    case store::kExtentItemKey:
    case store::kMetadataItemKey: {
      auto item = store::decode_extent_item(data);
      if (!item) {
        failed(item.error());
        break;
      }
      out.kind = "extent_item";
      out.fields = {{"refs", item->refs},
                    {"generation", item->generation},
                    {"flags", item->flags},
                    {"owner", item->owner},
                    {"level", item->level}};
      break;
    }
    case store::kExtentDataRefKey: {
      auto item = store::decode_data_ref_item(data);
      if (!item) {
        failed(item.error());
        break;
      }
      out.kind = "data_ref";
      out.fields = {{"root", item->ref.root},     {"objectid", item->ref.objectid},
                    {"offset", item->ref.offset}, {"extent_offset", item->ref.extent_offset},
                    {"length", item->ref.length}, {"count", item->count}};
      break;
    }
    case store::kExtentDataKey: {
      auto ref = store::decode_file_extent_ref(data);
      if (!ref) {
        failed(ref.error());
        break;
      }
      out.kind = "file_extent";
      out.fields = {{"disk_bytenr", ref->disk_bytenr},
                    {"disk_length", ref->disk_length},
                    {"extent_offset", ref->extent_offset},
                    {"length", ref->length}};
      out.extra_hex = to_hex(data.subspan(store::kFileExtentRefSize));
      break;
    }
    default:
      break;
  }
  return out;
}

// --------------------------------------------------------------- gathering

struct SuperblockCopy {
  uint64_t offset = 0;
  std::optional<store::Superblock> superblock;
  std::string error;
};

struct TreeDump {
  uint64_t id = 0;
  std::optional<store::RootItem> root_item;  // absent for the root tree
  store::RootRef root;
  std::vector<store::Node> nodes;  // parents before children, in key order
  std::vector<std::string> errors;
};

struct Dump {
  std::vector<SuperblockCopy> copies;
  std::optional<store::Superblock> superblock;
  std::vector<TreeDump> trees;
  std::vector<std::string> errors;
};

std::vector<SuperblockCopy> read_copies(block::BlockDevice& device) {
  std::vector<SuperblockCopy> copies;
  std::array<uint8_t, store::kSuperblockSize> block;
  for (uint64_t offset : store::superblock_offsets_for(device.size())) {
    SuperblockCopy copy;
    copy.offset = offset;
    if (Status read = device.read(offset, block); !read) {
      copy.error = read.error().message();
    } else if (auto sb = store::decode_superblock(block, offset); !sb) {
      copy.error = sb.error().message();
    } else {
      copy.superblock = std::move(*sb);
    }
    copies.push_back(std::move(copy));
  }
  return copies;
}

// Reads trees straight from the device with the node codec rather than
// through Engine::open, so that a damaged extent tree (which the engine
// needs to open) or a damaged subtree does not hide the rest: a node that
// does not read or decode is reported and its subtree skipped.
class TreeWalker {
 public:
  TreeWalker(block::BlockDevice& device, const store::Superblock& sb)
      : device_(device), sb_(sb), block_(sb.node_size) {}

  void walk(TreeDump& tree) {
    visit(tree, tree.root.bytenr, tree.root.generation, tree.root.level);
  }

 private:
  void visit(TreeDump& tree, uint64_t bytenr, uint64_t generation, uint8_t level) {
    // A node shared by two trees (a clone) is dumped in each; within one
    // walk a node is read once, so even a corrupt image cannot make the
    // walk longer than the number of nodes the device can hold.
    if (!visited_.insert({tree.id, bytenr}).second) return;
    if (Status read = device_.read(bytenr, block_); !read) {
      tree.errors.push_back(read.error().message());
      return;
    }
    store::NodeExpectation expect;
    expect.fsid = sb_.fsid;
    expect.node_size = sb_.node_size;
    expect.checksum_type = sb_.checksum_type;
    expect.bytenr = bytenr;
    expect.generation = generation;
    expect.level = level;
    auto node = store::decode_node(block_, expect);
    if (!node) {
      tree.errors.push_back(node.error().message());
      return;
    }
    tree.nodes.push_back(*node);
    if (node->is_leaf()) return;
    for (const store::KeyPtr& child : node->children) {
      visit(tree, child.bytenr, child.generation, static_cast<uint8_t>(node->level - 1));
    }
  }

  block::BlockDevice& device_;
  const store::Superblock& sb_;
  Bytes block_;
  std::set<std::pair<uint64_t, uint64_t>> visited_;  // (tree id, bytenr)
};

Dump gather(const InspectArgs& args) {
  Dump dump;
  block::FileDeviceOptions device_options;
  device_options.read_only = true;
  auto device = block::open_file_device(args.image, device_options);
  if (!device) {
    dump.errors.push_back(device.error().message());
    return dump;
  }
  dump.copies = read_copies(**device);
  auto sb = store::read_newest_superblock(**device);
  if (!sb) {
    dump.errors.push_back(sb.error().message());
    return dump;
  }
  dump.superblock = *sb;
  TreeWalker walker(**device, *sb);

  TreeDump root_tree;
  root_tree.id = store::kRootTreeId;
  root_tree.root = {sb->root_tree_bytenr, sb->root_tree_generation, sb->root_tree_level};
  walker.walk(root_tree);
  // The other trees are where the root tree's ROOT_ITEMs say.
  std::vector<TreeDump> trees;
  for (const store::Node& node : root_tree.nodes) {
    if (!node.is_leaf()) continue;
    for (const store::LeafItem& item : node.items) {
      if (item.key.type != store::kRootItemKey) continue;
      TreeDump tree;
      tree.id = item.key.objectid;
      if (auto root_item = store::decode_root_item(item.data); root_item) {
        tree.root_item = *root_item;
        tree.root = root_item->root;
      } else {
        tree.errors.push_back("root item: " + root_item.error().message());
      }
      trees.push_back(std::move(tree));
    }
  }
  const bool root_tree_complete = root_tree.errors.empty();
  trees.insert(trees.begin(), std::move(root_tree));

  for (TreeDump& tree : trees) {
    if (args.tree && tree.id != *args.tree) continue;
    if (tree.id != store::kRootTreeId && tree.errors.empty()) walker.walk(tree);
    for (const std::string& error : tree.errors) {
      dump.errors.push_back("tree " + std::to_string(tree.id) + ": " + error);
    }
    dump.trees.push_back(std::move(tree));
  }
  if (args.tree && dump.trees.empty() && root_tree_complete) {
    dump.errors.push_back("no tree " + std::to_string(*args.tree));
  }
  return dump;
}

// ------------------------------------------------------------------- JSON

void json_key(JsonWriter& json, const store::Key& key) {
  json.begin_object();
  json.field("objectid", key.objectid);
  json.field("type", key.type);
  json.field("type_name", item_type_name(key.type));
  json.field("offset", key.offset);
  json.end_object();
}

void json_superblock(JsonWriter& json, const store::Superblock& sb) {
  json.begin_object();
  json.field("uuid", format_uuid(sb.fsid));
  json.field("bytenr", sb.bytenr);
  json.field("generation", sb.generation);
  json.field("format_version", sb.format_version);
  json.field("incompat_flags", sb.incompat_flags);
  json.field("compat_ro_flags", sb.compat_ro_flags);
  json.field("compat_flags", sb.compat_flags);
  json.field("checksum_type", static_cast<uint16_t>(sb.checksum_type));
  json.field("checksum_name", store::checksum_name(sb.checksum_type));
  json.field("sector_size", sb.sector_size);
  json.field("node_size", sb.node_size);
  json.field("total_bytes", sb.total_bytes);
  json.field("bytes_used", sb.bytes_used);
  json.field("root_tree_bytenr", sb.root_tree_bytenr);
  json.field("root_tree_generation", sb.root_tree_generation);
  json.field("root_tree_level", sb.root_tree_level);
  json.field("label", sb.label);
  json.end_object();
}

void json_node(JsonWriter& json, const store::Node& node) {
  json.begin_object();
  json.field("bytenr", node.bytenr);
  json.field("generation", node.generation);
  json.field("owner", node.owner);
  json.field("level", node.level);
  json.field("flags", node.flags);
  json.field("nritems", node.item_count());
  if (node.is_leaf()) {
    json.key("items");
    json.begin_array();
    for (const store::LeafItem& item : node.items) {
      json.begin_object();
      json.key("key");
      json_key(json, item.key);
      json.field("size", item.data.size());
      const DecodedItem decoded = decode_item(item.key, item.data);
      if (!decoded.kind.empty()) {
        json.key(decoded.kind);
        json.begin_object();
        for (const auto& [name, number] : decoded.fields) json.field(name, number);
        json.end_object();
        if (!decoded.extra_hex.empty()) json.field("rest_hex", decoded.extra_hex);
      } else {
        if (decoded.error) json.field("decode_error", *decoded.error);
        json.field("hex", to_hex(item.data));
      }
      json.end_object();
    }
    json.end_array();
  } else {
    json.key("children");
    json.begin_array();
    for (const store::KeyPtr& child : node.children) {
      json.begin_object();
      json.key("key");
      json_key(json, child.key);
      json.field("bytenr", child.bytenr);
      json.field("generation", child.generation);
      json.end_object();
    }
    json.end_array();
  }
  json.end_object();
}

void print_json(const Dump& dump) {
  JsonWriter json;
  json.begin_object();
  json.key("superblock_copies");
  json.begin_array();
  for (const SuperblockCopy& copy : dump.copies) {
    json.begin_object();
    json.field("offset", copy.offset);
    json.field("valid", copy.superblock.has_value());
    if (copy.superblock) {
      json.field("generation", copy.superblock->generation);
    } else {
      json.field("error", copy.error);
    }
    json.end_object();
  }
  json.end_array();
  json.key("superblock");
  if (dump.superblock) {
    json_superblock(json, *dump.superblock);
  } else {
    json.null_value();
  }
  json.key("trees");
  json.begin_array();
  for (const TreeDump& tree : dump.trees) {
    json.begin_object();
    json.field("id", tree.id);
    json.field("name", tree_name(tree.id));
    json.key("root");
    json.begin_object();
    json.field("bytenr", tree.root.bytenr);
    json.field("generation", tree.root.generation);
    json.field("level", tree.root.level);
    json.end_object();
    if (tree.root_item) {
      json.key("root_item");
      json.begin_object();
      json.field("refs", tree.root_item->refs);
      json.field("last_snapshot", tree.root_item->last_snapshot);
      json.field("flags", tree.root_item->flags);
      json.end_object();
    }
    json.key("nodes");
    json.begin_array();
    for (const store::Node& node : tree.nodes) json_node(json, node);
    json.end_array();
    json.key("errors");
    json.begin_array();
    for (const std::string& error : tree.errors) json.value(error);
    json.end_array();
    json.end_object();
  }
  json.end_array();
  json.key("errors");
  json.begin_array();
  for (const std::string& error : dump.errors) json.value(error);
  json.end_array();
  json.end_object();
  std::fputs(json.text().c_str(), stdout);
}

// ------------------------------------------------------------------- text

std::string key_text(const store::Key& key) {
  return "(" + std::to_string(key.objectid) + " " + std::string(item_type_name(key.type)) +
         (item_type_name(key.type) == "UNKNOWN" ? "/" + std::to_string(key.type) : "") + " " +
         std::to_string(key.offset) + ")";
}

void print_superblock_text(const store::Superblock& sb) {
  const auto line = [](const char* name, const std::string& value) {
    std::printf("  %-22s %s\n", name, value.c_str());
  };
  const auto number = [](uint64_t value) { return std::to_string(value); };
  const auto hex = [](uint64_t value) {
    char text[24];
    std::snprintf(text, sizeof text, "0x%" PRIx64, value);
    return std::string(text);
  };
  std::printf("superblock (copy at %" PRIu64 "):\n", sb.bytenr);
  line("uuid", format_uuid(sb.fsid));
  line("label", sb.label);
  line("generation", number(sb.generation));
  line("format_version", number(sb.format_version));
  line("incompat_flags", hex(sb.incompat_flags));
  line("compat_ro_flags", hex(sb.compat_ro_flags));
  line("compat_flags", hex(sb.compat_flags));
  line("checksum_type", number(static_cast<uint16_t>(sb.checksum_type)) + " (" +
                            std::string(store::checksum_name(sb.checksum_type)) + ")");
  line("sector_size", number(sb.sector_size));
  line("node_size", number(sb.node_size));
  line("total_bytes", number(sb.total_bytes));
  line("bytes_used", number(sb.bytes_used));
  line("root_tree_bytenr", number(sb.root_tree_bytenr));
  line("root_tree_generation", number(sb.root_tree_generation));
  line("root_tree_level", number(sb.root_tree_level));
}

void print_node_text(const store::Node& node) {
  std::printf("  %s %" PRIu64 " level %u items %zu generation %" PRIu64 " owner %" PRIu64
              " flags 0x%x\n",
              node.is_leaf() ? "leaf" : "node", node.bytenr, node.level, node.item_count(),
              node.generation, node.owner, node.flags);
  if (!node.is_leaf()) {
    for (const store::KeyPtr& child : node.children) {
      std::printf("    key %s block %" PRIu64 " generation %" PRIu64 "\n",
                  key_text(child.key).c_str(), child.bytenr, child.generation);
    }
    return;
  }
  for (size_t i = 0; i < node.items.size(); ++i) {
    const store::LeafItem& item = node.items[i];
    std::printf("    item %zu key %s size %zu\n", i, key_text(item.key).c_str(), item.data.size());
    const DecodedItem decoded = decode_item(item.key, item.data);
    if (!decoded.kind.empty()) {
      std::string text = "      " + decoded.kind + ":";
      for (const auto& [name, number] : decoded.fields) {
        text += " " + name + " " + std::to_string(number);
      }
      std::printf("%s\n", text.c_str());
      if (!decoded.extra_hex.empty()) std::printf("      rest %s\n", decoded.extra_hex.c_str());
    } else {
      if (decoded.error) std::printf("      cannot decode: %s\n", decoded.error->c_str());
      if (!item.data.empty()) std::printf("      hex %s\n", to_hex(item.data).c_str());
    }
  }
}

void print_text(const Dump& dump) {
  for (const SuperblockCopy& copy : dump.copies) {
    if (copy.superblock) {
      std::printf("superblock copy at %" PRIu64 ": valid, generation %" PRIu64 "\n", copy.offset,
                  copy.superblock->generation);
    } else {
      std::printf("superblock copy at %" PRIu64 ": INVALID: %s\n", copy.offset, copy.error.c_str());
    }
  }
  if (dump.superblock) print_superblock_text(*dump.superblock);
  for (const TreeDump& tree : dump.trees) {
    std::printf("tree %" PRIu64 " %s root %" PRIu64 " generation %" PRIu64 " level %u", tree.id,
                std::string(tree_name(tree.id)).c_str(), tree.root.bytenr, tree.root.generation,
                tree.root.level);
    if (tree.root_item) {
      std::printf(" refs %" PRIu64 " last_snapshot %" PRIu64 " flags 0x%" PRIx64,
                  tree.root_item->refs, tree.root_item->last_snapshot, tree.root_item->flags);
    }
    std::printf("\n");
    for (const store::Node& node : tree.nodes) print_node_text(node);
    for (const std::string& error : tree.errors) std::printf("  ERROR: %s\n", error.c_str());
  }
}

int run(const InspectArgs& args) {
  const Dump dump = gather(args);
  if (args.json) {
    print_json(dump);
  } else {
    print_text(dump);
  }
  if (std::fflush(stdout) != 0) {
    print_error("inspect", "writing standard output failed");
    return kExitFailure;
  }
  for (const std::string& error : dump.errors) print_error("inspect", error);
  return dump.errors.empty() ? kExitOk : kExitFailure;
}

}  // namespace

void add_inspect_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* command = app.add_subcommand("inspect", kDescription);
  command->footer(kFooter);
  command->add_option("IMAGE", args->image, "image file or block device")->required();
  command->add_flag("--json", args->json, "print one JSON document");
  command->add_option("--tree", args->tree, "dump only the tree with this id")->type_name("ID");
  command->callback([args, &runner] { runner = [args] { return run(*args); }; });
}

}  // namespace ecfs::cli
