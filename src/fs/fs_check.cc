#include "fs/fs_check.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <utility>

#include "fs/file_data.h"
#include "fs/key_history.h"
#include "fs/protector_store.h"
#include "fscrypt/extent.h"
#include "fscrypt/policy.h"

namespace ecfs::fs {
namespace {

using store::kSectorSize;

// FSCRYPT_INODE_CTX holds an fscrypt v2 context (docs/FORMAT.md); a fscrypt
// extent context is fscrypt/extent.h kExtentContextSize bytes.
constexpr size_t kInodeContextSize = 40;
constexpr size_t kExtentContextSize = 34;

std::string inode_text(uint64_t ino, const InodeItem& item) {
  return "inode " + std::to_string(ino) + " (" + std::string(file_type_name(item.mode)) + ")";
}

std::string entry_text(uint64_t dir, const DirEntry& entry) {
  return "directory " + std::to_string(dir) + ": entry " + quoted_name(entry.name) + " (index " +
         std::to_string(entry.index) + ")";
}

std::string hex_number(uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[value & 15]);
    value >>= 4;
  } while (value != 0);
  return "0x" + out;
}

class Checker {
 public:
  Checker(const TreeContents& contents, FsCheckReport& report)
      : contents_(contents), report_(report) {}

  void run() {
    report_.problems = contents_.problems;
    count();
    check_root();
    // Names first: the link counts are checked against them.
    for (const auto& [ino, inode] : contents_.inodes) {
      if (inode.item && S_ISDIR(inode.item->mode)) check_directory(ino, inode);
    }
    for (const auto& [ino, inode] : contents_.inodes) {
      if (!inode.item) {
        report_items_without_inode(ino, inode);
        continue;
      }
      const InodeItem& item = *inode.item;
      check_items_of_type(ino, item, inode);
      check_back_refs(ino, inode);
      check_links(ino, item, inode);
      check_symlink(ino, item, inode);
      check_extents(ino, item, inode);
      check_xattrs(ino, item, inode);
      check_fscrypt(ino, item, inode);
    }
    check_orphans();
    check_reachability();
  }

 private:
  void problem(std::string text) { report_.problems.push_back(std::move(text)); }

  const InodeItem* item_of(uint64_t ino) const {
    auto it = contents_.inodes.find(ino);
    if (it == contents_.inodes.end() || !it->second.item) return nullptr;
    return &*it->second.item;
  }

  void count() {
    for (const auto& [ino, inode] : contents_.inodes) {
      report_.entries += inode.index_entries.size();
      report_.extents += inode.extents.size();
      for (const auto& [hash, names] : inode.xattr_names) report_.xattrs += names.size();
      if (!inode.item) continue;
      ++report_.inodes;
      const uint32_t mode = inode.item->mode;
      if (S_ISDIR(mode)) {
        ++report_.directories;
      } else if (S_ISREG(mode)) {
        ++report_.regular_files;
      } else if (S_ISLNK(mode)) {
        ++report_.symlinks;
      } else {
        ++report_.special_files;
      }
    }
    report_.orphans = contents_.orphans.size();
  }

  void check_root() {
    const InodeItem* root = item_of(kRootDirIno);
    if (!root) {
      problem("the root directory (inode 256) does not exist");
    } else if (!S_ISDIR(root->mode)) {
      problem("the root directory (inode 256) is a " + std::string(file_type_name(root->mode)));
    }
  }

