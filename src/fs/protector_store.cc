#include "fs/protector_store.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>
#include <set>

#include "store/superblock.h"
#include "store/tree_ids.h"

namespace ecfs::fs {
namespace {

using fscrypt::KeyIdentifier;
using fscrypt::ProtectorId;
using store::Key;

uint64_t id_objectid(const ProtectorId& id) { return load_le64(id.data()); }

ProtectorId objectid_id(uint64_t objectid) {
  ProtectorId id;
  store_le64(id.data(), objectid);
  return id;
}

Key protector_key(const ProtectorId& id) {
  return Key{id_objectid(id), store::kProtectorItemKey, 0};
}

Key wrapped_key_key(const ProtectorId& protector, const KeyIdentifier& identifier) {
  return Key{id_objectid(protector), store::kWrappedKeyItemKey, load_le64(identifier.data())};
}

}  // namespace

// The tree's records, decoded in one walk; what the rules look at.
struct TreeRecords {
  std::map<ProtectorId, fscrypt::ProtectorRecord> protectors;
  std::vector<fscrypt::WrappedKeyRecord> wrapped;

  const fscrypt::ProtectorRecord* protector(const ProtectorId& id) const {
    auto it = protectors.find(id);
    return it == protectors.end() ? nullptr : &it->second;
  }
  // How many protectors wrap `identifier`.
  size_t protectors_of(const KeyIdentifier& identifier) const {
    return static_cast<size_t>(std::count_if(wrapped.begin(), wrapped.end(), [&](const auto& w) {
      return w.key_identifier == identifier;
    }));
  }
  bool filed(const ProtectorId& protector, const KeyIdentifier& identifier) const {
    return std::any_of(wrapped.begin(), wrapped.end(), [&](const auto& w) {
      return w.protector == protector && w.key_identifier == identifier;
    });
  }
  size_t owned_by(uint32_t uid) const {
    return static_cast<size_t>(
        std::count_if(protectors.begin(), protectors.end(),
                      [&](const auto& p) { return p.second.owner_uid == uid; }));
  }
};

Result<store::BTree*> ProtectorStore::writable_tree() {
  ECFS_TRY(volume_.check_writable());
  store::Engine& engine = volume_.engine();
  auto trees = engine.list_trees();
  if (!trees) return std::unexpected(trees.error());
  if (std::find(trees->begin(), trees->end(), store::kProtectorTreeId) == trees->end()) {
    ECFS_TRY(engine.create_tree(store::kProtectorTreeId));
    ECFS_TRY(engine.enable_compat_features(store::kCompatProtectors));
  }
  volume_.note_change();
  wrote_ = true;
  return volume_.tree(store::kProtectorTreeId);
}

Status ProtectorStore::check_may_change(const fscrypt::Caller& caller,
                                        const fscrypt::ProtectorRecord& record) {
  if (caller.is_privileged || caller.uid == record.owner_uid) return ok();
  return fail(EPERM,
              "protector " + fscrypt::protector_id_text(record.id) + " belongs to another user");
}

Result<TreeRecords> ProtectorStore::records() {
  TreeRecords records;
  auto tree = volume_.read_tree(store::kProtectorTreeId);
  if (!tree) {
    if (tree.error().errno_value() == ENOENT) return records;
    return std::unexpected(tree.error());
  }
  Status decoded = ok();
  ECFS_TRY(tree->for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan data) {
    const ProtectorId id = objectid_id(key.objectid);
    if (key.type == store::kProtectorItemKey) {
      auto record = fscrypt::decode_protector(id, data);
      if (record) {
        records.protectors.emplace(id, std::move(*record));
      } else {
        decoded = std::unexpected(record.error());
      }
    } else if (key.type == store::kWrappedKeyItemKey) {
      auto record = fscrypt::decode_wrapped_key(id, data);
      if (record) {
        records.wrapped.push_back(std::move(*record));
      } else {
        decoded = std::unexpected(record.error());
      }
    }
    return decoded.has_value();
  }));
  ECFS_TRY(decoded);
  return records;
}

