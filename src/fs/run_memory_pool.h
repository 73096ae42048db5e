// RunMemoryPool: page-aligned blocks of one size for the dirty buffer's long
// runs (dirty_buffer.h), kept for reuse.
//
// Streaming writes fill runs, flush them and drop them, over and over. Memory
// the process gets back from the kernel for every run costs a page fault and
// a cleared page per 4 KiB before the data is even copied in (measured: about
// half of the daemon's CPU time in a sequential write), and glibc's malloc
// gives large blocks 16 bytes past a page boundary, which O_DIRECT cannot
// take without a bounce copy (block/file_device.cc). Blocks here come from
// mmap, so they are page aligned, and a dropped block goes to a free list,
// already faulted in, for the next run.
//
// The free list is bounded (what a full dirty buffer holds) and handed back
// to the kernel when the writes stop: release_idle(), called periodically,
// unmaps the free blocks when none was taken since its previous call.
//
// Not thread-safe (its owner, FileData, runs under the filesystem's lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ecfs::fs {

class RunMemoryPool {
 public:
  // REQUIRES: block_size is a positive multiple of the page size.
  RunMemoryPool(size_t block_size, size_t max_free_blocks);
  ~RunMemoryPool();
  RunMemoryPool(const RunMemoryPool&) = delete;
  RunMemoryPool& operator=(const RunMemoryPool&) = delete;

  size_t block_size() const { return block_size_; }
  // Blocks on the free list, ready for take().
  size_t free_blocks() const { return free_.size(); }

  // A block of block_size() bytes, page aligned, contents undefined. Throws
  // std::bad_alloc when the kernel gives no memory.
  uint8_t* take();
  // Returns a block from take(): kept for reuse, or unmapped when the free
  // list is full.
  void give_back(uint8_t* block);
  // Unmaps every free block if take() was not called since the previous
  // call; returns the bytes unmapped.
  size_t release_idle();

 private:
  void unmap(uint8_t* block) const;

  size_t block_size_;
  size_t max_free_blocks_;
  std::vector<uint8_t*> free_;
  bool taken_since_release_ = false;
};

}  // namespace ecfs::fs
