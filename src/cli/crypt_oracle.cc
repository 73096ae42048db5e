#include "cli/crypt_oracle.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "fscrypt/extent.h"
#include "fscrypt/hkdf.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/keysetup.h"

namespace ecfs::cli {
namespace {

// --mode-num || --fs-uuid: the HKDF info of IV_INO_LBLK_* keys
// (keysetup.c fill_hkdf_info_for_mode_key).
std::array<uint8_t, 17> mode_and_uuid_info(const CryptRequest& request) {
  std::array<uint8_t, 17> info{};
  info[0] = request.mode_num;
  // Without --fs-uuid (only with --kdf=none, where no key is derived) the
  // info is never used.
  if (request.fs_uuid)
    std::copy(request.fs_uuid->begin(), request.fs_uuid->end(), info.begin() + 1);
  return info;
}

Result<crypto::SecretBytes> derive_hkdf_key(const CryptRequest& request,
                                            const fscrypt::FscryptHkdf& hkdf) {
  const fscrypt::ModeInfo& mode = *request.cipher;
  if (request.extent_nonce) {
    fscrypt::ExtentContext extent;
    extent.contents_mode = mode.number;
    extent.nonce = *request.extent_nonce;
    return fscrypt::derive_extent_key(hkdf, extent);
  }
  switch (request.iv_method) {
    case IvMethod::kDirectKey: {
      const uint8_t info[] = {request.mode_num};
      return hkdf.derive(fscrypt::HkdfContext::kDirectKey, info, mode.key_size);
    }
    case IvMethod::kIvInoLblk64:
      return hkdf.derive(fscrypt::HkdfContext::kIvInoLblk64Key, mode_and_uuid_info(request),
                         mode.key_size);
    case IvMethod::kIvInoLblk32:
      return hkdf.derive(fscrypt::HkdfContext::kIvInoLblk32Key, mode_and_uuid_info(request),
                         mode.key_size);
    case IvMethod::kDefault:
      break;
  }
  return fscrypt::derive_per_file_key(hkdf, *request.file_nonce, mode);
}

Result<crypto::SecretBytes> derive_key(const CryptRequest& request) {
  const fscrypt::ModeInfo& mode = *request.cipher;
  switch (request.kdf) {
    case Kdf::kNone:
      return crypto::SecretBytes::copy_of(request.master_key.span().first(mode.key_size));
    case Kdf::kAes128Ecb:
      return fscrypt::derive_v1_file_key(request.master_key.span(), *request.file_nonce, mode);
    case Kdf::kHkdfSha512: {
      auto hkdf = fscrypt::FscryptHkdf::create(request.master_key.span());
      if (!hkdf) return std::unexpected(hkdf.error());
      return derive_hkdf_key(request, *hkdf);
    }
  }
  return fail(EINVAL, "unknown KDF");
}

Result<fscrypt::IvParams> iv_params_for(const CryptRequest& request) {
  switch (request.iv_method) {
    case IvMethod::kDefault:
      return fscrypt::IvParams::default_scheme();
    case IvMethod::kDirectKey:
      return fscrypt::IvParams::direct_key(*request.file_nonce);
    case IvMethod::kIvInoLblk64:
      return fscrypt::IvParams::ino_lblk_64(request.inode_number);
    case IvMethod::kIvInoLblk32: {
      // The hashed inode number comes from the per-master-key inode hash key
      // (HKDF context 7), keysetup.c fscrypt_hash_inode_number.
      auto hkdf = fscrypt::FscryptHkdf::create(request.master_key.span());
      if (!hkdf) return std::unexpected(hkdf.error());
      auto hash_key = fscrypt::derive_inode_hash_key(*hkdf);
      if (!hash_key) return std::unexpected(hash_key.error());
      return fscrypt::IvParams::ino_lblk_32(
          fscrypt::hash_inode_number(*hash_key, request.inode_number));
    }
  }
  return fail(EINVAL, "unknown IV method");
}

// Reads until `buffer` is full or the input ends; returns the bytes read.
Result<size_t> read_fully(int fd, MutableByteSpan buffer) {
  size_t done = 0;
  while (done < buffer.size()) {
    ssize_t n = read(fd, buffer.data() + done, buffer.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(EIO, std::string("reading standard input: ") + std::strerror(errno));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status write_fully(int fd, ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(EIO, std::string("writing standard output: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return ok();
}

// fscrypt-crypt-util's rule for how many bytes of a data unit holding
// `filled` input bytes are processed: all of it without padding; with
// padding, the input rounded up to the padding, at least 16 bytes (every
// fscrypt cipher's minimum message), at most the data unit size. This is
// how the kernel sizes encrypted filenames (__fscrypt_fname_encrypted_size).
size_t crypt_length(const CryptRequest& request, size_t filled) {
  if (request.padding == 0) return request.data_unit_size;
  size_t length = std::max<size_t>(filled, 16);
  length = (length + request.padding - 1) / request.padding * request.padding;
  return std::min(length, request.data_unit_size);
}

}  // namespace

Result<PreparedCrypt> prepare_crypt(const CryptRequest& request) {
  auto key = derive_key(request);
  if (!key) return std::unexpected(key.error());
  auto cipher = fscrypt::prepare_key(*request.cipher, key->span());
  if (!cipher) return std::unexpected(cipher.error());
  auto iv_params = iv_params_for(request);
  if (!iv_params) return std::unexpected(iv_params.error());
  ECFS_TRY(
      fscrypt::check_iv_params(*iv_params, request.cipher->iv_size, request.first_data_unit_index));
  PreparedCrypt prepared;
  prepared.cipher = std::move(*cipher);
  prepared.iv_params = *iv_params;
  prepared.index_is_32_bits =
      request.iv_method == IvMethod::kIvInoLblk64 || request.iv_method == IvMethod::kIvInoLblk32;
  return prepared;
}

Status run_crypt(const CryptRequest& request, int in_fd, int out_fd) {
  auto prepared = prepare_crypt(request);
  if (!prepared) return std::unexpected(prepared.error());
  const crypto::Cipher& cipher = *prepared->cipher;

  std::vector<uint8_t> unit(request.data_unit_size);
  fscrypt::Iv iv;
  iv.size = request.cipher->iv_size;
  uint64_t index = request.first_data_unit_index;
  for (;;) {
    auto filled = read_fully(in_fd, unit);
    if (!filled) return std::unexpected(filled.error());
    if (*filled == 0) return ok();
    const size_t length = crypt_length(request, *filled);
    std::fill(unit.begin() + static_cast<ptrdiff_t>(*filled),
              unit.begin() + static_cast<ptrdiff_t>(length), 0);

    // Counting wraps as the original's: mod 2^32 inside an IV_INO_LBLK_* IV
    // (the inode number half never changes), mod 2^64 otherwise.
    const uint64_t iv_index = prepared->index_is_32_bits ? index & 0xffffffffu : index;
    fscrypt::write_iv(prepared->iv_params, iv_index, {iv.bytes.data(), iv.size});
    MutableByteSpan data(unit.data(), length);
    Status crypted = request.decrypt ? cipher.decrypt(iv.span(), data, data)
                                     : cipher.encrypt(iv.span(), data, data);
    if (!crypted)
      return fail(EINVAL, std::string(request.cipher->name) + " cannot " +
                              (request.decrypt ? "decrypt" : "encrypt") + " a " +
                              std::to_string(length) +
                              "-byte data unit: " + crypted.error().message());
    ECFS_TRY(write_fully(out_fd, data));
    ++index;
    if (*filled < request.data_unit_size) return ok();
  }
}

Result<std::string> key_identifier_hex(const CryptRequest& request) {
  auto identifier = fscrypt::compute_key_identifier(request.master_key.span());
  if (!identifier) return std::unexpected(identifier.error());
  return to_hex(*identifier);
}

}  // namespace ecfs::cli