Status ProtectorStore::put_protector(const fscrypt::Caller& caller,
                                     const fscrypt::ProtectorRecord& record) {
  auto encoded = fscrypt::encode_protector(record);
  if (!encoded) return std::unexpected(encoded.error());
  auto records = this->records();
  if (!records) return std::unexpected(records.error());
  if (const fscrypt::ProtectorRecord* existing = records->protector(record.id)) {
    ECFS_TRY(check_may_change(caller, *existing));
    if (existing->kind != record.kind) {
      return fail(EINVAL,
                  "protector " + fscrypt::protector_id_text(record.id) + " cannot change kind");
    }
    if (existing->owner_uid != record.owner_uid) {
      return fail(EPERM,
                  "protector " + fscrypt::protector_id_text(record.id) + " cannot change owner");
    }
  } else if (!caller.is_privileged && record.owner_uid != caller.uid) {
    return fail(EPERM, "a protector must belong to the user who makes it");
  } else if (!caller.is_privileged && records->owned_by(caller.uid) >= kMaxProtectorsPerUser) {
    return fail(EDQUOT,
                "a user may own at most " + std::to_string(kMaxProtectorsPerUser) + " protectors");
  }
  auto tree = writable_tree();
  if (!tree) return std::unexpected(tree.error());
  return (*tree)->put(protector_key(record.id), *encoded);
}

Status ProtectorStore::put_wrapped_key(const fscrypt::Caller& caller,
                                       const fscrypt::WrappedKeyRecord& record,
                                       bool caller_holds_key) {
  auto records = this->records();
  if (!records) return std::unexpected(records.error());
  const fscrypt::ProtectorRecord* owner = records->protector(record.protector);
  if (owner == nullptr) {
    return fail(ENOENT, "no protector " + fscrypt::protector_id_text(record.protector));
  }
  ECFS_TRY(check_may_change(caller, *owner));
  if (!caller_holds_key) {
    return fail(ENOKEY, "a key is filed under a protector only by a user who has added it");
  }
  // One identifier per (protector, first 8 bytes): another identifier with
  // the same first half under the same protector cannot be filed (a 2^-64
  // chance for keys ecfs makes).
  const Key key = wrapped_key_key(record.protector, record.key_identifier);
  for (const auto& other : records->wrapped) {
    if (other.protector == record.protector && other.key_identifier != record.key_identifier &&
        wrapped_key_key(other.protector, other.key_identifier) == key) {
      return fail(EEXIST, "another key with the same first 8 identifier bytes is filed there");
    }
  }
  auto tree = writable_tree();
  if (!tree) return std::unexpected(tree.error());
  return (*tree)->put(key, fscrypt::encode_wrapped_key(record));
}

Status ProtectorStore::remove_protector(const fscrypt::Caller& caller, const ProtectorId& id,
                                        bool force) {
  auto records = this->records();
  if (!records) return std::unexpected(records.error());
  const fscrypt::ProtectorRecord* record = records->protector(id);
  if (record == nullptr) return fail(ENOENT, "no protector " + fscrypt::protector_id_text(id));
  ECFS_TRY(check_may_change(caller, *record));
  std::vector<KeyIdentifier> mine;
  for (const auto& wrapped : records->wrapped) {
    if (wrapped.protector == id) mine.push_back(wrapped.key_identifier);
  }
  if (!force) {
    for (const KeyIdentifier& identifier : mine) {
      if (records->protectors_of(identifier) <= 1) {
        return fail(EBUSY, "protector " + fscrypt::protector_id_text(id) +
                               " is the last one of key " + to_hex(identifier) +
                               "; removing it would lose the key");
      }
    }
  }
  auto tree = writable_tree();
  if (!tree) return std::unexpected(tree.error());
  for (const KeyIdentifier& identifier : mine) {
    ECFS_TRY((*tree)->remove(wrapped_key_key(id, identifier)));
  }
  return (*tree)->remove(protector_key(id));
}

Status ProtectorStore::remove_wrapped_key(const fscrypt::Caller& caller,
                                          const ProtectorId& protector_id,
                                          const KeyIdentifier& identifier, bool force) {
  auto records = this->records();
  if (!records) return std::unexpected(records.error());
  const fscrypt::ProtectorRecord* record = records->protector(protector_id);
  if (record == nullptr) {
    return fail(ENOENT, "no protector " + fscrypt::protector_id_text(protector_id));
  }
  ECFS_TRY(check_may_change(caller, *record));
  if (!records->filed(protector_id, identifier)) {
    return fail(ENOENT, "protector " + fscrypt::protector_id_text(protector_id) +
                            " does not protect key " + to_hex(identifier));
  }
  if (!force && records->protectors_of(identifier) <= 1) {
    return fail(EBUSY, "protector " + fscrypt::protector_id_text(protector_id) +
                           " is the last one of key " + to_hex(identifier));
  }
  auto tree = writable_tree();
  if (!tree) return std::unexpected(tree.error());
  return (*tree)->remove(wrapped_key_key(protector_id, identifier));
}

