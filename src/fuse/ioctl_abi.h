// ecfs's own ioctls for fscrypt key and policy management on a FUSE mount
// (DESIGN.md "Conventions users expect").
//
// Why not fscrypt's: the kernel forwards only "restricted" ioctls to a FUSE
// server, copying in and out exactly _IOC_SIZE(cmd) bytes
// (fs/fuse/ioctl.c, fuse_do_ioctl). fscrypt's own numbers do not encode
// their real argument size: FS_IOC_SET_ENCRYPTION_POLICY is declared with
// struct fscrypt_policy_v1 (12 bytes) but takes a 24-byte v2 policy, and
// FS_IOC_ADD_ENCRYPTION_KEY ends in a flexible raw[] array. So ecfs defines
// fixed-size equivalents that carry everything the kernel's
// (include/uapi/linux/fscrypt.h) arguments carry.
//
// The ABI rules, which can never change for a given version:
// - Every command is _IOWR('E', nr, struct); the kernel copies the whole
//   struct in and, on success, the whole struct back out.
// - Every struct starts with `uint32_t version` = kIoctlAbiVersion. The
//   server answers EINVAL for any other version, so a future layout gets a
//   new version (and, since the size is in the number, a new command).
// - Only fixed-width fields, every one naturally aligned, no pointers, sizes
//   multiples of 8: the layout is the same for 32-bit and 64-bit callers
//   (FUSE_IOCTL_COMPAT needs no translation).
// - Reserved fields and unused bytes must be zero on input.
// - Unknown command numbers are answered ENOTTY, as every Linux filesystem
//   answers an ioctl it does not implement.
#pragma once

#include <linux/ioctl.h>

#include <cstddef>
#include <cstdint>

