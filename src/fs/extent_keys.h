// The keys of encrypted file extents, as FileData needs them
// (docs/FORMAT.md "File extents"; fscrypt/extent.h).
//
// Every data extent of an encrypted file has its own fscrypt extent context
// and key; its data units are numbered from the start of the extent. FileData
// knows extents, not keys: it asks this interface for the crypter of a new
// extent (with the context to store in its item) and for the crypter of an
// existing one (from the context its item stores). The FileSystem implements
// it from the inode's fscrypt context and the mount's keyring.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "base/bytes.h"
#include "base/error.h"
#include "block/inline_crypt.h"

namespace ecfs::fs {

// What a new extent of an encrypted file is written with.
struct NewExtentKey {
  std::shared_ptr<const block::DataUnitCrypter> crypter;
  Bytes context;  // the 34-byte extent context stored in the extent item
};

class ExtentKeys {
 public:
  virtual ~ExtentKeys() = default;
  // The key of a new extent of inode `ino`, with a fresh nonce;
  // std::nullopt when the inode's contents are not encrypted. ENOKEY when
  // its master key is not available.
  virtual Result<std::optional<NewExtentKey>> new_extent_key(uint64_t ino) = 0;
  // The crypter of an existing encrypted extent of `ino` whose item stores
  // `context`. ENOKEY without the master key; EUCLEAN for a context that
  // does not belong to the inode's policy.
  virtual Result<std::shared_ptr<const block::DataUnitCrypter>> extent_crypter(
      uint64_t ino, ByteSpan context) = 0;
};

}  // namespace ecfs::fs
