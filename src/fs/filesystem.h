// FileSystem: POSIX semantics on the copy-on-write engine (DESIGN.md layer
// 5). Inodes, directories, regular files as extent maps, hard links,
// symlinks, special files, xattrs, rename, truncate, fallocate, SEEK_DATA /
// SEEK_HOLE and reflinks, in one filesystem tree of a store::Engine.
//
// The interface follows the shape of the kernel's VFS as a FUSE low-level
// server sees it: inodes are named by number; every call that returns an
// entry (lookup, create, mkdir, mknod, symlink, link) counts one kernel
// lookup reference, which forget() gives back. An inode whose last name is
// removed while the kernel still holds references becomes an orphan (an
// ORPHAN item keeps it on disk); it is deleted when the last reference is
// forgotten, or at the next mount after a crash.
//
// Transactions: changes gather in one running engine transaction, committed
// by sync(), fsync(), a periodic commit (Options::commit_interval) and
// close(). A crash loses at most the changes since the last commit. Data is
// buffered (delayed allocation, file_data.h) and written as large extents
// when a commit or fsync needs it, or when the buffer grows large.
//
// Permissions: the caller (the kernel, through FUSE's default_permissions)
// checks access before calling; this class checks only what the kernel
// leaves to filesystems (sticky directories, RENAME_* rules, name lengths).
//
// After an internal failure in the middle of a change (an I/O error, or
// ENOSPC where space was promised) the running transaction is aborted and
// the filesystem turns read-only (EROFS), as btrfs does on a transaction
// abort: what was committed stays intact.
//
// Thread-safe: every public method may be called from many threads.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "block/block_device.h"
#include "fs/extent_keys.h"
#include "fs/items.h"
#include "fscrypt/keyring.h"
#include "fscrypt/policy.h"
#include "store/engine.h"
#include "store/volume.h"

namespace ecfs::fs {

class FileData;
struct FileDataOptions;

// Who makes a change: new inodes take their owner from here.
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t umask = 0;  // applied to the mode of new inodes (FUSE passes it per request)
};

// An inode's attributes as stat(2) shows them.
struct Attributes {
  uint64_t ino = 0;
  uint64_t generation = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t rdev = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units
  uint32_t block_size = store::kSectorSize;
  Timestamp atime, mtime, ctime, btime;
  // The inode has an fscrypt context (its names / contents are encrypted).
  bool encrypted = false;
  struct stat to_stat() const;
};

// What setattr changes; absent fields stay.
struct SetAttributes {
  std::optional<uint32_t> mode = std::nullopt;  // permission bits (and suid/sgid/sticky)
  std::optional<uint32_t> uid = std::nullopt;
  std::optional<uint32_t> gid = std::nullopt;
  std::optional<uint64_t> size = std::nullopt;
  std::optional<Timestamp> atime = std::nullopt;  // explicit time
  std::optional<Timestamp> mtime = std::nullopt;
  bool atime_now = false;  // UTIME_NOW
  bool mtime_now = false;
  std::optional<Timestamp> ctime =
      std::nullopt;  // explicit ctime (FUSE_SET_ATTR_CTIME); else now on change
  // Clear set-user-ID, and set-group-ID when the file is group-executable
  // (or caller_outside_group), after the other changes (a non-directory only): what an unprivileged
  // write, truncate or chown does on Linux (fs/attr.c
  // setattr_should_drop_suidgid), asked for by the kernel when the server
  // handles it (FUSE_HANDLE_KILLPRIV_V2).
  bool kill_set_id = false;
  // With kill_set_id: the caller is not in the file's group (nor holds
  // CAP_FSETID), so set-group-ID goes even from a file that is not
  // group-executable (fs/attr.c setattr_should_drop_sgid).
  bool caller_outside_group = false;
};

struct DirListEntry {
  std::string name;
  uint64_t ino = 0;
  uint8_t type = 0;     // DT_*
  uint64_t cookie = 0;  // readdir offset that continues after this entry
};

