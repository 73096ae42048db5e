// FileData: the contents pass of a key rotation (file_data.h
// reencrypt_old_extents; fs/key_history.h).
#include <openssl/crypto.h>

#include "fs/file_data.h"
#include "fscrypt/extent.h"

namespace ecfs::fs {
namespace {

// The copy the cache holds for old extent `item`, if the entry is for that
// very extent, its copy is under `key` and its witness still references it.
const ReencryptedExtent* valid_entry(const ReencryptCache& cache, const FileExtentItem& item,
                                     const fscrypt::KeyIdentifier& key, const store::BTree& tree) {
  auto found = cache.by_old_bytenr.find(item.disk_bytenr);
  if (found == cache.by_old_bytenr.end()) return nullptr;
  const ReencryptedExtent& entry = found->second;
  // The address may have been freed and reused since: the context (its
  // nonce) tells the extents apart.
  if (entry.old_disk_length != item.disk_length || entry.old_context != item.context ||
      entry.key != key) {
    return nullptr;
  }
  auto stored = tree.find({entry.witness_ino, kExtentDataKey, entry.witness_offset});
  if (!stored || !*stored) return nullptr;
  auto witness = decode_file_extent_item(**stored);
  if (!witness || witness->disk_bytenr != entry.item.disk_bytenr ||
      witness->disk_length != entry.item.disk_length || witness->context != entry.item.context) {
    return nullptr;
  }
  return &entry;
}

}  // namespace

Result<RekeyContentsReport> FileData::reencrypt_old_extents(
    uint64_t ino, uint64_t max_bytes, ReencryptCache& cache,
    const std::function<Status(uint64_t bytes)>& check_space, bool* tree_changed_badly) {
  *tree_changed_badly = false;
  ECFS_TRY(check_transaction());
  auto tree = open_tree();
  if (!tree) return std::unexpected(tree.error());
  OperationKeys keys(options_.keys, ino);
  auto inode_keys = keys.get();
  if (!inode_keys) return std::unexpected(inode_keys.error());
  if (!*inode_keys) return fail(EINVAL, "inode " + std::to_string(ino) + " is not encrypted");
  const fscrypt::KeyIdentifier current = (*inode_keys)->current_key();

  // The items under other keys, collected first: the loop changes the tree.
  std::vector<std::pair<uint64_t, FileExtentItem>> old_items;
  Status decoded = ok();
  ECFS_TRY((*tree)->for_each({ino, kExtentDataKey, 0}, {ino, kExtentDataKey, UINT64_MAX},
                             [&](const store::Key& key, ByteSpan data) {
                               auto item = decode_file_extent_item(data);
                               if (!item) {
                                 decoded = std::unexpected(item.error());
                                 return false;
                               }
                               if (item->encryption != ExtentEncryption::kFscrypt) return true;
                               auto context = fscrypt::parse_extent_context(item->context);
                               if (!context) {
                                 decoded = fail(EUCLEAN, "inode " + std::to_string(ino) +
                                                             ": damaged extent context");
                                 return false;
                               }
                               if (context->master_key_identifier != current) {
                                 old_items.emplace_back(key.offset, std::move(*item));
                               }
                               return true;
                             }));
  ECFS_TRY(decoded);

  RekeyContentsReport progress;
  for (const auto& [offset, item] : old_items) {
    if (progress.extents > 0 && progress.bytes >= max_bytes) return progress;
    FileExtentItem moved = item;
    if (item.type == FileExtentType::kPrealloc) {
      // Reads as zeros and is never read: a new prealloc extent of the
      // item's own length, shared with nothing (the old extent may hold
      // another item's data: FALLOC_FL_ZERO_RANGE makes such items).
      ECFS_TRY(check_space(item.length));
      auto copy = create_extent(keys, FileExtentType::kPrealloc, item.length, {});
      if (!copy) return std::unexpected(copy.error());  // allocation or key: nothing written
      moved = std::move(*copy);
      moved.length = item.length;
      moved.extent_offset = 0;
      progress.bytes += item.length;
      ++progress.extents;
    } else if (const ReencryptedExtent* made = valid_entry(cache, item, current, **tree)) {
      moved.disk_bytenr = made->item.disk_bytenr;
      moved.generation = made->item.generation;
      moved.context = made->item.context;
      ++progress.shared;
    } else {
      auto crypter = (*inode_keys)->extent_crypter(item.context);  // ENOKEY: its key is absent
      if (!crypter) return std::unexpected(crypter.error());
      ECFS_TRY(check_space(item.disk_length));
      // The new extent and its key (nothing written yet on failure: a key
      // removed meanwhile, no space), then the data through the engine,
      // whose failure may leave its checksums half recorded.
      auto prepared = prepare_extent(keys, FileExtentType::kRegular, item.disk_length);
      if (!prepared) return std::unexpected(prepared.error());
      Bytes plaintext(item.disk_length);
      const block::CryptContext old_crypt{crypter->get(), 0};
      Status read = engine_.read_data_into(item.disk_bytenr, plaintext, &old_crypt);
      Status written = ok();
      if (read) {
        const block::CryptContext new_crypt{prepared->crypter.get(), 0};
        written = engine_.write_data(prepared->item.disk_bytenr, plaintext, &new_crypt);
      }
      OPENSSL_cleanse(plaintext.data(), plaintext.size());
      if (!read) return std::unexpected(read.error());  // nothing written
      if (!written) {
        *tree_changed_badly = true;
        return std::unexpected(written.error());
      }
      const FileExtentItem& copy = prepared->item;
      moved.disk_bytenr = copy.disk_bytenr;
      moved.generation = copy.generation;
      moved.context = copy.context;
      progress.bytes += item.disk_length;
      ++progress.extents;
      cache.by_old_bytenr[item.disk_bytenr] =
          ReencryptedExtent{item.disk_length, item.context, current, copy, ino, offset};
    }
    if (Status updated = update_extent(**tree, ino, offset, item, moved); !updated) {
      *tree_changed_badly = true;
      return std::unexpected(updated.error());
    }
  }
  progress.done = true;
  return progress;
}

}  // namespace ecfs::fs
