// FileSystem: the POSIX filesystem of a mounted image (DESIGN.md layer 5):
// a store::Volume and the subvolumes of its namespace. The top level
// (FS_TREE 5) holds directories that name further subvolumes and
// snapshots; each is a Subvolume (subvolume.h) with its own tree, inode
// cache and buffered data, opened when the kernel first meets it. Calls
// name inodes by node id (node_ids.h), unique across the mount, and go to
// the subvolume the node id names. This class adds what spans subvolumes:
// crossing from one into another (lookup, ".."), the mount's keyring and
// key changes, statfs, remount, and the subvolume jobs (create, snapshot,
// delete, list), which the volume runs without any key.
//
// Transactions: changes gather in the volume's running transaction,
// committed by sync(), fsync(), a periodic commit
// (MountOptions::commit_interval) and close(). A crash loses at most the
// changes since the last commit. After an internal failure in the middle of
// a change the transaction is aborted and the mount turns read-only (EROFS),
// as btrfs does on a transaction abort; the daemon logs why.
//
// Rename and hard link across subvolumes give EXDEV, as in btrfs.
//
// Thread-safe: every public method may be called from many threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "block/block_device.h"
#include "fs/key_usage.h"
#include "fs/node_ids.h"
#include "fs/protector_store.h"
#include "fs/subvolume.h"
#include "fs/vfs_types.h"
#include "fscrypt/keyring.h"
#include "fscrypt/policy.h"
#include "store/engine.h"
#include "store/subvolume_catalog.h"
#include "store/volume.h"

namespace ecfs::fs {

// Adds the root directory (inode 256, mode 0755 | S_IFDIR, owned by
// `owner`) to FS_TREE 5 in the engine's running transaction (for
// store::MkfsOptions::populate). EEXIST if the image already has one.
Status add_root_directory(store::Engine& engine, const Caller& owner);
// The same in a transaction of its own, committed.
Status format_filesystem(store::Engine& engine, const Caller& owner);

// A subvolume as `ecfs subvolume list` and `show` report it.
struct SubvolumeListing {
  uint64_t id = 0;  // tree id (5 for the top level)
  store::SubvolumeInfo info;
  // Where it appears: the node id of the directory holding its name and the
  // name (as stored); absent for the top level and deleted subvolumes.
  std::optional<uint64_t> parent_dir;
  std::optional<uint64_t> parent_id;
  std::string name;
  bool deleted = false;    // waiting to be dropped
  uint64_t root_node = 0;  // the node id of its root directory
  // From the top level's root, without a leading '/' ("" for the top
  // level and deleted subvolumes).
  std::string path;
};

class FileSystem final : private SubvolumeHost {
 public:
  // Opens the filesystem on `device` (which must outlive it): the volume,
  // the top-level subvolume (its orphans a crash left are deleted and
  // committed), then the periodic commit and the cleaner of deleted
  // subvolumes. Mount time does not grow with the number of files. EINVAL
  // when the image holds no ecfs filesystem; engine errors as Engine::open.
  static Result<std::unique_ptr<FileSystem>> open(block::BlockDevice& device,
                                                  const MountOptions& options = {});
  // Commits (as close()) if that was not done.
  ~FileSystem() override;
  FileSystem(const FileSystem&) = delete;
  FileSystem& operator=(const FileSystem&) = delete;

  // Writes out buffered data, commits and stops the background jobs. Later
  // calls fail with ESHUTDOWN. Idempotent.
  Status close();

  // What a remount may change on a live mount.
  struct Remount {
    bool read_only = false;
    // Unset: unchanged.
    std::optional<AtimeUpdates> atime = std::nullopt;
    std::optional<bool> directory_atime = std::nullopt;
    std::optional<std::chrono::milliseconds> commit_interval = std::nullopt;
  };
  // Read-only: commits everything first, then refuses every change (EROFS)
  // and writes nothing more to the image, not even at close (inodes that
  // become orphans meanwhile are removed at the next read-write mount).
  // Read-write again: EROFS for a filesystem opened read-only (its image
  // was opened read-only) or turned read-only by an error.
  Status remount(const Remount& remount);

