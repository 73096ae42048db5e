// Engine: the transaction layer that ties the block device, the node codec,
// the CoW B+trees, the extent tree and the space allocator into a storage
// engine (DESIGN.md "Storage engine shape").
//
// On disk: the superblock copies point at the root tree; the root tree holds
// a ROOT_ITEM per tree (the extent tree, the filesystem trees, clones); the
// extent tree holds the reference count of every allocated extent
// (docs/FORMAT.md "Trees and items").
//
// Transactions: begin() starts one; trees are created, opened (as BTree
// objects owned by the transaction), cloned and dropped; commit() makes every
// change durable at once, abort() forgets them. A commit applies the queued
// reference changes to the extent tree, writes every dirty node, flushes,
// writes all superblock copies with the next generation, flushes, and only
// then lets the space freed in the transaction be reused. A crash at any
// point therefore leaves either the previous or the new generation.
//
// Clones follow Rodeh ("B-trees, Shadowing, and Clones", ACM TOS 2008): a
// clone shares the source's root node (one more reference); a shared node is
// copied when either tree changes it and its children gain a reference;
// dropping a tree walks down only into nodes whose count drops to zero.
//
// Data extents are reference counted too: the filesystem layer allocates
// them, and adds or drops one reference per EXTENT_DATA item it inserts or
// removes (items.h FileExtentRef); the engine keeps the counts right when
// leaves holding such items are shared or dropped.
//
// Not thread-safe: one caller at a time. BTree pointers returned by
// create_tree / open_tree are valid until the transaction ends.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/error.h"
#include "block/block_device.h"
#include "block/inline_crypt.h"
#include "store/btree.h"
#include "store/data_read.h"
#include "store/data_write.h"
#include "store/extent_refs.h"
#include "store/image_origin.h"
#include "store/items.h"
#include "store/node_cache.h"
#include "store/node_store.h"
#include "store/space_allocator.h"
#include "store/superblock.h"
#include "store/tree_ids.h"