  // DIR_INDEX against DIR_ITEM, each entry against its target and its
  // INODE_REF, next_dir_index and i_size; counts names_ and subdirs_.
  void check_directory(uint64_t dir, const InodeContents& inode) {
    const InodeItem& item = *inode.item;
    const bool encrypted = item.flags & kInodeFlagEncrypted;
    uint64_t name_bytes = 0;
    for (const auto& [index, entry] : inode.index_entries) {
      const std::string what = entry_text(dir, entry);
      name_bytes += entry.name.size();
      if (index != entry.index) {
        problem(what + " is stored under DIR_INDEX key offset " + std::to_string(index));
      }
      if (index < 2) problem(what + ": indexes start at 2 (0 and 1 are \".\" and \"..\")");
      if (index >= item.next_dir_index) {
        problem(what + ": index not below the directory's next_dir_index " +
                std::to_string(item.next_dir_index));
      }
      check_name(what, entry.name, encrypted);
      check_hashed_twin(dir, inode, entry);
      // A subvolume's root lives in its own tree; the catalog's ROOT_REF
      // stands for its INODE_REF (check_filesystem compares them).
      if (names_subvolume(entry.type)) {
        if (listed_type(entry.type) != DT_DIR) {
          problem(what + " names subvolume " + std::to_string(entry.ino) + " with type byte " +
                  std::to_string(entry.type));
        }
        if (encrypted) problem(what + " names a subvolume inside an encrypted directory");
        report_.subvolume_entries.push_back({dir, entry});
        ++subdirs_[dir];
        continue;
      }

      const InodeItem* target = item_of(entry.ino);
      if (!target) {
        problem(what + " names inode " + std::to_string(entry.ino) + ", which does not exist");
        continue;
      }
      if (dirent_type_of_mode(target->mode) != entry.type) {
        problem(what + " has type byte " + std::to_string(entry.type) + " but names " +
                inode_text(entry.ino, *target) + ", type byte " +
                std::to_string(dirent_type_of_mode(target->mode)));
      }
      if (!has_back_ref(entry.ino, dir, entry)) {
        problem(what + " names inode " + std::to_string(entry.ino) +
                ", which has no matching INODE_REF record (" + std::to_string(entry.ino) +
                " INODE_REF " + std::to_string(dir) + ")");
      }
      ++names_[entry.ino];
      if (S_ISDIR(target->mode)) ++subdirs_[dir];
    }
    for (const auto& [hash, entries] : inode.hashed_entries) {
      std::set<Bytes> seen;
      for (const DirEntry& entry : entries) {
        const std::string what = entry_text(dir, entry);
        if (!seen.insert(entry.name).second) problem(what + " is stored twice in one DIR_ITEM");
        if (name_hash(entry.name) != hash) {
          problem(what + " is in the DIR_ITEM of hash " + hex_number(hash) +
                  " but its name hashes to " + hex_number(name_hash(entry.name)));
        }
        auto twin = inode.index_entries.find(entry.index);
        if (twin == inode.index_entries.end() || twin->second.name != entry.name) {
          problem(what + " of the DIR_ITEM has no DIR_INDEX");
        }
      }
    }
    if (item.size != 2 * name_bytes) {
      problem(inode_text(dir, item) + ": i_size " + std::to_string(item.size) +
              ", but twice the length of its entries' names is " + std::to_string(2 * name_bytes));
    }
  }

  // The rules the kernel applies to names (NAME_MAX, no '/' or NUL); an
  // encrypted directory stores ciphertext, which may hold any byte.
  void check_name(const std::string& what, const Bytes& name, bool encrypted) {
    if (name.size() > kMaxNameLength) {
      problem(what + ": name of " + std::to_string(name.size()) + " bytes (at most 255)");
    }
    if (encrypted) return;
    const bool dots = (name.size() == 1 && name[0] == '.') ||
                      (name.size() == 2 && name[0] == '.' && name[1] == '.');
    if (dots || std::ranges::find(name, '/') != name.end() ||
        std::ranges::find(name, '\0') != name.end()) {
      problem(what + ": not a valid name");
    }
  }

  // The DIR_ITEM twin of a DIR_INDEX entry: same name in the item of the
  // name's hash, with the same inode, index and type.
  void check_hashed_twin(uint64_t dir, const InodeContents& inode, const DirEntry& entry) {
    const std::string what = entry_text(dir, entry);
    auto item = inode.hashed_entries.find(name_hash(entry.name));
    const DirEntry* twin = nullptr;
    if (item != inode.hashed_entries.end()) {
      for (const DirEntry& candidate : item->second) {
        if (candidate.name == entry.name) twin = &candidate;
      }
    }
    if (!twin) {
      problem(what + " has no DIR_ITEM");
      return;
    }
    if (twin->ino != entry.ino || twin->index != entry.index || twin->type != entry.type) {
      problem(what + ": DIR_ITEM says inode " + std::to_string(twin->ino) + " index " +
              std::to_string(twin->index) + " type " + std::to_string(twin->type) +
              ", DIR_INDEX says inode " + std::to_string(entry.ino) + " index " +
              std::to_string(entry.index) + " type " + std::to_string(entry.type));
    }
  }

