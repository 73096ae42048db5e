#include "block/inline_crypt.h"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <string>

namespace ecfs::block {
namespace {

constexpr uint32_t kMinDataUnitSize = 512;

static_assert(kInlineCryptBounceSize % kMaxDataUnitSize == 0 &&
                  kInlineCryptBounceSize % kBlockSize == 0,
              "a bounce run must hold whole data units and whole blocks");

bool is_power_of_two(uint64_t value) { return value != 0 && (value & (value - 1)) == 0; }

// The checks every request passes before any byte moves.
Status check_crypt_request(const BlockDevice& device, uint64_t offset, uint64_t length,
                           const CryptContext* crypt) {
  ECFS_TRY(check_request(device, offset, length));
  if (crypt == nullptr) return ok();
  if (crypt->crypter == nullptr) {
    return fail(EINVAL, device.describe() + ": crypt context without a key");
  }
  const uint32_t unit = crypt->crypter->data_unit_size();
  // blk_crypto_init_key: data_unit_size must be a power of two; fscrypt
  // bounds it to [512, 65536] (fscrypt.rst "Contents encryption").
  if (!is_power_of_two(unit) || unit < kMinDataUnitSize || unit > kMaxDataUnitSize) {
    return fail(EINVAL, device.describe() + ": data unit size " + std::to_string(unit) +
                            " is not a power of two from 512 to 65536");
  }
  // blk-crypto refuses a bio that is not whole data units
  // (bio_crypt_check_alignment); the cipher could not process a partial one.
  if (length % unit != 0) {
    return fail(EINVAL, device.describe() + ": request of " + std::to_string(length) +
                            " bytes at offset " + std::to_string(offset) +
                            " is not a whole number of " + std::to_string(unit) +
                            "-byte data units");
  }
  const uint64_t units = length / unit;
  if (units > 0 && crypt->first_dun > std::numeric_limits<uint64_t>::max() - (units - 1)) {
    return fail(EINVAL, device.describe() + ": data unit numbers of a request of " +
                            std::to_string(units) + " units from " +
                            std::to_string(crypt->first_dun) + " wrap around 2^64");
  }
  return ok();
}

// The calling thread's bounce buffer, handed out to one request at a time.
// A request that finds it taken (a process callback that itself submits a
// write on the same thread) gets a buffer of its own instead of corrupting
// the outer request's run. The buffer only ever holds ciphertext, and is
// zeroed after a failed encryption, so nothing secret stays behind in it.
class BounceBuffer {
 public:
  explicit BounceBuffer(size_t size) {
    ThreadBuffer& shared = thread_buffer();
    if (!shared.in_use) {
      shared.in_use = true;
      owner_ = &shared;
      storage_ = &shared.bytes;
    } else {
      storage_ = &own_;
    }
    if (storage_->size() < size) storage_->resize(size);
  }
  ~BounceBuffer() {
    if (owner_ != nullptr) owner_->in_use = false;
  }
  BounceBuffer(const BounceBuffer&) = delete;
  BounceBuffer& operator=(const BounceBuffer&) = delete;

  MutableByteSpan first(size_t size) { return MutableByteSpan(*storage_).first(size); }

 private:
  struct ThreadBuffer {
    Bytes bytes;
    bool in_use = false;
  };
  static ThreadBuffer& thread_buffer() {
    thread_local ThreadBuffer buffer;
    return buffer;
  }

  ThreadBuffer* owner_ = nullptr;
  Bytes* storage_ = nullptr;
  Bytes own_;
};

Status write_encrypted(BlockDevice& device, uint64_t offset, ByteSpan data,
                       const CryptContext& crypt, ProcessDeviceBytes process) {
  const uint32_t unit = crypt.crypter->data_unit_size();
  BounceBuffer bounce(std::min(data.size(), kInlineCryptBounceSize));
  for (size_t done = 0; done < data.size();) {
    const size_t length = std::min(kInlineCryptBounceSize, data.size() - done);
    const MutableByteSpan ciphertext = bounce.first(length);
    const uint64_t dun = crypt.first_dun + done / unit;
    if (Status encrypted = crypt.crypter->encrypt(dun, data.subspan(done, length), ciphertext);
        !encrypted) {
      // A failed crypter may have left plaintext in the bounce buffer.
      std::fill(ciphertext.begin(), ciphertext.end(), uint8_t{0});
      return encrypted;
    }
    if (process) ECFS_TRY(process(offset + done, ciphertext));
    ECFS_TRY(device.write(offset + done, ciphertext));
    done += length;
  }
  return ok();
}

}  // namespace

Status submit_write(BlockDevice& device, uint64_t offset, ByteSpan data, const CryptContext* crypt,
                    ProcessDeviceBytes process) {
  ECFS_TRY(check_crypt_request(device, offset, data.size(), crypt));
  if (data.empty()) return ok();
  if (crypt != nullptr) return write_encrypted(device, offset, data, *crypt, process);
  if (process) ECFS_TRY(process(offset, data));
  return device.write(offset, data);
}

Status submit_read(BlockDevice& device, uint64_t offset, MutableByteSpan out,
                   const CryptContext* crypt, ProcessDeviceBytes process) {
  Status status = check_crypt_request(device, offset, out.size(), crypt);
  if (status && !out.empty()) status = device.read(offset, out);
  // Verify the bytes as stored before a single byte is decrypted.
  if (status && process && !out.empty()) status = process(offset, out);
  if (status && crypt != nullptr && !out.empty()) {
    status = crypt->crypter->decrypt(crypt->first_dun, out, out);
  }
  if (!status) std::fill(out.begin(), out.end(), uint8_t{0});
  return status;
}

}  // namespace ecfs::block