namespace ecfs::store {

class Engine;

struct MkfsOptions {
  uint32_t node_size = kDefaultNodeSize;
  ChecksumType checksum_type = ChecksumType::kCrc32c;
  std::string label;
  std::optional<std::array<uint8_t, kFsidSize>> fsid;  // random when absent
  // Called inside generation 1's transaction, before its commit, to add the
  // first items of the filesystem layer (its root directory), so that a new
  // image is complete at generation 1. Its error fails mkfs.
  std::function<Status(Engine&)> populate;
  // Keep a free-space tree (compat_ro kCompatRoFreeSpaceTree) so mounts
  // need not read the extent tree. Off only to make images as older builds
  // did (the first read-write mount adds the tree then).
  bool free_space_tree = true;
  // Recorded in the root tree (compat kCompatImageOrigin) for `ecfs
  // inspect`; none only to make images as older builds did.
  std::optional<ImageOrigin> origin;
};

// The space of the device, by state (SpaceAllocator's counts), known without
// loading the free-space map.
struct SpaceUsage {
  uint64_t device_size = 0;
  uint64_t reserved_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t pinned_bytes = 0;  // freed by the running transaction
  uint64_t allocated_bytes() const {
    return device_size - reserved_bytes - free_bytes - pinned_bytes;
  }
};

struct OpenOptions {
  bool read_only = false;
  size_t node_cache_capacity = 4096;  // clean nodes kept decoded
  // On an image without a free-space tree, the first commit adds one (and
  // the compat_ro bit). Off only to write images as older builds did.
  bool add_free_space_tree = true;
  // After each commit, the space it freed is discarded on the device
  // (block::BlockDevice::discard: holes punched in an image file), so an
  // image gives space back to its host; ranges of at least 64 KiB. A device that cannot discard
  // turns it off for the mount, logging why.
  bool discard = false;
};

// Result of Engine::check (fsck).
struct CheckReport {
  uint64_t trees = 0;
  uint64_t tree_nodes = 0;
  uint64_t data_extents = 0;
  uint64_t allocated_bytes = 0;
  uint64_t data_sectors_checked = 0;  // data sectors read and compared with their checksums
  bool data_verified = false;         // false when CheckOptions::verify_data was off
  std::vector<std::string> problems;  // empty when consistent
  bool clean() const { return problems.empty(); }
};

// Where Engine::check is, for a progress display. Phases, in order: "trees"
// (units: trees walked), "extents" (extent items compared; total is what
// the walk found, so a damaged image may end off it), "space" (0 or 1),
// "data" (bytes of data extents whose checksum items were passed). A total
// of 0 means not known yet.
struct CheckProgress {
  const char* phase = "";
  uint64_t done = 0;
  uint64_t total = 0;
};

struct CheckOptions {
  // Read every data sector that has a checksum and compare. Off (fsck
  // --metadata-only) the checksum items are still checked against the data
  // extents, but no data sector is read.
  bool verify_data = true;
  // Called as the check advances, possibly often (a display throttles
  // itself); may be empty.
  std::function<void(const CheckProgress&)> progress;
};

// The areas no extent may use: the first MiB (boot loaders, as btrfs) and
// each superblock copy that fits on a device of `device_size` bytes.
std::vector<ByteRange> reserved_ranges_for(uint64_t device_size);

// A random filesystem UUID (version 4, RFC 9562 section 5.4).
Result<std::array<uint8_t, kFsidSize>> random_fsid();

// Creates an empty ecfs image: root tree, extent tree, and empty FS_TREE (5)
// and CSUM_TREE (7), committed as generation 1. EINVAL for a bad node size
// or checksum type, a label over 255 bytes, or a device too small.
Status mkfs(block::BlockDevice& device, const MkfsOptions& options);

class Engine final : public NodeStore {
 public:
  // Opens the image: the newest valid superblock copy and the root items of
  // the device trees; nothing whose size grows with the image. The
  // free-space map is loaded when first needed (the first allocation or
  // commit, check(), space_map()): from the free-space tree, or, on an
  // image without one, from the extent tree (the first commit then adds the
  // tree). Errors from read_newest_superblock (EIO,
  // EINVAL, EOPNOTSUPP for unknown incompat features); EROFS for unknown
  // compat_ro features unless read_only; EUCLEAN for an inconsistent image.
  static Result<std::unique_ptr<Engine>> open(block::BlockDevice& device,
                                              const OpenOptions& options = {});
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The last committed superblock.
  const Superblock& superblock() const { return sb_; }
  uint64_t committed_generation() const { return sb_.generation; }
  bool read_only() const { return options_.read_only; }
  bool in_transaction() const { return in_transaction_; }
  // The space by state, without loading the free-space map.
  SpaceUsage space_usage() const;
  // The free-space map, loaded if it was not (errors as the tree reads;
  // EUCLEAN for a free-space tree that contradicts itself).
  Result<const SpaceAllocator*> space_map();

  // EROFS when read-only; EBUSY when a transaction is running; EIO after a
  // failed commit left the device in an unknown state (reopen it).
  Status begin();
  // EINVAL without a transaction. On failure the transaction is aborted.
  Status commit();
  // Drops every change of the running transaction (no-op without one).
  void abort();
  // Sets incompat feature `flags` (superblock.h kIncompat*) in the
  // superblock this transaction commits; an abort drops them. For a layer
  // above that starts writing what older readers would misread. EINVAL
  // without a transaction or for flags this build does not know.
  Status enable_incompat_features(uint64_t flags);
  // The same for compat (informational) feature `flags` (kCompat*).
  Status enable_compat_features(uint64_t flags);