  bool has_back_ref(uint64_t ino, uint64_t dir, const DirEntry& entry) const {
    auto target = contents_.inodes.find(ino);
    if (target == contents_.inodes.end()) return false;
    auto refs = target->second.refs.find(dir);
    if (refs == target->second.refs.end()) return false;
    return std::ranges::any_of(refs->second, [&](const InodeRef& ref) {
      return ref.index == entry.index && ref.name == entry.name;
    });
  }

  void report_items_without_inode(uint64_t ino, const InodeContents& inode) {
    std::string kinds;
    const auto add = [&](bool present, const char* kind) {
      if (!present) return;
      if (!kinds.empty()) kinds += ", ";
      kinds += kind;
    };
    add(!inode.refs.empty(), "INODE_REF");
    add(!inode.index_entries.empty(), "DIR_INDEX");
    add(!inode.hashed_entries.empty(), "DIR_ITEM");
    add(!inode.xattr_names.empty(), "XATTR_ITEM");
    add(!inode.xattr_value_parts.empty(), "XATTR_VALUE");
    add(!inode.extents.empty(), "EXTENT_DATA");
    add(!inode.symlink_targets.empty(), "SYMLINK_TARGET");
    add(inode.fscrypt_context.has_value(), "FSCRYPT_INODE_CTX");
    add(inode.key_history.has_value(), "KEY_HISTORY");
    if (kinds.empty()) kinds = "items that do not decode";
    problem("inode " + std::to_string(ino) + " does not exist (no INODE_ITEM) but has " + kinds);
  }

  // Items that only one file type may have.
  void check_items_of_type(uint64_t ino, const InodeItem& item, const InodeContents& inode) {
    const std::string what = inode_text(ino, item);
    if (!S_ISDIR(item.mode) && (!inode.index_entries.empty() || !inode.hashed_entries.empty())) {
      problem(what + " has directory entries");
    }
    if (!S_ISREG(item.mode) && !inode.extents.empty()) {
      problem(what + " has " + std::to_string(inode.extents.size()) + " EXTENT_DATA items");
    }
    if (!S_ISLNK(item.mode) && !inode.symlink_targets.empty()) {
      problem(what + " has a SYMLINK_TARGET");
    }
  }

  // Every INODE_REF record has its entry.
  void check_back_refs(uint64_t ino, const InodeContents& inode) {
    for (const auto& [dir, refs] : inode.refs) {
      auto parent = contents_.inodes.find(dir);
      std::set<uint64_t> indexes;
      for (const InodeRef& ref : refs) {
        const std::string what = "inode " + std::to_string(ino) + ": INODE_REF record " +
                                 quoted_name(ref.name) + " (index " + std::to_string(ref.index) +
                                 ") in directory " + std::to_string(dir);
        if (!indexes.insert(ref.index).second) problem(what + " is stored twice");
        const DirEntry* entry = nullptr;
        if (parent != contents_.inodes.end()) {
          auto found = parent->second.index_entries.find(ref.index);
          if (found != parent->second.index_entries.end()) entry = &found->second;
        }
        if (!entry || entry->ino != ino || entry->name != ref.name) {
          problem(what + " has no directory entry");
        }
      }
    }
  }

