#include "store/engine.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <set>
#include <utility>

#include "base/log.h"
#include "crypto/random.h"
#include "store/subvolume_items.h"

namespace ecfs::store {
namespace {

constexpr uint64_t kBootAreaSize = 1 << 20;

std::string block_name(uint64_t bytenr) { return "tree block " + std::to_string(bytenr); }

Key root_item_key(uint64_t id) { return Key{id, kRootItemKey, 0}; }

}  // namespace

std::vector<ByteRange> reserved_ranges_for(uint64_t device_size) {
  std::vector<ByteRange> reserved{{0, std::min<uint64_t>(kBootAreaSize, device_size)}};
  for (uint64_t offset : superblock_offsets_for(device_size)) {
    reserved.push_back({offset, kSuperblockSize});
  }
  return reserved;
}

Engine::Engine(block::BlockDevice& device, Superblock sb, OpenOptions options)
    : device_(&device),
      sb_(std::move(sb)),
      options_(options),
      allocator_(sb_.total_bytes, reserved_ranges_for(sb_.total_bytes)),
      cache_(options.node_cache_capacity),
      want_free_space_tree_(options.add_free_space_tree),
      transaction_generation_(sb_.generation + 1) {}

Engine::~Engine() { abort(); }

// ---------------------------------------------------------------- mkfs / open

Result<std::array<uint8_t, kFsidSize>> random_fsid() {
  // A version 4 UUID, as mkfs.btrfs makes with uuid_generate(): 122 random
  // bits with the version and variant fields of RFC 9562 section 5.4, so
  // that blkid and other tools read it as a proper UUID.
  std::array<uint8_t, kFsidSize> fsid;
  ECFS_TRY(crypto::random_bytes(fsid));
  fsid[6] = static_cast<uint8_t>((fsid[6] & 0x0f) | 0x40);
  fsid[8] = static_cast<uint8_t>((fsid[8] & 0x3f) | 0x80);
  return fsid;
}

Status mkfs(block::BlockDevice& device, const MkfsOptions& options) {
  const uint32_t node_size = options.node_size;
  if (!std::has_single_bit(node_size) || node_size < kMinNodeSize || node_size > kMaxNodeSize) {
    return fail(EINVAL, "node size " + std::to_string(node_size) +
                            " is not a power of two from 4 KiB to 64 KiB");
  }
  if (!checksum_type_from_number(static_cast<uint16_t>(options.checksum_type))) {
    return fail(EINVAL, "unknown checksum type " +
                            std::to_string(static_cast<unsigned>(options.checksum_type)));
  }
  if (options.label.size() > 255) return fail(EINVAL, "label longer than 255 bytes");
  // Room for the boot area and a few dozen nodes: anything smaller cannot
  // hold even an empty filesystem through a few commits.
  const uint64_t minimum = kBootAreaSize + 64ull * node_size;
  if (device.size() < minimum) {
    return fail(EINVAL, device.describe() + " is " + std::to_string(device.size()) +
                            " bytes; ecfs needs at least " + std::to_string(minimum));
  }

  Superblock sb;
  if (options.fsid) {
    sb.fsid = *options.fsid;
  } else {
    auto fsid = random_fsid();
    if (!fsid) return std::unexpected(fsid.error());
    sb.fsid = *fsid;
  }
  sb.generation = 0;
  sb.checksum_type = options.checksum_type;
  sb.node_size = node_size;
  sb.total_bytes = device.size() / kSectorSize * kSectorSize;
  sb.label = options.label;

  Engine engine(device, sb, OpenOptions{});
  engine.want_free_space_tree_ = options.free_space_tree;
  // Generation 1 builds the initial trees through the ordinary transaction
  // machinery, so mkfs writes nothing a commit would not.
  engine.in_transaction_ = true;
  engine.transaction_generation_ = 1;
  engine.space_map_loaded_ = true;  // a new device: all free
  engine.saved_allocator_ = engine.allocator_;
  engine.saved_space_map_loaded_ = true;
  auto root_tree = BTree::create(engine, kRootTreeId);
  if (!root_tree) return std::unexpected(root_tree.error());
  engine.root_tree_.emplace(std::move(*root_tree));
  auto extent_tree = engine.add_empty_tree(kExtentTreeId);
  if (!extent_tree) return std::unexpected(extent_tree.error());
  ECFS_TRY(engine.create_tree(kFsTreeId));
  ECFS_TRY(engine.create_tree(kCsumTreeId));
  if (options.origin) {
    auto origin = encode_image_origin(*options.origin);
    if (!origin) return std::unexpected(origin.error());
    ECFS_TRY(engine.root_tree_->put(kImageOriginKey, *origin));
    engine.sb_.compat_flags |= kCompatImageOrigin;
  }
  if (options.populate) ECFS_TRY(options.populate(engine));
  return engine.commit();
}

Result<std::unique_ptr<Engine>> Engine::open(block::BlockDevice& device,
                                             const OpenOptions& options) {
  auto sb = read_newest_superblock(device);
  if (!sb) return std::unexpected(sb.error());
  if ((sb->compat_ro_flags & ~kCompatRoKnown) != 0 && !options.read_only) {
    return fail(EROFS, device.describe() + " has unknown read-only-compatible features; " +
                           "it can be opened read-only only");
  }
  if (sb->total_bytes > device.size() || sb->sector_size != kSectorSize) {
    return fail(EUCLEAN, device.describe() + ": superblock describes " +
                             std::to_string(sb->total_bytes) + " bytes with sector size " +
                             std::to_string(sb->sector_size) + " on a device of " +
                             std::to_string(device.size()) + " bytes");
  }
  std::unique_ptr<Engine> engine(new Engine(device, *sb, options));
  ECFS_TRY(engine->load_root_items());
  return engine;
}

Status Engine::load_root_items() {
  BTree root_tree(*this, kRootTreeId,
                  RootRef{sb_.root_tree_bytenr, sb_.root_tree_generation, sb_.root_tree_level});
  auto data = root_tree.find(root_item_key(kExtentTreeId));
  if (!data) return std::unexpected(data.error());
  if (!*data) return fail(EUCLEAN, device_->describe() + ": the root tree has no extent tree");
  auto item = decode_root_item(**data);
  if (!item) return std::unexpected(item.error());
  committed_extent_item_ = *item;
  if ((sb_.compat_ro_flags & kCompatRoFreeSpaceTree) == 0) return ok();
  auto free_space = root_tree.find(root_item_key(kFreeSpaceTreeId));
  if (!free_space) return std::unexpected(free_space.error());
  if (!*free_space) {
    return fail(EUCLEAN, device_->describe() +
                             ": the superblock announces a free-space tree the root tree lacks");
  }
  auto free_space_item = decode_root_item(**free_space);
  if (!free_space_item) return std::unexpected(free_space_item.error());
  committed_free_space_item_ = *free_space_item;
  return ok();
}

Status Engine::load_space_map() {
  if (space_map_loaded_) return ok();
  if (committed_free_space_item_) {
    Status loaded = load_free_space_tree();
    if (loaded) {
      space_map_loaded_ = true;
      return loaded;
    }
    if (!options_.read_only) {
      return fail(
          loaded.error().errno_value(),
          loaded.error().message() +
              " (the free-space tree cannot be loaded: the image can be used read-only only)");
    }
    // Read-only (fsck, inspect, a read-only mount): the free-space tree
    // only saves time, so what the extent tree says serves instead, and
    // fsck reports the damaged tree when it walks it.
  }
  // Everything the extent tree lists is in use; the rest is free.
  SpaceAllocator map(sb_.total_bytes, reserved_ranges_for(sb_.total_bytes));
  BTree extents(*this, kExtentTreeId, committed_extent_item_.root);
  Status status = ok();
  ECFS_TRY(extents.for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan) {
    if (key.type == kMetadataItemKey) {
      status = map.mark_allocated(key.objectid, sb_.node_size);
    } else if (key.type == kExtentItemKey) {
      status = map.mark_allocated(key.objectid, key.offset);
    }
    return status.has_value();
  }));
  ECFS_TRY(status);
  allocator_ = std::move(map);
  space_map_loaded_ = true;
  return ok();
}