  // Opened read-only (MountOptions::read_only).
  bool read_only() const { return options_.read_only; }

  // The node id of the mount's root directory: the top level's root (256),
  // or that of the subvolume named by MountOptions::subvolume.
  uint64_t root_node() const { return root_node_; }

  // Names. Each successful call below that returns Attributes of an entry
  // adds one lookup reference to that inode.
  Result<Attributes> lookup(uint64_t parent, std::string_view name);
  // Gives back `count` lookup references (FUSE forget); an orphan whose
  // references reach zero is deleted.
  void forget(uint64_t ino, uint64_t count);

  Result<Attributes> getattr(uint64_t ino);
  Result<Attributes> setattr(uint64_t ino, const SetAttributes& changes);

  // Regular files, FIFOs, sockets and device nodes (`mode` carries the type).
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
  // `flags`: 0, kRenameNoReplace or kRenameExchange.
  Status rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, uint32_t flags);

  // Where a listing of directory `ino` begun now ends: entries added later
  // get higher creation indices and are left out of it. A rename and a link
  // add an entry, so without this end a listing whose entries are renamed
  // away and back would meet them again and again and never end (btrfs
  // stops at the index last used when the directory was opened,
  // btrfs_get_dir_last_index). ENOTDIR.
  Result<uint64_t> listing_end(uint64_t ino);

  // Directory listing from `cookie` (0 = start, then an entry's cookie):
  // ".", "..", then entries in creation order up to `end` (listing_end; by
  // default every entry); calls `emit` until it returns false (the reply
  // buffer is full). ENOTDIR.
  Status readdir(uint64_t ino, uint64_t cookie,
                 const std::function<bool(const DirListEntry&)>& emit,
                 uint64_t end = kWholeListing);
  // The same listing with each entry's attributes (none for "." and "..",
  // which the kernel neither links nor counts: fs/fuse/readdir.c
  // fuse_direntplus_link). Every entry `emit` accepts takes one lookup
  // reference, as lookup does; an entry whose inode is missing or
  // unreadable is emitted without attributes and takes none. `emit` runs
  // under the filesystem's lock: it may only format bytes.
  Status readdir_plus(uint64_t ino, uint64_t cookie,
                      const std::function<bool(const DirListEntry&, const Attributes*)>& emit,
                      uint64_t end = kWholeListing);
  static constexpr uint64_t kWholeListing = UINT64_MAX;

  // Open files: an inode stays while it is open even if unlinked (the
  // kernel holds a lookup reference for every open file as well).
  Status open(uint64_t ino, int flags);
  void release(uint64_t ino);