  // nlink against the names; one name per directory; orphans for nlink 0.
  void check_links(uint64_t ino, const InodeItem& item, const InodeContents& inode) {
    const std::string what = inode_text(ino, item);
    auto found = names_.find(ino);
    const uint64_t names = found == names_.end() ? 0 : found->second;
    if (S_ISDIR(item.mode)) {
      auto counted = subdirs_.find(ino);
      const uint64_t subdirs = counted == subdirs_.end() ? 0 : counted->second;
      if (ino == kRootDirIno) {
        if (names > 0)
          problem(what + ": the root directory has " + std::to_string(names) + " names");
      } else if (item.nlink == 0) {
        if (names > 0) problem(what + ": nlink 0 but " + std::to_string(names) + " names");
        if (!inode.index_entries.empty()) {
          problem(what + ": removed (nlink 0) but still holds " +
                  std::to_string(inode.index_entries.size()) + " entries");
        }
      } else if (names != 1) {
        problem(what + " has " + std::to_string(names) +
                " names; a directory has exactly one (no hard links to directories)");
      }
      if (item.nlink != 0 || ino == kRootDirIno) {
        if (item.nlink != 2 + subdirs) {
          problem(what + ": nlink " + std::to_string(item.nlink) + ", but 2 + " +
                  std::to_string(subdirs) + " subdirectories = " + std::to_string(2 + subdirs));
        }
      }
    } else if (item.nlink != names) {
      problem(what + ": nlink " + std::to_string(item.nlink) + ", but it has " +
              std::to_string(names) + " names");
    }
    if (item.nlink == 0 && !contents_.orphans.contains(ino)) {
      problem(what + ": nlink 0 but no ORPHAN item (it would never be deleted)");
    }
  }

  void check_symlink(uint64_t ino, const InodeItem& item, const InodeContents& inode) {
    if (!S_ISLNK(item.mode)) return;
    const std::string what = inode_text(ino, item);
    if (inode.symlink_targets.size() != 1 || inode.symlink_targets.begin()->first != 0) {
      problem(what + " has " + std::to_string(inode.symlink_targets.size()) +
              " SYMLINK_TARGET items; it needs exactly one, at key offset 0");
      return;
    }
    const Bytes& target = inode.symlink_targets.begin()->second;
    if (target.empty()) problem(what + ": empty SYMLINK_TARGET");
    if (target.size() != item.size) {
      problem(what + ": i_size " + std::to_string(item.size) + ", but its target holds " +
              std::to_string(target.size()) + " bytes");
    }
  }

  void check_extents(uint64_t ino, const InodeItem& item, const InodeContents& inode) {
    const std::string what = inode_text(ino, item);
    // The end of the last sector that holds file bytes: regular data must
    // not lie beyond it (truncate drops it, so growing a file reads zeros).
    const uint64_t size_end = item.size > kMaxFileSize
                                  ? kMaxFileSize
                                  : (item.size + kSectorSize - 1) / kSectorSize * kSectorSize;
    uint64_t total = 0;
    std::optional<std::pair<uint64_t, uint64_t>> previous;  // offset, end
    for (const auto& [offset, extent] : inode.extents) {
      const std::string at = what + ": extent at file offset " + std::to_string(offset);
      total += extent.length;
      if (offset % kSectorSize != 0 || extent.length % kSectorSize != 0 ||
          extent.extent_offset % kSectorSize != 0 || extent.disk_bytenr % kSectorSize != 0 ||
          extent.disk_length % kSectorSize != 0) {
        problem(at + " is not sector aligned");
      }
      if (extent.extent_offset > extent.disk_length ||
          extent.length > extent.disk_length - extent.extent_offset) {
        problem(at + " reaches past its data extent (extent_offset " +
                std::to_string(extent.extent_offset) + " + length " +
                std::to_string(extent.length) + " > disk_length " +
                std::to_string(extent.disk_length) + ")");
      }
      if (offset > kMaxFileSize || extent.length > kMaxFileSize - offset) {
        problem(at + " ends past the largest file size");
        continue;
      }
      const uint64_t end = offset + extent.length;
      if (previous && previous->second > offset) {
        problem(what + ": extents at file offsets " + std::to_string(previous->first) + " and " +
                std::to_string(offset) + " overlap");
      }
      if (!previous || end > previous->second) previous = {offset, end};
      if (extent.type == FileExtentType::kRegular && end > size_end) {
        problem(at + " holds data past the end of the file (i_size " + std::to_string(item.size) +
                ")");
      }
      if (extent.encryption == ExtentEncryption::kFscrypt &&
          extent.context.size() != kExtentContextSize) {
        problem(at + ": fscrypt extent context of " + std::to_string(extent.context.size()) +
                " bytes (" + std::to_string(kExtentContextSize) + " expected)");
      }
    }
    if (item.nbytes != total) {
      problem(what + ": nbytes " + std::to_string(item.nbytes) + ", but its extents hold " +
              std::to_string(total) + " bytes");
    }
  }

