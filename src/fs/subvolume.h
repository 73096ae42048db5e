// Subvolume: POSIX semantics on one filesystem tree of a store::Volume
// (DESIGN.md layer 5). Inodes, directories, regular files as extent maps,
// hard links, symlinks, special files, xattrs, rename, truncate, fallocate,
// SEEK_DATA / SEEK_HOLE and reflinks. The FileSystem (filesystem.h) holds
// one per subvolume the kernel has met and passes each call to the one its
// node id names (node_ids.h): node ids at this interface, the tree's own
// inode numbers inside.
//
// The interface follows the shape of the kernel's VFS as a FUSE low-level
// server sees it: every call that returns an entry (lookup, create, mkdir,
// mknod, symlink, link) counts one kernel lookup reference, which forget()
// gives back. An inode whose last name is removed while the kernel still
// holds references becomes an orphan (an ORPHAN item keeps it on disk); it
// is deleted when the last reference is forgotten, or at the next mount
// after a crash.
//
// Transactions are the volume's: changes gather in its running transaction,
// and this subvolume, a store::VolumeClient, writes what it buffers (data,
// inode items) into it when the volume commits. Data is buffered (delayed
// allocation, file_data.h) and written as large extents when a commit or
// fsync needs it, or when the buffer grows large.
//
// Permissions: the caller (the kernel, through FUSE's default_permissions)
// checks access before calling; this class checks only what the kernel
// leaves to filesystems (sticky directories, RENAME_* rules, name lengths).
// A read-only snapshot refuses every change with EROFS.
//
// Thread-safe: every public method may be called from many threads; each
// takes the volume's lock (those that say so expect it held).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "fs/extent_keys.h"
#include "fs/items.h"
#include "fs/key_history.h"
#include "fs/node_ids.h"
#include "fs/vfs_types.h"
#include "fscrypt/keyring.h"
#include "fscrypt/policy.h"
#include "store/subvolume_catalog.h"
#include "store/volume.h"

namespace ecfs::fs {

class FileData;
struct FileDataOptions;
struct ReencryptCache;

// Writes the root directory (inode 256, owned by `owner`) into `tree` (an
// empty filesystem tree) in the running transaction.
Status add_root_inode(store::BTree& tree, uint64_t generation, const Caller& owner, uint32_t mode);

// The host of subvolumes (the FileSystem): what one subvolume asks about the
// others while the volume's lock is held.
class SubvolumeHost {
 public:
  virtual ~SubvolumeHost() = default;
  // The root directory of subvolume `tree`, with one lookup reference
  // taken (lookup of an entry that names a subvolume). ENOENT when it is
  // gone or deleted.
  virtual Result<Attributes> enter_subvolume(uint64_t tree) = 0;
  // Node `node` of any subvolume, with one lookup reference taken.
  virtual Result<Attributes> enter_node(uint64_t node) = 0;
  // The node id of the directory that holds subvolume `tree`'s name (its
  // root's ".."); for the top level, or a subvolume mounted as the root,
  // its own root.
  virtual Result<uint64_t> parent_of_subvolume_root(uint64_t tree) = 0;
  // Makes subvolume `tree` a dead root (its name is being removed):
  // ENOTEMPTY when it names other subvolumes, or with `require_empty` when
  // its root directory holds anything.
  virtual Status make_subvolume_dead(uint64_t tree, bool require_empty) = 0;
  // Subvolume `tree`'s name moved to `link`.
  virtual Status relink_subvolume(uint64_t tree, const store::SubvolumeLink& link) = 0;
};

class Subvolume final : public store::VolumeClient {
 public:
  // One subvolume of `volume` (tree `tree`), sharing the mount's options
  // and keyring (which must outlive it), opened with the volume's lock
  // held. `read_only`: a read-only snapshot (every change EROFS).
  Subvolume(store::Volume& volume, uint64_t tree, bool read_only, const MountOptions& options,
            fscrypt::Keyring& keyring, SubvolumeHost& host);
  ~Subvolume() override;
  Subvolume(const Subvolume&) = delete;
  Subvolume& operator=(const Subvolume&) = delete;

