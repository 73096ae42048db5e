// The two proofs of issue 5 that look at the raw image, from outside the
// filesystem:
//
// * Offline decryption: an image is built through fs::FileSystem with known
//   raw master keys (nested encrypted directories, names whose ciphertext is
//   longer than 149 bytes so their no-key names are abbreviated, a 255-byte
//   ciphertext name, symlinks, files of several extents, sparse files, a
//   reflinked range, overwritten middles, three policies of different modes,
//   paddings and data unit sizes). Then `ecfs inspect IMAGE --json` is the
//   only source of structure, and with the fscrypt core alone
//   (derive_per_file_key, decrypt_name, decrypt_symlink, setup_extent_key,
//   decrypt_data_units) plus raw preads of the image file every name,
//   symlink target and extent is decrypted and compared with what was
//   written. Names and targets are also re-encrypted and must equal the
//   stored bytes (the kernel's filename encryption is deterministic), and
//   every DIR_ITEM key must be xxh64 of the stored (ciphertext) name.
// * No plaintext on disk: files of recognizable patterns, names and symlink
//   targets are written into an encrypted directory; after close the raw
//   image holds none of them, nor any 16-byte piece of the master key or of
//   any key derived from it (per-file keys of every encrypted inode,
//   per-extent keys of every extent). The control runs the same search on
//   the same tree in an unencrypted directory, with the keys written into a
//   file, and must find every pattern and every key.
//
// Inspect's JSON is flattened to lines by python3 (as the other cli tests
// query JSON); everything else is C++.
#include <fcntl.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "block/file_device.h"
#include "cli_test_util.h"
#include "crypto/secret.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "fscrypt/contents.h"
#include "fscrypt/extent.h"
#include "fscrypt/fname.h"
#include "fscrypt/hkdf.h"
#include "fscrypt/iv.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/keysetup.h"
#include "fscrypt/master_key_secret.h"
#include "fscrypt/mode.h"
#include "fscrypt/policy.h"
#include "fscrypt/symlink.h"
#include "store/engine.h"
#include "store/tree_ids.h"

namespace ecfs::cli_test {
namespace {

using fs::testing::must;

constexpr uint64_t kImageSize = 64ull << 20;
constexpr uint64_t kRootIno = 256;      // fs::kRootDirIno
constexpr uint32_t kSectorSize = 4096;  // the filesystem block size
// The record space handed to encrypt_symlink for re-encryption: targets in
// these tests are far shorter, so the size never limits them.
constexpr size_t kSymlinkRecordSpace = 4096;

const fscrypt::Caller kKeyOwner{0, true};
const fs::Caller kRootCaller{0, 0, 022};

// A raw master key of 64 bytes, different for every `seed`.
Bytes raw_master_key(uint8_t seed) {
  Bytes key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(seed * 37 + i * 11 + 5);
  return key;
}

// Deterministic bytes that no wrong key or wrong data unit number decrypts to.
std::string pseudo_random(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  for (char& c : out) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    c = static_cast<char>(state >> 24);
  }
  return out;
}

// What a tree holds, as written and as read back: paths relative to the
// root ("vault/docs"), file contents and symlink targets.
struct Tree {
  std::set<std::string> dirs;
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> symlinks;
};

// The path of an element of a Tree's set or map.
const std::string& path_of(const std::string& path) { return path; }
const std::string& path_of(const std::pair<const std::string, std::string>& entry) {
  return entry.first;
}

// Where two trees differ, in words (contents are compared, not printed).
std::string tree_difference(const Tree& want, const Tree& got) {
  std::string out;
  // Paths of one kind in only one of the trees.
  const auto compare_paths = [&out](const auto& wanted, const auto& found,
                                    const std::string& kind) {
    for (const auto& element : wanted) {
      if (!found.contains(path_of(element)))
        out += "missing " + kind + " " + path_of(element) + "\n";
    }
    for (const auto& element : found) {
      if (!wanted.contains(path_of(element))) {
        out += "unexpected " + kind + " " + path_of(element) + "\n";
      }
    }
  };
  compare_paths(want.dirs, got.dirs, "dir");
  compare_paths(want.files, got.files, "file");
  compare_paths(want.symlinks, got.symlinks, "symlink");
  for (const auto& [path, content] : want.files) {
    auto found = got.files.find(path);
    if (found == got.files.end() || found->second == content) continue;
    const auto mismatch =
        std::mismatch(content.begin(), content.end(), found->second.begin(), found->second.end());
    out += "file " + path + ": " + std::to_string(found->second.size()) + " bytes, want " +
           std::to_string(content.size()) + ", first difference at byte " +
           std::to_string(mismatch.first - content.begin()) + "\n";
  }
  for (const auto& [path, target] : want.symlinks) {
    auto found = got.symlinks.find(path);
    if (found != got.symlinks.end() && found->second != target) {
      out += "symlink " + path + " -> " + found->second + ", want " + target + "\n";
    }
  }
  return out;
}

// Makes a tree through fs::FileSystem and remembers what it wrote.
class TreeWriter {
 public:
  explicit TreeWriter(fs::FileSystem& filesystem) : fs_(filesystem) { inos_[""] = kRootIno; }

  uint64_t mkdir(const std::string& path) {
    const auto [parent, name] = split(path);
    const uint64_t ino = must(fs_.mkdir(parent, name, S_IFDIR | 0755, kRootCaller), "mkdir").ino;
    inos_[path] = ino;
    tree.dirs.insert(path);
    return ino;
  }
  // A new directory under `policy`.
  uint64_t encrypted_dir(const std::string& path, const fscrypt::Policy& policy) {
    const uint64_t dir = mkdir(path);
    must(fs_.set_policy(dir, policy, kKeyOwner), ("set_policy " + path).c_str());
    return dir;
  }
  void write(const std::string& path, uint64_t offset, std::string_view data) {
    if (!inos_.contains(path)) {
      const auto [parent, name] = split(path);
      inos_[path] = must(fs_.mknod(parent, name, S_IFREG | 0644, 0, kRootCaller), "create").ino;
      tree.files[path];
    }
    EXPECT_EQ(must(fs_.write(inos_[path], offset, as_bytes(data)), "write"), data.size()) << path;
    std::string& content = tree.files[path];
    if (content.size() < offset + data.size()) content.resize(offset + data.size(), '\0');
    content.replace(offset, data.size(), data);
  }
  void symlink(const std::string& path, const std::string& target) {
    const auto [parent, name] = split(path);
    inos_[path] = must(fs_.symlink(parent, name, target, kRootCaller), "symlink").ino;
    tree.symlinks[path] = target;
  }
  // A reflink: copy_file_range of a sector-aligned range (filesystem.h).
  void reflink(const std::string& from, uint64_t from_offset, const std::string& to,
               uint64_t to_offset, uint64_t length) {
    if (!inos_.contains(to)) write(to, 0, "");
    EXPECT_EQ(
        must(fs_.copy_file_range(inos_.at(from), from_offset, inos_.at(to), to_offset, length),
             "copy_file_range"),
        length);
    const std::string source = tree.files.at(from).substr(from_offset, length);
    std::string& content = tree.files[to];
    if (content.size() < to_offset + length) content.resize(to_offset + length, '\0');
    content.replace(to_offset, length, source);
  }
  // Commits: buffered data becomes extents, so writes on either side of a
  // sync land in different extents.
  void sync() { must(fs_.sync(), "sync"); }
  uint64_t ino(const std::string& path) const { return inos_.at(path); }