Result<std::optional<ProtectorItem>> ProtectorStore::next(
    const std::optional<ProtectorItem>& after) {
  auto tree = volume_.read_tree(store::kProtectorTreeId);
  if (!tree) {
    if (tree.error().errno_value() == ENOENT) return std::optional<ProtectorItem>();
    return std::unexpected(tree.error());
  }
  Key from = Key::min();
  if (after) {
    const Key at = after->kind == ProtectorItemKind::kProtector
                       ? protector_key(after->protector)
                       : wrapped_key_key(after->protector, after->key_identifier);
    if (at == Key::max()) return std::optional<ProtectorItem>();
    from = at.offset != UINT64_MAX ? Key{at.objectid, at.type, at.offset + 1}
                                   : Key{at.objectid, static_cast<uint8_t>(at.type + 1), 0};
  }
  auto item = tree->lower_bound(from);
  if (!item) return std::unexpected(item.error());
  if (!*item) return std::optional<ProtectorItem>();
  ProtectorItem out;
  out.protector = objectid_id((*item)->key.objectid);
  out.record = (*item)->data;
  // The next call resumes from the key rebuilt from what this returns, so
  // an item filed under a key its contents do not give (a damaged image,
  // which fsck reports) is an error rather than a loop or a skip.
  if ((*item)->key.type == store::kProtectorItemKey) {
    out.kind = ProtectorItemKind::kProtector;
    if ((*item)->key.offset != 0) {
      return fail(EUCLEAN, "protector tree: a PROTECTOR item with offset " +
                               std::to_string((*item)->key.offset));
    }
  } else if ((*item)->key.type == store::kWrappedKeyItemKey) {
    out.kind = ProtectorItemKind::kWrappedKey;
    auto record = fscrypt::decode_wrapped_key(out.protector, out.record);
    if (!record) return std::unexpected(record.error());
    out.key_identifier = record->key_identifier;
    if (load_le64(out.key_identifier.data()) != (*item)->key.offset) {
      return fail(EUCLEAN, "protector tree: a wrapped key filed under another identifier");
    }
  } else {
    return fail(EUCLEAN, "protector tree: unknown item type " + std::to_string((*item)->key.type));
  }
  return std::optional<ProtectorItem>(std::move(out));
}

Status check_protector_tree(store::Engine& engine, std::vector<std::string>& problems) {
  const bool flagged = (engine.superblock().compat_flags & store::kCompatProtectors) != 0;
  auto tree = engine.committed_tree(store::kProtectorTreeId);
  if (!tree) {
    if (tree.error().errno_value() != ENOENT) return std::unexpected(tree.error());
    if (flagged) problems.push_back("the compat bit protectors without a protector tree");
    return ok();
  }
  if (!flagged) problems.push_back("a protector tree without the compat bit protectors");
  std::set<ProtectorId> protectors;
  ECFS_TRY(tree->for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan data) {
    const ProtectorId id = objectid_id(key.objectid);
    if (key.type == store::kProtectorItemKey && key.offset == 0) {
      if (auto record = fscrypt::decode_protector(id, data); !record) {
        problems.push_back(record.error().message());
      }
      protectors.insert(id);
    } else if (key.type == store::kWrappedKeyItemKey) {
      auto record = fscrypt::decode_wrapped_key(id, data);
      if (!record) {
        problems.push_back(record.error().message());
      } else if (load_le64(record->key_identifier.data()) != key.offset) {
        problems.push_back("wrapped key of protector " + fscrypt::protector_id_text(id) +
                           " filed under the wrong identifier");
      } else if (!protectors.contains(id)) {
        // Protector items sort before their wrapped keys.
        problems.push_back("wrapped key " + to_hex(record->key_identifier) +
                           " of a missing protector " + fscrypt::protector_id_text(id));
      }
    } else {
      problems.push_back("protector tree: an item of unknown type " + std::to_string(key.type));
    }
    return true;
  }));
  return ok();
}

}  // namespace ecfs::fs