  // The following REQUIRE a running transaction (EINVAL otherwise).
  // A new empty tree. EEXIST if `id` exists; EINVAL for the engine's own
  // trees (root, extent, free-space).
  Result<BTree*> create_tree(uint64_t id);
  // An existing tree, changeable in this transaction. ENOENT if absent.
  Result<BTree*> open_tree(uint64_t id);
  // `clone_id` becomes a copy of `source_id` in O(1). ENOENT / EEXIST;
  // EINVAL for the root and extent trees or equal ids.
  Status clone_tree(uint64_t source_id, uint64_t clone_id);
  // Deletes tree `id`, freeing the nodes and data references only it held.
  Status drop_tree(uint64_t id);
  // Deletes part of tree `id`: up to `subtrees` whole subtrees taken from
  // its left edge, each a leaf or a subtree other trees share (which costs
  // one reference), so that the work of one call stays bounded however
  // large the tree. What is left is a valid tree under the same id,
  // committed as any other, so a deletion spread over many transactions
  // resumes after a crash where the last commit left it. True when the tree
  // is gone (its root item removed). EINVAL for a reserved tree or a zero
  // budget; ENOENT if absent.
  Result<bool> drop_tree_step(uint64_t id, uint64_t subtrees);
  // A new data extent of `length` bytes (a multiple of the sector size,
  // EINVAL otherwise; ENOSPC). It is freed at commit unless referenced.
  Result<uint64_t> allocate_data(uint64_t length);
  // Adds / drops one reference to data extent `bytenr` (of `length` bytes):
  // ref.root is the tree holding the EXTENT_DATA item (objectid, offset) that
  // covers [extent_offset, extent_offset + length) of the extent. EINVAL for
  // a range outside the extent; ENOENT for an unknown extent. Dropping a
  // reference that does not exist fails the commit (EUCLEAN).
  Status add_data_ref(uint64_t bytenr, uint64_t length, const DataRef& ref);
  Status drop_data_ref(uint64_t bytenr, uint64_t length, const DataRef& ref);
  // Writes `data` (whole sectors) at `bytenr` through the inline-crypt layer
  // (block/inline_crypt.h): with `crypt`, `data` is plaintext and is
  // encrypted into a bounce buffer (never modified); without, it is written
  // as it is. `bytenr` must lie inside a data extent allocated in this
  // transaction (EINVAL otherwise: overwriting committed data in place would
  // break copy-on-write). Each sector's checksum is computed over the bytes
  // on disk (ciphertext: checksums never see plaintext, and fsck, scrub and
  // relocation need no key) and recorded in the csum tree
  // (data_checksums.h). The data reaches the device at once; commit()
  // flushes it together with the trees before the superblock, so data and
  // checksums become durable together. When the extent is freed (its count
  // drops to zero) the commit deletes its checksums. EINVAL also as
  // block::submit_write (not whole data units, bad context); crypter and
  // device errors as they come (abort the transaction).
  Status write_data(uint64_t bytenr, ByteSpan data, const block::CryptContext* crypt = nullptr);
  // write_data in three steps (data_write.h): the range checked now, the
  // write and its checksums later without the engine, the checksums
  // recorded by finish_data_write (EINVAL for a DataWrite not written).
  Result<DataWrite> prepare_data_write(uint64_t bytenr, uint64_t length);
  Status finish_data_write(const DataWrite& write);
  // Inside or outside a transaction (then: committed state). Reads whole
  // sectors into `out` and verifies each against its checksum before
  // anything is decrypted (with `crypt`; without, `out` gets the bytes on
  // disk): EIO naming the sector's byte offset for "data checksum mismatch"
  // or "no checksum" (the filesystem reads only what it wrote, so a missing
  // checksum is damage). On any failure `out` is zeroed: never unverified or
  // partly decrypted bytes. EINVAL for an unaligned range or as
  // block::submit_read. Looks up the checksums in one csum-tree range walk;
  // allocates nothing for the data.
  Status read_data_into(uint64_t bytenr, MutableByteSpan out,
                        const block::CryptContext* crypt = nullptr);
  // read_data_into in two steps (data_read.h): the range checked and its
  // checksums looked up now, the device read, verification and decryption
  // later, without the engine. EINVAL for an unaligned range; csum-tree
  // errors as they come.
  Result<DataRead> prepare_data_read(uint64_t bytenr, uint64_t length);
  // read_data_into a new buffer of `length` bytes.
  Result<Bytes> read_data(uint64_t bytenr, uint64_t length,
                          const block::CryptContext* crypt = nullptr);