SpaceUsage Engine::space_usage() const {
  SpaceUsage usage;
  usage.device_size = allocator_.device_size();
  usage.reserved_bytes = allocator_.reserved_bytes();
  if (space_map_loaded_) {
    usage.free_bytes = allocator_.free_bytes();
    usage.pinned_bytes = allocator_.pinned_bytes();
  } else {
    // Nothing was allocated or freed since the last commit, whose
    // superblock counts the allocated bytes.
    const uint64_t usable = usage.device_size - usage.reserved_bytes;
    usage.free_bytes = usable - std::min(usable, sb_.bytes_used);
  }
  return usage;
}

Result<const SpaceAllocator*> Engine::space_map() {
  ECFS_TRY(load_space_map());
  return &allocator_;
}

// ---------------------------------------------------------------- NodeStore

Result<NodeRef> Engine::read_node(uint64_t bytenr, uint64_t generation, uint8_t level) {
  auto mismatch = [&](const Node& node) {
    return fail(EIO, device_->describe() + ": " + block_name(bytenr) + " has generation " +
                         std::to_string(node.generation) + " level " + std::to_string(node.level) +
                         ", expected generation " + std::to_string(generation) + " level " +
                         std::to_string(level));
  };
  if (auto it = dirty_.find(bytenr); it != dirty_.end()) {
    if (it->second->generation != generation || it->second->level != level) {
      return mismatch(*it->second);
    }
    return it->second;
  }
  if (NodeRef cached = cache_.get(bytenr)) {
    if (cached->generation == generation && cached->level == level) return cached;
    // A stale copy (the block was reused since): read what is on disk.
    cache_.erase(bytenr);
  }
  if (bytenr % sb_.node_size != 0 || bytenr + sb_.node_size > sb_.total_bytes) {
    return fail(EIO, device_->describe() + ": " + block_name(bytenr) + " is outside the device");
  }
  Bytes block(sb_.node_size);
  ECFS_TRY(device_->read(bytenr, block));
  NodeExpectation expect;
  expect.fsid = sb_.fsid;
  expect.node_size = sb_.node_size;
  expect.checksum_type = sb_.checksum_type;
  expect.bytenr = bytenr;
  expect.generation = generation;
  expect.level = level;
  auto node = decode_node(block, expect);
  if (!node) return std::unexpected(node.error());
  auto ref = std::make_shared<Node>(std::move(*node));
  cache_.put(ref);
  return ref;
}