  Tree tree;

 private:
  std::pair<uint64_t, std::string> split(const std::string& path) const {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return {kRootIno, path};
    return {inos_.at(path.substr(0, slash)), path.substr(slash + 1)};
  }

  fs::FileSystem& fs_;
  std::map<std::string, uint64_t> inos_;
};

// Adds `raw_key` to the mount and returns its identifier, which must be the
// one the fscrypt core computes.
fscrypt::KeyIdentifier add_key(fs::FileSystem& filesystem, const Bytes& raw_key) {
  const fs::KeyChange change =
      must(filesystem.add_key(kKeyOwner, fscrypt::KeySpecifier::from_identifier({}), raw_key),
           "add_key");
  const fscrypt::KeyIdentifier want = must(fscrypt::compute_key_identifier(raw_key), "identifier");
  EXPECT_EQ(change.key, fscrypt::KeySpecifier::from_identifier(want));
  return want;
}

fscrypt::PolicyV2 policy_v2(const fscrypt::KeyIdentifier& key, uint8_t contents, uint8_t filenames,
                            uint8_t flags, uint8_t log2_data_unit_size) {
  fscrypt::PolicyV2 policy;
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  policy.log2_data_unit_size = log2_data_unit_size;
  policy.master_key_identifier = key;
  return policy;
}

std::unique_ptr<block::FileDevice> create_image(const std::string& path) {
  block::FileDeviceOptions options;
  options.create_size = kImageSize;
  auto device = must(block::open_file_device(path, options), "create image");
  fs::testing::make_filesystem(*device);
  return device;
}

// ------------------------------------------------------ inspect's answer

struct DumpEntry {
  uint64_t index = 0;
  uint64_t ino = 0;
  Bytes name;
};

struct DumpExtent {
  uint64_t file_offset = 0;
  std::optional<uint64_t> image_offset;
  uint64_t length = 0;
  uint64_t extent_offset = 0;
  uint64_t disk_bytenr = 0;
  uint64_t disk_length = 0;
  std::string type;
  std::string encryption;
  Bytes context;
  // Inspect's decoding of the context ("-" when absent).
  std::string context_mode, context_key, context_nonce, first_data_unit;
};

struct DumpInode {
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint64_t size = 0;
  uint64_t flags = 0;
  std::optional<Bytes> context;
  // Inspect's decoding: version contents filenames flags log2 du_size key
  // nonce padding.
  std::vector<std::string> decoded_context;
  std::vector<DumpEntry> entries;
  std::vector<DumpExtent> extents;
  std::optional<Bytes> symlink_record;
  std::string symlink_ciphertext_hex;
};

// A DIR_ITEM of FS_TREE: (dir, DIR_ITEM, hash) and its entries' names.
struct DumpDirItem {
  uint64_t dir = 0;
  uint64_t hash = 0;
  std::vector<Bytes> names;
};

struct Dump {
  std::map<uint64_t, DumpInode> inodes;
  std::vector<DumpDirItem> dir_items;
};

// Flattens inspect's JSON into one line per fact; "-" stands for absent.
constexpr const char* kFlatten = R"PY(
import json, sys
d = json.load(sys.stdin)
def h(v): return v if v else '-'
fs = d['filesystem']
for i in fs['inodes']:
    it = i['inode_item']
    print('INODE', i['ino'], it['mode'], it['size'], it['flags'], h(i.get('fscrypt_context_hex')))
    c = i.get('fscrypt_context')
    if c:
        print('CTX', i['ino'], c['version'], c['contents_mode'], c['filenames_mode'], c['flags'],
              c['log2_data_unit_size'], c['data_unit_size'], c['master_key_identifier'],
              c['nonce'], c['padding'])
    for e in i.get('entries', []):
        print('ENTRY', i['ino'], e['index'], e['ino'], e['name_hex'])
    for x in i.get('extents', []):
        c = x.get('context')
        io = x['image_offset']
        print('EXTENT', i['ino'], x['file_offset'], '-' if io is None else io, x['length'],
              x['extent_offset'], x['disk_bytenr'], x['disk_length'], x['type'], x['encryption'],
              h(x['context_hex']), c['contents_mode'] if c else '-',
              c['master_key_identifier'] if c else '-', c['nonce'] if c else '-',
              x.get('first_data_unit', '-'))
    for s in i.get('symlink_targets', []):
        print('SYMLINK', i['ino'], s['target_hex'], s.get('record', {}).get('ciphertext_hex', '-'))
for t in d['trees']:
    if t['id'] != 5:
        continue
    for n in t['nodes']:
        for item in n.get('items', []):
            k = item['key']
            if k['type'] == 84:
                print('DIRITEM', k['objectid'], k['offset'], item['hex'])
)PY";

Bytes hex_bytes(const std::string& hex) {
  if (hex == "-") return {};
  auto bytes = from_hex(hex);
  EXPECT_TRUE(bytes) << hex;
  return bytes ? *bytes : Bytes{};
}

// DIR_ITEM body: entries of `ino u64 | index u64 | type u8 | name_len u16 |
// name` back to back (docs/FORMAT.md "Filesystem items").
std::vector<Bytes> dir_item_names(const Bytes& data) {
  std::vector<Bytes> names;
  size_t at = 0;
  while (at + 19 <= data.size()) {
    const size_t length = data[at + 17] | static_cast<size_t>(data[at + 18]) << 8;
    at += 19;
    if (at + length > data.size()) break;
    names.emplace_back(data.begin() + static_cast<ptrdiff_t>(at),
                       data.begin() + static_cast<ptrdiff_t>(at + length));
    at += length;
  }
  EXPECT_EQ(at, data.size()) << "malformed DIR_ITEM " << to_hex(data);
  return names;
}