  // Data. read returns fewer bytes only at the end of the file.
  Result<size_t> read(uint64_t ino, uint64_t offset, MutableByteSpan out);
  // Updates size and mtime/ctime. (Clearing suid/sgid on write is the
  // kernel's file_remove_privs, which sends a setattr.)
  Result<size_t> write(uint64_t ino, uint64_t offset, ByteSpan data);
  // fallocate(2) modes: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE |
  // KEEP_SIZE, FALLOC_FL_ZERO_RANGE [| KEEP_SIZE]; others EOPNOTSUPP.
  Status fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length);
  // SEEK_DATA / SEEK_HOLE (ENXIO past the end); other whences EINVAL.
  Result<uint64_t> lseek(uint64_t ino, uint64_t offset, int whence);
  // copy_file_range: shares the sector-aligned part of the range (a
  // reflink: references, no copy) and copies the unaligned edges. Returns
  // the bytes copied (short only at the end of the source).
  Result<uint64_t> copy_file_range(uint64_t ino_in, uint64_t offset_in, uint64_t ino_out,
                                   uint64_t offset_out, uint64_t length);

  // Durability: return after the data (and metadata unless `datasync`) of
  // `ino` is committed. This implementation commits the whole transaction.
  Status fsync(uint64_t ino, bool datasync);
  // Commits everything.
  Status sync();

  // Extended attributes. Names carry their namespace ("user.", "trusted.",
  // "security.", "system.posix_acl_access" / "_default"); others EOPNOTSUPP.
  Status setxattr(uint64_t ino, std::string_view name, ByteSpan value, int flags);
  // ENODATA if absent.
  Result<Bytes> getxattr(uint64_t ino, std::string_view name);
  // Names, each followed by a NUL, as listxattr(2) returns them.
  Result<std::string> listxattr(uint64_t ino);
  Status removexattr(uint64_t ino, std::string_view name);

  Result<FsStats> statfs();

  // ---- fscrypt (Documentation/filesystems/fscrypt.rst "User API") ----
  // Keys live in memory only, per mount, in one fscrypt::Keyring; names and
  // contents of encrypted inodes are readable only while their master key
  // is present.
  //
  // FS_IOC_ADD_ENCRYPTION_KEY: `key` is a descriptor (v1, privileged) or an
  // identifier specifier (v2; its bytes are ignored and the computed
  // identifier is returned in KeyChange::key). Errors as Keyring::add_*.
  Result<KeyChange> add_key(const fscrypt::Caller& caller, const fscrypt::KeySpecifier& key,
                            ByteSpan raw_key);
  // FS_IOC_REMOVE_ENCRYPTION_KEY[_ALL_USERS]: writes back and commits dirty
  // data first, drops the cached keys of inodes not open, then removes the
  // claim / key (Keyring::remove_key). FILES_BUSY while files stay open.
  Result<KeyChange> remove_key(const fscrypt::Caller& caller, const fscrypt::KeySpecifier& key,
                               bool all_users);
  // FS_IOC_GET_ENCRYPTION_KEY_STATUS.
  fscrypt::KeyStatusReport key_status(const fscrypt::Caller& caller,
                                      const fscrypt::KeySpecifier& key);
  // FS_IOC_SET_ENCRYPTION_POLICY on directory `ino`: ENOTDIR; EACCES unless
  // the caller owns it or is privileged; EINVAL (with the reason) for a
  // policy ecfs does not allow: only plain v2 policies, as per-extent
  // encryption requires (fscrypt/extent.h check_extent_encryption_allowed);
  // ENOKEY unless the caller added the key (or is privileged); ENOTEMPTY
  // for a non-empty unencrypted directory; EEXIST if it already has another
  // policy (the same policy again succeeds); EROFS.
  Status set_policy(uint64_t ino, const fscrypt::Policy& policy, const fscrypt::Caller& caller);
  // Key rotation (`ecfs rekey`, fs/key_history.h) of directory `ino`: it
  // moves to master key `to` with a fresh context, its entries' names
  // re-encrypted under it, and so do the files and symlinks it holds that
  // the caller owns (or all, privileged; the others are counted as skipped)
  // (symlink targets re-encrypted; existing file extents keep their keys,
  // listed in the file's KEY_HISTORY, and stay readable while those keys
  // are present; new writes use `to`). Subdirectories are moved by calls
  // of their own, parents first; an entry already under `to` is left
  // alone, so calling again after a crash finishes the job. Atomic per
  // directory (one transaction; not committed: syncfs makes it durable).
  // ENOTDIR; ENODATA for an unencrypted directory; EACCES unless the caller
  // owns it or is privileged; ENOKEY unless the caller added `to` (or is
  // privileged) and the directory's current key is present; EOVERFLOW when
  // a file already has kMaxPreviousKeys earlier keys; EROFS.
  Result<RekeyReport> rekey_directory(uint64_t ino, const fscrypt::KeyIdentifier& to,
                                      const fscrypt::Caller& caller);
  // The contents pass of a rotation (`ecfs rekey --contents`): the extents
  // of regular file `ino` that are under one of its earlier keys are
  // re-encrypted under its current key (FileData::reencrypt_old_extents),
  // about `max_bytes` of them per call, so that the caller gives the lock
  // back between calls; extents another file of the subvolume shared are
  // re-encrypted once and shared again (while this mount lasts). When none
  // is left the file's KEY_HISTORY goes. Not committed (syncfs makes it
  // durable); calling again after a crash goes on. Snapshots keep the old
  // extents. EINVAL for an inode neither a file nor a directory; ENODATA unless encrypted; EACCES
  // unless the caller owns it or is privileged; ENOKEY without its current
  // key or an earlier one its data needs; EIO for old data that does not
  // verify; ENOSPC; EROFS. For a directory (which holds no extents) it
  // drops the directory's KEY_HISTORY: the caller does that once every
  // file under it is done.
  Result<RekeyContentsReport> rekey_contents(uint64_t ino, uint64_t max_bytes,
                                             const fscrypt::Caller& caller);
  // The master keys encrypted inode `ino` was under before rotations, oldest
  // first (its KEY_HISTORY; empty when it has none): what else `ecfs
  // unlock` and `lock` take along. ENODATA for an unencrypted inode. Needs
  // no key.
  Result<std::vector<fscrypt::KeyIdentifier>> previous_keys(uint64_t ino);
  // Whether inode `ino` has an fscrypt context (false when unknown).
  bool is_encrypted(uint64_t ino);
  // FS_IOC_GET_ENCRYPTION_POLICY_EX: ENODATA for an unencrypted inode.
  // Needs no key.
  Result<fscrypt::Policy> get_policy(uint64_t ino);

  // ---- protectors (fs/protector_store.h has the rules) ----
  // Each change is committed before it returns; EROFS on a read-only mount.
  // A wrapped key is filed only for a master key the caller holds (added to
  // this mount's keyring by the caller; any holder for a privileged one).
  Status put_protector(const fscrypt::Caller& caller, const fscrypt::ProtectorRecord& record);
  Status put_wrapped_key(const fscrypt::Caller& caller, const fscrypt::WrappedKeyRecord& record);
  Status remove_protector(const fscrypt::Caller& caller, const fscrypt::ProtectorId& id,
                          bool force);
  Status remove_wrapped_key(const fscrypt::Caller& caller, const fscrypt::ProtectorId& protector,
                            const fscrypt::KeyIdentifier& identifier, bool force);
  // Extents and bytes per master key across every subvolume and snapshot
  // (fs/key_usage.h), after committing what is buffered; needs no key.
  // Holds the lock for the whole walk.
  Result<std::map<fscrypt::KeyIdentifier, KeyUsage>> key_usage();
  // The protector tree's records in order, one per call (needs nothing).
  Result<std::optional<ProtectorItem>> next_protector_item(
      const std::optional<ProtectorItem>& after);

  // ---- subvolumes and snapshots (btrfs-progs' shapes) ----
  // A new empty subvolume `name` in directory `dir`, its root directory
  // owned by `caller` (mode 0755). Committed before it returns. Errors as
  // Subvolume::prepare_subvolume_name; EROFS.
  Result<uint64_t> create_subvolume(uint64_t dir, std::string_view name, const Caller& caller);
  // A snapshot of the subvolume whose root directory is `source` (EINVAL
  // for any other directory), named `name` in directory `dir`; read-only
  // with `read_only`. EBUSY when the source names other subvolumes (their
  // names would name nothing in the snapshot). Buffered data is committed
  // first, so the snapshot
  // holds everything written before the call; O(1) in the size of the
  // source; needs no key. Committed before it returns.
  Result<uint64_t> snapshot(uint64_t source, uint64_t dir, std::string_view name, bool read_only);
  // Deletes the subvolume named `name` in directory `dir` (EINVAL if the
  // entry is no subvolume; ENOTEMPTY while it names other subvolumes):
  // its name goes now, its tree is dropped in the background. Returns its
  // tree id.
  Result<uint64_t> delete_subvolume(uint64_t dir, std::string_view name);
  // Every subvolume of the image, deleted ones still being dropped too.
  Result<std::vector<SubvolumeListing>> list_subvolumes();
  // The subvolume with the lowest id above `after` (none when there is
  // none left), for listings one at a time.
  Result<std::optional<SubvolumeListing>> next_subvolume(uint64_t after);
  // The subvolume that holds node `node`.
  Result<SubvolumeListing> subvolume_of(uint64_t node);
  // Sets or clears the read-only flag of the subvolume whose root is
  // `node` (EINVAL for other nodes; EPERM for the top level).
  Status set_subvolume_read_only(uint64_t node, bool read_only);
  // Returns once every deleted subvolume has been dropped.
  Status wait_for_deletions();

  // For tests and fsck-style checks: the number of kernel references and
  // opens an inode holds in memory (0 when unknown).
  uint64_t lookup_count(uint64_t ino);
  // For tests: the volume's engine.
  store::Engine& engine_for_test() { return volume_->engine(); }

 private:
  FileSystem(std::unique_ptr<store::Volume> volume, MountOptions options);

  // The subvolume that node `node` belongs to, opened if need be. ENOENT
  // (ESTALE for a node of a tree that is gone) when there is none.
  Result<Subvolume*> subvolume_for(uint64_t node);
  // The same with the volume's lock held.
  Result<Subvolume*> open_subvolume_locked(uint64_t tree);
  // Both nodes' subvolume; EXDEV when they differ.
  Result<Subvolume*> same_subvolume(uint64_t a, uint64_t b);
  // REQUIRE the volume's lock held.
  Result<SubvolumeListing> listing_of(const store::SubvolumeEntry& entry);
  // A new subvolume named `name` in directory `dir` of `parent`: its tree
  // from `make_tree` (which gets where it will be named), its entry, one
  // commit. REQUIRES the volume's lock held and the volume writable.
  Result<uint64_t> add_subvolume(
      Subvolume& parent, uint64_t dir, std::string_view name,
      const std::function<Result<uint64_t>(const store::SubvolumeLink&)>& make_tree);
  // The tree of the subvolume at `path` from the top level's root (mount
  // option subvol=). ENOENT, ENOTDIR; EINVAL for a directory that is not a
  // subvolume's root.
  Result<uint64_t> resolve_subvolume_path(std::string_view path);
  // Key changes span every open subvolume. REQUIRE the volume's lock held.
  std::vector<uint64_t> inodes_using_key(const fscrypt::KeySpecifier& key, bool evict);
  Result<std::vector<CachedName>> known_names_using_key(const fscrypt::KeySpecifier& key);

  // SubvolumeHost, called with the volume's lock held.
  Result<Attributes> enter_subvolume(uint64_t tree) override;
  Result<Attributes> enter_node(uint64_t node) override;
  Result<uint64_t> parent_of_subvolume_root(uint64_t tree) override;
  Status make_subvolume_dead(uint64_t tree, bool require_empty) override;
  Status relink_subvolume(uint64_t tree, const store::SubvolumeLink& link) override;

  std::unique_ptr<store::Volume> volume_;
  MountOptions options_;
  fscrypt::Keyring keyring_;
  uint64_t root_tree_ = store::kFsTreeId;
  uint64_t root_node_ = kRootDirIno;
  // Guards subvolumes_. Lock order: the volume's lock, then this one; the
  // map alone is read without the volume's lock.
  mutable std::shared_mutex subvolumes_mutex_;
  // Opened subvolumes by tree id; never removed before close (their
  // objects stay valid for callers that found them).
  std::map<uint64_t, std::unique_ptr<Subvolume>> subvolumes_;
  // Objects of dropped subvolumes whose id was given again, kept for
  // callers that still hold them (and as volume clients) until close.
  std::vector<std::unique_ptr<Subvolume>> dropped_subvolumes_;
};

}  // namespace ecfs::fs
