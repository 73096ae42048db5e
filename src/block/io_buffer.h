// IoBuffer: memory for device requests, aligned so that a FileDevice opened
// with O_DIRECT reads into it and writes from it directly. A misaligned
// buffer costs a bounce copy of every byte (file_device.cc), which on a
// sequential read is a tenth of the daemon's CPU time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "base/bytes.h"

namespace ecfs::block {

// O_DIRECT buffers must be aligned to the device's DMA alignment (512 bytes
// or less on common hardware, statx STATX_DIOALIGN); 4096 satisfies all.
inline constexpr size_t kIoBufferAlignment = 4096;

inline bool is_io_aligned(const void* pointer) {
  return reinterpret_cast<uintptr_t>(pointer) % kIoBufferAlignment == 0;
}

class IoBuffer {
 public:
  IoBuffer() = default;
  // `size` bytes, not initialized.
  explicit IoBuffer(size_t size) { reserve_for_overwrite(size); }

  uint8_t* data() { return memory_.get(); }
  const uint8_t* data() const { return memory_.get(); }
  size_t size() const { return size_; }
  MutableByteSpan first(size_t size) { return MutableByteSpan(memory_.get(), size); }

  // Makes room for at least `size` bytes; what the buffer held is not kept
  // when it grows.
  void reserve_for_overwrite(size_t size) {
    if (size <= size_) return;
    // aligned_alloc wants a multiple of the alignment.
    const size_t rounded =
        (size + kIoBufferAlignment - 1) / kIoBufferAlignment * kIoBufferAlignment;
    void* memory = std::aligned_alloc(kIoBufferAlignment, rounded);
    if (memory == nullptr) std::abort();  // as operator new would, without exceptions
    memory_.reset(static_cast<uint8_t*>(memory));
    size_ = rounded;
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t[], Free> memory_;
  size_t size_ = 0;
};

}  // namespace ecfs::block
