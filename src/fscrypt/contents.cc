#include "fscrypt/contents.h"

#include <array>
#include <cstdint>

namespace ecfs::fscrypt {
namespace {

enum class Direction { kEncrypt, kDecrypt };

// True if the two ranges share a byte without being the same range; such
// buffers would be overwritten while still being read.
bool partly_overlap(ByteSpan in, MutableByteSpan out) {
  if (in.empty()) return false;
  if (in.data() == out.data()) return false;
  const auto in_begin = reinterpret_cast<uintptr_t>(in.data());
  const auto out_begin = reinterpret_cast<uintptr_t>(out.data());
  return in_begin < out_begin + out.size() && out_begin < in_begin + in.size();
}

Status crypt_data_units(Direction direction, const crypto::Cipher& cipher,
                        const IvParams& iv_params, size_t data_unit_size, uint64_t first_index,
                        ByteSpan in, MutableByteSpan out) {
  ECFS_TRY(check_data_unit_size(data_unit_size));
  if (in.size() != out.size()) {
    return fail(EINVAL, "contents: input and output sizes differ");
  }
  if (in.size() % data_unit_size != 0) {
    return fail(EINVAL, "contents: length is not a whole number of data units");
  }
  if (partly_overlap(in, out)) {
    return fail(EINVAL, "contents: input and output partly overlap");
  }
  const uint64_t count = in.size() / data_unit_size;
  if (count == 0) return ok();
  const size_t iv_size = cipher.iv_size();
  // Validated once for the whole run, so the loop only writes IVs.
  ECFS_TRY(check_iv_params(iv_params, iv_size, first_index, count));

  std::array<uint8_t, IvParams::kMaxIvSize> iv_buffer;
  const MutableByteSpan iv(iv_buffer.data(), iv_size);
  for (uint64_t unit = 0; unit < count; ++unit) {
    write_iv(iv_params, first_index + unit, iv);
    const size_t offset = static_cast<size_t>(unit) * data_unit_size;
    const ByteSpan unit_in = in.subspan(offset, data_unit_size);
    const MutableByteSpan unit_out = out.subspan(offset, data_unit_size);
    if (direction == Direction::kEncrypt) {
      ECFS_TRY(cipher.encrypt(iv, unit_in, unit_out));
    } else {
      ECFS_TRY(cipher.decrypt(iv, unit_in, unit_out));
    }
  }
  return ok();
}

}  // namespace

Status check_data_unit_size(size_t data_unit_size) {
  const bool power_of_two = data_unit_size != 0 && (data_unit_size & (data_unit_size - 1)) == 0;
  if (!power_of_two || data_unit_size < kContentsMinDataUnitSize ||
      data_unit_size > kContentsMaxDataUnitSize) {
    return fail(EINVAL, "data unit size must be a power of two from 512 to 65536");
  }
  return ok();
}

Status encrypt_data_units(const crypto::Cipher& cipher, const IvParams& iv_params,
                          size_t data_unit_size, uint64_t first_index, ByteSpan in,
                          MutableByteSpan out) {
  return crypt_data_units(Direction::kEncrypt, cipher, iv_params, data_unit_size, first_index, in,
                          out);
}

Status decrypt_data_units(const crypto::Cipher& cipher, const IvParams& iv_params,
                          size_t data_unit_size, uint64_t first_index, ByteSpan in,
                          MutableByteSpan out) {
  return crypt_data_units(Direction::kDecrypt, cipher, iv_params, data_unit_size, first_index, in,
                          out);
}

}  // namespace ecfs::fscrypt
