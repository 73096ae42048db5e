// Pieces shared by the files that implement Subvolume (subvolume.cc,
// directory.cc, file_ops.cc, xattr_ops.cc); not part of the fs interface.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "fs/filesystem.h"
#include "fs/items.h"
#include "fscrypt/key_info.h"
#include "fscrypt/policy.h"
#include "store/btree.h"

namespace ecfs::fs {

// The current time as stored in inodes: the kernel's coarse realtime clock
// (CLOCK_REALTIME_COARSE), which it stamps its own times with.
Timestamp now();

// The bytes of the out-of-line xattr value `where` of inode `ino`: its
// XATTR_VALUE items, concatenated. EUCLEAN when a part is missing or the
// parts do not add up to the entry's length.
Result<Bytes> read_xattr_value(const store::BTree& fs_tree, uint64_t ino,
                               const XattrOutOfLine& where);

// The record an encrypted symlink with key `info` stores for `target`
// (fscrypt's, at most 4096 bytes as ext4 gives it a block: ENAMETOOLONG).
Result<Bytes> encrypted_symlink_record(const fscrypt::FileInfo& info, std::string_view target);

struct Subvolume::InodeState {
  uint64_t ino = 0;
  // The inode item as it will be written at the next commit; empty when it
  // must be read again from the tree (after an aborted transaction).
  std::optional<InodeItem> item;
  bool dirty = false;
  uint64_t lookups = 0;  // kernel references (FUSE lookup count)
  uint32_t opens = 0;    // open file handles
  // fscrypt: the inode's context once read (crypt_context()), and its key
  // while set up (crypt_info(); kept while the inode is open, dropped when a
  // key removal evicts it).
  bool crypt_context_loaded = false;
  std::optional<fscrypt::Context> crypt_context;
  // The master keys it was under before (its KEY_HISTORY item, loaded with
  // the context; empty when it has none).
  std::vector<fscrypt::KeyIdentifier> previous_keys;
  fscrypt::FileInfoPtr crypt_info;
};

}  // namespace ecfs::fs