  // Mount-time work, with the volume's lock held: the next inode number
  // (one past the highest, found in O(log n)) and, unless read-only, the
  // orphans a crash left. EINVAL when the tree has no root directory.
  Status start();

  uint64_t tree_id() const { return tree_; }
  // A read-only snapshot (or subvolume).
  bool read_only_subvolume() const { return read_only_; }
  // Its tree was dropped (tree_dropped): the object only answers errors.
  // REQUIRES the volume's lock held.
  bool dropped() const { return dropped_; }
  void set_read_only_subvolume(bool read_only) { read_only_ = read_only; }
  // Its name was deleted: no new name appears in it (ENOENT, as in a
  // directory that was removed), while the files still open in it stay
  // readable and writable as before (btrfs keeps a deleted subvolume's open
  // files usable); the last close lets the cleaner drop its tree. REQUIRES
  // the volume's lock held.
  void mark_deleted() { deleted_ = true; }
  // The node id of this subvolume's root directory.
  uint64_t root_node() const;
  // For statfs, with the volume's lock held: an upper bound of the inodes in
  // use that needs no count at mount (inode numbers given out, the root's
  // included, less the inodes deleted since mount; exact in its changes
  // within a mount), and the inode numbers left.
  uint64_t inodes_in_use_bound() const {
    const uint64_t given_out = next_ino_ - kRootDirIno;
    return given_out > deleted_since_mount_ ? given_out - deleted_since_mount_ : 0;
  }
  uint64_t inode_numbers_left() const {
    return next_ino_ > kMaxLocalIno ? 0 : kMaxLocalIno - next_ino_ + 1;
  }

  // ---- subvolume names (FileSystem), with the volume's lock held ----
  // How a new subvolume's name `name` in directory `dir_node` is stored,
  // and the DIR_INDEX it will get. EROFS, ENOTDIR, ENOENT (directory
  // removed), EEXIST, ENAMETOOLONG / EINVAL, and EXDEV in an encrypted
  // directory (a subvolume's root is not under its directory's policy).
  struct NewName {
    uint64_t dir = 0;  // inode number in this tree
    Bytes stored;
    uint64_t index = 0;
  };
  Result<NewName> prepare_subvolume_name(uint64_t dir_node, std::string_view name);
  // Writes the entry of subvolume `tree` prepared by prepare_subvolume_name.
  Status add_subvolume_entry(uint64_t dir, ByteSpan stored_name, uint64_t tree);
  // Removes the entry `name` of directory `dir_node`, which must name a
  // subvolume (EINVAL otherwise), deleting that subvolume whatever it holds.
  // Returns its tree id.
  Result<uint64_t> delete_subvolume_named(uint64_t dir_node, std::string_view name);
  // Whether the root directory holds no entry.
  Result<bool> root_is_empty();
  // The path of directory `dir` (an inode number of this tree) from this
  // subvolume's root, names joined by '/' ("" for the root).
  Result<std::string> directory_path(uint64_t dir);
  // Lookup references of `node` (FileSystem::enter_*).
  Result<Attributes> take_entry(uint64_t node);
  // The node id that `name` in directory `dir_node` names (a subvolume's
  // root for an entry naming one), taking no reference.
  Result<uint64_t> resolve_name(uint64_t dir_node, std::string_view name);

  // The VFS calls: each as FileSystem's of the same name (filesystem.h,
  // where they are described), for node ids of this subvolume; each takes
  // the volume's lock.
  Result<Attributes> lookup(uint64_t parent, std::string_view name);
  void forget(uint64_t ino, uint64_t count);

  Result<Attributes> getattr(uint64_t ino);
  Result<Attributes> setattr(uint64_t ino, const SetAttributes& changes);