Dump parse_dump(const std::string& lines) {
  Dump dump;
  std::istringstream in(lines);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kind;
    words >> kind;
    if (kind == "INODE") {
      DumpInode inode;
      std::string context;
      words >> inode.ino >> inode.mode >> inode.size >> inode.flags >> context;
      if (context != "-") inode.context = hex_bytes(context);
      dump.inodes[inode.ino] = std::move(inode);
    } else if (kind == "CTX") {
      uint64_t ino = 0;
      words >> ino;
      for (std::string word; words >> word;) dump.inodes[ino].decoded_context.push_back(word);
    } else if (kind == "ENTRY") {
      uint64_t dir = 0;
      DumpEntry entry;
      std::string name;
      words >> dir >> entry.index >> entry.ino >> name;
      entry.name = hex_bytes(name);
      dump.inodes[dir].entries.push_back(std::move(entry));
    } else if (kind == "EXTENT") {
      uint64_t ino = 0;
      DumpExtent extent;
      std::string image_offset, context;
      words >> ino >> extent.file_offset >> image_offset >> extent.length >> extent.extent_offset >>
          extent.disk_bytenr >> extent.disk_length >> extent.type >> extent.encryption >> context >>
          extent.context_mode >> extent.context_key >> extent.context_nonce >>
          extent.first_data_unit;
      if (image_offset != "-") extent.image_offset = std::stoull(image_offset);
      extent.context = hex_bytes(context);
      dump.inodes[ino].extents.push_back(std::move(extent));
    } else if (kind == "SYMLINK") {
      uint64_t ino = 0;
      std::string record;
      words >> ino >> record >> dump.inodes[ino].symlink_ciphertext_hex;
      dump.inodes[ino].symlink_record = hex_bytes(record);
    } else if (kind == "DIRITEM") {
      DumpDirItem item;
      std::string data;
      words >> item.dir >> item.hash >> data;
      item.names = dir_item_names(hex_bytes(data));
      dump.dir_items.push_back(std::move(item));
    } else if (!kind.empty()) {
      ADD_FAILURE() << "unexpected line " << line;
    }
  }
  return dump;
}

// --------------------------------------------------- decryption, offline

// Master keys by identifier, as a user holding the raw keys has them.
class MasterKeys {
 public:
  void add(const Bytes& raw_key) {
    auto secret = must(fscrypt::MasterKeySecret::create(raw_key), "master key");
    const fscrypt::KeyIdentifier id = must(fscrypt::compute_key_identifier(raw_key), "identifier");
    keys_.emplace(id, std::make_unique<fscrypt::MasterKeySecret>(std::move(secret)));
  }
  // A wrong key that claims another key's identifier.
  void add_as(const Bytes& claimed_raw_key, const Bytes& raw_key) {
    auto secret = must(fscrypt::MasterKeySecret::create(raw_key), "master key");
    const fscrypt::KeyIdentifier id =
        must(fscrypt::compute_key_identifier(claimed_raw_key), "identifier");
    keys_.emplace(id, std::make_unique<fscrypt::MasterKeySecret>(std::move(secret)));
  }
  const fscrypt::MasterKeySecret* find(const fscrypt::KeyIdentifier& id) const {
    auto found = keys_.find(id);
    return found == keys_.end() ? nullptr : found->second.get();
  }

 private:
  std::map<fscrypt::KeyIdentifier, std::unique_ptr<fscrypt::MasterKeySecret>> keys_;
};

// An encrypted inode's context and the filenames key a directory or symlink
// uses: HKDF context 2 (per-file key) over its nonce, for its filenames mode.
struct InodeKey {
  fscrypt::Context context;
  fscrypt::PolicyV2 policy;
  const fscrypt::MasterKeySecret* master = nullptr;
  crypto::SecretBytes filenames_key;
  crypto::CipherPtr filenames_cipher;
};

// Reads every name, target and extent of a dumped image with the fscrypt
// core, the master keys and preads of the image file.
class OfflineReader {
 public:
  OfflineReader(const Dump& dump, const MasterKeys& keys, const std::string& image)
      : dump_(dump), keys_(keys), fd_(::open(image.c_str(), O_RDONLY | O_CLOEXEC)) {
    EXPECT_GE(fd_, 0) << image;
  }
  ~OfflineReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  OfflineReader(const OfflineReader&) = delete;
  OfflineReader& operator=(const OfflineReader&) = delete;

  Tree read_tree() {
    Tree tree;
    read_directory(kRootIno, "", tree);
    return tree;
  }

  // What the walk saw, for the tests to check the image exercised what it
  // was built to (see ExercisedFeatures).
  size_t max_ciphertext_name = 0;  // of directory entries
  size_t max_symlink_ciphertext = 0;
  size_t encrypted_extents = 0;
  size_t partial_extents = 0;                               // encrypted, extent_offset > 0
  std::map<uint64_t, std::set<uint64_t>> inodes_of_extent;  // disk_bytenr -> inos
  std::map<fscrypt::Nonce, uint64_t> extent_nonces;         // nonce -> disk_bytenr
  std::set<fscrypt::Nonce> inode_nonces;

 private:
  const DumpInode& inode(uint64_t ino) {
    auto found = dump_.inodes.find(ino);
    if (found == dump_.inodes.end()) {
      ADD_FAILURE() << "inode " << ino << " is not in the dump";
      static const DumpInode kMissing;
      return kMissing;
    }
    return found->second;
  }