bool Engine::is_writable(const Node& node) const {
  if (!in_transaction_) return false;
  auto it = dirty_.find(node.bytenr);
  if (it == dirty_.end() || it->second.get() != &node) return false;
  // A dirty node that was shared in this transaction (by a clone, or as the
  // child of a shared node that was copied) stays read-only even after its
  // count drops back to one: the tree left holding it may not be the one
  // that wrote it, and cow_node moves the data back references of a leaf to
  // its new owner.
  return !shared_this_transaction_.contains(node.bytenr);
}

Result<uint64_t> Engine::tree_block_refs(uint64_t bytenr, uint8_t level) {
  const DelayedRefHead* head = delayed_.find(bytenr);
  if (head != nullptr && head->created) {
    // Allocated in this transaction: no extent item yet.
    if (head->delta < 0) return fail(EUCLEAN, block_name(bytenr) + " has a negative count");
    return static_cast<uint64_t>(head->delta);
  }
  auto item = find_tree_block_item(extent_tree(), bytenr, level);
  if (!item) return std::unexpected(item.error());
  if (!*item) return fail(EUCLEAN, block_name(bytenr) + " has no extent item");
  const int64_t refs = static_cast<int64_t>((*item)->refs) + (head ? head->delta : 0);
  if (refs < 0) return fail(EUCLEAN, block_name(bytenr) + " has a negative count");
  return static_cast<uint64_t>(refs);
}

Status Engine::queue_leaf_data_refs(const Node& leaf, uint64_t root, int64_t delta) {
  for (const LeafItem& item : leaf.items) {
    if (item.key.type != kExtentDataKey) continue;
    auto extent = decode_file_extent_ref(item.data);
    if (!extent) return std::unexpected(extent.error());
    if (extent->disk_bytenr == 0) continue;  // a hole
    delayed_.add_data_ref(
        extent->disk_bytenr, extent->disk_length,
        DataRef{root, item.key.objectid, item.key.offset, extent->extent_offset, extent->length},
        delta);
  }
  return ok();
}

bool Engine::exclusive_to(const Node& node, uint64_t tree_id) const {
  // btrfs_block_can_be_shared: a node that tree `tree_id` wrote after the
  // last clone of it (or from it) cannot be shared, so its count is 1
  // without looking it up.
  if (node.owner != tree_id) return false;
  auto it = trees_.find(tree_id);
  return it != trees_.end() && node.generation > it->second.item.last_snapshot;
}

Result<NodeRef> Engine::cow_node(const NodeRef& node_ref, uint64_t owner) {
  ECFS_TRY(check_in_transaction());
  // A copy of the pointer: `node_ref` may name the dirty_ entry erased below.
  const NodeRef node = node_ref;
  if (is_writable(*node)) return node;
  uint64_t refs = 1;
  if (!is_unshared_tree(node->owner) && !exclusive_to(*node, owner)) {
    auto counted = tree_block_refs(node->bytenr, node->level);
    if (!counted) return std::unexpected(counted.error());
    refs = *counted;
    if (refs == 0) return fail(EUCLEAN, block_name(node->bytenr) + " is not referenced");
  }
  ECFS_TRY(load_space_map());
  auto bytenr = allocator_.allocate(sb_.node_size, sb_.node_size);
  if (!bytenr) return std::unexpected(bytenr.error());
  auto copy = std::make_shared<Node>(*node);
  copy->bytenr = *bytenr;
  copy->generation = transaction_generation_;
  copy->owner = owner;
  delayed_.add_tree_ref(*bytenr, copy->level, owner, sb_.node_size, 1, true);
  if (refs > 1) {
    // Rodeh: the old node stays with its other referrers, and everything it
    // points at gains the copy as a second referrer.
    if (copy->is_leaf()) {
      ECFS_TRY(queue_leaf_data_refs(*copy, owner, 1));
    } else {
      for (const KeyPtr& child : copy->children) {
        delayed_.add_tree_ref(child.bytenr, copy->level - 1, 0, sb_.node_size, 1, false);
        shared_this_transaction_.insert(child.bytenr);
      }
    }
  } else {
    // The only referrer moves to the copy; the old block is freed at commit.
    if (node->owner != owner) {
      if (copy->is_leaf()) {
        // Back references name the tree that owns the leaf.
        ECFS_TRY(queue_leaf_data_refs(*node, node->owner, -1));
        ECFS_TRY(queue_leaf_data_refs(*copy, owner, 1));
      } else {
        // Dirty children written by the old owner now belong to `owner`'s
        // tree: it must copy them before changing them, as above.
        for (const KeyPtr& child : copy->children) {
          if (dirty_.contains(child.bytenr)) shared_this_transaction_.insert(child.bytenr);
        }
      }
    }
    dirty_.erase(node->bytenr);
  }
  delayed_.add_tree_ref(node->bytenr, node->level, node->owner, sb_.node_size, -1, false);
  dirty_[*bytenr] = copy;
  return copy;
}

