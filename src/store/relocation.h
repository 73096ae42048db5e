// Relocation: moving a data extent or a tree node to another place on the
// device while every reference to it follows, without interpreting the bytes
// (DESIGN.md "Why it exists": relocation must work on encrypted data without
// any key). `balance` and `defrag` are built on these two primitives.
//
// Data extents are copied byte for byte and every EXTENT_DATA item naming
// the old extent is rewritten to name the new one with the same
// extent_offset and length. The data unit numbers of per-extent encryption
// count from the start of the extent (docs/FORMAT.md "Relocation"), so the
// copied ciphertext decrypts at its new place exactly as at the old one.
//
// Both functions REQUIRE a running transaction (EINVAL otherwise) and change
// nothing durable until Engine::commit(). The old space is freed at commit
// and, like every free, reused only after the commit is durable. On any
// error the transaction may hold part of the move: the caller must abort it.
// Not thread-safe (the engine's single writer).
#pragma once

#include <cstdint>

#include "base/error.h"
#include "store/engine.h"

namespace ecfs::store {

// Moves data extent `bytenr` to a newly allocated extent of the same length
// and returns the new bytenr. Every tree that holds an EXTENT_DATA item
// naming the extent (including clones that share the item's leaf) gets its
// item rewritten, and the references and the per-sector checksums (of the
// identical bytes, data_checksums.h) move with it. ENOENT when `bytenr` is
// not the start of a data extent; ENOSPC when there is no room for a copy.
Result<uint64_t> relocate_data_extent(Engine& engine, uint64_t bytenr);

// Moves tree node `bytenr` (of any tree, the root tree's included) to a new
// address by copying-on-write the path to it in every tree that references
// it (the owner and the clones sharing it; for a root tree node the root
// tree alone, whose new root the commit writes into the superblock).
// Contents of every tree are unchanged. ENOENT when no tree node starts at
// `bytenr`; ENOSPC when no node can be allocated.
Status relocate_tree_node(Engine& engine, uint64_t bytenr);

}  // namespace ecfs::store