  // The inode's context checked against inspect's decoding, with its keys;
  // nullopt for an unencrypted inode.
  std::optional<InodeKey> inode_key(const DumpInode& node) {
    constexpr uint64_t kInodeFlagEncrypted = 0x800;
    EXPECT_EQ((node.flags & kInodeFlagEncrypted) != 0, node.context.has_value())
        << "inode " << node.ino;
    if (!node.context) return std::nullopt;
    auto context = fscrypt::parse_context(*node.context);
    EXPECT_TRUE(context) << "inode " << node.ino << ": " << context.error().to_string();
    if (!context) return std::nullopt;
    InodeKey key{*context, {}, nullptr, {}, nullptr};
    const auto* v2 = std::get_if<fscrypt::PolicyV2>(&context->policy);
    EXPECT_NE(v2, nullptr) << "inode " << node.ino << " has a v1 context";
    if (!v2) return std::nullopt;
    key.policy = *v2;
    EXPECT_TRUE(inode_nonces.insert(context->nonce).second)
        << "inode " << node.ino << " reuses another inode's nonce";
    // Inspect decoded the same bytes to the same fields.
    const std::vector<std::string> want = {
        "2",
        std::to_string(v2->contents_mode),
        std::to_string(v2->filenames_mode),
        std::to_string(v2->flags),
        std::to_string(v2->log2_data_unit_size),
        std::to_string(1u << fscrypt::effective_log2_data_unit_size(context->policy, kSectorSize)),
        to_hex(v2->master_key_identifier),
        to_hex(context->nonce),
        std::to_string(fscrypt::filename_padding(v2->flags))};
    EXPECT_EQ(node.decoded_context, want) << "inode " << node.ino;
    key.master = keys_.find(v2->master_key_identifier);
    EXPECT_NE(key.master, nullptr) << "inode " << node.ino << ": unknown master key";
    if (!key.master) return std::nullopt;
    const fscrypt::ModeInfo* mode = must(fscrypt::mode_by_number(v2->filenames_mode), "mode");
    key.filenames_key =
        must(fscrypt::derive_per_file_key(key.master->hkdf(), context->nonce, *mode), "derive");
    key.filenames_cipher = must(fscrypt::prepare_key(*mode, key.filenames_key.span()), "prepare");
    return key;
  }

  void read_directory(uint64_t dir_ino, const std::string& path, Tree& tree) {
    const DumpInode& dir = inode(dir_ino);
    const std::optional<InodeKey> dir_key = inode_key(dir);
    for (const DumpEntry& entry : dir.entries) {
      std::string name;
      if (dir_key) {
        name = decrypt_entry_name(dir, *dir_key, entry.name);
      } else {
        name.assign(entry.name.begin(), entry.name.end());
      }
      check_dir_item(dir_ino, entry.name);
      const std::string child_path = path.empty() ? name : path + "/" + name;
      const DumpInode& child = inode(entry.ino);
      // Children of an encrypted directory inherit its policy (fscrypt.rst
      // "Encryption policy enforcement").
      if (dir_key) {
        EXPECT_TRUE(child.context.has_value()) << child_path << " is not encrypted";
        if (child.context) {
          auto child_context = fscrypt::parse_context(*child.context);
          if (child_context) {
            EXPECT_TRUE(fscrypt::policies_equal(child_context->policy, dir_key->context.policy))
                << child_path;
          }
        }
      }
      if (S_ISDIR(child.mode)) {
        tree.dirs.insert(child_path);
        read_directory(entry.ino, child_path, tree);
      } else if (S_ISREG(child.mode)) {
        tree.files[child_path] = read_file(child, child_path);
      } else if (S_ISLNK(child.mode)) {
        tree.symlinks[child_path] = read_symlink(child, child_path);
      } else {
        ADD_FAILURE() << child_path << ": unexpected mode " << child.mode;
      }
    }
  }

  std::string decrypt_entry_name(const DumpInode& dir, const InodeKey& key, const Bytes& stored) {
    max_ciphertext_name = std::max(max_ciphertext_name, stored.size());
    auto name =
        fscrypt::decrypt_name(*key.filenames_cipher, fscrypt::IvParams::default_scheme(), stored);
    EXPECT_TRUE(name) << "a name in " << dir.ino << ": " << name.error().to_string();
    if (!name) return "?";
    // The kernel's filename encryption is deterministic: the stored bytes
    // must be exactly its ciphertext for this directory and padding.
    auto again = fscrypt::encrypt_name(*key.filenames_cipher, fscrypt::IvParams::default_scheme(),
                                       *name, fscrypt::filename_padding(key.policy.flags));
    EXPECT_TRUE(again && *again == stored)
        << "name " << *name << " in " << dir.ino << " is not the kernel's ciphertext";
    return *name;
  }

  // The entry's DIR_ITEM is keyed by xxh64 of the stored name.
  void check_dir_item(uint64_t dir, const Bytes& stored) {
    const uint64_t hash = XXH64(stored.data(), stored.size(), 0);
    for (const DumpDirItem& item : dump_.dir_items) {
      if (item.dir != dir || item.hash != hash) continue;
      if (std::find(item.names.begin(), item.names.end(), stored) != item.names.end()) return;
    }
    ADD_FAILURE() << "no DIR_ITEM (" << dir << ", 84, xxh64 of " << to_hex(stored) << ")";
  }

  std::string read_symlink(const DumpInode& link, const std::string& path) {
    EXPECT_TRUE(link.symlink_record.has_value()) << path;
    if (!link.symlink_record) return "";
    const Bytes& record = *link.symlink_record;
    const std::optional<InodeKey> key = inode_key(link);
    if (!key) return std::string(record.begin(), record.end());
    const fscrypt::IvParams iv = fscrypt::IvParams::default_scheme();
    auto target = fscrypt::decrypt_symlink(*key->filenames_cipher, iv, record);
    EXPECT_TRUE(target) << path << ": " << target.error().to_string();
    if (!target) return "?";
    max_symlink_ciphertext = std::max<size_t>(max_symlink_ciphertext, record.size() - 3);
    // The record is the kernel's: le16 length, ciphertext, NUL.
    auto again =
        fscrypt::encrypt_symlink(*key->filenames_cipher, iv, *target,
                                 fscrypt::filename_padding(key->policy.flags), kSymlinkRecordSpace);
    EXPECT_TRUE(again && *again == record)
        << path << ": the stored record is not the kernel's " << to_hex(record);
    EXPECT_EQ(link.symlink_ciphertext_hex, to_hex(ByteSpan(record).subspan(2, record.size() - 3)))
        << path;
    return *target;
  }