Result<NodeRef> Engine::allocate_node(uint8_t level, uint64_t owner) {
  ECFS_TRY(check_in_transaction());
  if (level > kMaxTreeLevel) return fail(EINVAL, "node level " + std::to_string(level));
  ECFS_TRY(load_space_map());
  auto bytenr = allocator_.allocate(sb_.node_size, sb_.node_size);
  if (!bytenr) return std::unexpected(bytenr.error());
  auto node = std::make_shared<Node>();
  node->bytenr = *bytenr;
  node->generation = transaction_generation_;
  node->owner = owner;
  node->level = level;
  delayed_.add_tree_ref(*bytenr, level, owner, sb_.node_size, 1, true);
  dirty_[*bytenr] = node;
  return node;
}

Status Engine::free_node(const NodeRef& node) {
  ECFS_TRY(check_in_transaction());
  if (!is_writable(*node)) {
    return fail(EINVAL, "freeing " + block_name(node->bytenr) + " which is not writable");
  }
  delayed_.add_tree_ref(node->bytenr, node->level, node->owner, sb_.node_size, -1, false);
  dirty_.erase(node->bytenr);
  return ok();
}

// ---------------------------------------------------------------- transactions

Status Engine::check_in_transaction() const {
  if (!in_transaction_) return fail(EINVAL, "no transaction is running");
  return ok();
}

Status Engine::begin() {
  if (options_.read_only) return fail(EROFS, device_->describe() + " is open read-only");
  if (failed_) {
    return fail(EIO, device_->describe() + ": a commit failed part way; reopen the device");
  }
  if (in_transaction_) return fail(EBUSY, "a transaction is already running");
  in_transaction_ = true;
  transaction_generation_ = sb_.generation + 1;
  saved_allocator_ = allocator_;
  saved_space_map_loaded_ = space_map_loaded_;
  root_tree_.emplace(*this, kRootTreeId,
                     RootRef{sb_.root_tree_bytenr, sb_.root_tree_generation, sb_.root_tree_level});
  OpenTree extent;
  extent.tree = std::make_unique<BTree>(*this, kExtentTreeId, committed_extent_item_.root);
  extent.item = committed_extent_item_;
  extent.stored = committed_extent_item_;
  trees_.emplace(kExtentTreeId, std::move(extent));
  if (committed_free_space_item_) {
    OpenTree free_space;
    free_space.tree =
        std::make_unique<BTree>(*this, kFreeSpaceTreeId, committed_free_space_item_->root);
    free_space.item = *committed_free_space_item_;
    free_space.stored = *committed_free_space_item_;
    trees_.emplace(kFreeSpaceTreeId, std::move(free_space));
  }
  return ok();
}

void Engine::abort() {
  if (!in_transaction_) return;
  trees_.clear();
  root_tree_.reset();
  dirty_.clear();
  delayed_.clear();
  new_data_extents_.clear();
  shared_this_transaction_.clear();
  allocator_ = std::move(*saved_allocator_);
  space_map_loaded_ = saved_space_map_loaded_;
  saved_allocator_.reset();
  pending_incompat_flags_ = 0;
  pending_compat_ro_flags_ = 0;
  pending_compat_flags_ = 0;
  in_transaction_ = false;
  transaction_generation_ = sb_.generation + 1;
}

Status Engine::enable_incompat_features(uint64_t flags) {
  ECFS_TRY(check_in_transaction());
  if ((flags & ~kIncompatKnown) != 0) {
    return fail(EINVAL, "unknown incompat feature flags " + std::to_string(flags));
  }
  pending_incompat_flags_ |= flags & ~sb_.incompat_flags;
  return ok();
}

Status Engine::enable_compat_features(uint64_t flags) {
  ECFS_TRY(check_in_transaction());
  if ((flags & ~kCompatKnown) != 0) {
    return fail(EINVAL, "unknown compat feature flags " + std::to_string(flags));
  }
  pending_compat_flags_ |= flags & ~sb_.compat_flags;
  return ok();
}

Status Engine::commit() {
  ECFS_TRY(check_in_transaction());
  Status status = commit_transaction();
  if (!status) abort();
  return status;
}

