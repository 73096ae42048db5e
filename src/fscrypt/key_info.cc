#include "fscrypt/key_info.h"

#include <utility>

#include "crypto/secret.h"

namespace ecfs::fscrypt {

FileInfo::FileInfo(ActiveRef ref, Context context, FileKind kind, uint64_t inode_number,
                   const ModeInfo* mode, SharedCipher cipher, bool uses_per_mode_key,
                   uint32_t hashed_inode_number, std::optional<crypto::SipHashKey> dirhash_key)
    : active_ref_(std::move(ref)),
      context_(std::move(context)),
      kind_(kind),
      inode_number_(inode_number),
      mode_(mode),
      cipher_(std::move(cipher)),
      uses_per_mode_key_(uses_per_mode_key),
      hashed_inode_number_(hashed_inode_number),
      dirhash_key_(dirhash_key) {}

FileInfo::~FileInfo() {
  if (dirhash_key_) {
    crypto::secure_zero({reinterpret_cast<uint8_t*>(&*dirhash_key_), sizeof(crypto::SipHashKey)});
  }
  active_ref_.key().unregister_file_info(this);
  // active_ref_ is released last (first member), possibly finishing the
  // removal of its master key.
}

IvParams FileInfo::iv_params() const {
  return inode_iv_params(context_, inode_number_, hashed_inode_number_);
}

ExtentInfo::ExtentInfo(ActiveRef ref, const ExtentContext& context, const ModeInfo* mode,
                       SharedCipher cipher)
    : active_ref_(std::move(ref)), context_(context), mode_(mode), cipher_(std::move(cipher)) {}

ExtentInfo::~ExtentInfo() {
  active_ref_.key().unregister_extent_info({context_.contents_mode, context_.nonce}, this);
}

}  // namespace ecfs::fscrypt