  Bytes pread_image(uint64_t offset, uint64_t length) {
    Bytes out(length);
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n <= 0) {
        ADD_FAILURE() << "pread of " << length << " bytes at " << offset;
        break;
      }
      done += static_cast<size_t>(n);
    }
    return out;
  }

  std::string read_file(const DumpInode& file, const std::string& path) {
    const std::optional<InodeKey> key = inode_key(file);
    std::string content;
    for (const DumpExtent& extent : file.extents) {
      const std::string at = path + " extent at " + std::to_string(extent.file_offset);
      if (content.size() < extent.file_offset + extent.length) {
        content.resize(extent.file_offset + extent.length, '\0');
      }
      if (extent.type == "prealloc") continue;  // reads as zeros
      EXPECT_EQ(extent.type, "regular") << at;
      EXPECT_NE(extent.disk_bytenr, 0u) << at;
      if (!extent.image_offset) {
        ADD_FAILURE() << at << ": no image offset";
        continue;
      }
      EXPECT_EQ(*extent.image_offset, extent.disk_bytenr + extent.extent_offset) << at;
      EXPECT_LE(extent.extent_offset + extent.length, extent.disk_length) << at;
      inodes_of_extent[extent.disk_bytenr].insert(file.ino);
      Bytes data = pread_image(*extent.image_offset, extent.length);
      if (key) {
        decrypt_extent(*key, extent, data, at);
      } else {
        EXPECT_EQ(extent.encryption, "none") << at;
      }
      std::copy(data.begin(), data.end(),
                content.begin() + static_cast<ptrdiff_t>(extent.file_offset));
    }
    EXPECT_GE(content.size(), file.size) << path;
    content.resize(file.size, '\0');
    return content;
  }

  // Decrypts one extent's referenced bytes in place with its own key: HKDF
  // context 9 over the extent nonce, data units numbered from the start of
  // the original extent (fscrypt/extent.h).
  void decrypt_extent(const InodeKey& key, const DumpExtent& extent, Bytes& data,
                      const std::string& at) {
    EXPECT_EQ(extent.encryption, "fscrypt") << at;
    if (extent.encryption != "fscrypt") return;
    auto context = fscrypt::load_extent_context(extent.context, key.context.policy);
    EXPECT_TRUE(context) << at << ": " << context.error().to_string();
    if (!context) return;
    EXPECT_EQ(extent.context.size(), fscrypt::kExtentContextSize) << at;
    EXPECT_EQ(extent.context_mode, std::to_string(context->contents_mode)) << at;
    EXPECT_EQ(extent.context_key, to_hex(context->master_key_identifier)) << at;
    EXPECT_EQ(extent.context_nonce, to_hex(context->nonce)) << at;
    // One nonce, one original extent: a reflink or split keeps the context,
    // a new extent never reuses a nonce.
    auto [nonce, inserted] = extent_nonces.emplace(context->nonce, extent.disk_bytenr);
    EXPECT_EQ(nonce->second, extent.disk_bytenr) << at << ": nonce of another extent";
    ++encrypted_extents;
    if (extent.extent_offset > 0) ++partial_extents;

    const unsigned log2 = fscrypt::effective_log2_data_unit_size(key.context.policy, kSectorSize);
    const uint64_t unit = uint64_t{1} << log2;
    EXPECT_EQ(extent.extent_offset % unit, 0u) << at;
    EXPECT_EQ(extent.length % unit, 0u) << at;
    const uint64_t first_unit = extent.extent_offset >> log2;
    EXPECT_EQ(extent.first_data_unit, std::to_string(first_unit)) << at;

    fscrypt::ExtentKey extent_key = must(fscrypt::setup_extent_key(*key.master, *context), "key");
    // setup_extent_key is derive_extent_key + prepare_key.
    const crypto::SecretBytes raw =
        must(fscrypt::derive_extent_key(key.master->hkdf(), *context), "derive");
    EXPECT_TRUE(std::ranges::equal(raw.span(), extent_key.raw_key.span())) << at;
    const Status decrypted = fscrypt::decrypt_data_units(
        *extent_key.cipher, fscrypt::IvParams::default_scheme(), unit, first_unit, data, data);
    EXPECT_TRUE(decrypted) << at << ": " << decrypted.error().to_string();
  }

  const Dump& dump_;
  const MasterKeys& keys_;
  int fd_ = -1;
};

// ------------------------------------------------------------- searching

// Finds which of many byte patterns occur in a buffer, in one pass: a
// bitmap of the patterns' first two bytes filters the positions that need
// a comparison.
class PatternSearch {
 public:
  // Returns the index of the pattern in the search set. REQUIRES: size >= 2.
  size_t add(std::string pattern, std::string label) {
    const uint16_t head = two_bytes(pattern.data());
    heads_[head / 64] |= uint64_t{1} << (head % 64);
    by_head_[head].push_back(patterns_.size());
    patterns_.push_back({std::move(pattern), std::move(label)});
    return patterns_.size() - 1;
  }
  // The indices of the patterns found in `haystack`.
  std::set<size_t> find_in(std::string_view haystack) const {
    std::set<size_t> found;
    for (size_t at = 0; at + 2 <= haystack.size(); ++at) {
      const uint16_t head = two_bytes(haystack.data() + at);
      if (!(heads_[head / 64] >> (head % 64) & 1)) continue;
      for (size_t index : by_head_.at(head)) {
        const std::string& pattern = patterns_[index].bytes;
        if (haystack.compare(at, pattern.size(), pattern) == 0) found.insert(index);
      }
    }
    return found;
  }
  const std::string& label(size_t index) const { return patterns_[index].label; }
  size_t size() const { return patterns_.size(); }

 private:
  static uint16_t two_bytes(const char* p) {
    return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) | static_cast<uint8_t>(p[1]) << 8);
  }
  struct Pattern {
    std::string bytes;
    std::string label;
  };
  std::vector<Pattern> patterns_;
  std::array<uint64_t, 1024> heads_{};
  std::map<uint16_t, std::vector<size_t>> by_head_;
};

// ---------------------------------------------------------------- the tests

class OfflineDecryptTest : public EcfsCommandTest {
 protected:
  void SetUp() override {
    ASSERT_FALSE(scratch_.path().empty());
    ASSERT_TRUE(python3_available()) << "these tests read inspect's JSON with python3";
  }

  // `ecfs inspect IMAGE --json`, flattened and parsed.
  Dump inspect(const std::string& image) {
    const Outcome run = ecfs({"inspect", image, "--json"});
    EXPECT_EQ(run.exit_status, 0) << run.describe().substr(0, 4000);
    const Outcome flat =
        run_program({"/usr/bin/python3", "-c", kFlatten}, scratch_.path(), run.out);
    EXPECT_EQ(flat.exit_status, 0) << flat.describe().substr(0, 4000);
    return parse_dump(flat.out);
  }
};