Status Engine::commit_transaction() {
  // Freeing and the free-space tree need the map. A transaction that
  // allocated has loaded it; one that changed nothing (a periodic or
  // closing commit of an idle mount) must not pay for loading it.
  const bool adds_free_space_tree = want_free_space_tree_ && !trees_.contains(kFreeSpaceTreeId);
  if (!dirty_.empty() || !delayed_.empty() || adds_free_space_tree) {
    ECFS_TRY(load_space_map());
  }
  // An image without a free-space tree gets one (docs/FORMAT.md).
  if (adds_free_space_tree) {
    ECFS_TRY(create_free_space_tree());
  }
  // 1. Root items, reference counts and free space, until all three stop
  //    changing: updating a root item cows root tree nodes (new
  //    references), applying references cows extent tree nodes (more
  //    references, a new extent tree root, hence a new root item), and
  //    every allocation or free changes the free-space tree (which cows its
  //    nodes). Each node is cowed once per transaction, so this converges
  //    in a few rounds.
  for (int round = 0;; ++round) {
    if (round > 64) return fail(EIO, "commit: reference updates did not converge");
    bool changed = false;
    for (auto& [id, open] : trees_) {
      RootItem want = open.item;
      want.root = open.tree->root();
      if (want == open.stored) continue;
      ECFS_TRY(root_tree_->update(root_item_key(id), encode_root_item(want)));
      open.item = want;
      open.stored = want;
      changed = true;
    }
    while (!delayed_.empty()) {
      auto [bytenr, head] = delayed_.pop_first();
      ECFS_TRY(
          apply_delayed_ref_head(extent_tree(), bytenr, head, transaction_generation_, allocator_));
      ECFS_TRY(delete_checksums_if_freed(bytenr, head));
      changed = true;
    }
    ECFS_TRY(update_free_space_tree(changed));
    if (!changed) break;
  }

  // 2. Every dirty node, then a barrier: the new trees are on disk before
  //    any superblock names them.
  //    In address order: next-fit allocation makes that mostly sequential.
  std::vector<const Node*> to_write;
  to_write.reserve(dirty_.size());
  for (const auto& [bytenr, node] : dirty_) to_write.push_back(node.get());
  std::sort(to_write.begin(), to_write.end(),
            [](const Node* a, const Node* b) { return a->bytenr < b->bytenr; });
  Bytes block(sb_.node_size);
  for (const Node* node : to_write) {
    const uint64_t bytenr = node->bytenr;
    std::fill(block.begin(), block.end(), 0);
    Status encoded = encode_node(*node, sb_.fsid, sb_.checksum_type, block);
    if (!encoded) return encoded;
    Status written = device_->write(bytenr, block);
    if (!written) {
      failed_ = true;
      return written;
    }
  }
  if (Status flushed = device_->flush(); !flushed) {
    failed_ = true;
    return flushed;
  }

  // 3. The superblocks, then a barrier: the commit point.
  Superblock next = sb_;
  next.generation = transaction_generation_;
  const RootRef root = root_tree_->root();
  next.root_tree_bytenr = root.bytenr;
  next.root_tree_generation = root.generation;
  next.root_tree_level = root.level;
  next.bytes_used = space_usage().allocated_bytes();
  next.incompat_flags |= pending_incompat_flags_;
  next.compat_ro_flags |= pending_compat_ro_flags_;
  next.compat_flags |= pending_compat_flags_;
  if (Status written = write_superblocks(next); !written) {
    failed_ = true;
    return written;
  }

  // 4. Only now may the blocks the old generation used be reused.
  sb_ = std::move(next);
  committed_extent_item_ = trees_.at(kExtentTreeId).stored;
  if (auto free_space = trees_.find(kFreeSpaceTreeId); free_space != trees_.end()) {
    committed_free_space_item_ = free_space->second.stored;
  }
  // The space this transaction freed: no committed tree points into it any
  // more (all superblock copies are durable), so the device may drop it.
  std::map<uint64_t, uint64_t> freed;
  if (options_.discard) freed = allocator_.pinned_ranges();
  allocator_.unpin_all();
  discard_freed(freed);
  for (auto& [bytenr, node] : dirty_) cache_.put(std::move(node));
  dirty_.clear();
  shared_this_transaction_.clear();
  trees_.clear();
  root_tree_.reset();
  saved_allocator_.reset();
  new_data_extents_.clear();
  pending_incompat_flags_ = 0;
  pending_compat_ro_flags_ = 0;
  pending_compat_flags_ = 0;
  in_transaction_ = false;
  transaction_generation_ = sb_.generation + 1;
  return ok();
}

namespace {
constexpr uint64_t kMinDiscardBytes = 64 * 1024;
}  // namespace

void Engine::discard_freed(const std::map<uint64_t, uint64_t>& freed) {
  for (const auto& [start, end] : freed) {
    // Small ranges (single nodes, mostly) are reused soon anyway: one call
    // per node would cost more than the space is worth.
    if (end - start < kMinDiscardBytes) continue;
    if (Status discarded = device_->discard(start, end - start); !discarded) {
      // The commit stands; only the host keeps the space. Said once.
      options_.discard = false;
      log::warning("giving freed space back to the device is turned off for this mount: " +
                   discarded.error().to_string());
      return;
    }
  }
}