namespace ecfs::fuse {

inline constexpr uint32_t kIoctlAbiVersion = 1;

// The ioctl "type" byte of every ecfs command. ('E' is also evdev's, but an
// ioctl number only has to be unique among the commands one file accepts.)
inline constexpr unsigned kIoctlType = 'E';

// Key specifier types (FSCRYPT_KEY_SPEC_TYPE_*).
inline constexpr uint32_t kKeySpecTypeDescriptor = 1;  // v1 policies: 8-byte descriptor
inline constexpr uint32_t kKeySpecTypeIdentifier = 2;  // v2 policies: 16-byte identifier

// Sizes from include/uapi/linux/fscrypt.h.
inline constexpr size_t kKeyDescriptorBytes = 8;   // FSCRYPT_KEY_DESCRIPTOR_SIZE
inline constexpr size_t kKeyIdentifierBytes = 16;  // FSCRYPT_KEY_IDENTIFIER_SIZE
inline constexpr size_t kMaxRawKeyBytes = 64;      // FSCRYPT_MAX_KEY_SIZE
inline constexpr size_t kPolicyV1Bytes = 12;       // sizeof(struct fscrypt_policy_v1)
inline constexpr size_t kPolicyV2Bytes = 24;       // sizeof(struct fscrypt_policy_v2)

// Which master key: the same 40 bytes as struct fscrypt_key_specifier.
struct KeySpecifier {
  uint32_t type;      // kKeySpecType*
  uint32_t reserved;  // 0
  uint8_t bytes[32];  // descriptor (8 bytes) or identifier (16 bytes), zero padded
};
static_assert(sizeof(KeySpecifier) == 40);

// ECFS_IOC_ADD_KEY, as FS_IOC_ADD_ENCRYPTION_KEY: adds a master key to the
// filesystem's keyring for the calling user. For an identifier specifier the
// server computes the identifier and returns it in key_spec.bytes.
struct AddKeyArg {
  uint32_t version;       // in: kIoctlAbiVersion
  uint32_t flags;         // in: 0 (room for FSCRYPT_ADD_KEY_FLAG_*)
  KeySpecifier key_spec;  // in: type (+ descriptor); out: identifier
  uint32_t raw_size;      // in: bytes of raw[] used, 16..64
  uint32_t key_id;        // in: 0 (the kernel's keyring-key alternative is not offered)
  uint8_t raw[64];        // in: the raw master key; the caller should zero it afterwards
  uint32_t reserved[8];   // 0
};
static_assert(sizeof(AddKeyArg) == 152);

// Removal flags and output status (FS_IOC_REMOVE_ENCRYPTION_KEY[_ALL_USERS]).
inline constexpr uint32_t kRemoveKeyFlagAllUsers = 0x1;
inline constexpr uint32_t kKeyRemovalStatusFlagFilesBusy =
    0x1;  // FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY
inline constexpr uint32_t kKeyRemovalStatusFlagOtherUsers = 0x2;  // ..._OTHER_USERS

// ECFS_IOC_REMOVE_KEY, as FS_IOC_REMOVE_ENCRYPTION_KEY (flags = 0) or
// FS_IOC_REMOVE_ENCRYPTION_KEY_ALL_USERS (kRemoveKeyFlagAllUsers).
struct RemoveKeyArg {
  uint32_t version;               // in: kIoctlAbiVersion
  uint32_t flags;                 // in: 0 or kRemoveKeyFlagAllUsers
  KeySpecifier key_spec;          // in
  uint32_t removal_status_flags;  // out: kKeyRemovalStatusFlag*
  uint32_t reserved[5];           // 0
};
static_assert(sizeof(RemoveKeyArg) == 72);

// Key status values (FSCRYPT_KEY_STATUS_*) and flags.
inline constexpr uint32_t kKeyStatusAbsent = 1;
inline constexpr uint32_t kKeyStatusPresent = 2;
inline constexpr uint32_t kKeyStatusIncompletelyRemoved = 3;
inline constexpr uint32_t kKeyStatusFlagAddedBySelf = 0x1;  // FSCRYPT_KEY_STATUS_FLAG_ADDED_BY_SELF

// ECFS_IOC_KEY_STATUS, as FS_IOC_GET_ENCRYPTION_KEY_STATUS.
struct KeyStatusArg {
  uint32_t version;       // in: kIoctlAbiVersion
  uint32_t flags;         // in: 0
  KeySpecifier key_spec;  // in
  uint32_t status;        // out: kKeyStatus*
  uint32_t status_flags;  // out: kKeyStatusFlag*
  uint32_t user_count;    // out: users who added the key (identifier keys)
  uint32_t reserved[5];   // 0
};
static_assert(sizeof(KeyStatusArg) == 80);

// ECFS_IOC_SET_POLICY and ECFS_IOC_GET_POLICY, as
// FS_IOC_SET_ENCRYPTION_POLICY and FS_IOC_GET_ENCRYPTION_POLICY_EX: the
// policy travels as the bytes of struct fscrypt_policy_v1 (12) or
// fscrypt_policy_v2 (24), policy version byte first.
struct PolicyArg {
  uint32_t version;      // in: kIoctlAbiVersion
  uint32_t policy_size;  // set, in: 12 or 24; get, out: the policy's size
  uint8_t policy[32];    // set, in / get, out: the policy bytes, zero padded
  uint32_t reserved[4];  // 0
};
static_assert(sizeof(PolicyArg) == 56);

// ECFS_IOC_SYNC: commit everything the mount holds and return once it is
// durable (`ecfs sync`), for mounts where sync(2) does not reach the daemon
// (plain fuse: the kernel sends FUSE_SYNCFS to fuseblk mounts only). The
// caller runs syncfs(2) first, so the kernel's dirty pages are in.
struct SyncArg {
  uint32_t version;      // in: kIoctlAbiVersion
  uint32_t reserved[7];  // 0
};
static_assert(sizeof(SyncArg) == 32);

// ECFS_IOC_REMOUNT: what a remount (mount(8) "remount") changes in the
// daemon: read-only or read-write, the atime rule and the commit interval.
// The kernel's own flags are changed with mount(2) beside it. Root only.
inline constexpr uint32_t kRemountReadOnly = 0x1;
inline constexpr uint32_t kRemountNoDirectoryAtime = 0x2;
// The atime rule and kRemountNoDirectoryAtime are ignored: both stay as
// they are (a remount naming no atime option, as the kernel's MS_REMOUNT).
inline constexpr uint32_t kRemountKeepAtime = 0x4;
inline constexpr uint32_t kRemountAtimeNever = 0;     // noatime
inline constexpr uint32_t kRemountAtimeRelative = 1;  // relatime
inline constexpr uint32_t kRemountAtimeAlways = 2;    // strictatime
struct RemountArg {
  uint32_t version;         // in: kIoctlAbiVersion
  uint32_t flags;           // in: kRemount*
  uint32_t atime;           // in: kRemountAtime*
  uint32_t commit_seconds;  // in: the new commit interval; 0 keeps it
  uint32_t reserved[4];     // 0
};
static_assert(sizeof(RemountArg) == 32);

// ECFS_IOC_SUBVOL_CREATE, made on a directory: a new subvolume, or with
// `source` a snapshot of the subvolume whose root directory has that node id
// (its st_ino: FUSE passes the server no second file), named `name` in the
// directory. ECFS_IOC_SUBVOL_DELETE, made on a directory: deletes the
// subvolume named `name` in it. Both need CAP_SYS_ADMIN. The answer carries
// the subvolume's id.
inline constexpr uint32_t kSubvolReadOnly = 0x1;  // a read-only snapshot
inline constexpr size_t kSubvolNameBytes = 256;   // NAME_MAX + 1
struct SubvolArg {
  uint32_t version;                // in: kIoctlAbiVersion
  uint32_t flags;                  // in: kSubvol*
  uint64_t source;                 // in: node id of the snapshot's source; 0: a new subvolume
  uint64_t id;                     // out: the subvolume's id
  uint32_t name_len;               // in: 1..255
  uint32_t reserved;               // 0
  uint8_t name[kSubvolNameBytes];  // in: the name, zero padded
};
static_assert(sizeof(SubvolArg) == 288);

// ECFS_IOC_SUBVOL_INFO: one subvolume: with `which` = kSubvolInfoOfFile the
// one holding the file the call is made on; with kSubvolInfoNext the one
// with the lowest id above `id` (id 0 = none left), for listings.
inline constexpr uint32_t kSubvolInfoOfFile = 0;
inline constexpr uint32_t kSubvolInfoNext = 1;
inline constexpr uint32_t kSubvolInfoDeleted = 0x2;  // flags: being dropped
inline constexpr size_t kSubvolPathBytes = 4096;
struct SubvolInfoArg {
  uint32_t version;                // in: kIoctlAbiVersion
  uint32_t which;                  // in: kSubvolInfo*
  uint64_t id;                     // in (kSubvolInfoNext) / out: the subvolume's tree id
  uint64_t parent_id;              // out: the subvolume whose directory names it (0: none)
  uint64_t root_node;              // out: the node id (st_ino) of its root directory
  uint64_t created_generation;     // out
  uint64_t source_generation;      // out
  int64_t otime_sec;               // out
  uint32_t otime_nsec;             // out
  uint32_t flags;                  // out: kSubvolReadOnly | kSubvolInfoDeleted
  uint8_t uuid[16];                // out
  uint8_t parent_uuid[16];         // out
  uint32_t path_len;               // out
  uint32_t reserved[3];            // 0
  uint8_t path[kSubvolPathBytes];  // out: from the top level's root, without a leading '/'
};
static_assert(sizeof(SubvolInfoArg) == 4208);

// ECFS_IOC_SUBVOL_SYNC: returns once every deleted subvolume is dropped.
// Uses SyncArg.

// ECFS_IOC_PROTECTOR_PUT files a protector record or a wrapped master key
// (fscrypt/protector.h encodings) in the image's protector tree;
// ECFS_IOC_PROTECTOR_REMOVE removes one (with kProtectorRemoveForce even the
// last protector of a key); ECFS_IOC_PROTECTOR_NEXT returns the record after
// the one named (item 0: the first), item 0 at the end. The rules of who may
// change what are fs/protector_store.h's. Records are public: nothing
// secret crosses this interface (master keys travel only wrapped).
inline constexpr uint32_t kProtectorItemProtector = 1;
inline constexpr uint32_t kProtectorItemWrappedKey = 2;
inline constexpr uint32_t kProtectorRemoveForce = 0x1;
inline constexpr size_t kProtectorRecordBytes = 256;
struct ProtectorArg {
  uint32_t version;                       // in: kIoctlAbiVersion
  uint32_t flags;                         // in: remove: kProtectorRemoveForce; else 0
  uint32_t item;                          // in / out (next): kProtectorItem*, 0 = start / end
  uint32_t record_len;                    // put, in / next, out: bytes of record[] used
  uint8_t protector[8];                   // the protector id
  uint8_t key_identifier[16];             // wrapped keys: the master key's identifier; else 0
  uint32_t reserved[4];                   // 0
  uint8_t record[kProtectorRecordBytes];  // put, in / next, out: the encoding, zero padded
};
static_assert(sizeof(ProtectorArg) == 312);

// ECFS_IOC_KEY_USAGE: extents and bytes per master key identifier across
// every subvolume and snapshot (fs/key_usage.h), in identifier order, up to
// kKeyUsageEntries per call: the first call from the start, each next one
// with kKeyUsageContinue and `after` the last identifier received, while
// `more` says some remain. Needs no key.
inline constexpr uint32_t kKeyUsageContinue = 0x1;
inline constexpr size_t kKeyUsageEntries = 16;
struct KeyUsageEntry {
  uint8_t key_identifier[16];
  uint64_t extents;  // distinct data extents under the key
  uint64_t bytes;    // their allocated size
};
static_assert(sizeof(KeyUsageEntry) == 32);
struct KeyUsageArg {
  uint32_t version;      // in: kIoctlAbiVersion
  uint32_t flags;        // in: 0 or kKeyUsageContinue
  uint8_t after[16];     // in, with kKeyUsageContinue: list identifiers above this one
  uint32_t count;        // out: entries filled
  uint32_t more;         // out: 1 when identifiers above the last entry remain
  uint32_t reserved[4];  // 0
  KeyUsageEntry entries[kKeyUsageEntries];  // out
};
static_assert(sizeof(KeyUsageArg) == 560);

// ECFS_IOC_REKEY, on a directory: moves it, the names it holds and its
// files and symlinks to master key `key_identifier` (fs::FileSystem::
// rekey_directory has the rules); subdirectories take calls of their own.
struct RekeyArg {
  uint32_t version;            // in: kIoctlAbiVersion
  uint32_t flags;              // in: 0
  uint8_t key_identifier[16];  // in: the new master key
  uint64_t names;              // out: names re-encrypted
  uint64_t inodes;             // out: inodes moved to the key
  uint64_t skipped;            // out: entries of another policy, left alone
  uint64_t not_owned;          // out: other users' files and symlinks, left alone
  uint32_t reserved[2];        // 0
};
static_assert(sizeof(RekeyArg) == 64);

// ECFS_IOC_REKEY_CONTENTS, on a regular file: re-encrypts about
// `max_bytes` of its data that is under earlier keys under its current key
// (fs::FileSystem::rekey_contents has the rules); call again until `done`.
// On a directory: it forgets its earlier keys (once its tree is done).
struct RekeyContentsArg {
  uint32_t version;      // in: kIoctlAbiVersion
  uint32_t flags;        // in: 0
  uint64_t max_bytes;    // in: work of one call (1 to 1 GiB)
  uint64_t bytes;        // out: old extents' bytes re-encrypted
  uint64_t extents;      // out: new extents written
  uint64_t shared;       // out: items pointed at an extent re-encrypted before
  uint32_t done;         // out: 1 when nothing under an earlier key is left
  uint32_t reserved[5];  // 0
};
static_assert(sizeof(RekeyContentsArg) == 64);

// ECFS_IOC_PREVIOUS_KEYS: the master keys an encrypted inode was under
// before rotations, oldest first (fs/key_history.h). Needs no key.
inline constexpr size_t kPreviousKeysMax = 16;  // fs::kMaxPreviousKeys
struct PreviousKeysArg {
  uint32_t version;                               // in: kIoctlAbiVersion
  uint32_t count;                                 // out: identifiers filled
  uint32_t reserved[2];                           // 0
  uint8_t key_identifiers[kPreviousKeysMax][16];  // out
};
static_assert(sizeof(PreviousKeysArg) == 272);

// The command numbers.
inline constexpr unsigned ECFS_IOC_ADD_KEY = _IOWR(kIoctlType, 0x40, AddKeyArg);
inline constexpr unsigned ECFS_IOC_REMOVE_KEY = _IOWR(kIoctlType, 0x41, RemoveKeyArg);
inline constexpr unsigned ECFS_IOC_KEY_STATUS = _IOWR(kIoctlType, 0x42, KeyStatusArg);
inline constexpr unsigned ECFS_IOC_SET_POLICY = _IOWR(kIoctlType, 0x43, PolicyArg);
inline constexpr unsigned ECFS_IOC_GET_POLICY = _IOWR(kIoctlType, 0x44, PolicyArg);
inline constexpr unsigned ECFS_IOC_SYNC = _IOWR(kIoctlType, 0x45, SyncArg);
inline constexpr unsigned ECFS_IOC_REMOUNT = _IOWR(kIoctlType, 0x46, RemountArg);
inline constexpr unsigned ECFS_IOC_SUBVOL_CREATE = _IOWR(kIoctlType, 0x47, SubvolArg);
inline constexpr unsigned ECFS_IOC_SUBVOL_DELETE = _IOWR(kIoctlType, 0x48, SubvolArg);
inline constexpr unsigned ECFS_IOC_SUBVOL_INFO = _IOWR(kIoctlType, 0x49, SubvolInfoArg);
inline constexpr unsigned ECFS_IOC_SUBVOL_SYNC = _IOWR(kIoctlType, 0x4a, SyncArg);
inline constexpr unsigned ECFS_IOC_PROTECTOR_PUT = _IOWR(kIoctlType, 0x4b, ProtectorArg);
inline constexpr unsigned ECFS_IOC_PROTECTOR_REMOVE = _IOWR(kIoctlType, 0x4c, ProtectorArg);
inline constexpr unsigned ECFS_IOC_PROTECTOR_NEXT = _IOWR(kIoctlType, 0x4d, ProtectorArg);
inline constexpr unsigned ECFS_IOC_KEY_USAGE = _IOWR(kIoctlType, 0x4e, KeyUsageArg);
inline constexpr unsigned ECFS_IOC_REKEY = _IOWR(kIoctlType, 0x4f, RekeyArg);
inline constexpr unsigned ECFS_IOC_PREVIOUS_KEYS = _IOWR(kIoctlType, 0x50, PreviousKeysArg);
inline constexpr unsigned ECFS_IOC_REKEY_CONTENTS = _IOWR(kIoctlType, 0x51, RekeyContentsArg);

// The argument size a command carries, or 0 for a number that is not an
// ecfs command.
constexpr size_t ioctl_argument_size(unsigned command) {
  switch (command) {
    case ECFS_IOC_ADD_KEY:
      return sizeof(AddKeyArg);
    case ECFS_IOC_REMOVE_KEY:
      return sizeof(RemoveKeyArg);
    case ECFS_IOC_KEY_STATUS:
      return sizeof(KeyStatusArg);
    case ECFS_IOC_SET_POLICY:
    case ECFS_IOC_GET_POLICY:
      return sizeof(PolicyArg);
    case ECFS_IOC_SYNC:
      return sizeof(SyncArg);
    case ECFS_IOC_REMOUNT:
      return sizeof(RemountArg);
    case ECFS_IOC_SUBVOL_CREATE:
    case ECFS_IOC_SUBVOL_DELETE:
      return sizeof(SubvolArg);
    case ECFS_IOC_SUBVOL_INFO:
      return sizeof(SubvolInfoArg);
    case ECFS_IOC_SUBVOL_SYNC:
      return sizeof(SyncArg);
    case ECFS_IOC_PROTECTOR_PUT:
    case ECFS_IOC_PROTECTOR_REMOVE:
    case ECFS_IOC_PROTECTOR_NEXT:
      return sizeof(ProtectorArg);
    case ECFS_IOC_KEY_USAGE:
      return sizeof(KeyUsageArg);
    case ECFS_IOC_REKEY:
      return sizeof(RekeyArg);
    case ECFS_IOC_PREVIOUS_KEYS:
      return sizeof(PreviousKeysArg);
    case ECFS_IOC_REKEY_CONTENTS:
      return sizeof(RekeyContentsArg);
    default:
      return 0;
  }
}

}  // namespace ecfs::fuse
