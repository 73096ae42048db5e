// WrappingDevice: a BlockDevice that forwards every request to an inner
// device, which it either owns or borrows. The base of the decorators that
// tests stack on a device (RecordingDevice, FaultDevice, ...), after CryFS's
// storage layers as decorators over one small interface: a decorator
// overrides only the requests it changes. By itself it is a transparent
// pass-through.
//
// Ownership: the borrowing constructor takes a device that must outlive the
// wrapper; the owning one takes a BlockDevicePtr and destroys it with the
// wrapper. Either way inner() is the same device for the wrapper's lifetime.
// Thread-safety: as the inner device; the wrapper itself adds no state.
#pragma once

#include <cstdint>
#include <string>

#include "block/block_device.h"

namespace ecfs::block {

class WrappingDevice : public BlockDevice {
 public:
  // Wraps `inner`, which must outlive this device. (To wrap another
  // WrappingDevice pass it as BlockDevice&: the deleted copy constructor is
  // the closer match.)
  explicit WrappingDevice(BlockDevice& inner) : inner_(&inner) {}
  // Wraps `inner`, which this device owns. REQUIRES: inner != nullptr.
  explicit WrappingDevice(BlockDevicePtr inner);
  WrappingDevice(const WrappingDevice&) = delete;
  WrappingDevice& operator=(const WrappingDevice&) = delete;
  ~WrappingDevice() override;

  // Forwarded unchanged unless a decorator overrides them.
  uint64_t size() const override { return inner_->size(); }
  Status read(uint64_t offset, MutableByteSpan out) override;
  Status write(uint64_t offset, ByteSpan data) override;
  Status flush() override;
  Status discard(uint64_t offset, uint64_t length) override;
  std::string describe() const override;

  BlockDevice& inner() { return *inner_; }
  const BlockDevice& inner() const { return *inner_; }
  // True when the wrapper destroys the inner device.
  bool owns_inner() const { return owned_ != nullptr; }

 private:
  BlockDevicePtr owned_;  // null when borrowed
  BlockDevice* inner_;    // never null
};

}  // namespace ecfs::block