// The image of the offline decryption test (see the file comment).
Tree build_offline_image(const std::string& image, const Bytes& key_a, const Bytes& key_b) {
  auto device = create_image(image);
  auto filesystem = must(fs::FileSystem::open(*device), "open");
  const fscrypt::KeyIdentifier id_a = add_key(*filesystem, key_a);
  const fscrypt::KeyIdentifier id_b = add_key(*filesystem, key_b);
  TreeWriter w(*filesystem);

  // Policy 1: AES-256-XTS / AES-256-CTS-CBC, 32-byte padding, 4 KiB units.
  w.encrypted_dir("vault", policy_v2(id_a, fscrypt::kModeAes256Xts, fscrypt::kModeAes256Cts,
                                     fscrypt::kPolicyFlagsPad32, 0));
  w.mkdir("vault/docs");
  w.mkdir("vault/docs/deep");
  w.mkdir("vault/docs/deep/er");
  w.write("vault/docs/deep/er/note.txt", 0, "a short note, not a whole sector");
  // 200 bytes -> 224 bytes of ciphertext: an abbreviated no-key name.
  w.write("vault/" + std::string(200, 'L'), 0, pseudo_random(5000, 1));
  // 250 bytes -> round_up(250, 32) = 256, cut to NAME_MAX: 255 bytes.
  w.mkdir("vault/docs/" + std::string(250, 'D'));
  w.write("vault/docs/" + std::string(250, 'D') + "/inside", 0, pseudo_random(4096, 2));
  // Several extents: a commit between the writes.
  const std::string multi = "vault/multi.bin";
  for (uint64_t part = 0; part < 4; ++part) {
    w.write(multi, part * 98304, pseudo_random(98304, 10 + part));
    w.sync();
  }
  // Sparse: holes between extents and after the last one.
  w.write("vault/sparse.bin", 0, pseudo_random(8192, 20));
  w.write("vault/sparse.bin", (1 << 20) + 4096, pseudo_random(12288, 21));
  w.write("vault/sparse.bin", (5 << 20) + 3, pseudo_random(100, 22));
  w.sync();
  // Overwritten middles: the old extent keeps its head and tail (the tail
  // with extent_offset > 0, so its data units do not start at 0); the new
  // data is a new extent with a new nonce. The second overwrite is not
  // sector-aligned (read-modify-write of a sector).
  w.write("vault/overwrite.bin", 0, pseudo_random(524288, 30));
  w.sync();
  w.write("vault/overwrite.bin", 131072, pseudo_random(65536, 31));
  w.sync();
  w.write("vault/overwrite.bin", 300001, pseudo_random(10, 32));
  w.sync();
  // A reflinked range from the middle of the several-extent file, then the
  // source overwritten where it was shared.
  w.reflink(multi, 65536, "vault/reflink.bin", 8192, 196608);
  w.sync();
  w.write(multi, 65536, pseudo_random(40960, 40));
  w.sync();
  w.symlink("vault/to-note", "docs/deep/er/note.txt");
  w.symlink("vault/docs/x", "x");  // 1 byte, padded to 16 (the minimum)
  w.symlink("vault/docs/deep/far", std::string(30, 'p') + "/" + std::string(600, 'q'));

  // Policy 2: AES-256-XTS / AES-256-HCTR2, 16-byte padding, 512-byte data
  // units (8 per sector), its own master key.
  w.encrypted_dir("hctr", policy_v2(id_b, fscrypt::kModeAes256Xts, fscrypt::kModeAes256Hctr2,
                                    fscrypt::kPolicyFlagsPad16, 9));
  w.mkdir("hctr/sub");
  w.write("hctr/sub/units.bin", 0, pseudo_random(65536, 50));
  w.sync();
  w.write("hctr/sub/units.bin", 65536, pseudo_random(32768, 51));
  w.sync();
  w.write("hctr/sub/units.bin", 16384, pseudo_random(8192, 52));
  w.sync();
  w.write("hctr/" + std::string(180, 'H'), 0, pseudo_random(1000, 53));
  w.symlink("hctr/sub/up", "../" + std::string(180, 'H'));

  // Policy 3: Adiantum for both, 4-byte padding, key A again.
  w.encrypted_dir("adiantum", policy_v2(id_a, fscrypt::kModeAdiantum, fscrypt::kModeAdiantum,
                                        fscrypt::kPolicyFlagsPad4, 0));
  w.write("adiantum/wide.bin", 0, pseudo_random(20000, 60));
  w.sync();
  w.write("adiantum/wide.bin", 4096, pseudo_random(4096, 61));
  w.symlink("adiantum/link", "wide.bin");

  // And plain files beside them, read back as they are.
  w.mkdir("plain");
  w.write("plain/readme", 0, "stored as plaintext");
  w.symlink("plain/link", "readme");

  must(filesystem->close(), "close");
  return w.tree;
}

TEST_F(OfflineDecryptTest, EveryNameTargetAndExtentDecryptsWithTheFscryptCoreAlone) {
  const std::string image = scratch_.file("image");
  const Bytes key_a = raw_master_key(1), key_b = raw_master_key(2);
  const Tree written = build_offline_image(image, key_a, key_b);

  const Dump dump = inspect(image);
  ASSERT_FALSE(dump.inodes.empty());
  MasterKeys keys;
  keys.add(key_a);
  keys.add(key_b);
  OfflineReader reader(dump, keys, image);
  const Tree read = reader.read_tree();
  EXPECT_EQ(tree_difference(written, read), "");

  // The image exercised what it was built to.
  EXPECT_GT(reader.max_ciphertext_name, 149u) << "no abbreviated no-key name";
  EXPECT_EQ(reader.max_ciphertext_name, 255u) << "no 255-byte ciphertext name";
  EXPECT_EQ(reader.max_symlink_ciphertext, 640u);  // 631 bytes padded to 32
  EXPECT_GT(reader.partial_extents, 0u) << "no extent referenced from its middle";
  EXPECT_GE(reader.encrypted_extents, 15u);
  const auto shared = std::ranges::count_if(
      reader.inodes_of_extent, [](const auto& extent) { return extent.second.size() > 1; });
  EXPECT_GT(shared, 0) << "no extent shared by two files";
  std::map<uint64_t, size_t> extents_per_inode;
  for (const auto& [ino, node] : dump.inodes) extents_per_inode[ino] = node.extents.size();
  EXPECT_GE(std::ranges::max(extents_per_inode | std::views::values), 4u);

  // The JSON names the modes; the text output has the same facts briefly.
  const Outcome json = ecfs({"inspect", "--json", image});
  EXPECT_EQ(query(json.out,
                  "sorted({(c['contents_mode_name'], c['filenames_mode_name']) for c in "
                  "(i.get('fscrypt_context') for i in d['filesystem']['inodes']) if c})"),
            "[('AES-256-XTS', 'AES-256-CTS-CBC'), ('AES-256-XTS', 'AES-256-HCTR2'), "
            "('Adiantum', 'Adiantum')]");
  const Outcome text = ecfs({"inspect", image});
  ASSERT_EQ(text.exit_status, 0) << text.describe().substr(0, 4000);
  const std::string id_a = to_hex(must(fscrypt::compute_key_identifier(key_a), "id"));
  const std::string id_b = to_hex(must(fscrypt::compute_key_identifier(key_b), "id"));
  for (const std::string& fact :
       {"fscrypt context v2: contents 1 AES-256-XTS, filenames 4 AES-256-CTS-CBC, flags 0x03 "
        "(padding 32), data unit 4096, key " +
            id_a + ", nonce ",
        "fscrypt context v2: contents 1 AES-256-XTS, filenames 10 AES-256-HCTR2, flags 0x02 "
        "(padding 16), data unit 512, key " +
            id_b + ", nonce ",
        "regular encryption fscrypt mode 9 Adiantum, key " + id_a + ", nonce ",
        std::string(", first data unit 0\n"), std::string(" (image offset "),
        std::string("    symlink record "), std::string(" bytes, no-key AAAAAAAAAA")}) {
    EXPECT_NE(text.out.find(fact), std::string::npos) << fact;
  }
}

