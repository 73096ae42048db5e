// Contents encryption of whole data units, as the kernel's
// fscrypt_crypt_data_unit() (fs/crypto/crypto.c): every data unit is
// encrypted on its own with the contents cipher and the IV of its index
// (iv.h). The caller supplies the index of the first unit: the data unit's
// position in the file for per-file, DIRECT_KEY and IV_INO_LBLK_* keys, or its
// position from the start of the original extent for per-extent keys.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/cipher.h"
#include "fscrypt/iv.h"

namespace ecfs::fscrypt {

// Data unit sizes fscrypt supports: powers of two from 512 to 65536 bytes
// (fscrypt.rst "Contents encryption"; log2_data_unit_size 9..16).
inline constexpr size_t kContentsMinDataUnitSize = 512;
inline constexpr size_t kContentsMaxDataUnitSize = 65536;

// EINVAL unless `data_unit_size` is a power of two in [512, 65536].
Status check_data_unit_size(size_t data_unit_size);

// Encrypts `in` into `out` as in.size() / data_unit_size consecutive data
// units numbered first_index, first_index + 1, ... `in` and `out` have equal
// size and are either the same buffer (in place) or do not overlap.
// EINVAL for: a bad data unit size; a length that is not a whole number of
// data units (zero units is fine and does nothing); sizes that differ or
// buffers that partly overlap; IV parameters or an index range the scheme
// cannot take (check_iv_params); or a data unit the cipher rejects (e.g. a
// CBC-ESSIV unit that is not whole blocks cannot happen here, since data units
// are multiples of 512). If an error occurs after some units were processed,
// `out` holds a mix and must be discarded.
// Thread-safe when `cipher` is (crypto::Cipher is). Allocation-free.
Status encrypt_data_units(const crypto::Cipher& cipher, const IvParams& iv_params,
                          size_t data_unit_size, uint64_t first_index, ByteSpan in,
                          MutableByteSpan out);

// The inverse of encrypt_data_units, with the same rules.
Status decrypt_data_units(const crypto::Cipher& cipher, const IvParams& iv_params,
                          size_t data_unit_size, uint64_t first_index, ByteSpan in,
                          MutableByteSpan out);

}  // namespace ecfs::fscrypt
