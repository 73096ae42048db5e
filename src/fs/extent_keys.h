// The keys of encrypted file extents, as FileData needs them
// (docs/FORMAT.md "File extents"; fscrypt/extent.h).
//
// Every data extent of an encrypted file has its own fscrypt extent context
// and key; its data units are numbered from the start of the extent. FileData
// knows extents, not keys: at the start of an operation on an inode's data
// (a read, the writeout of its buffered runs, a preallocation) it asks
// ExtentKeys once for that inode's InodeKeys, and derives every extent's
// crypter from it: for a new extent (with the context to store in its item)
// and for an existing one (from the context its item stores), without going
// back to the filesystem per extent. The Subvolume implements ExtentKeys from
// the inode's fscrypt context and the mount's keyring.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "block/inline_crypt.h"
#include "fscrypt/key_info.h"
#include "fscrypt/keyring.h"

namespace ecfs::fs {

// What a new extent of an encrypted file is written with.
struct NewExtentKey {
  std::shared_ptr<const block::DataUnitCrypter> crypter;
  Bytes context;  // the 34-byte extent context stored in the extent item
};

// The key handle of one encrypted inode: its set-up fscrypt info (which
// keeps the master key's claim while it lives, so an operation that began
// with the key finishes with it, as the series derives extent keys for open
// files at writeout time) and the keyring to derive extent keys from.
// Used under the volume's lock, for the length of one operation.
class InodeKeys {
 public:
  // `previous_keys`: the master keys the inode was under before a rotation
  // (fs/key_history.h), whose extents it may still hold.
  InodeKeys(fscrypt::Keyring& keyring, fscrypt::FileInfoPtr info, uint64_t ino,
            std::vector<fscrypt::KeyIdentifier> previous_keys = {});

  // The master key new extents are written under (the policy's).
  const fscrypt::KeyIdentifier& current_key() const;
  // A new extent with a fresh nonce. EINVAL if the policy does not allow
  // extent encryption; EIO if the CSPRNG fails.
  Result<NewExtentKey> new_extent_key() const;
  // The crypter of an existing extent whose item stores `context`, under
  // the inode's key or one it was under before. EUCLEAN for a damaged
  // context or one that does not belong to the inode's policy; ENOKEY
  // without the extent's master key (an earlier key must be present in the
  // keyring: the inode's own claim covers only its current key).
  Result<std::shared_ptr<const block::DataUnitCrypter>> extent_crypter(ByteSpan context) const;

 private:
  fscrypt::Keyring& keyring_;
  fscrypt::FileInfoPtr info_;
  uint64_t ino_;  // for messages
  uint32_t data_unit_size_;
  std::vector<fscrypt::KeyIdentifier> previous_keys_;
};

class ExtentKeys {
 public:
  virtual ~ExtentKeys() = default;
  // The keys of inode `ino`; null when its contents are not encrypted.
  // ENOKEY when its master key is not available.
  virtual Result<std::shared_ptr<const InodeKeys>> inode_keys(uint64_t ino) = 0;
};

// The keys of one inode for one operation: asked of `provider` on first
// need (only encrypted extents and new extents of encrypted inodes need
// them), then kept. A null provider means no keys at all: new extents are
// plaintext, encrypted ones cannot be read (ENOKEY).
class OperationKeys {
 public:
  OperationKeys(ExtentKeys* provider, uint64_t ino) : provider_(provider), ino_(ino) {}
  // Null when the inode is not encrypted (or there is no provider).
  Result<const InodeKeys*> get();

 private:
  ExtentKeys* provider_;
  uint64_t ino_;
  std::optional<std::shared_ptr<const InodeKeys>> keys_;
};

}  // namespace ecfs::fs