  // Relocation hooks (relocation.h); REQUIRE a running transaction.
  // The device, for copying extents byte for byte (no key needed).
  block::BlockDevice& device() { return *device_; }
  // The queued reference changes of extent `bytenr`, or null.
  const DelayedRefHead* pending_refs(uint64_t bytenr) const { return delayed_.find(bytenr); }
  // Makes node `bytenr`, if it is dirty in this transaction, read-only, so
  // that the next change cows it to a new address (a clean node always is).
  void force_cow(uint64_t bytenr) {
    if (dirty_.contains(bytenr)) shared_this_transaction_.insert(bytenr);
  }
  // The root tree of the running transaction (null without one): relocation
  // moves its nodes by copying-on-write a path in it (an update with the same
  // bytes). Its items are the engine's: change nothing else through it.
  BTree* root_tree_for_relocation() { return root_tree_ ? &*root_tree_ : nullptr; }

  // The subvolume catalog (subvolume_items.h) lives in the root tree beside
  // the ROOT_ITEMs; a layer above keeps it through these. Only catalog item
  // types (ROOT_REF, ROOT_BACKREF, SUBVOL_INFO, dead roots): EINVAL for any
  // other key. put/remove REQUIRE a running transaction; remove: ENOENT.
  Status put_catalog_item(const Key& key, ByteSpan data);
  Status remove_catalog_item(const Key& key);
  // Inside a transaction its state, else the committed one.
  Result<std::optional<Bytes>> find_catalog_item(const Key& key);
  Status for_each_catalog_item(const Key& first, const Key& last,
                               const std::function<bool(const Key&, ByteSpan)>& visit);

  // Works inside and outside a transaction.
  // The ids of every tree (current state in a transaction, else committed).
  Result<std::vector<uint64_t>> list_trees();
  // Tree `id` as last committed, for reading. ENOENT if absent.
  Result<BTree> committed_tree(uint64_t id);
  // Which program made the image (MkfsOptions::origin); nullopt for an
  // image made without it. EUCLEAN for a malformed item.
  Result<std::optional<ImageOrigin>> image_origin();

  // fsck of the committed state: tree invariants, every extent's reference
  // count against the references found by walking all trees, data back
  // references, free space against allocated extents, and data checksums
  // (items inside data extents, every covered sector read and compared
  // unless options.verify_data is off). Reports progress through
  // options.progress. EBUSY in a transaction; read errors as they come.
  Result<CheckReport> check(const CheckOptions& options = {});

  // NodeStore.
  uint32_t node_size() const override { return sb_.node_size; }
  uint64_t generation() const override { return transaction_generation_; }
  Result<NodeRef> read_node(uint64_t bytenr, uint64_t generation, uint8_t level) override;
  // Allocated or cowed in the running transaction and never shared in it (a
  // clone taken in the same transaction makes a dirty node read-only).
  bool is_writable(const Node& node) const override;
  Result<NodeRef> cow_node(const NodeRef& node, uint64_t owner) override;
  Result<NodeRef> allocate_node(uint8_t level, uint64_t owner) override;
  Status free_node(const NodeRef& node) override;

 private:
  friend Status mkfs(block::BlockDevice& device, const MkfsOptions& options);

  // A tree touched in the running transaction.
  struct OpenTree {
    std::unique_ptr<BTree> tree;
    RootItem item;    // what the root item should say (root filled at commit)
    RootItem stored;  // what the root tree holds now
  };

  Engine(block::BlockDevice& device, Superblock sb, OpenOptions options);

