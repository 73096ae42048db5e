#include "fs/key_history.h"

#include <algorithm>
#include <string>
#include <variant>

namespace ecfs::fs {

using fscrypt::KeyIdentifier;

Bytes encode_key_history(std::span<const KeyIdentifier> previous) {
  Bytes out;
  out.reserve(1 + previous.size() * fscrypt::kKeyIdentifierSize);
  out.push_back(static_cast<uint8_t>(previous.size()));
  for (const KeyIdentifier& key : previous) out.insert(out.end(), key.begin(), key.end());
  return out;
}

Result<std::vector<KeyIdentifier>> decode_key_history(ByteSpan data) {
  if (data.empty()) return fail(EUCLEAN, "empty KEY_HISTORY item");
  const size_t count = data[0];
  if (count == 0 || count > kMaxPreviousKeys) {
    return fail(EUCLEAN, "KEY_HISTORY lists " + std::to_string(count) + " keys (1 to " +
                             std::to_string(kMaxPreviousKeys) + " allowed)");
  }
  if (data.size() != 1 + count * fscrypt::kKeyIdentifierSize) {
    return fail(EUCLEAN, "KEY_HISTORY item of " + std::to_string(data.size()) + " bytes for " +
                             std::to_string(count) + " keys");
  }
  std::vector<KeyIdentifier> previous(count);
  for (size_t i = 0; i < count; ++i) {
    const ByteSpan bytes =
        data.subspan(1 + i * fscrypt::kKeyIdentifierSize, fscrypt::kKeyIdentifierSize);
    std::ranges::copy(bytes, previous[i].begin());
    if (std::ranges::find(previous.begin(), previous.begin() + static_cast<ptrdiff_t>(i),
                          previous[i]) != previous.begin() + static_cast<ptrdiff_t>(i)) {
      return fail(EUCLEAN, "KEY_HISTORY lists a key twice");
    }
  }
  return previous;
}

Result<std::vector<KeyIdentifier>> rotated_history(std::span<const KeyIdentifier> previous,
                                                   const KeyIdentifier& from,
                                                   const KeyIdentifier& to,
                                                   HistoryOverflow overflow) {
  std::vector<KeyIdentifier> rotated;
  for (const KeyIdentifier& key : previous) {
    if (key != to && key != from) rotated.push_back(key);
  }
  if (from != to) rotated.push_back(from);
  if (rotated.size() > kMaxPreviousKeys) {
    if (overflow == HistoryOverflow::kRefuse) {
      return fail(EOVERFLOW, "the inode was already under " + std::to_string(kMaxPreviousKeys) +
                                 " earlier keys; rewrite its old extents first (rekey --contents)");
    }
    rotated.erase(rotated.begin(),
                  rotated.begin() + static_cast<ptrdiff_t>(rotated.size() - kMaxPreviousKeys));
  }
  return rotated;
}

fscrypt::Policy extent_policy(const fscrypt::Policy& inode_policy,
                              std::span<const KeyIdentifier> previous,
                              const KeyIdentifier& extent_key) {
  if (std::ranges::find(previous, extent_key) == previous.end()) return inode_policy;
  return with_key(inode_policy, extent_key);
}

const KeyIdentifier& policy_key(const fscrypt::Policy& policy) {
  return std::get<fscrypt::PolicyV2>(policy).master_key_identifier;
}

fscrypt::Policy with_key(const fscrypt::Policy& policy, const KeyIdentifier& key) {
  fscrypt::PolicyV2 changed = std::get<fscrypt::PolicyV2>(policy);
  changed.master_key_identifier = key;
  return changed;
}

bool same_policy_but_key(const fscrypt::Policy& a, const fscrypt::Policy& b) {
  const auto* a2 = std::get_if<fscrypt::PolicyV2>(&a);
  const auto* b2 = std::get_if<fscrypt::PolicyV2>(&b);
  if (!a2 || !b2) return false;
  fscrypt::PolicyV2 a_rekeyed = *a2;
  a_rekeyed.master_key_identifier = b2->master_key_identifier;
  return a_rekeyed == *b2;
}

bool InodeKeySet::contains(const KeyIdentifier& key) const {
  return key == current || std::ranges::find(previous, key) != previous.end();
}

bool InodeKeySet::includes(const InodeKeySet& other) const {
  return contains(other.current) &&
         std::ranges::all_of(other.previous,
                             [&](const KeyIdentifier& key) { return contains(key); });
}

}  // namespace ecfs::fs
