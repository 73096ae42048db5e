// SubvolumeCatalog: the keyless jobs on subvolumes, over an engine's running
// transaction. A subvolume is a tree of its own (id 256 and up; FS_TREE 5 is
// the top level, which every image has) named by a directory entry of
// another subvolume; a snapshot is a Rodeh clone of one (Engine::clone_tree,
// O(1) in the size of the tree); a deleted subvolume loses its name at once
// and its tree is dropped later, in a transaction of its own, so that a
// crash in between resumes the drop at the next mount (docs/FORMAT.md,
// "Subvolumes").
//
// The catalog keeps the engine side: trees, ROOT_REF / ROOT_BACKREF items,
// SUBVOL_INFO and dead roots. The directory entry that shows a subvolume in
// its parent belongs to the filesystem layer, which writes it in the same
// transaction. Nothing here reads file contents or needs a key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "store/engine.h"
#include "store/subvolume_items.h"

namespace ecfs::store {

// Where a subvolume appears: entry `name` (as stored) with DIR_INDEX
// `index` in directory `dirid` of tree `parent`.
struct SubvolumeLink {
  uint64_t parent = 0;
  uint64_t dirid = 0;
  uint64_t index = 0;
  Bytes name;
  friend bool operator==(const SubvolumeLink&, const SubvolumeLink&) = default;
};

struct SubvolumeEntry {
  uint64_t id = 0;
  // FS_TREE 5 stores none; it is shown with zero uuids and flags.
  SubvolumeInfo info;
  // Absent for the top level and for deleted subvolumes.
  std::optional<SubvolumeLink> link;
  bool deleted = false;  // named by a dead root: being dropped
};

class SubvolumeCatalog {
 public:
  explicit SubvolumeCatalog(Engine& engine) : engine_(engine) {}

  // ---- changes; REQUIRE a running transaction ----
  // A new empty tree, named by `link`; sets the incompat bit `subvolumes`.
  // The caller fills the tree (its root directory) and writes the entry.
  // ENOENT when link.parent is no live subvolume; EINVAL for an empty name.
  Result<uint64_t> create(const SubvolumeLink& link);
  // A snapshot of tree `source` as it stands in the running transaction (the
  // caller flushes what it buffers first), named by `link`; read-only with
  // `read_only`. ENOENT for an unknown or deleted source.
  Result<uint64_t> snapshot(uint64_t source, const SubvolumeLink& link, bool read_only);
  // Removes the name of subvolume `id` and makes it a dead root. EPERM for
  // the top level; ENOENT for an unknown or already deleted one; ENOTEMPTY
  // while it names other subvolumes (delete those first, as btrfs).
  Status unlink(uint64_t id);
  // Moves the name of live subvolume `id` to `link` (a rename). ENOENT for
  // a deleted one; the parent must be the one it had.
  Status relink(uint64_t id, const SubvolumeLink& link);
  // Read-only flag of a live subvolume (btrfs property ro). EPERM for the
  // top level.
  Status set_read_only(uint64_t id, bool read_only);
  // Drops dead tree `id` and its catalog items (Engine::drop_tree: frees
  // what only it referenced). ENOENT when `id` is not a dead root.
  Status drop_dead(uint64_t id);
  // drop_dead in bounded parts (Engine::drop_tree_step with `subtrees`):
  // true when the tree and its catalog items are gone; the dead root item
  // stays until then, so an interrupted drop resumes at the next mount.
  Result<bool> drop_dead_step(uint64_t id, uint64_t subtrees);

  // ---- reads; in a transaction its state, else the committed one ----
  // Every subvolume, the top level first, then by id; deleted ones too.
  Result<std::vector<SubvolumeEntry>> list();
  // One subvolume. ENOENT when unknown.
  Result<SubvolumeEntry> get(uint64_t id);
  // The dead roots, by id.
  Result<std::vector<uint64_t>> dead_trees();
  // The subvolumes named inside tree `parent` (their ROOT_REFs).
  Result<std::vector<std::pair<uint64_t, RootRefItem>>> children(uint64_t parent);

  // fsck of the catalog: every ROOT_REF has its ROOT_BACKREF with equal
  // contents and both trees exist; every subvolume (id >= 256) has a
  // ROOT_ITEM, a SUBVOL_INFO, and exactly one of a name or a dead root; no
  // catalog item names a tree that is gone; the incompat bit is set if the
  // catalog holds anything. Without the bit, trees that no catalog item
  // names are engine clones, not subvolumes, and are left alone. Problems are appended; read errors
  // returned.
  Status check(std::vector<std::string>& problems);

 private:
  Result<uint64_t> next_id();
  Status add_link(uint64_t id, const SubvolumeLink& link);
  Result<bool> tree_exists(uint64_t id);
  Result<bool> is_dead(uint64_t id);
  Status check_parent(const SubvolumeLink& link);

  Engine& engine_;
};

}  // namespace ecfs::store
