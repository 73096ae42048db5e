#include "fs/extent_keys.h"

#include <algorithm>
#include <string>
#include <utility>

#include "fs/key_history.h"
#include "fscrypt/contents.h"
#include "fscrypt/extent.h"
#include "fscrypt/policy.h"
#include "store/format.h"

namespace ecfs::fs {
namespace {

// A per-extent key as the inline-encryption layer takes it: fscrypt's
// contents encryption with the extent's key, IVs from data unit numbers
// counted from the start of the extent.
class ExtentCrypter final : public block::DataUnitCrypter {
 public:
  ExtentCrypter(fscrypt::ExtentInfoPtr info, uint32_t data_unit_size)
      : info_(std::move(info)), data_unit_size_(data_unit_size) {}
  uint32_t data_unit_size() const override { return data_unit_size_; }
  Status encrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    return fscrypt::encrypt_data_units(info_->cipher(), info_->iv_params(), data_unit_size_,
                                       first_dun, in, out);
  }
  Status decrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    return fscrypt::decrypt_data_units(info_->cipher(), info_->iv_params(), data_unit_size_,
                                       first_dun, in, out);
  }

 private:
  fscrypt::ExtentInfoPtr info_;  // keeps the key (and its master key's claim) alive
  uint32_t data_unit_size_;
};

}  // namespace

InodeKeys::InodeKeys(fscrypt::Keyring& keyring, fscrypt::FileInfoPtr info, uint64_t ino,
                     std::vector<fscrypt::KeyIdentifier> previous_keys)
    : keyring_(keyring),
      info_(std::move(info)),
      ino_(ino),
      data_unit_size_(uint32_t{1} << fscrypt::effective_log2_data_unit_size(info_->policy(),
                                                                            store::kSectorSize)),
      previous_keys_(std::move(previous_keys)) {}

const fscrypt::KeyIdentifier& InodeKeys::current_key() const { return policy_key(info_->policy()); }

Result<NewExtentKey> InodeKeys::new_extent_key() const {
  auto extent = keyring_.new_extent_info(*info_);
  if (!extent) return std::unexpected(extent.error());
  const auto context_bytes = fscrypt::serialize_extent_context((*extent)->context());
  NewExtentKey key;
  key.context.assign(context_bytes.begin(), context_bytes.end());
  key.crypter = std::make_shared<ExtentCrypter>(std::move(*extent), data_unit_size_);
  return key;
}

Result<std::shared_ptr<const block::DataUnitCrypter>> InodeKeys::extent_crypter(
    ByteSpan context) const {
  auto parsed = fscrypt::parse_extent_context(context);
  if (!parsed) {
    return fail(EUCLEAN, "inode " + std::to_string(ino_) +
                             ": damaged extent context: " + parsed.error().message());
  }
  // An extent written before a rotation names an earlier key of the inode:
  // checked against the policy as it was then, its key found in the keyring.
  const fscrypt::KeyIdentifier& key = parsed->master_key_identifier;
  auto extent =
      key != current_key()
          ? keyring_.load_extent_info(*parsed, extent_policy(info_->policy(), previous_keys_, key))
          : keyring_.load_extent_info(*parsed, *info_);
  if (!extent) {
    if (extent.error().errno_value() == EINVAL) {
      return fail(EUCLEAN, "inode " + std::to_string(ino_) +
                               ": extent context does not match the inode's policy: " +
                               extent.error().message());
    }
    return std::unexpected(extent.error());
  }
  return std::make_shared<ExtentCrypter>(std::move(*extent), data_unit_size_);
}

Result<const InodeKeys*> OperationKeys::get() {
  if (!keys_) {
    if (!provider_) {
      keys_.emplace();
    } else {
      auto keys = provider_->inode_keys(ino_);
      if (!keys) return std::unexpected(keys.error());
      keys_ = std::move(*keys);
    }
  }
  return keys_->get();
}

}  // namespace ecfs::fs