// statfs(2) numbers, in 4 KiB blocks.
struct FsStats {
  uint64_t block_size = store::kSectorSize;
  uint64_t total_blocks = 0;
  uint64_t free_blocks = 0;
  uint64_t available_blocks = 0;
  uint64_t files = 0;       // inodes in use
  uint64_t free_files = 0;  // inode numbers left
  uint32_t max_name_length = kMaxNameLength;
};

// rename(2) flags (linux/fs.h).
inline constexpr uint32_t kRenameNoReplace = 1;
inline constexpr uint32_t kRenameExchange = 2;

// setxattr flags (sys/xattr.h).
inline constexpr int kXattrCreate = 1;
inline constexpr int kXattrReplace = 2;

// When a read the filesystem sees updates the access time (mount(8)'s
// noatime, relatime, strictatime; fs/inode.c atime_needs_update). Through
// FUSE the filesystem sees only the reads the kernel's page cache does
// not serve; the kernel marks FUSE inodes S_NOATIME, so a cached read
// updates no access time at all.
enum class AtimeUpdates {
  kNever,     // noatime
  kRelative,  // relatime (the default): when not newer than mtime or ctime, or a day old
  kAlways,    // strictatime
};

struct MountOptions {
  bool read_only = false;
  AtimeUpdates atime = AtimeUpdates::kRelative;
  bool directory_atime = true;  // false: nodiratime (listings leave atime alone)
  std::chrono::milliseconds commit_interval{5000};
  // Buffered file data above this many bytes is written out (not committed).
  uint64_t dirty_data_limit = 256ull << 20;
  size_t node_cache_capacity = 16384;
};

// Adds the root directory (inode 256, mode 0755 | S_IFDIR, owned by
// `owner`) to FS_TREE 5 in the engine's running transaction (for
// store::MkfsOptions::populate). EEXIST if the image already has one.
Status add_root_directory(store::Engine& engine, const Caller& owner);
// The same in a transaction of its own, committed.
Status format_filesystem(store::Engine& engine, const Caller& owner);

// A name the kernel may hold in its dentry cache: `name` in directory
// `parent`, as the filesystem presented it.
struct CachedName {
  uint64_t parent = 0;
  std::string name;
};

// The outcome of a key change (add_key, remove_key).
struct KeyChange {
  // The key as the kernel reports it: for an added v2 key, its identifier.
  fscrypt::KeySpecifier key = fscrypt::KeySpecifier::from_identifier({});
  // remove_key: fscrypt::kKeyRemovalStatusFlag* (FILES_BUSY, OTHER_USERS).
  uint32_t removal_status_flags = 0;
  // Inodes the kernel knows whose cached pages, attributes and symlink
  // targets depend on the key: the FUSE layer invalidates them
  // (fuse_lowlevel_notify_inval_inode) after answering, as the kernel's
  // key removal evicts inodes and its key addition revalidates no-key
  // dentries.
  std::vector<uint64_t> stale_inodes;
  // Names the kernel may have cached in directories encrypted under the key,
  // in the form they had before the change (no-key names before an
  // addition, plaintext names before a removal): they name nothing now, and
  // the FUSE layer invalidates them (fuse_lowlevel_notify_inval_entry)
  // before answering, as the kernel's fscrypt_d_revalidate drops no-key
  // dentries once the key is added and key removal evicts the rest.
  std::vector<CachedName> stale_names;
};

class FileSystem : private store::VolumeClient {
 public:
  // Opens the filesystem on `device` (which must outlive it): the engine,
  // the root directory, orphan cleanup (inodes left unlinked by a crash are
  // deleted and committed), then the periodic commit thread. EINVAL when the
  // image holds no ecfs filesystem; engine errors as Engine::open.
  static Result<std::unique_ptr<FileSystem>> open(block::BlockDevice& device,
                                                  const MountOptions& options = {});
  // Commits (as close()) if that was not done.
  ~FileSystem() override;
  FileSystem(const FileSystem&) = delete;
  FileSystem& operator=(const FileSystem&) = delete;

