#include "block/block_device.h"

#include <cerrno>

namespace ecfs::block {

Status check_request(const BlockDevice& device, uint64_t offset, uint64_t length) {
  if (offset % kBlockSize != 0 || length % kBlockSize != 0) {
    return fail(EINVAL, device.describe() + ": request of " + std::to_string(length) +
                            " bytes at offset " + std::to_string(offset) + " is not aligned to " +
                            std::to_string(kBlockSize) + " bytes");
  }
  const uint64_t size = device.size();
  if (offset > size || length > size - offset) {
    return fail(EINVAL, device.describe() + ": request of " + std::to_string(length) +
                            " bytes at offset " + std::to_string(offset) +
                            " is beyond the end of the device (" + std::to_string(size) +
                            " bytes)");
  }
  return ok();
}

Status BlockDevice::discard(uint64_t offset, uint64_t length) {
  ECFS_TRY(check_request(*this, offset, length));
  return fail(EOPNOTSUPP, describe() + ": discarding is not supported");
}

}  // namespace ecfs::block