// With a wrong master key under the right identifier nothing decrypts to
// what was written, and the reader says so: the comparison above can fail.
TEST_F(OfflineDecryptTest, AWrongMasterKeyReadsNothingBack) {
  const std::string image = scratch_.file("image");
  const Tree written = build_offline_image(image, raw_master_key(1), raw_master_key(2));
  const Dump dump = inspect(image);
  MasterKeys keys;
  keys.add_as(raw_master_key(1), raw_master_key(3));
  keys.add(raw_master_key(2));
  ::testing::TestPartResultArray failures;
  Tree read;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    OfflineReader reader(dump, keys, image);
    read = reader.read_tree();
  }
  EXPECT_GT(failures.size(), 0);
  // Only the directory under key B and the plain one read back.
  for (const auto& [path, content] : written.files) {
    const auto found = read.files.find(path);
    EXPECT_EQ(found != read.files.end() && found->second == content,
              path.starts_with("hctr/") || path.starts_with("plain/"))
        << path;
  }
}

// Stored contexts and records that do not decode are shown with the reason,
// in hex as stored, and do not make inspect fail: it read everything.
TEST_F(OfflineDecryptTest, InspectShowsUndecodableContextsAsTheyAre) {
  const std::string image = scratch_.file("image");
  uint64_t file_ino = 0, link_ino = 0;
  {
    auto device = create_image(image);
    auto filesystem = must(fs::FileSystem::open(*device), "open");
    const fscrypt::KeyIdentifier id = add_key(*filesystem, raw_master_key(1));
    TreeWriter w(*filesystem);
    w.encrypted_dir("vault", policy_v2(id, fscrypt::kModeAes256Xts, fscrypt::kModeAes256Cts,
                                       fscrypt::kPolicyFlagsPad32, 0));
    w.write("vault/file", 0, pseudo_random(8192, 1));
    w.symlink("vault/link", "file");
    file_ino = w.ino("vault/file");
    link_ino = w.ino("vault/link");
    must(filesystem->close(), "close");
  }
  {
    auto device = must(block::open_file_device(image), "open image");
    auto engine = must(store::Engine::open(*device), "engine");
    must(engine->begin(), "begin");
    store::BTree* tree = must(engine->open_tree(store::kFsTreeId), "fs tree");
    // An unknown context version; an extent context of version 9; a symlink
    // record whose length runs past its end.
    const store::Key context_key{file_ino, fs::kFscryptInodeContextKey, 0};
    Bytes context = must(tree->find(context_key), "context").value();
    context[0] = 7;
    must(tree->update(context_key, context), "update context");
    const store::Key extent_key{file_ino, fs::kExtentDataKey, 0};
    fs::FileExtentItem extent =
        must(fs::decode_file_extent_item(must(tree->find(extent_key), "extent").value()), "item");
    extent.context[0] = 9;
    must(tree->update(extent_key, fs::encode_file_extent_item(extent)), "update extent");
    const store::Key target_key{link_ino, fs::kSymlinkTargetKey, 0};
    Bytes record = must(tree->find(target_key), "target").value();
    record[0] = 0xff;
    must(tree->update(target_key, record), "update target");
    must(engine->commit(), "commit");
  }
  const Outcome json = ecfs({"inspect", "--json", image});
  EXPECT_EQ(json.exit_status, 0) << json.describe().substr(0, 4000);
  const std::string inode = "[i for i in d['filesystem']['inodes'] if i['ino'] == ";
  const std::string file = inode + std::to_string(file_ino) + "][0]";
  const std::string link = inode + std::to_string(link_ino) + "][0]";
  EXPECT_EQ(query(json.out, file + "['fscrypt_context_error']"),
            "unknown encryption context version 7");
  EXPECT_EQ(query(json.out, "'fscrypt_context' in " + file), "False");
  EXPECT_EQ(query(json.out, file + "['fscrypt_context_hex'][:4]"), "0701");
  EXPECT_EQ(query(json.out, file + "['extents'][0]['context_error']"),
            "unknown extent encryption context version 9");
  EXPECT_EQ(query(json.out, file + "['extents'][0]['context_hex'][:4]"), "0901");
  // Without the inode's context there is no data unit size to count in.
  EXPECT_EQ(query(json.out, "'first_data_unit' in " + file + "['extents'][0]"), "False");
  EXPECT_EQ(query(json.out, "'record_error' in " + link + "['symlink_targets'][0], " + link +
                                "['symlink_targets'][0]['target_hex'][:4]"),
            "True ff00");
  const Outcome text = ecfs({"inspect", image});
  EXPECT_EQ(text.exit_status, 0) << text.describe().substr(0, 4000);
  for (const char* fact :
       {"    fscrypt context (cannot decode: unknown encryption context version 7)\n",
        "encryption fscrypt context 0901", "(cannot decode: unknown extent encryption context",
        "    symlink record ff00"}) {
    EXPECT_NE(text.out.find(fact), std::string::npos) << fact;
  }
}

// ------------------------------------------------------ no plaintext on disk

constexpr std::string_view kContentMarker = "ECFS-PLAINTEXT-MARKER-";

// Content of file `n`: the marker and its number, over and over.
std::string marked_content(size_t size, int n) {
  const std::string unit = std::string(kContentMarker) + std::to_string(n) + "-";
  std::string out;
  while (out.size() < size) out += unit;
  out.resize(size);
  return out;
}

// The tree of the search tests under `top`, with every pattern a search
// must (not) find: contents, names, symlink targets.
struct SecretTree {
  std::vector<std::string> names;
  std::vector<std::string> targets;
};