Status Engine::write_superblocks(Superblock sb) {
  // The primary copy first and alone: once it is durable the new generation
  // is committed. Then the mirrors. With a barrier in between, a torn write
  // can damage at most one copy, and the other one still names a complete
  // generation (the previous or the new one).
  const std::vector<uint64_t> offsets = superblock_offsets_for(sb.total_bytes);
  for (size_t i = 0; i < offsets.size(); ++i) {
    sb.bytenr = offsets[i];
    auto encoded = encode_superblock(sb);
    if (!encoded) return std::unexpected(encoded.error());
    ECFS_TRY(device_->write(offsets[i], *encoded));
    if (i == 0 || i + 1 == offsets.size()) ECFS_TRY(device_->flush());
  }
  return ok();
}

// ---------------------------------------------------------------- trees

Result<BTree*> Engine::create_tree(uint64_t id) {
  ECFS_TRY(check_in_transaction());
  // The engine's own trees; the protector tree is unshared too but belongs
  // to a layer above, which creates it on first use.
  if (is_unshared_tree(id) && id != kProtectorTreeId) {
    return fail(EINVAL, "tree " + std::to_string(id) + " is reserved");
  }
  if (trees_.contains(id)) return fail(EEXIST, "tree " + std::to_string(id) + " exists");
  auto existing = root_tree_->find(root_item_key(id));
  if (!existing) return std::unexpected(existing.error());
  if (*existing) return fail(EEXIST, "tree " + std::to_string(id) + " exists");
  return add_empty_tree(id);
}

Result<BTree*> Engine::add_empty_tree(uint64_t id) {
  auto tree = BTree::create(*this, id);
  if (!tree) return std::unexpected(tree.error());
  OpenTree open;
  open.item.root = tree->root();
  open.stored = open.item;
  open.tree = std::make_unique<BTree>(std::move(*tree));
  ECFS_TRY(root_tree_->insert(root_item_key(id), encode_root_item(open.item)));
  BTree* result = open.tree.get();
  trees_.emplace(id, std::move(open));
  return result;
}

Result<BTree*> Engine::open_tree(uint64_t id) {
  ECFS_TRY(check_in_transaction());
  if (auto it = trees_.find(id); it != trees_.end()) return it->second.tree.get();
  if (id == kRootTreeId) return fail(EINVAL, "the root tree is the engine's own");
  auto data = root_tree_->find(root_item_key(id));
  if (!data) return std::unexpected(data.error());
  if (!*data) return fail(ENOENT, "no tree " + std::to_string(id));
  auto item = decode_root_item(**data);
  if (!item) return std::unexpected(item.error());
  OpenTree open;
  open.item = *item;
  open.stored = *item;
  open.tree = std::make_unique<BTree>(*this, id, item->root);
  BTree* result = open.tree.get();
  trees_.emplace(id, std::move(open));
  return result;
}

Status Engine::clone_tree(uint64_t source_id, uint64_t clone_id) {
  ECFS_TRY(check_in_transaction());
  if (is_device_tree(source_id) || is_device_tree(clone_id) || source_id == clone_id) {
    return fail(EINVAL, "cannot clone tree " + std::to_string(source_id) + " as " +
                            std::to_string(clone_id));
  }
  auto source = open_tree(source_id);
  if (!source) return std::unexpected(source.error());
  const RootRef root = (*source)->root();
  if (trees_.contains(clone_id))
    return fail(EEXIST, "tree " + std::to_string(clone_id) + " exists");
  auto existing = root_tree_->find(root_item_key(clone_id));
  if (!existing) return std::unexpected(existing.error());
  if (*existing) return fail(EEXIST, "tree " + std::to_string(clone_id) + " exists");

  // Rodeh: the clone is one more reference to the source's root node.
  delayed_.add_tree_ref(root.bytenr, root.level, 0, sb_.node_size, 1, false);
  shared_this_transaction_.insert(root.bytenr);
  trees_.at(source_id).item.last_snapshot = transaction_generation_;
  OpenTree open;
  open.item.root = root;
  open.item.last_snapshot = transaction_generation_;
  open.stored = open.item;
  open.tree = std::make_unique<BTree>(*this, clone_id, root);
  ECFS_TRY(root_tree_->insert(root_item_key(clone_id), encode_root_item(open.item)));
  trees_.emplace(clone_id, std::move(open));
  return ok();
}

Status Engine::drop_tree(uint64_t id) {
  ECFS_TRY(check_in_transaction());
  if (is_device_tree(id)) return fail(EINVAL, "tree " + std::to_string(id) + " is reserved");
  auto tree = open_tree(id);
  if (!tree) return std::unexpected(tree.error());
  const RootRef root = (*tree)->root();
  ECFS_TRY(root_tree_->remove(root_item_key(id)));
  trees_.erase(id);
  return drop_subtree(root.bytenr, root.generation, root.level);
}

