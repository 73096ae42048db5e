// FileData: the contents pass of a key rotation (file_data.h
// reencrypt_old_extents; fs/key_history.h).
#include <openssl/crypto.h>

#include "fs/file_data.h"
#include "fscrypt/extent.h"

namespace ecfs::fs {
namespace {

// The cache's entry for `old_bytenr`, if its witness item still references
// the new extent with the same context.
const ReencryptedExtent* valid_entry(const ReencryptCache& cache, uint64_t old_bytenr,
                                     const store::BTree& tree) {
  auto found = cache.by_old_bytenr.find(old_bytenr);
  if (found == cache.by_old_bytenr.end()) return nullptr;
  const ReencryptedExtent& entry = found->second;
  auto stored = tree.find({entry.witness_ino, kExtentDataKey, entry.witness_offset});
  if (!stored || !*stored) return nullptr;
  auto witness = decode_file_extent_item(**stored);
  if (!witness || witness->disk_bytenr != entry.item.disk_bytenr ||
      witness->context != entry.item.context) {
    return nullptr;
  }
  return &entry;
}

}  // namespace

Result<ReencryptProgress> FileData::reencrypt_old_extents(uint64_t ino, uint64_t max_bytes,
                                                          ReencryptCache& cache,
                                                          bool* tree_changed_badly) {
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

  ReencryptProgress progress;
  for (const auto& [offset, item] : old_items) {
    if (progress.extents > 0 && progress.bytes >= max_bytes) return progress;
    FileExtentItem replacement;
    if (const ReencryptedExtent* made = valid_entry(cache, item.disk_bytenr, **tree)) {
      replacement = made->item;
      ++progress.shared;
    } else {
      auto crypter = (*inode_keys)->extent_crypter(item.context);  // ENOKEY: its key is absent
      if (!crypter) return std::unexpected(crypter.error());
      Result<FileExtentItem> copy = fail(EINVAL, "");
      if (item.type == FileExtentType::kPrealloc) {
        // Never written: reads as zeros, so only the space and context move.
        copy = create_extent(keys, FileExtentType::kPrealloc, item.disk_length, {});
      } else {
        Bytes plaintext(item.disk_length);
        const block::CryptContext crypt{crypter->get(), 0};
        Status read = engine_.read_data_into(item.disk_bytenr, plaintext, &crypt);
        if (read) copy = create_extent(keys, FileExtentType::kRegular, item.disk_length, plaintext);
        OPENSSL_cleanse(plaintext.data(), plaintext.size());
        if (!read) return std::unexpected(read.error());
      }
      // A failed copy leaves at most an unreferenced extent, freed at commit.
      if (!copy) return std::unexpected(copy.error());
      replacement = std::move(*copy);
      progress.bytes += item.disk_length;
      ++progress.extents;
      cache.by_old_bytenr[item.disk_bytenr] = ReencryptedExtent{replacement, ino, offset};
    }
    FileExtentItem moved = item;
    moved.disk_bytenr = replacement.disk_bytenr;
    moved.generation = replacement.generation;
    moved.context = replacement.context;
    if (Status updated = update_extent(**tree, ino, offset, item, moved); !updated) {
      *tree_changed_badly = true;
      return std::unexpected(updated.error());
    }
  }
  progress.done = true;
  return progress;
}

}  // namespace ecfs::fs