  Result<Attributes> mknod(uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev,
                           const Caller& caller);
  Result<Attributes> mkdir(uint64_t parent, std::string_view name, uint32_t mode,
                           const Caller& caller);
  Result<Attributes> symlink(uint64_t parent, std::string_view name, std::string_view target,
                             const Caller& caller);
  Result<std::string> readlink(uint64_t ino);
  Result<Attributes> link(uint64_t ino, uint64_t new_parent, std::string_view new_name);
  Status unlink(uint64_t parent, std::string_view name);
  Status rmdir(uint64_t parent, std::string_view name);
  Status rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, uint32_t flags);

  Result<uint64_t> listing_end(uint64_t ino);

  Status readdir(uint64_t ino, uint64_t cookie,
                 const std::function<bool(const DirListEntry&)>& emit,
                 uint64_t end = kWholeListing);
  Status readdir_plus(uint64_t ino, uint64_t cookie,
                      const std::function<bool(const DirListEntry&, const Attributes*)>& emit,
                      uint64_t end = kWholeListing);
  static constexpr uint64_t kWholeListing = UINT64_MAX;

  Status open(uint64_t ino, int flags);
  void release(uint64_t ino);

  Result<size_t> read(uint64_t ino, uint64_t offset, MutableByteSpan out);
  Result<size_t> write(uint64_t ino, uint64_t offset, ByteSpan data);
  Status fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length);
  Result<uint64_t> lseek(uint64_t ino, uint64_t offset, int whence);
  // `ino_in` is in `source` (this subvolume or another of the volume): a
  // reflink across subvolumes shares extents as within one.
  Result<uint64_t> copy_file_range(Subvolume& source, uint64_t ino_in, uint64_t offset_in,
                                   uint64_t ino_out, uint64_t offset_out, uint64_t length);

  Status fsync(uint64_t ino, bool datasync);

  Status setxattr(uint64_t ino, std::string_view name, ByteSpan value, int flags);
  Result<Bytes> getxattr(uint64_t ino, std::string_view name);
  Result<std::string> listxattr(uint64_t ino);
  Status removexattr(uint64_t ino, std::string_view name);

  Status set_policy(uint64_t ino, const fscrypt::Policy& policy, const fscrypt::Caller& caller);
  bool is_encrypted(uint64_t ino);
  Result<fscrypt::Policy> get_policy(uint64_t ino);
  Result<std::vector<fscrypt::KeyIdentifier>> previous_keys(uint64_t ino);
  // For tests and fsck-style checks: the number of kernel references and
  // opens an inode holds in memory (0 when unknown).
  uint64_t lookup_count(uint64_t ino) const;

  // FileSystem::rekey_directory for directory `dir_node` of this subvolume
  // (rekey_ops.cc).
  Result<RekeyReport> rekey_directory(uint64_t dir_node, const fscrypt::KeyIdentifier& to,
                                      const fscrypt::Caller& caller);
  Result<RekeyContentsReport> rekey_contents(uint64_t node, uint64_t max_bytes,
                                             const fscrypt::Caller& caller);

  // Key changes (FileSystem::add_key, remove_key). REQUIRE the volume's
  // lock held. The inodes the kernel holds whose context names `key` (node
  // ids); with `evict`, first drops the cached keys of those (and others of
  // the key) that are not open.
  std::vector<uint64_t> inodes_using_key(const fscrypt::KeySpecifier& key, bool evict);
  // The names, as presented now, of the entries the kernel knows (lookups)
  // in the directories it knows that are encrypted under `key`.
  Result<std::vector<CachedName>> known_names_using_key(const fscrypt::KeySpecifier& key);

  // store::VolumeClient: the volume's commits and aborts. Called with the
  // volume's lock held.
  uint64_t buffered_bytes() const override;
  // With much data buffered, most of it is written out with the lock
  // released (write_out_buffered), so that requests go on meanwhile, and
  // only what they add is flushed with it held.
  Status write_out_before_commit(std::unique_lock<std::mutex>& lock) override;
  Status flush_for_commit() override;  // buffered data, then inode items
  // Forgets the cached inodes nobody references.
  void committed(bool trim_caches) override;
  void aborted() override;          // drop cached inodes and buffered data
  Status prepare_close() override;  // every kernel reference ends: orphans go
  void idle() override;             // buffers' idle memory goes back
  // An inode of the tree is open.
  bool uses_tree(uint64_t tree) const override;
  // This subvolume was deleted and its tree dropped: caches go, every
  // later call fails (its tree is gone), nothing is written.
  void tree_dropped(uint64_t tree) override;

 private:
  struct InodeState;  // a cached inode and its kernel references (fs_internal.h)

  // Node ids at the interface, inode numbers of this tree inside.
  uint64_t node_of(uint64_t ino) const { return node_id(tree_, ino); }
  // REQUIRES: `node` is of this tree (FileSystem dispatches by tree).
  uint64_t local(uint64_t node) const;

  // Transactions (subvolume.cc). REQUIRE mutex_ held.
  Result<store::BTree*> tree();  // the filesystem tree in the running transaction
  // The filesystem tree for reading: the running transaction's, or the
  // committed one on a read-only mount. A handle valid until the next change.
  Result<store::BTree> read_tree();
  // ESHUTDOWN after close, EROFS when read-only.
  Status check_writable() const;
  // check_writable, and ENOENT once the subvolume was deleted: for calls
  // that change names (create, link, unlink, rename, rmdir, a policy).
  Status check_names_changeable() const;
  // A read of `state`'s data or listing: updates its atime as the mount's
  // AtimeUpdates says, when the image may change.
  void note_access(InodeState& state);
  // ENOSPC before a change begins (store::Volume::check_space); cached
  // inodes stay, the caller may hold them.
  Status check_space(uint64_t data_bytes) { return volume_.check_space(data_bytes); }
  // Writes out data and inodes, commits, begins anew.
  Status commit_locked() { return volume_.commit_locked(); }
  // A change failed half way: abort the transaction, turn read-only.
  std::unexpected<Error> abort_change(Error error) {
    return volume_.abort_change(std::move(error));
  }
  // Up to about `max_bytes` of buffered data goes to the device in a
  // writeout (file_data.h) whose device writes run with mutex_ released, so
  // that writes of the next data go on meanwhile. `lock` holds mutex_.
  Status write_out_buffered(std::unique_lock<std::mutex>& lock, uint64_t max_bytes);
  // What a write past the dirty limit writes out: a quarter of the limit,
  // so that buffered memory stays within 1¼ times it.
  uint64_t writeout_chunk() const;
  // Returns when no writeout is running (releasing mutex_ while it waits).
  // Called first by every change that may truncate, punch, copy or remove
  // file data, and by commits and aborts, which must not split a writeout.
  void await_writeout() { volume_.await_writeout(); }
  FileDataOptions data_options();

  // Inodes (subvolume.cc). REQUIRE mutex_ held.
  Result<InodeState*> inode(uint64_t ino);  // ENOENT when absent
  void touch(InodeState& state, bool mtime, bool ctime);
  // The inode item changed: it is written at the next commit.
  void mark_dirty(InodeState& state);
  Result<InodeState*> create_inode(uint32_t mode, uint64_t rdev, const Caller& caller,
                                   const InodeState& parent);
  Attributes attributes_of(uint64_t ino, const InodeState& state) const;
  Attributes entry_of(uint64_t ino, InodeState& state);  // + one lookup reference
  // attributes_of as the kernel shows them (encrypted symlinks: the length
  // of the presented target).
  Attributes presented_attributes(uint64_t ino, InodeState& state);
  Status write_back_inodes();
  // Deletes `ino` if it has no name, no kernel reference and is not open.
  Status delete_if_unused(uint64_t ino);
  Status delete_inode(uint64_t ino);
  Status add_orphan(uint64_t ino);
  Status cleanup_orphans();
  Result<Attributes> make_node(uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev,
                               std::string_view symlink_target, const Caller& caller);

  // Directories (directory.cc). REQUIRE mutex_ held.
  Result<std::optional<DirEntry>> find_entry(uint64_t dir, ByteSpan name);
  // The entry `name` of directory `dir`: ENOTDIR, ENOENT.
  Result<DirEntry> existing_entry(uint64_t dir, std::string_view name);
  Status add_entry(uint64_t dir, ByteSpan name, uint64_t ino, uint8_t type);
  Status remove_entry(uint64_t dir, const DirEntry& entry);
  Result<uint64_t> parent_of(uint64_t dir);
  // ".." of `dir` as a node id: for the root, the directory of another
  // subvolume that names this one.
  Result<uint64_t> parent_node_of(uint64_t dir);
  // Entry `entry` of `dir` gets the stored name `new_name` in its DIR_ITEM,
  // DIR_INDEX and INODE_REF, keeping its index, target and times (a
  // rotation re-encrypts names under the directory's new key).
  Status replace_stored_name(uint64_t dir, const DirEntry& entry, ByteSpan new_name);
  // The end of remove_entry: the directory's size and times.
  Status finish_entry_removal(InodeState& dir, const DirEntry& entry);
  // rmdir / delete of the entry naming a subvolume.
  Status remove_subvolume_entry(uint64_t dir, const DirEntry& entry, bool require_empty);
  // rename where either side names a subvolume.
  Status rename_subvolume_entry(uint64_t parent, const DirEntry& src, uint64_t new_parent,
                                const Bytes& new_stored, const std::optional<DirEntry>& target,
                                uint32_t flags);
  Result<bool> is_empty_directory(uint64_t dir);
  // Removes one name: the entry, the back reference, nlink (and the
  // directory's own counts for a subdirectory), orphaning the inode.
  Status drop_name(uint64_t parent, const DirEntry& entry);

  // Extended attributes and ACLs (xattr_ops.cc). REQUIRE mutex_ held.
  Result<std::optional<Bytes>> find_xattr(uint64_t ino, std::string_view name);
  Status put_xattr(uint64_t ino, std::string_view name, std::optional<ByteSpan> value);
  // New inode in a directory with a default ACL: inherit it (posix_acl_create).
  Status inherit_acls(uint64_t parent, uint64_t ino, InodeState& state);
  // chmod: keep the access ACL's owner/mask/other entries equal to the mode.
  Status sync_acl_with_mode(uint64_t ino, uint32_t mode);

  // Encryption (crypt_ops.cc). REQUIRE mutex_ held.
  class DataKeys;  // FileData's ExtentKeys, from inode contexts and the keyring
  std::unique_ptr<ExtentKeys> make_data_keys();
  // The inode's fscrypt context; nullptr when it is not encrypted. EUCLEAN
  // for a flagged inode without a valid context item.
  Result<const fscrypt::Context*> crypt_context(InodeState& state);
  // An inode with its fscrypt context loaded: ENODATA when it is not
  // encrypted, ESHUTDOWN after close.
  Result<InodeState*> encrypted_inode(uint64_t ino);
  // The inode's key, set up from the keyring on first use: ENOKEY without
  // the master key. REQUIRES: the inode is encrypted.
  Result<fscrypt::FileInfoPtr> crypt_info(InodeState& state);
  // A new inode in `parent`: an encrypted parent passes its policy on with
  // a fresh nonce to regular files, directories and symlinks
  // (fscrypt_prepare_new_inode); other types are not encrypted.
  Status inherit_encryption(InodeState& parent, InodeState& child);
  // The name as stored in directory `dir` for a new or renamed entry: the
  // plaintext, or the ciphertext in an encrypted directory (ENOKEY without
  // its key, ENAMETOOLONG when the ciphertext would not fit).
  Result<Bytes> stored_name(InodeState& dir, std::string_view name);
  // An existing entry by the name a user passed: the plaintext, or in an
  // encrypted directory whose key is absent, a no-key name (fscrypt's
  // fscrypt_match_name). std::nullopt if there is none.
  Result<std::optional<DirEntry>> find_named(uint64_t dir, InodeState& dir_state,
                                             std::string_view name);
  // The entry of `dir` in DIR_ITEM `hash` that `matches` accepts.
  Result<std::optional<DirEntry>> find_entry_if(
      uint64_t dir, uint64_t hash, const std::function<bool(const DirEntry&)>& matches);
  // How readdir shows a stored name of directory `dir`: decrypted with its
  // key, or else as a no-key name.
  Result<std::string> presented_name(const fscrypt::FileInfoPtr& dir_info, ByteSpan stored);
  // The key of encrypted directory `dir`'s names, or null without it (its
  // names are then presented as no-key names) or for an unencrypted one.
  Result<fscrypt::FileInfoPtr> name_key(InodeState& dir);
  // Calls `visit` with directory `dir`'s entries in index order from index
  // `first` to below `end` while it returns true; EUCLEAN for a malformed
  // index item; `visit`'s own error stops the walk and is returned.
  Status for_each_dir_entry(uint64_t dir, uint64_t first,
                            const std::function<Result<bool>(const DirEntryView&)>& visit,
                            uint64_t end = kWholeListing);
  // The listing behind readdir and readdir_plus, called under the lock:
  // `emit` gets each entry from `cookie` to below index `end` and whether
  // it is "." or "..".
  Status list_entries(uint64_t ino, uint64_t cookie, uint64_t end,
                      const std::function<bool(const DirListEntry&, bool dot_or_dotdot)>& emit);
  // Symlink targets as stored / as read (encrypted records for encrypted
  // symlinks; the no-key form without the key).
  Result<Bytes> stored_symlink_target(InodeState& link, std::string_view target);
  // ENAMETOOLONG when `target` would not fit as a symlink in `dir` (an
  // encrypted record is longer than the target: fscrypt_prepare_symlink).
  Status check_symlink_fits(InodeState& dir, std::string_view target);
  Result<std::string> presented_symlink_target(InodeState& link, const Bytes& stored);
  // EXDEV unless `child` may be linked into encrypted directory `dir`
  // (fscrypt_has_permitted_context; a rotation under way also lets in a
  // file still under the directory's previous key).
  Status check_permitted_context(InodeState& dir, InodeState& child);
  // The master keys whose extents an encrypted inode may hold; nullopt when
  // it is not encrypted.
  Result<std::optional<InodeKeySet>> key_set(InodeState& state);
  // Key rotation (rekey_ops.cc). REQUIRE mutex_ held.
  struct InodeRekey;  // one inode's new context, history and key
  // How encrypted inode `state` moves to policy `target`, changing nothing:
  // ENOKEY without a key it needs, EOVERFLOW when a file's history is full.
  Result<InodeRekey> plan_rekey(InodeState& state, const fscrypt::Policy& target);
  Status apply_rekey(InodeRekey& rekey);
  // Removes the inode's KEY_HISTORY, if it has one.
  Status drop_key_history(InodeState& state);

  store::Volume& volume_;
  // The volume's transaction lock: guards everything below (store/volume.h).
  std::mutex& mutex_;
  const uint64_t tree_;
  bool read_only_;
  bool deleted_ = false;  // mark_deleted()
  bool dropped_ = false;  // tree_dropped()
  const MountOptions& options_;
  fscrypt::Keyring& keyring_;
  SubvolumeHost& host_;
  std::unique_ptr<ExtentKeys> data_keys_;
  std::unique_ptr<FileData> data_;
  // Extents re-encrypted by rekey_contents, so that the other items sharing
  // one follow it to its copy (file_data.h ReencryptCache); bounded.
  std::unique_ptr<ReencryptCache> reencrypted_;
  std::unordered_map<uint64_t, std::unique_ptr<InodeState>> inodes_;
  uint64_t next_ino_ = kRootDirIno + 1;
  uint64_t deleted_since_mount_ = 0;  // inodes deleted (inodes_in_use_bound)
  // Inodes marked dirty since the last write-back (mark_dirty), and those
  // that may have become clean and unreferenced since the last trim: a
  // commit walks these, never the whole cache.
  std::vector<uint64_t> dirty_inodes_;
  std::vector<uint64_t> trim_candidates_;
  uint64_t inode_count_ = 0;
};

}  // namespace ecfs::fs