Result<bool> Engine::drop_tree_step(uint64_t id, uint64_t subtrees) {
  ECFS_TRY(check_in_transaction());
  if (is_device_tree(id)) return fail(EINVAL, "tree " + std::to_string(id) + " is reserved");
  if (subtrees == 0) return fail(EINVAL, "dropping no subtree of tree " + std::to_string(id));
  auto opened = open_tree(id);
  if (!opened) return std::unexpected(opened.error());
  for (uint64_t dropped = 0; dropped < subtrees; ++dropped) {
    const RootRef root = trees_.at(id).tree->root();
    auto root_refs = tree_block_refs(root.bytenr, root.level);
    if (!root_refs) return std::unexpected(root_refs.error());
    if (*root_refs != 1 || root.level == 0) {
      // A shared root costs one reference; a lone leaf is one node.
      ECFS_TRY(drop_tree(id));
      return true;
    }
    // Down the left edge through nodes only this tree references, copying
    // each (they move to the copy: nothing is shared), to the lowest one
    // whose first child can go whole: a leaf, or a subtree that is shared.
    std::vector<NodeRef> path;
    auto node = read_node(root.bytenr, root.generation, root.level);
    if (!node) return std::unexpected(node.error());
    auto copy = cow_node(*node, id);
    if (!copy) return std::unexpected(copy.error());
    path.push_back(*copy);
    while (path.back()->level >= 2) {
      const KeyPtr first = path.back()->children.front();
      auto refs = tree_block_refs(first.bytenr, path.back()->level - 1);
      if (!refs) return std::unexpected(refs.error());
      if (*refs != 1) break;
      auto child = read_node(first.bytenr, first.generation, path.back()->level - 1);
      if (!child) return std::unexpected(child.error());
      auto child_copy = cow_node(*child, id);
      if (!child_copy) return std::unexpected(child_copy.error());
      KeyPtr& pointer = path.back()->children.front();
      pointer.bytenr = (*child_copy)->bytenr;
      pointer.generation = (*child_copy)->generation;
      path.push_back(*child_copy);
    }
    const KeyPtr victim = path.back()->children.front();
    ECFS_TRY(drop_subtree(victim.bytenr, victim.generation, path.back()->level - 1));
    path.back()->children.erase(path.back()->children.begin());
    // Upwards: a node left empty goes too; one that lost its first child
    // gives its parent a new first key (each parent key is its child's
    // first key).
    for (size_t i = path.size() - 1; i > 0; --i) {
      KeyPtr& pointer = path[i - 1]->children.front();
      if (path[i]->children.empty()) {
        ECFS_TRY(free_node(path[i]));
        path[i - 1]->children.erase(path[i - 1]->children.begin());
      } else {
        pointer.key = path[i]->children.front().key;
      }
    }
    if (path.front()->children.empty()) {
      ECFS_TRY(free_node(path.front()));
      ECFS_TRY(root_tree_->remove(root_item_key(id)));
      trees_.erase(id);
      return true;
    }
    trees_.at(id).tree = std::make_unique<BTree>(
        *this, id, RootRef{path.front()->bytenr, path.front()->generation, path.front()->level});
  }
  return false;
}

Status Engine::drop_subtree(uint64_t bytenr, uint64_t generation, uint8_t level) {
  auto refs = tree_block_refs(bytenr, level);
  if (!refs) return std::unexpected(refs.error());
  if (*refs == 0) return fail(EUCLEAN, block_name(bytenr) + " is not referenced");
  if (*refs == 1) {
    // The last reference: everything below loses this node as a referrer.
    auto node = read_node(bytenr, generation, level);
    if (!node) return std::unexpected(node.error());
    if ((*node)->is_leaf()) {
      ECFS_TRY(queue_leaf_data_refs(**node, (*node)->owner, -1));
    } else {
      for (const KeyPtr& child : (*node)->children) {
        ECFS_TRY(drop_subtree(child.bytenr, child.generation, level - 1));
      }
    }
    dirty_.erase(bytenr);
  }
  delayed_.add_tree_ref(bytenr, level, 0, sb_.node_size, -1, false);
  return ok();
}

Result<std::vector<uint64_t>> Engine::list_trees() {
  BTree committed_root(
      *this, kRootTreeId,
      RootRef{sb_.root_tree_bytenr, sb_.root_tree_generation, sb_.root_tree_level});
  const BTree& root_tree = in_transaction_ ? *root_tree_ : committed_root;
  std::vector<uint64_t> ids;
  ECFS_TRY(root_tree.for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan) {
    if (key.type == kRootItemKey) ids.push_back(key.objectid);
    return true;
  }));
  return ids;
}

namespace {

Status check_catalog_key(const Key& key) {
  switch (key.type) {
    case kRootRefKey:
    case kRootBackrefKey:
    case kSubvolInfoKey:
      return ok();
    case kDeadRootKey:
      if (key.objectid == kDeadRootObjectid) return ok();
      break;
    default:
      break;
  }
  return fail(EINVAL, "item type " + std::to_string(key.type) + " is not a catalog item");
}

}  // namespace

