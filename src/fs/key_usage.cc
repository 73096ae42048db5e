#include "fs/key_usage.h"

#include <set>
#include <utility>

#include "fs/items.h"
#include "fscrypt/extent.h"
#include "store/subvolume_catalog.h"
#include "store/tree_ids.h"

namespace ecfs::fs {

Result<std::map<fscrypt::KeyIdentifier, KeyUsage>> key_usage(store::Volume& volume) {
  auto subvolumes = volume.catalog().list();
  if (!subvolumes) return std::unexpected(subvolumes.error());
  std::map<fscrypt::KeyIdentifier, KeyUsage> usage;
  std::set<uint64_t> counted;  // disk_bytenr of the extents counted so far
  for (const store::SubvolumeEntry& subvolume : *subvolumes) {
    if (subvolume.deleted) continue;
    auto tree = volume.read_tree(subvolume.id);
    if (!tree) return std::unexpected(tree.error());
    Status decoded = ok();
    ECFS_TRY(tree->for_each(
        store::Key::min(), store::Key::max(), [&](const store::Key& key, ByteSpan data) {
          if (key.type != store::kExtentDataKey) return true;
          auto item = decode_file_extent_item(data);
          if (!item) {
            decoded = std::unexpected(item.error());
            return false;
          }
          if (item->encryption != ExtentEncryption::kFscrypt || item->disk_bytenr == 0 ||
              !counted.insert(item->disk_bytenr).second) {
            return true;
          }
          auto context = fscrypt::parse_extent_context(item->context);
          if (!context) {
            decoded = fail(EUCLEAN, "subvolume " + std::to_string(subvolume.id) + ": inode " +
                                        std::to_string(key.objectid) + ": damaged extent context");
            return false;
          }
          KeyUsage& counts = usage[context->master_key_identifier];
          ++counts.extents;
          counts.bytes += item->disk_length;
          return true;
        }));
    ECFS_TRY(decoded);
  }
  return usage;
}

}  // namespace ecfs::fs
