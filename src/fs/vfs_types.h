// What the filesystem's interface passes (filesystem.h, subvolume.h): who
// calls, attributes as stat(2) shows them, setattr changes, directory
// listings, statfs numbers, mount options, and the outcome of key changes.
// Inode numbers in these are node ids (node_ids.h): unique across the mount.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fs/items.h"
#include "fscrypt/keyring.h"
#include "store/format.h"

namespace ecfs::fs {

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
  // The top level's inodes in use, as Subvolume::inodes_in_use_bound
  // gives them, and its inode numbers left.
  uint64_t files = 0;
  uint64_t free_files = 0;
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
  // Space freed by commits goes back to the device (store::OpenOptions::
  // discard): -o discard (the default of `ecfs mount`), -o nodiscard.
  bool discard = false;
  // -o subvol=PATH: the subvolume at PATH (from the top level's root) is
  // the mount's root. Empty: the top level.
  std::string subvolume = {};
};

// A name the kernel may hold in its dentry cache: `name` in directory
// `parent`, as the filesystem presented it.
struct CachedName {
  uint64_t parent = 0;
  std::string name;
};

// What one directory's rotation to a new key (FileSystem::rekey_directory)
// changed.
struct RekeyReport {
  uint64_t names = 0;      // entry names re-encrypted under the new key
  uint64_t inodes = 0;     // inodes moved to the new key (the directory included)
  uint64_t skipped = 0;    // entries of another policy, left as they are
  uint64_t not_owned = 0;  // other users' files and symlinks, left as they are
};

// What one call of FileSystem::rekey_contents did to a file.
struct RekeyContentsReport {
  uint64_t bytes = 0;    // of old extents re-encrypted
  uint64_t extents = 0;  // new extents written
  uint64_t shared = 0;   // items pointed at an extent re-encrypted for another file
  bool done = false;     // the file holds nothing under an earlier key any more
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

}  // namespace ecfs::fs