  void check_xattrs(uint64_t ino, const InodeItem& item, const InodeContents& inode) {
    std::set<std::string> seen;
    for (const auto& [hash, names] : inode.xattr_names) {
      for (const std::string& name : names) {
        const std::string what =
            inode_text(ino, item) + ": xattr " + quoted_name(as_bytes(std::string_view(name)));
        if (!seen.insert(name).second) problem(what + " is stored twice");
        if (name_hash(as_bytes(std::string_view(name))) != hash) {
          problem(what + " is in the XATTR_ITEM of hash " + hex_number(hash) +
                  " but its name hashes elsewhere");
        }
      }
    }
    check_out_of_line_values(ino, item, inode);
  }

  // Each out-of-line value's parts follow one another from its id and add
  // up to its length; no part belongs to no value.
  void check_out_of_line_values(uint64_t ino, const InodeItem& item, const InodeContents& inode) {
    std::set<uint64_t> claimed;
    for (const auto& [id, value] : inode.xattr_out_of_line) {
      const auto& [name, length] = value;
      const std::string what = inode_text(ino, item) + ": xattr " +
                               quoted_name(as_bytes(std::string_view(name))) + " (out of line at " +
                               hex_number(id) + ")";
      uint64_t total = 0;
      bool gap = false;
      uint64_t next = id;
      for (auto it = inode.xattr_value_parts.lower_bound(id);
           it != inode.xattr_value_parts.end() && it->first < id + kXattrValueIdStride; ++it) {
        claimed.insert(it->first);
        gap = gap || it->first != next || it->second == 0;
        next = it->first + 1;
        total += it->second;
      }
      if (total != length || gap) {
        problem(what + ": its XATTR_VALUE parts hold " + std::to_string(total) + " of " +
                std::to_string(length) + " bytes" + (gap ? ", with a part missing" : ""));
      }
    }
    for (const auto& [offset, size] : inode.xattr_value_parts) {
      if (!claimed.contains(offset)) {
        problem(inode_text(ino, item) + ": XATTR_VALUE " + hex_number(offset) +
                " belongs to no xattr");
      }
    }
  }

  void check_fscrypt(uint64_t ino, const InodeItem& item, const InodeContents& inode) {
    const std::string what = inode_text(ino, item);
    const bool flagged = item.flags & kInodeFlagEncrypted;
    if (flagged && !inode.fscrypt_context) {
      problem(what + " is marked encrypted but has no FSCRYPT_INODE_CTX");
    }
    if (!flagged && inode.fscrypt_context) {
      problem(what + " has an FSCRYPT_INODE_CTX but is not marked encrypted");
    }
    if (inode.fscrypt_context && inode.fscrypt_context->size() != kInodeContextSize) {
      problem(what + ": FSCRYPT_INODE_CTX of " + std::to_string(inode.fscrypt_context->size()) +
              " bytes (" + std::to_string(kInodeContextSize) + " expected)");
    }
    std::optional<fscrypt::Context> context;
    if (flagged && inode.fscrypt_context && inode.fscrypt_context->size() == kInodeContextSize) {
      auto parsed = fscrypt::parse_context(*inode.fscrypt_context);
      if (!parsed) {
        problem(what + ": FSCRYPT_INODE_CTX does not parse: " + parsed.error().message());
      } else if (auto allowed = fscrypt::check_extent_encryption_allowed(parsed->policy);
                 !allowed) {
        problem(what +
                ": its encryption policy is not one ecfs allows: " + allowed.error().message());
      } else {
        context = std::move(*parsed);
      }
    }
    // The keys it was under before a rotation (fs/key_history.h).
    std::vector<fscrypt::KeyIdentifier> previous;
    if (inode.key_history) {
      auto decoded = decode_key_history(*inode.key_history);
      if (!inode.fscrypt_context) {
        problem(what + " has a KEY_HISTORY but no FSCRYPT_INODE_CTX");
      } else if (!decoded) {
        problem(what + ": " + decoded.error().message());
      } else {
        previous = std::move(*decoded);
        if (context && std::ranges::find(previous, policy_key(context->policy)) != previous.end()) {
          problem(what + ": KEY_HISTORY lists its current key");
        }
      }
    }
    // Every extent of an encrypted file belongs to its policy (its mode and
    // master key: the series' fscrypt_load_extent_info checks), or to the
    // policy as it was under a key the file was under before; a file
    // without a context has no encrypted extent, since extents are shared
    // only between files whose policies allow it.
    for (const auto& [offset, extent] : inode.extents) {
      const std::string at = what + ": extent at file offset " + std::to_string(offset);
      const bool encrypted = extent.encryption == ExtentEncryption::kFscrypt;
      if (!flagged && encrypted) problem(at + " is encrypted but the inode is not");
      if (!context) continue;
      if (!encrypted) {
        problem(at + " is not encrypted but the inode is");
        continue;
      }
      auto parsed = fscrypt::parse_extent_context(extent.context);
      const fscrypt::Policy policy =
          parsed ? extent_policy(context->policy, previous, parsed->master_key_identifier)
                 : context->policy;
      if (auto loaded = fscrypt::load_extent_context(extent.context, policy); !loaded) {
        problem(at + ": its extent context does not belong to the inode's policy (" +
                loaded.error().message() + ")");
      }
    }
  }

