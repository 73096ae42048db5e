#include "cli/inspect_command.h"

#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <map>
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
#include "cli/time_text.h"
#include "fs/key_history.h"
#include "fs/tree_contents.h"
#include "fscrypt/extent.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"
#include "fscrypt/protector.h"
#include "fscrypt/symlink.h"
#include "store/checksum.h"
#include "store/image_origin.h"
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
    "Prints every superblock copy's state, every field of the superblock in use with\n"
    "the names of its feature bits, which ecfs version made the image and when\n"
    "(\"made_by\"; images made before ecfs recorded it say \"not recorded\"), and\n"
    "each tree node by node: keys as (objectid TYPE offset), item sizes, and item\n"
    "contents decoded where the engine defines the type (root items, extent items,\n"
    "data references, file extent heads), in hex otherwise. --tree limits the dump to\n"
    "one tree (1 is the root tree, 2 the extent tree, 5 the top-level subvolume).\n"
    "\n"
    "When the top-level subvolume is dumped and holds a filesystem, a filesystem\n"
    "section follows: every inode with its fields, names, directory entries, file\n"
    "extents, xattr names and symlink target, and the orphans.\n"
    "\n"
    "Encrypted inodes are shown as stored, without needing a key: names in\n"
    "encrypted directories are ciphertext (exact bytes in hex with --json); the\n"
    "fscrypt context is decoded (version, contents and filenames modes, flags and\n"
    "padding, data unit size, master key identifier, nonce); an encrypted symlink\n"
    "target is the kernel's record (u16 length, ciphertext, NUL), in hex with its\n"
    "no-key form. Every file extent shows its file offset, the image offset of the\n"
    "bytes it references (disk_bytenr + extent_offset), its length, its offset in\n"
    "the original extent (extent_offset), disk_bytenr and disk_length, and for an\n"
    "encrypted extent its decoded context (mode, master key identifier, nonce) and\n"
    "the number of its first data unit, counted from the start of the original\n"
    "extent: all an offline decryption with the master key needs.";

constexpr const char* kFooter =
    "Exit status: 0 when everything was read; 1 when the image or part of a tree could\n"
    "not be read (what was read is still printed); 2 for bad options.\n"
    "\n"
    "Examples:\n"
    "  The superblock and the root tree:\n"
    "    ecfs inspect --tree 1 fs.img\n"
    "\n"
    "  The inodes of the top-level subvolume, as JSON:\n"
    "    ecfs inspect --json --tree 5 fs.img | jq '.filesystem.inodes'";

struct InspectArgs {
  std::string image;
  bool json = false;
  std::optional<uint64_t> tree;
};

