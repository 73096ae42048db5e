#include "block/wrapping_device.h"

#include <utility>

namespace ecfs::block {

WrappingDevice::WrappingDevice(BlockDevicePtr inner)
    : owned_(std::move(inner)), inner_(owned_.get()) {}

WrappingDevice::~WrappingDevice() = default;

Status WrappingDevice::read(uint64_t offset, MutableByteSpan out) {
  return inner_->read(offset, out);
}

Status WrappingDevice::write(uint64_t offset, ByteSpan data) { return inner_->write(offset, data); }

Status WrappingDevice::flush() { return inner_->flush(); }

Status WrappingDevice::discard(uint64_t offset, uint64_t length) {
  return inner_->discard(offset, length);
}

std::string WrappingDevice::describe() const { return inner_->describe(); }

}  // namespace ecfs::block