  void check_orphans() {
    for (uint64_t ino : contents_.orphans) {
      const InodeItem* item = item_of(ino);
      if (!item) {
        // delete_inode removes the item with the inode, so this takes damage
        // or an older format; harmless either way: mounting removes it.
        report_.warnings.push_back("leftover ORPHAN item for inode " + std::to_string(ino) +
                                   ", which no longer exists (the next mount removes it)");
      } else if (item->nlink != 0) {
        problem("ORPHAN item for " + inode_text(ino, *item) + ", which has nlink " +
                std::to_string(item->nlink) + " (a mount would leave or delete a linked inode)");
      }
    }
  }

  // Every linked directory must be reached from the root through entries:
  // one that is not sits in a cycle or a detached subtree.
  void check_reachability() {
    if (!item_of(kRootDirIno)) return;
    std::set<uint64_t> reached{kRootDirIno};
    std::deque<uint64_t> pending{kRootDirIno};
    while (!pending.empty()) {
      const uint64_t dir = pending.front();
      pending.pop_front();
      auto inode = contents_.inodes.find(dir);
      if (inode == contents_.inodes.end()) continue;
      for (const auto& [index, entry] : inode->second.index_entries) {
        if (names_subvolume(entry.type)) continue;  // another tree's root
        const InodeItem* target = item_of(entry.ino);
        if (target && S_ISDIR(target->mode) && reached.insert(entry.ino).second) {
          pending.push_back(entry.ino);
        }
      }
    }
    for (const auto& [ino, inode] : contents_.inodes) {
      if (!inode.item || !S_ISDIR(inode.item->mode) || inode.item->nlink == 0) continue;
      if (!reached.contains(ino)) {
        problem(inode_text(ino, *inode.item) +
                " is not reachable from the root directory (a cycle or a detached subtree)");
      }
    }
  }

  const TreeContents& contents_;
  FsCheckReport& report_;
  std::map<uint64_t, uint64_t> names_;    // inode -> entries naming it
  std::map<uint64_t, uint64_t> subdirs_;  // directory -> entries naming directories
};

}  // namespace

FsCheckReport check_tree_contents(const TreeContents& contents) {
  FsCheckReport report;
  Checker(contents, report).run();
  return report;
}