  Status check_in_transaction() const;
  BTree& extent_tree() { return *trees_.at(kExtentTreeId).tree; }
  // True when `node` can only be referenced by tree `tree_id`.
  bool exclusive_to(const Node& node, uint64_t tree_id) const;
  // The reference count of a tree node: its extent item plus queued changes.
  Result<uint64_t> tree_block_refs(uint64_t bytenr, uint8_t level);
  // Queues `delta` for every data extent named by an EXTENT_DATA item of
  // `leaf`, attributed to tree `root`.
  Status queue_leaf_data_refs(const Node& leaf, uint64_t root, int64_t delta);
  Status drop_subtree(uint64_t bytenr, uint64_t generation, uint8_t level);
  Status check_data_ref_args(uint64_t bytenr, uint64_t length, const DataRef& ref);
  // Commit: after `head` was applied, deletes the checksums of data extent
  // `bytenr` if it was freed (data_checksums.cc).
  Status delete_checksums_if_freed(uint64_t bytenr, const DelayedRefHead& head);
  // fsck of the csum tree: items well formed, inside data extents, and every
  // covered sector matching its checksum (data_checksums.cc).
  Status check_data_checksums(const RootRef& extent_root, const RootRef& csum_root,
                              const CheckOptions& options, CheckReport& report);
  Status commit_transaction();
  Status write_superblocks(Superblock sb);
  // A new empty tree `id` in the running transaction and its ROOT_ITEM,
  // without create_tree's checks (mkfs and the engine's own trees).
  Result<BTree*> add_empty_tree(uint64_t id);
  Status load_root_items();  // at open: the extent and free-space trees' roots
  Status load_space_map();   // the free-space map, once
  // The free-space tree (free_space_tree.cc): created by the commit of
  // mkfs, or by the first commit on an image without one; its items
  // rewritten over every range the allocator saw change (sets `changed`
  // when it did anything); loaded at open; checked by fsck against `free`,
  // the free space the extent tree leaves.
  Status create_free_space_tree();
  Status update_free_space_tree(bool& changed);
  // Discards the ranges (start -> end) a commit freed, if the device can.
  void discard_freed(const std::map<uint64_t, uint64_t>& freed);
  Status load_free_space_tree();
  void check_free_space_tree(const std::optional<RootRef>& root,
                             const std::map<uint64_t, uint64_t>& free,
                             std::vector<std::string>& problems);

  block::BlockDevice* device_;
  Superblock sb_;
  OpenOptions options_;
  SpaceAllocator allocator_;  // valid once space_map_loaded_
  bool space_map_loaded_ = false;
  NodeCache cache_;
  RootItem committed_extent_item_;
  std::optional<RootItem> committed_free_space_item_;  // when the image has the tree
  // MkfsOptions::free_space_tree, OpenOptions::add_free_space_tree.
  bool want_free_space_tree_ = true;
  bool failed_ = false;

  // The running transaction.
  bool in_transaction_ = false;
  uint64_t pending_incompat_flags_ = 0;   // enable_incompat_features, until commit or abort
  uint64_t pending_compat_ro_flags_ = 0;  // create_free_space_tree, until commit or abort
  uint64_t pending_compat_flags_ = 0;     // enable_compat_features, until commit or abort
  uint64_t transaction_generation_ = 0;
  std::optional<SpaceAllocator> saved_allocator_;  // restored by abort()
  bool saved_space_map_loaded_ = false;
  std::optional<BTree> root_tree_;
  std::map<uint64_t, OpenTree> trees_;
  std::unordered_map<uint64_t, NodeRef> dirty_;
  // Dirty nodes that gained a second reference in this transaction.
  std::unordered_set<uint64_t> shared_this_transaction_;
  DelayedRefs delayed_;
  // Data extents allocated in this transaction (start -> length): the only
  // places write_data may write.
  std::map<uint64_t, uint64_t> new_data_extents_;
};

}  // namespace ecfs::store