  // Writes out buffered data, commits and stops the commit thread. Later
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
  // Whether inode `ino` has an fscrypt context (false when unknown).
  bool is_encrypted(uint64_t ino);
  // FS_IOC_GET_ENCRYPTION_POLICY_EX: ENODATA for an unencrypted inode.
  // Needs no key.
  Result<fscrypt::Policy> get_policy(uint64_t ino);

  // For tests and fsck-style checks: the number of kernel references and
  // opens an inode holds in memory (0 when unknown).
  uint64_t lookup_count(uint64_t ino) const;
  store::Engine& engine_for_test() { return volume_->engine(); }

 private:
  struct InodeState;  // a cached inode and its kernel references (filesystem.cc)

  FileSystem(std::unique_ptr<store::Volume> volume, MountOptions options);

  // store::VolumeClient: the volume's commits and aborts (filesystem.cc).
  // Called with mutex_ held.
  uint64_t buffered_bytes() const override;
  // With much data buffered, most of it is written out with mutex_
  // released (write_out_buffered), so that requests go on meanwhile, and
  // only what they add is flushed with it held.
  Status write_out_before_commit(std::unique_lock<std::mutex>& lock) override;
  Status flush_for_commit() override;  // buffered data, then inode items
  // Forgets the cached inodes nobody references.
  void committed(bool trim_caches) override;
  void aborted() override;         // drop cached inodes and buffered data
  Status prepare_close() override;  // every kernel reference ends: orphans go
  void idle() override;            // buffers' idle memory goes back

  // Transactions (filesystem.cc). REQUIRE mutex_ held.
  Status start();                // mount: orphans, inode counts, committer
  Result<store::BTree*> tree();  // the filesystem tree in the running transaction
  // The filesystem tree for reading: the running transaction's, or the
  // committed one on a read-only mount. A handle valid until the next change.
  Result<store::BTree> read_tree();
  // ESHUTDOWN after close, EROFS when read-only.
  Status check_writable() const { return volume_->check_writable(); }
  // A read of `state`'s data or listing: updates its atime as the mount's
  // AtimeUpdates says, when the image may change.
  void note_access(InodeState& state);
  // ENOSPC before a change begins (store::Volume::check_space); cached
  // inodes stay, the caller may hold them.
  Status check_space(uint64_t data_bytes) { return volume_->check_space(data_bytes); }
  // Writes out data and inodes, commits, begins anew.
  Status commit_locked() { return volume_->commit_locked(); }
  // A change failed half way: abort the transaction, turn read-only.
  std::unexpected<Error> abort_change(Error error) {
    return volume_->abort_change(std::move(error));
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
  void await_writeout() { volume_->await_writeout(); }
  FileDataOptions data_options();

  // Inodes (filesystem.cc). REQUIRE mutex_ held.
  Result<InodeState*> inode(uint64_t ino);  // ENOENT when absent
  void touch(InodeState& state, bool mtime, bool ctime);
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
  // (fscrypt_has_permitted_context).
  Status check_permitted_context(InodeState& dir, InodeState& child);
  // Whether copy_file_range may share extents between the two files: the
  // same encryption (none, or equal policies).
  Result<bool> same_encryption(InodeState& a, InodeState& b);
  // The inodes the kernel holds whose context names `key`; with `evict`,
  // first drops the cached keys of those (and others of the key) that are
  // not open.
  std::vector<uint64_t> inodes_using_key(const fscrypt::KeySpecifier& key, bool evict);
  // The names, as presented now, of the entries the kernel knows (lookups)
  // in the directories it knows that are encrypted under `key`.
  Result<std::vector<CachedName>> known_names_using_key(const fscrypt::KeySpecifier& key);

  std::unique_ptr<store::Volume> volume_;
  // The volume's transaction lock: guards everything below (store/volume.h).
  std::mutex& mutex_;
  MountOptions options_;
  fscrypt::Keyring keyring_;
  std::unique_ptr<ExtentKeys> data_keys_;
  std::unique_ptr<FileData> data_;
  std::unordered_map<uint64_t, std::unique_ptr<InodeState>> inodes_;
  uint64_t next_ino_ = kRootDirIno + 1;
  uint64_t inode_count_ = 0;
};

}  // namespace ecfs::fs