SecretTree write_secret_tree(TreeWriter& w, const std::string& top) {
  SecretTree secrets;
  const auto name = [&](const std::string& text) {
    secrets.names.push_back(text);
    return text;
  };
  const std::string dir = top + "/" + name("secretdirname-alpha");
  w.mkdir(dir);
  const std::string sub = dir + "/" + name("secretdirname-beta-nested");
  w.mkdir(sub);
  for (int n = 0; n < 4; ++n) {
    const std::string file =
        (n % 2 ? sub : dir) + "/" + name("secretfilename-" + std::to_string(n));
    w.write(file, 0, marked_content(70000, n));
    w.sync();
    w.write(file, 70000, marked_content(30000, n));  // a second extent
  }
  const std::string long_name = "secretlongname-" + std::string(180, 'z');
  w.write(dir + "/" + name(long_name), 0, marked_content(9000, 9));
  w.sync();
  // The middle overwritten: the old middle's ciphertext stays in free
  // space, and must not be plaintext either.
  w.write(dir + "/secretfilename-0", 20000, marked_content(10000, 7));
  const auto target = [&](const std::string& text) {
    secrets.targets.push_back(text);
    return text;
  };
  w.symlink(dir + "/" + name("secretlinkname-one"), target("secrettarget/one/path"));
  w.symlink(sub + "/" + name("secretlinkname-two"),
            target("secrettarget-" + std::string(300, 't')));
  return secrets;
}

// Every key of the encrypted inodes and extents of a dumped image: the
// per-file keys of the inodes (filenames mode for directories and
// symlinks, contents mode for regular files) and the per-extent keys.
std::vector<std::pair<std::string, Bytes>> derived_keys(const Dump& dump,
                                                        const fscrypt::MasterKeySecret& master) {
  std::vector<std::pair<std::string, Bytes>> keys;
  for (const auto& [ino, node] : dump.inodes) {
    if (!node.context) continue;
    auto context = must(fscrypt::parse_context(*node.context), "context");
    const auto& policy = std::get<fscrypt::PolicyV2>(context.policy);
    const uint8_t mode_number = S_ISREG(node.mode) ? policy.contents_mode : policy.filenames_mode;
    const fscrypt::ModeInfo* mode = must(fscrypt::mode_by_number(mode_number), "mode");
    const crypto::SecretBytes key =
        must(fscrypt::derive_per_file_key(master.hkdf(), context.nonce, *mode), "per-file key");
    keys.emplace_back("per-file key of inode " + std::to_string(ino),
                      Bytes(key.span().begin(), key.span().end()));
    for (const DumpExtent& extent : node.extents) {
      if (extent.encryption != "fscrypt") continue;
      auto extent_context = must(fscrypt::parse_extent_context(extent.context), "extent context");
      const crypto::SecretBytes extent_key =
          must(fscrypt::derive_extent_key(master.hkdf(), extent_context), "extent key");
      keys.emplace_back("key of the extent at " + std::to_string(extent.disk_bytenr),
                        Bytes(extent_key.span().begin(), extent_key.span().end()));
    }
  }
  return keys;
}

class NoPlaintextTest : public OfflineDecryptTest {
 protected:
  // Builds the secret tree in `top` (encrypted with `raw_key` when given)
  // and, when `key_file` is not empty, a plain file "keys" holding it.
  SecretTree build(const std::string& image, const std::string& top,
                   const std::optional<Bytes>& raw_key, const std::string& key_file = "") {
    auto device = create_image(image);
    auto filesystem = must(fs::FileSystem::open(*device), "open");
    TreeWriter w(*filesystem);
    const uint64_t dir = w.mkdir(top);
    if (raw_key) {
      const fscrypt::KeyIdentifier id = add_key(*filesystem, *raw_key);
      must(filesystem->set_policy(dir,
                                  policy_v2(id, fscrypt::kModeAes256Xts, fscrypt::kModeAes256Cts,
                                            fscrypt::kPolicyFlagsPad16, 0),
                                  kKeyOwner),
           "set_policy");
    }
    SecretTree secrets = write_secret_tree(w, top);
    if (!key_file.empty()) w.write("keys", 0, key_file);
    must(filesystem->close(), "close");
    return secrets;
  }

  // Every pattern of `secrets` and 16-byte piece of `keys`, labelled.
  static PatternSearch patterns(const SecretTree& secrets,
                                const std::vector<std::pair<std::string, Bytes>>& keys) {
    PatternSearch search;
    search.add(std::string(kContentMarker), "content marker");
    for (const std::string& name : secrets.names) search.add(name, "name " + name.substr(0, 40));
    for (const std::string& target : secrets.targets) {
      search.add(target, "symlink target " + target.substr(0, 40));
    }
    for (const auto& [label, key] : keys) {
      for (size_t at = 0; at + 16 <= key.size(); at += 16) {
        search.add(std::string(key.begin() + static_cast<ptrdiff_t>(at),
                               key.begin() + static_cast<ptrdiff_t>(at + 16)),
                   label + " bytes " + std::to_string(at) + "..+16");
      }
    }
    return search;
  }
};

TEST_F(NoPlaintextTest, TheRawImageHoldsNoPlaintextAndNoKey) {
  const std::string image = scratch_.file("encrypted.img");
  const Bytes master = raw_master_key(7);
  const SecretTree secrets = build(image, "vault", master);

  const Dump dump = inspect(image);
  const fscrypt::MasterKeySecret secret = must(fscrypt::MasterKeySecret::create(master), "master");
  std::vector<std::pair<std::string, Bytes>> keys = derived_keys(dump, secret);
  ASSERT_GT(keys.size(), 10u);  // directories, files, symlinks and extents
  keys.emplace_back("the master key", master);
  const PatternSearch search = patterns(secrets, keys);

  const std::string raw = read_whole_file(image);
  ASSERT_EQ(raw.size(), kImageSize);
  std::string leaks;
  for (size_t index : search.find_in(raw)) leaks += search.label(index) + "\n";
  EXPECT_EQ(leaks, "") << "found in the raw image";

  // The control: the same tree unencrypted, with the same keys written into
  // a file, is all found by the same search.
  const std::string control = scratch_.file("control.img");
  std::string key_file;
  for (const auto& [label, key] : keys) key_file.append(key.begin(), key.end());
  const SecretTree control_secrets = build(control, "vault", std::nullopt, key_file);
  ASSERT_EQ(control_secrets.names, secrets.names);
  const std::set<size_t> found = search.find_in(read_whole_file(control));
  std::string missed;
  for (size_t index = 0; index < search.size(); ++index) {
    if (!found.contains(index)) missed += search.label(index) + "\n";
  }
  EXPECT_EQ(missed, "") << "the control image should hold every pattern";
}

}  // namespace
}  // namespace ecfs::cli_test
