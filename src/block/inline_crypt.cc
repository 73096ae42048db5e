#include "block/inline_crypt.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <limits>
#include <string>

#include "base/helper_thread.h"
#include "block/io_buffer.h"

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

// One of the calling thread's two bounce buffers (a request encrypts into
// one while the device writes the other), handed out to one user at a time.
// A request that finds both taken (a process callback that itself submits a
// write on the same thread) gets a buffer of its own instead of corrupting
// the outer request's runs. The buffers only ever hold ciphertext, and are
// zeroed after a failed encryption, so nothing secret stays behind in them.
class BounceBuffer {
 public:
  explicit BounceBuffer(size_t size) {
    for (ThreadBuffer& shared : thread_buffers()) {
      if (!shared.in_use) {
        shared.in_use = true;
        owner_ = &shared;
        storage_ = &shared.bytes;
        break;
      }
    }
    if (storage_ == nullptr) storage_ = &own_;
    storage_->reserve_for_overwrite(size);
  }
  ~BounceBuffer() {
    if (owner_ != nullptr) owner_->in_use = false;
  }
  BounceBuffer(const BounceBuffer&) = delete;
  BounceBuffer& operator=(const BounceBuffer&) = delete;

  MutableByteSpan first(size_t size) { return storage_->first(size); }

 private:
  struct ThreadBuffer {
    IoBuffer bytes;  // aligned: the device takes it without a bounce copy
    bool in_use = false;
  };
  static std::array<ThreadBuffer, 2>& thread_buffers() {
    thread_local std::array<ThreadBuffer, 2> buffers;
    return buffers;
  }

  ThreadBuffer* owner_ = nullptr;
  IoBuffer* storage_ = nullptr;
  IoBuffer own_;
};

// Encrypts one run into `ciphertext` and shows it to `process`; on a
// failed encryption the run is zeroed (the crypter may have left plaintext).
Status encrypt_run(const CryptContext& crypt, uint64_t device_offset, uint64_t done,
                   ByteSpan plaintext, MutableByteSpan ciphertext,
                   const ProcessDeviceBytes& process) {
  const uint64_t dun = crypt.first_dun + done / crypt.crypter->data_unit_size();
  if (Status encrypted = crypt.crypter->encrypt(dun, plaintext, ciphertext); !encrypted) {
    std::fill(ciphertext.begin(), ciphertext.end(), uint8_t{0});
    return encrypted;
  }
  if (process) return process(device_offset + done, ciphertext);
  return ok();
}

Status write_encrypted(BlockDevice& device, uint64_t offset, ByteSpan data,
                       const CryptContext& crypt, const ProcessDeviceBytes& process) {
  if (data.size() <= kInlineCryptBounceSize) {
    BounceBuffer bounce(data.size());
    const MutableByteSpan ciphertext = bounce.first(data.size());
    ECFS_TRY(encrypt_run(crypt, offset, 0, data, ciphertext, process));
    return device.write(offset, ciphertext);
  }
  // Longer requests: run i+1 is encrypted into one buffer while a helper
  // thread writes run i from the other, so the device is kept busy while
  // the CPU encrypts (a 1 MiB run takes about a third of a millisecond to
  // encrypt with AES-NI, and longer to write). The buffers are declared
  // before the writer, so they outlive its last write.
  BounceBuffer buffers[2] = {BounceBuffer(kInlineCryptBounceSize),
                             BounceBuffer(kInlineCryptBounceSize)};
  HelperThread writer;
  size_t run = 0;
  for (size_t done = 0; done < data.size(); done += kInlineCryptBounceSize, ++run) {
    const size_t length = std::min(kInlineCryptBounceSize, data.size() - done);
    const MutableByteSpan ciphertext = buffers[run % 2].first(length);
    if (Status encrypted =
            encrypt_run(crypt, offset, done, data.subspan(done, length), ciphertext, process);
        !encrypted) {
      (void)writer.wait();
      return encrypted;
    }
    ECFS_TRY(writer.wait());
    writer.start(
        [&device, at = offset + done, ciphertext] { return device.write(at, ciphertext); });
  }
  return writer.wait();
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
