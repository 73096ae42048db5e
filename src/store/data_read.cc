#include "store/data_read.h"

#include <algorithm>
#include <string>

namespace ecfs::store {

Status DataRead::read_into(MutableByteSpan out, const block::CryptContext* crypt) const {
  if (out.size() != length_) {
    std::fill(out.begin(), out.end(), uint8_t{0});
    return fail(EINVAL, "a prepared read of " + std::to_string(length_) +
                            " bytes got a buffer of " + std::to_string(out.size()));
  }
  // Verified as stored, before the inline-crypt layer decrypts anything; on
  // failure it zeroes `out`.
  return block::submit_read(
      *device_, bytenr(), out, crypt, [&](uint64_t at, ByteSpan on_disk) -> Status {
        const SectorChecksums& sums = checksums_;
        if (at != sums.bytenr || on_disk.size() != length_) {
          return fail(EINVAL, "a prepared read saw another range");
        }
        if (Status verified = verify_data_sectors(type_, on_disk, sums); !verified) {
          return fail(EIO, device_->describe() + ": " + verified.error().message());
        }
        return ok();
      });
}

}  // namespace ecfs::store