Status Engine::put_catalog_item(const Key& key, ByteSpan data) {
  ECFS_TRY(check_in_transaction());
  ECFS_TRY(check_catalog_key(key));
  return root_tree_->put(key, data);
}

Status Engine::remove_catalog_item(const Key& key) {
  ECFS_TRY(check_in_transaction());
  ECFS_TRY(check_catalog_key(key));
  return root_tree_->remove(key);
}

Result<std::optional<Bytes>> Engine::find_catalog_item(const Key& key) {
  ECFS_TRY(check_catalog_key(key));
  if (in_transaction_) return root_tree_->find(key);
  BTree committed_root(
      *this, kRootTreeId,
      RootRef{sb_.root_tree_bytenr, sb_.root_tree_generation, sb_.root_tree_level});
  return committed_root.find(key);
}

Status Engine::for_each_catalog_item(const Key& first, const Key& last,
                                     const std::function<bool(const Key&, ByteSpan)>& visit) {
  BTree committed_root(
      *this, kRootTreeId,
      RootRef{sb_.root_tree_bytenr, sb_.root_tree_generation, sb_.root_tree_level});
  const BTree& root_tree = in_transaction_ ? *root_tree_ : committed_root;
  return root_tree.for_each(first, last, [&](const Key& key, ByteSpan data) {
    if (!check_catalog_key(key)) return true;  // the engine's own ROOT_ITEMs
    return visit(key, data);
  });
}

Result<BTree> Engine::committed_tree(uint64_t id) {
  BTree root_tree(*this, kRootTreeId,
                  RootRef{sb_.root_tree_bytenr, sb_.root_tree_generation, sb_.root_tree_level});
  auto data = root_tree.find(root_item_key(id));
  if (!data) return std::unexpected(data.error());
  if (!*data) return fail(ENOENT, "no tree " + std::to_string(id));
  auto item = decode_root_item(**data);
  if (!item) return std::unexpected(item.error());
  return BTree(*this, id, item->root);
}

Result<std::optional<ImageOrigin>> Engine::image_origin() {
  BTree root_tree(*this, kRootTreeId,
                  RootRef{sb_.root_tree_bytenr, sb_.root_tree_generation, sb_.root_tree_level});
  auto data = root_tree.find(kImageOriginKey);
  if (!data) return std::unexpected(data.error());
  if (!*data) return std::optional<ImageOrigin>();
  auto origin = decode_image_origin(**data);
  if (!origin) return std::unexpected(origin.error());
  return std::optional<ImageOrigin>(std::move(*origin));
}

// ---------------------------------------------------------------- data extents

Result<uint64_t> Engine::allocate_data(uint64_t length) {
  ECFS_TRY(check_in_transaction());
  if (length == 0 || length % kSectorSize != 0) {
    return fail(EINVAL, "data extent of " + std::to_string(length) + " bytes");
  }
  ECFS_TRY(load_space_map());
  auto bytenr = allocator_.allocate(length, kSectorSize);
  if (!bytenr) return std::unexpected(bytenr.error());
  delayed_.add_data_extent(*bytenr, length);
  new_data_extents_[*bytenr] = length;
  return *bytenr;
}

Status Engine::check_data_ref_args(uint64_t bytenr, uint64_t length, const DataRef& ref) {
  ECFS_TRY(check_in_transaction());
  if (ref.length == 0 || ref.extent_offset >= length || ref.length > length - ref.extent_offset) {
    return fail(EINVAL, "reference to [" + std::to_string(ref.extent_offset) + ", +" +
                            std::to_string(ref.length) + ") of a " + std::to_string(length) +
                            "-byte extent");
  }
  if (const DelayedRefHead* head = delayed_.find(bytenr); head && head->created) {
    if (head->is_tree_block || head->length != length) {
      return fail(EINVAL, "extent " + std::to_string(bytenr) + " is not a data extent of " +
                              std::to_string(length) + " bytes");
    }
    return ok();
  }
  auto found = find_data_extent_item(extent_tree(), bytenr);
  if (!found) return std::unexpected(found.error());
  if (!*found || (*found)->second != length) {
    return fail(ENOENT, "no data extent of " + std::to_string(length) + " bytes at " +
                            std::to_string(bytenr));
  }
  return ok();
}

Status Engine::add_data_ref(uint64_t bytenr, uint64_t length, const DataRef& ref) {
  ECFS_TRY(check_data_ref_args(bytenr, length, ref));
  delayed_.add_data_ref(bytenr, length, ref, 1);
  return ok();
}

Status Engine::drop_data_ref(uint64_t bytenr, uint64_t length, const DataRef& ref) {
  ECFS_TRY(check_data_ref_args(bytenr, length, ref));
  delayed_.add_data_ref(bytenr, length, ref, -1);
  return ok();
}

}  // namespace ecfs::store