Result<FsCheckReport> check_filesystem(store::Engine& engine, uint64_t tree_id) {
  auto tree = engine.committed_tree(tree_id);
  if (!tree) return std::unexpected(tree.error());
  auto contents = read_tree_contents(*tree);
  if (!contents) return std::unexpected(contents.error());
  FsCheckReport report = check_tree_contents(*contents);
  // Entries naming subvolumes against the catalog: each ROOT_REF of this
  // tree has its entry (same directory, index and name), and each entry
  // its ROOT_REF.
  auto children = store::SubvolumeCatalog(engine).children(tree_id);
  if (!children) return std::unexpected(children.error());
  for (const auto& [dir, entry] : report.subvolume_entries) {
    const auto ref = std::ranges::find_if(*children, [&](const auto& child) {
      return child.first == entry.ino && child.second.dirid == dir &&
             child.second.index == entry.index && child.second.name == entry.name;
    });
    if (ref == children->end()) {
      report.problems.push_back("directory " + std::to_string(dir) + " entry at index " +
                                std::to_string(entry.index) + " names subvolume " +
                                std::to_string(entry.ino) + ", which has no such ROOT_REF");
    }
  }
  for (const auto& [child, ref] : *children) {
    const auto named = std::ranges::find_if(report.subvolume_entries, [&](const auto& found) {
      return found.second.ino == child && found.first == ref.dirid &&
             found.second.index == ref.index && found.second.name == ref.name;
    });
    if (named == report.subvolume_entries.end()) {
      report.problems.push_back("subvolume " + std::to_string(child) + " is named in directory " +
                                std::to_string(ref.dirid) + " at index " +
                                std::to_string(ref.index) +
                                " by its ROOT_REF, but that directory has no such entry");
    }
  }
  if (!report.subvolume_entries.empty() &&
      (engine.superblock().incompat_flags & store::kIncompatSubvolumes) == 0) {
    report.problems.push_back(
        "entries name subvolumes, but the superblock lacks the subvolumes feature flag");
  }
  // Earlier keys need the feature flag, or an older reader would take
  // their extents for damage.
  if ((engine.superblock().incompat_flags & store::kIncompatKeyRotation) == 0) {
    for (const auto& [ino, inode] : contents->inodes) {
      if (inode.key_history) {
        report.problems.push_back("inode " + std::to_string(ino) +
                                  " has a KEY_HISTORY, but the superblock lacks the "
                                  "key-rotation feature flag");
      }
    }
  }
  // Out-of-line values need the feature flag, or an older reader would
  // take their ids for values.
  if ((engine.superblock().incompat_flags & store::kIncompatLargeXattrValues) == 0) {
    for (const auto& [ino, inode] : contents->inodes) {
      if (!inode.xattr_out_of_line.empty()) {
        report.problems.push_back("inode " + std::to_string(ino) +
                                  " has out-of-line xattr values, but the superblock lacks the "
                                  "large-xattr-values feature flag");
      }
    }
  }
  return report;
}

Result<FsCheckReport> check_all_subvolumes(store::Engine& engine) {
  auto subvolumes = store::SubvolumeCatalog(engine).list();
  if (!subvolumes) return std::unexpected(subvolumes.error());
  FsCheckReport total;
  for (const store::SubvolumeEntry& subvolume : *subvolumes) {
    if (subvolume.deleted) continue;
    auto report = check_filesystem(engine, subvolume.id);
    if (!report) return std::unexpected(report.error());
    const std::string prefix = subvolume.id == store::kFsTreeId
                                   ? std::string()
                                   : "subvolume " + std::to_string(subvolume.id) + ": ";
    total.inodes += report->inodes;
    total.directories += report->directories;
    total.regular_files += report->regular_files;
    total.symlinks += report->symlinks;
    total.special_files += report->special_files;
    total.entries += report->entries;
    total.extents += report->extents;
    total.xattrs += report->xattrs;
    total.orphans += report->orphans;
    for (auto& entry : report->subvolume_entries) total.subvolume_entries.push_back(entry);
    for (const std::string& problem : report->problems) total.problems.push_back(prefix + problem);
    for (const std::string& warning : report->warnings) total.warnings.push_back(prefix + warning);
  }
  // The protector tree beside the subvolumes (fs/protector_store.h).
  ECFS_TRY(check_protector_tree(engine, total.problems));
  return total;
}

}  // namespace ecfs::fs
