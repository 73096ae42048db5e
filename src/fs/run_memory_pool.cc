#include "fs/run_memory_pool.h"

#include <sys/mman.h>

#include <new>

namespace ecfs::fs {

RunMemoryPool::RunMemoryPool(size_t block_size, size_t max_free_blocks)
    : block_size_(block_size), max_free_blocks_(max_free_blocks) {
  free_.reserve(max_free_blocks);
}

RunMemoryPool::~RunMemoryPool() {
  for (uint8_t* block : free_) unmap(block);
}

uint8_t* RunMemoryPool::take() {
  taken_since_release_ = true;
  if (!free_.empty()) {
    uint8_t* block = free_.back();
    free_.pop_back();
    return block;
  }
  void* block =
      ::mmap(nullptr, block_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (block == MAP_FAILED) throw std::bad_alloc();
  return static_cast<uint8_t*>(block);
}

void RunMemoryPool::give_back(uint8_t* block) {
  if (free_.size() < max_free_blocks_) {
    free_.push_back(block);
  } else {
    unmap(block);
  }
}

size_t RunMemoryPool::release_idle() {
  size_t released = 0;
  if (!taken_since_release_) {
    for (uint8_t* block : free_) unmap(block);
    released = free_.size() * block_size_;
    free_.clear();
  }
  taken_since_release_ = false;
  return released;
}

void RunMemoryPool::unmap(uint8_t* block) const {
  // munmap of a mapping this pool made cannot fail.
  ::munmap(block, block_size_);
}

}  // namespace ecfs::fs
