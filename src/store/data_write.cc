#include "store/data_write.h"

#include "store/data_checksums.h"

namespace ecfs::store {

DataWrite::DataWrite(block::BlockDevice& device, ChecksumType type, uint64_t bytenr,
                     uint64_t length)
    : device_(&device),
      type_(type),
      bytenr_(bytenr),
      length_(length),
      sums_(length / kSectorSize * checksum_size(type)) {}

Status DataWrite::write(ByteSpan data, const block::CryptContext* crypt) {
  if (written_) return fail(EINVAL, "a data write is written once");
  if (data.size() != length_) {
    return fail(EINVAL, "data write of " + std::to_string(length_) + " bytes given " +
                            std::to_string(data.size()));
  }
  const size_t size = checksum_size(type_);
  // The inline-crypt layer shows each run as it goes to the device
  // (ciphertext with a context), so the sums are of the bytes on disk.
  ECFS_TRY(block::submit_write(
      *device_, bytenr_, data, crypt, [&](uint64_t at, ByteSpan on_disk) -> Status {
        compute_sector_checksums_into(
            type_, on_disk,
            MutableByteSpan(sums_).subspan((at - bytenr_) / kSectorSize * size,
                                           on_disk.size() / kSectorSize * size));
        return ok();
      }));
  written_ = true;
  return ok();
}

}  // namespace ecfs::store