// An item's contents as named numbers, shared by both output formats.
struct DecodedItem {
  std::string kind;  // "root_item", ...; empty when not decoded
  std::vector<std::pair<std::string, uint64_t>> fields;
  // Named texts, printable ASCII checked by the item's decoder.
  std::vector<std::pair<std::string, std::string>> texts;
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
    case store::kPersistentItemKey: {
      if (key != store::kImageOriginKey) break;
      auto origin = store::decode_image_origin(data);
      if (!origin) {
        failed(origin.error());
        break;
      }
      out.kind = "image_origin";
      out.fields = {{"created_sec", static_cast<uint64_t>(origin->created_sec)},
                    {"created_nsec", origin->created_nsec}};
      out.texts = {{"program", origin->program}};
      break;
    }
    case store::kProtectorItemKey: {
      fscrypt::ProtectorId id;
      store_le64(id.data(), key.objectid);
      auto record = fscrypt::decode_protector(id, data);
      if (!record) {
        failed(record.error());
        break;
      }
      out.kind = "protector";
      out.fields = {{"kind", static_cast<uint8_t>(record->kind)},
                    {"owner_uid", record->owner_uid},
                    {"argon2_time_cost", record->argon2.time_cost},
                    {"argon2_memory_kib", record->argon2.memory_kib},
                    {"argon2_parallelism", record->argon2.parallelism},
                    {"created_sec", static_cast<uint64_t>(record->created_sec)}};
      out.texts = {{"id", fscrypt::protector_id_text(id)},
                   {"kind_name", fscrypt::protector_kind_name(record->kind)},
                   {"name", record->name}};
      break;
    }
    case store::kWrappedKeyItemKey: {
      fscrypt::ProtectorId id;
      store_le64(id.data(), key.objectid);
      auto record = fscrypt::decode_wrapped_key(id, data);
      if (!record) {
        failed(record.error());
        break;
      }
      out.kind = "wrapped_key";
      out.texts = {{"protector", fscrypt::protector_id_text(id)},
                   {"key_identifier", to_hex(record->key_identifier)}};
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
  // The IMAGE_ORIGIN item of the root tree, when it has one that decodes.
  std::optional<store::ImageOrigin> origin;
  std::vector<TreeDump> trees;
  // FS_TREE's items by inode, when it was dumped and is not empty.
  std::optional<fs::TreeContents> filesystem;
  // The same for every other subvolume and snapshot that was dumped.
  std::map<uint64_t, fs::TreeContents> subvolumes;
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

// The filesystem items of tree `id` (FS_TREE or a subvolume) from its
// dumped leaves (in key order: parents come before children), or nullopt
// when it was not dumped or is empty. Items that do not decode are listed
// as the section's errors.
std::optional<fs::TreeContents> filesystem_of(const std::vector<TreeDump>& trees, uint64_t id) {
  for (const TreeDump& tree : trees) {
    if (tree.id != id) continue;
    fs::TreeContents contents;
    bool any = false;
    for (const store::Node& node : tree.nodes) {
      if (!node.is_leaf()) continue;
      for (const store::LeafItem& item : node.items) {
        contents.add(item.key, item.data);
        any = true;
      }
    }
    if (any) return contents;
  }
  return std::nullopt;
}

Dump gather(const InspectArgs& args) {
  Dump dump;
  block::FileDeviceOptions device_options;
  device_options.read_only = true;
  // A just-unmounted filesystem's daemon may still be committing.
  device_options.lock_wait = std::chrono::seconds(5);
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
  for (const store::Node& node : root_tree.nodes) {
    if (!node.is_leaf()) continue;
    for (const store::LeafItem& item : node.items) {
      if (item.key != store::kImageOriginKey) continue;
      if (auto origin = store::decode_image_origin(item.data); origin) {
        dump.origin = std::move(*origin);
      } else {
        dump.errors.push_back("root tree: " + origin.error().message());
      }
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
  dump.filesystem = filesystem_of(dump.trees, store::kFsTreeId);
  for (const TreeDump& tree : dump.trees) {
    if (tree.id < store::kFirstFreeTreeId) continue;
    if (auto contents = filesystem_of(dump.trees, tree.id)) {
      dump.subvolumes.emplace(tree.id, std::move(*contents));
    }
  }
  return dump;
}

// ------------------------------------------------------------------- JSON

void json_key(JsonWriter& json, uint64_t tree_id, const store::Key& key) {
  json.begin_object();
  json.field("objectid", key.objectid);
  json.field("type", key.type);
  json.field("type_name", item_type_name(tree_id, key.type));
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
  json.field("incompat_features", feature_names(FeatureMask::kIncompat, sb.incompat_flags));
  json.field("compat_ro_features", feature_names(FeatureMask::kCompatRo, sb.compat_ro_flags));
  json.field("compat_features", feature_names(FeatureMask::kCompat, sb.compat_flags));
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

void json_node(JsonWriter& json, uint64_t tree_id, const store::Node& node) {
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
      json_key(json, tree_id, item.key);
      json.field("size", item.data.size());
      const DecodedItem decoded = decode_item(item.key, item.data);
      if (!decoded.kind.empty()) {
        json.key(decoded.kind);
        json.begin_object();
        for (const auto& [name, number] : decoded.fields) json.field(name, number);
        for (const auto& [name, text] : decoded.texts) json.field(name, text);
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
      json_key(json, tree_id, child.key);
      json.field("bytenr", child.bytenr);
      json.field("generation", child.generation);
      json.end_object();
    }
    json.end_array();
  }
  json.end_object();
}

std::string timestamp_text(const fs::Timestamp& t) {
  char text[40];
  std::snprintf(text, sizeof text, "%" PRId64 ".%09" PRIu32, t.sec, t.nsec);
  return text;
}

const char* extent_type_name(fs::FileExtentType type) {
  return type == fs::FileExtentType::kPrealloc ? "prealloc" : "regular";
}

const char* extent_encryption_name(fs::ExtentEncryption encryption) {
  return encryption == fs::ExtentEncryption::kFscrypt ? "fscrypt" : "none";
}

std::string bytes_text(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

// ------------------------------------------------- encryption, without a key

std::string mode_name(uint8_t number) {
  const fscrypt::ModeInfo* mode = fscrypt::find_mode(number);
  return mode ? std::string(mode->name) : "unknown";
}

// An inode's FSCRYPT_INODE_CTX decoded (fscrypt/policy.h parse_context), or
// why it does not decode. Everything in it is public: a context holds the
// policy and a nonce, never key material.
struct InodeCrypt {
  std::optional<fscrypt::Context> context;
  std::string error;
  // The data unit size the context gives on ecfs (log2_data_unit_size, or the
  // block size when 0), when it decodes.
  unsigned log2_data_unit_size = 0;
};

std::optional<InodeCrypt> inode_crypt(const fs::InodeContents& inode) {
  if (!inode.fscrypt_context) return std::nullopt;
  InodeCrypt out;
  auto context = fscrypt::parse_context(*inode.fscrypt_context);
  if (!context) {
    out.error = context.error().message();
    return out;
  }
  out.log2_data_unit_size =
      fscrypt::effective_log2_data_unit_size(context->policy, store::kSectorSize);
  out.context = std::move(*context);
  return out;
}

// An inode's KEY_HISTORY (fs/key_history.h): the master keys it was under
// before a rotation, oldest first.
std::string key_history_text(const Bytes& stored) {
  auto previous = fs::decode_key_history(stored);
  if (!previous) return "previous keys: cannot decode: " + previous.error().message();
  std::string text = "previous keys:";
  for (const fscrypt::KeyIdentifier& key : *previous) text += " " + to_hex(key);
  return text;
}

// The parts of an encrypted symlink's record (struct fscrypt_symlink_data:
// __le16 len | ciphertext[len] | NUL), checked as fscrypt_get_symlink does
// (fscrypt/symlink.h), and the target the kernel shows without the key.
struct SymlinkRecord {
  std::optional<Bytes> ciphertext;
  std::optional<std::string> nokey_target;
  std::string error;
};

SymlinkRecord symlink_record(const Bytes& record) {
  SymlinkRecord out;
  auto nokey = fscrypt::nokey_symlink_target(record);
  if (!nokey) {
    out.error = nokey.error().message();
    return out;
  }
  // nokey_symlink_target accepted it, so 2 + len fits in the record.
  const size_t length = record[0] | static_cast<size_t>(record[1]) << 8;
  out.ciphertext = Bytes(record.begin() + 2, record.begin() + 2 + static_cast<ptrdiff_t>(length));
  out.nokey_target = std::move(*nokey);
  return out;
}

// An extent's fscrypt context decoded (fscrypt/extent.h parse_extent_context)
// and, when the inode's context decodes too, the number of the first data
// unit the item references: data units count from the start of the original
// extent, so it is extent_offset / data unit size.
struct ExtentCrypt {
  std::optional<fscrypt::ExtentContext> context;
  std::string error;
  std::optional<uint32_t> data_unit_size;
  std::optional<uint64_t> first_data_unit;
};

std::optional<ExtentCrypt> extent_crypt(const fs::FileExtentItem& extent,
                                        const std::optional<InodeCrypt>& inode) {
  if (extent.encryption != fs::ExtentEncryption::kFscrypt) return std::nullopt;
  ExtentCrypt out;
  auto context = fscrypt::parse_extent_context(extent.context);
  if (!context) {
    out.error = context.error().message();
  } else {
    out.context = *context;
  }
  if (inode && inode->context) {
    out.data_unit_size = uint32_t{1} << inode->log2_data_unit_size;
    if (auto dun =
            fscrypt::extent_data_unit_number(extent.extent_offset, inode->log2_data_unit_size)) {
      out.first_data_unit = *dun;
    }
  }
  return out;
}

// The image offset of the first byte an extent item references, or nullopt
// for a hole (disk_bytenr 0).
std::optional<uint64_t> image_offset(const fs::FileExtentItem& extent) {
  if (extent.disk_bytenr == 0) return std::nullopt;
  return extent.disk_bytenr + extent.extent_offset;
}

// ------------------------------------------------------- JSON (filesystem)

void json_inode_context(JsonWriter& json, const InodeCrypt& crypt) {
  if (!crypt.context) {
    json.field("fscrypt_context_error", crypt.error);
    return;
  }
  const fscrypt::Context& context = *crypt.context;
  const fscrypt::Policy& policy = context.policy;
  json.key("fscrypt_context");
  json.begin_object();
  json.field("version", context.version());
  json.field("contents_mode", fscrypt::policy_contents_mode(policy));
  json.field("contents_mode_name", mode_name(fscrypt::policy_contents_mode(policy)));
  json.field("filenames_mode", fscrypt::policy_filenames_mode(policy));
  json.field("filenames_mode_name", mode_name(fscrypt::policy_filenames_mode(policy)));
  json.field("flags", fscrypt::policy_flags(policy));
  json.field("padding", fscrypt::filename_padding(fscrypt::policy_flags(policy)));
  json.field("log2_data_unit_size", fscrypt::policy_log2_data_unit_size(policy));
  json.field("data_unit_size", uint64_t{1} << crypt.log2_data_unit_size);
  const fscrypt::KeySpecifier key = fscrypt::policy_key_specifier(policy);
  json.field(key.type() == fscrypt::KeySpecifierType::kIdentifier ? "master_key_identifier"
                                                                  : "master_key_descriptor",
             key.to_hex());
  json.field("nonce", to_hex(context.nonce));
  json.end_object();
}

void json_extent_context(JsonWriter& json, const fs::FileExtentItem& extent,
                         const ExtentCrypt& crypt) {
  if (!crypt.context) {
    json.field("context_error", crypt.error);
  } else {
    json.key("context");
    json.begin_object();
    json.field("version", extent.context.front());
    json.field("contents_mode", crypt.context->contents_mode);
    json.field("contents_mode_name", mode_name(crypt.context->contents_mode));
    json.field("master_key_identifier", to_hex(crypt.context->master_key_identifier));
    json.field("nonce", to_hex(crypt.context->nonce));
    json.end_object();
  }
  if (crypt.data_unit_size) json.field("data_unit_size", *crypt.data_unit_size);
  if (crypt.first_data_unit) json.field("first_data_unit", *crypt.first_data_unit);
}

void json_inode_item(JsonWriter& json, const fs::InodeItem& item) {
  json.begin_object();
  json.field("type", fs::file_type_name(item.mode));
  json.field("mode", item.mode);
  json.field("nlink", item.nlink);
  json.field("uid", item.uid);
  json.field("gid", item.gid);
  json.field("size", item.size);
  json.field("nbytes", item.nbytes);
  json.field("generation", item.generation);
  json.field("transid", item.transid);
  json.field("next_dir_index", item.next_dir_index);
  json.field("rdev", item.rdev);
  json.field("flags", item.flags);
  json.field("encrypted", (item.flags & fs::kInodeFlagEncrypted) != 0);
  json.field("atime", timestamp_text(item.atime));
  json.field("mtime", timestamp_text(item.mtime));
  json.field("ctime", timestamp_text(item.ctime));
  json.field("otime", timestamp_text(item.otime));
  json.end_object();
}

// A stored name twice: as a JSON string (bytes that are not UTF-8 become
// \u00XX) and in hex, which is exact (ciphertext names of encrypted
// directories are any bytes).
void json_name(JsonWriter& json, const Bytes& name) {
  json.field("name", bytes_text(name));
  json.field("name_hex", to_hex(name));
}

void json_inode(JsonWriter& json, uint64_t ino, const fs::InodeContents& inode, bool orphan) {
  const uint32_t mode = inode.item ? inode.item->mode : 0;
  const std::optional<InodeCrypt> crypt = inode_crypt(inode);
  json.begin_object();
  json.field("ino", ino);
  json.key("inode_item");
  if (inode.item) {
    json_inode_item(json, *inode.item);
  } else {
    json.null_value();
  }
  json.key("names");
  json.begin_array();
  for (const auto& [parent, refs] : inode.refs) {
    for (const fs::InodeRef& ref : refs) {
      json.begin_object();
      json.field("parent", parent);
      json.field("index", ref.index);
      json_name(json, ref.name);
      json.end_object();
    }
  }
  json.end_array();
  if (S_ISDIR(mode) || !inode.index_entries.empty()) {
    json.key("entries");
    json.begin_array();
    for (const auto& [index, entry] : inode.index_entries) {
      json.begin_object();
      json.field("index", index);
      json.field("ino", entry.ino);
      json.field("type", entry.type);
      json_name(json, entry.name);
      json.end_object();
    }
    json.end_array();
  }
  if (S_ISREG(mode) || !inode.extents.empty()) {
    json.key("extents");
    json.begin_array();
    for (const auto& [offset, extent] : inode.extents) {
      json.begin_object();
      json.field("file_offset", offset);
      json.key("image_offset");
      if (auto at = image_offset(extent)) {
        json.value(*at);
      } else {
        json.null_value();
      }
      json.field("length", extent.length);
      json.field("extent_offset", extent.extent_offset);
      json.field("disk_bytenr", extent.disk_bytenr);
      json.field("disk_length", extent.disk_length);
      json.field("generation", extent.generation);
      json.field("type", extent_type_name(extent.type));
      json.field("encryption", extent_encryption_name(extent.encryption));
      json.field("context_hex", to_hex(extent.context));
      if (auto ecrypt = extent_crypt(extent, crypt)) json_extent_context(json, extent, *ecrypt);
      json.end_object();
    }
    json.end_array();
  }
  if (S_ISLNK(mode) || !inode.symlink_targets.empty()) {
    json.key("symlink_targets");
    json.begin_array();
    for (const auto& [offset, target] : inode.symlink_targets) {
      json.begin_object();
      json.field("target", bytes_text(target));
      json.field("target_hex", to_hex(target));
      if (crypt) {
        // The stored target is the fscrypt symlink record.
        const SymlinkRecord record = symlink_record(target);
        if (record.ciphertext) {
          json.key("record");
          json.begin_object();
          json.field("ciphertext_length", record.ciphertext->size());
          json.field("ciphertext_hex", to_hex(*record.ciphertext));
          json.field("nokey_target", *record.nokey_target);
          json.end_object();
        } else {
          json.field("record_error", record.error);
        }
      }
      json.end_object();
    }
    json.end_array();
  }
  json.key("xattrs");
  json.begin_array();
  for (const auto& [hash, names] : inode.xattr_names) {
    for (const std::string& name : names) json.value(name);
  }
  json.end_array();
  if (inode.fscrypt_context) json.field("fscrypt_context_hex", to_hex(*inode.fscrypt_context));
  if (crypt) json_inode_context(json, *crypt);
  if (inode.key_history) {
    auto previous = fs::decode_key_history(*inode.key_history);
    if (!previous) {
      json.field("previous_keys_error", previous.error().message());
    } else {
      json.key("previous_keys");
      json.begin_array();
      for (const fscrypt::KeyIdentifier& key : *previous) json.value(to_hex(key));
      json.end_array();
    }
  }
  json.field("orphan", orphan);
  json.end_object();
}

void json_filesystem(JsonWriter& json, uint64_t tree, const fs::TreeContents& contents) {
  json.begin_object();
  json.field("tree", tree);
  json.key("inodes");
  json.begin_array();
  for (const auto& [ino, inode] : contents.inodes) {
    json_inode(json, ino, inode, contents.orphans.contains(ino));
  }
  json.end_array();
  json.key("orphans");
  json.begin_array();
  for (uint64_t ino : contents.orphans) json.value(ino);
  json.end_array();
  json.key("errors");
  json.begin_array();
  for (const std::string& error : contents.problems) json.value(error);
  json.end_array();
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
  // Which program made the image (null when not recorded).
  json.key("origin");
  if (dump.origin) {
    json.begin_object();
    json.field("program", dump.origin->program);
    json.field("created_sec", dump.origin->created_sec);
    json.field("created_nsec", dump.origin->created_nsec);
    json.field("created", utc_time_text(dump.origin->created_sec));
    json.end_object();
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
    for (const store::Node& node : tree.nodes) json_node(json, tree.id, node);
    json.end_array();
    json.key("errors");
    json.begin_array();
    for (const std::string& error : tree.errors) json.value(error);
    json.end_array();
    json.end_object();
  }
  json.end_array();
  json.key("filesystem");
  if (dump.filesystem) {
    json_filesystem(json, store::kFsTreeId, *dump.filesystem);
  } else {
    json.null_value();
  }
  // Subvolumes and snapshots, in the same shape as the top level's.
  json.key("subvolumes");
  json.begin_array();
  for (const auto& [tree, contents] : dump.subvolumes) json_filesystem(json, tree, contents);
  json.end_array();
  json.key("errors");
  json.begin_array();
  for (const std::string& error : dump.errors) json.value(error);
  json.end_array();
  json.end_object();
  std::fputs(json.text().c_str(), stdout);
}

// ------------------------------------------------------------------- text

void print_superblock_text(const store::Superblock& sb,
                           const std::optional<store::ImageOrigin>& origin) {
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
  const auto flags = [&](FeatureMask mask, uint64_t value) {
    const std::string names = feature_names(mask, value);
    return hex(value) + (names.empty() ? "" : " (" + names + ")");
  };
  line("incompat_flags", flags(FeatureMask::kIncompat, sb.incompat_flags));
  line("compat_ro_flags", flags(FeatureMask::kCompatRo, sb.compat_ro_flags));
  line("compat_flags", flags(FeatureMask::kCompat, sb.compat_flags));
  line("made_by",
       origin ? origin->program + ", " + utc_time_text(origin->created_sec) : "(not recorded)");
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

void print_node_text(uint64_t tree_id, const store::Node& node) {
  std::printf("  %s %" PRIu64 " level %u items %zu generation %" PRIu64 " owner %" PRIu64
              " flags 0x%x\n",
              node.is_leaf() ? "leaf" : "node", node.bytenr, node.level, node.item_count(),
              node.generation, node.owner, node.flags);
  if (!node.is_leaf()) {
    for (const store::KeyPtr& child : node.children) {
      std::printf("    key %s block %" PRIu64 " generation %" PRIu64 "\n",
                  key_text(tree_id, child.key).c_str(), child.bytenr, child.generation);
    }
    return;
  }
  for (size_t i = 0; i < node.items.size(); ++i) {
    const store::LeafItem& item = node.items[i];
    std::printf("    item %zu key %s size %zu\n", i, key_text(tree_id, item.key).c_str(),
                item.data.size());
    const DecodedItem decoded = decode_item(item.key, item.data);
    if (!decoded.kind.empty()) {
      std::string text = "      " + decoded.kind + ":";
      for (const auto& [name, number] : decoded.fields) {
        text += " " + name + " " + std::to_string(number);
      }
      for (const auto& [name, value] : decoded.texts) text += " " + name + " \"" + value + "\"";
      std::printf("%s\n", text.c_str());
      if (!decoded.extra_hex.empty()) std::printf("      rest %s\n", decoded.extra_hex.c_str());
    } else {
      if (decoded.error) std::printf("      cannot decode: %s\n", decoded.error->c_str());
      if (!item.data.empty()) std::printf("      hex %s\n", to_hex(item.data).c_str());
    }
  }
}

std::string inode_crypt_text(const InodeCrypt& crypt) {
  if (!crypt.context) return "fscrypt context (cannot decode: " + crypt.error + ")";
  const fscrypt::Policy& policy = crypt.context->policy;
  const uint8_t contents = fscrypt::policy_contents_mode(policy);
  const uint8_t filenames = fscrypt::policy_filenames_mode(policy);
  const uint8_t flags = fscrypt::policy_flags(policy);
  char text[160];
  std::snprintf(text, sizeof text,
                "fscrypt context v%u: contents %u %s, filenames %u %s, flags 0x%02x (padding "
                "%zu), data unit %u",
                crypt.context->version(), contents, mode_name(contents).c_str(), filenames,
                mode_name(filenames).c_str(), flags, fscrypt::filename_padding(flags),
                1u << crypt.log2_data_unit_size);
  return std::string(text) + ", key " + fscrypt::policy_key_specifier(policy).to_hex() +
         ", nonce " + to_hex(crypt.context->nonce);
}

// " mode N NAME, key ID, nonce N, first data unit D" for an encrypted extent.
std::string extent_crypt_text(const fs::FileExtentItem& extent,
                              const std::optional<InodeCrypt>& inode) {
  const std::optional<ExtentCrypt> crypt = extent_crypt(extent, inode);
  if (!crypt) return extent.context.empty() ? "" : " context " + to_hex(extent.context);
  std::string text;
  if (crypt->context) {
    text = " mode " + std::to_string(crypt->context->contents_mode) + " " +
           mode_name(crypt->context->contents_mode) + ", key " +
           to_hex(crypt->context->master_key_identifier) + ", nonce " +
           to_hex(crypt->context->nonce);
  } else {
    text = " context " + to_hex(extent.context) + " (cannot decode: " + crypt->error + ")";
  }
  if (crypt->first_data_unit)
    text += ", first data unit " + std::to_string(*crypt->first_data_unit);
  return text;
}

void print_filesystem_text(uint64_t tree, const fs::TreeContents& contents) {
  std::printf("filesystem (tree %" PRIu64 "): %zu inodes, %zu orphans\n", tree,
              contents.inodes.size(), contents.orphans.size());
  for (const auto& [ino, inode] : contents.inodes) {
    if (inode.item) {
      const fs::InodeItem& item = *inode.item;
      std::printf("  inode %" PRIu64 " %s mode 0%o nlink %" PRIu32 " uid %" PRIu32 " gid %" PRIu32
                  " size %" PRIu64 " nbytes %" PRIu64 " generation %" PRIu64 " flags 0x%" PRIx64
                  "%s\n",
                  ino, std::string(fs::file_type_name(item.mode)).c_str(), item.mode, item.nlink,
                  item.uid, item.gid, item.size, item.nbytes, item.generation, item.flags,
                  contents.orphans.contains(ino) ? " ORPHAN" : "");
    } else {
      std::printf("  inode %" PRIu64 " (no INODE_ITEM)\n", ino);
    }
    const std::optional<InodeCrypt> crypt = inode_crypt(inode);
    if (crypt) std::printf("    %s\n", inode_crypt_text(*crypt).c_str());
    if (inode.key_history) std::printf("    %s\n", key_history_text(*inode.key_history).c_str());
    for (const auto& [parent, refs] : inode.refs) {
      for (const fs::InodeRef& ref : refs) {
        std::printf("    name %s in %" PRIu64 " index %" PRIu64 "\n",
                    fs::quoted_name(ref.name).c_str(), parent, ref.index);
      }
    }
    for (const auto& [index, entry] : inode.index_entries) {
      std::printf("    entry %" PRIu64 " %s -> %" PRIu64 " type %u\n", index,
                  fs::quoted_name(entry.name).c_str(), entry.ino, entry.type);
    }
    for (const auto& [offset, extent] : inode.extents) {
      std::string at = "hole";
      if (auto image = image_offset(extent)) at = "image offset " + std::to_string(*image);
      std::printf("    extent at %" PRIu64 ": disk %" PRIu64 " length %" PRIu64 ", bytes %" PRIu64
                  "..+%" PRIu64 " (%s) %s encryption %s%s\n",
                  offset, extent.disk_bytenr, extent.disk_length, extent.extent_offset,
                  extent.length, at.c_str(), extent_type_name(extent.type),
                  extent_encryption_name(extent.encryption),
                  extent_crypt_text(extent, crypt).c_str());
    }
    for (const auto& [offset, target] : inode.symlink_targets) {
      if (!crypt) {
        std::printf("    symlink target %s\n", fs::quoted_name(target).c_str());
        continue;
      }
      const SymlinkRecord record = symlink_record(target);
      if (record.ciphertext) {
        std::printf("    symlink record %s (ciphertext %zu bytes, no-key %s)\n",
                    to_hex(target).c_str(), record.ciphertext->size(),
                    record.nokey_target->c_str());
      } else {
        std::printf("    symlink record %s (cannot decode: %s)\n", to_hex(target).c_str(),
                    record.error.c_str());
      }
    }
    for (const auto& [hash, names] : inode.xattr_names) {
      for (const std::string& name : names) {
        std::printf("    xattr %s\n", fs::quoted_name(as_bytes(name)).c_str());
      }
    }
  }
  for (uint64_t ino : contents.orphans) {
    if (!contents.inodes.contains(ino)) std::printf("  orphan %" PRIu64 " (no inode)\n", ino);
  }
  for (const std::string& error : contents.problems) std::printf("  ERROR: %s\n", error.c_str());
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
  if (dump.superblock) print_superblock_text(*dump.superblock, dump.origin);
  for (const TreeDump& tree : dump.trees) {
    std::printf("tree %" PRIu64 " %s root %" PRIu64 " generation %" PRIu64 " level %u", tree.id,
                std::string(tree_name(tree.id)).c_str(), tree.root.bytenr, tree.root.generation,
                tree.root.level);
    if (tree.root_item) {
      std::printf(" refs %" PRIu64 " last_snapshot %" PRIu64 " flags 0x%" PRIx64,
                  tree.root_item->refs, tree.root_item->last_snapshot, tree.root_item->flags);
    }
    std::printf("\n");
    for (const store::Node& node : tree.nodes) print_node_text(tree.id, node);
    for (const std::string& error : tree.errors) std::printf("  ERROR: %s\n", error.c_str());
  }
  if (dump.filesystem) print_filesystem_text(store::kFsTreeId, *dump.filesystem);
  for (const auto& [tree, contents] : dump.subvolumes) print_filesystem_text(tree, contents);
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
