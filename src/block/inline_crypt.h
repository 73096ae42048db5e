// Inline encryption of block I/O, modelled on Linux blk-crypto
// (Documentation/block/inline-encryption.rst; block/blk-crypto.c and the
// software path block/blk-crypto-fallback.c). An I/O request may carry a
// crypt context — a prepared key and the data unit number (DUN) of its first
// data unit, blk-crypto's bio_crypt_ctx — and this layer encrypts writes into
// a bounce buffer and decrypts reads in place, so no layer above sees
// ciphertext and nothing here needs to know what the key is.
//
// Each request also takes a *process* callback that sees the bytes exactly
// as they are on the device (ciphertext when a context is given): on a write
// after encryption and before the device write, on a read after the device
// read and before decryption. The storage engine checksums ciphertext there
// and verifies it before any plaintext exists (the btrfs fscrypt series'
// process_bio hook; DESIGN.md "Layers", "Security model").
//
// The block layer depends on nothing but base/, so keys come in through the
// DataUnitCrypter interface; the filesystem implements it with an fscrypt
// per-extent key (fscrypt::encrypt_data_units / decrypt_data_units).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "base/bytes.h"
#include "base/error.h"
#include "block/block_device.h"

namespace ecfs::block {

// A prepared key that encrypts and decrypts runs of whole data units, each
// unit on its own with the IV of its data unit number (fscrypt's contents
// encryption: units numbered dun, dun + 1, ...).
// Thread-safety: as crypto::Cipher, one crypter may serve many threads at
// once (the methods are const and keep no per-call state). An
// implementation that holds key material is move-only.
class DataUnitCrypter {
 public:
  virtual ~DataUnitCrypter() = default;

  // Bytes per data unit. The inline-crypt layer accepts powers of two from
  // 512 to kMaxDataUnitSize (blk_crypto_init_key requires a power of two).
  virtual uint32_t data_unit_size() const = 0;

  // Encrypts in.size() / data_unit_size() consecutive data units, the first
  // numbered `first_dun`, from `in` into `out`. `in` and `out` have equal size
  // and are either the same buffer (in place) or do not overlap. EINVAL for a
  // length that is not whole data units or a DUN range the key cannot take;
  // after an error `out` holds a mix and must be discarded. The shape of
  // fscrypt::encrypt_data_units with the cipher, IV rules and data unit size
  // bound into the object.
  virtual Status encrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const = 0;
  // The inverse, with the same rules.
  virtual Status decrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const = 0;
};

// The largest data unit the layer handles (fscrypt's maximum, 64 KiB).
inline constexpr uint32_t kMaxDataUnitSize = 65536;

// What an encrypted request carries (blk-crypto's bio_crypt_ctx: key + DUN).
// `first_dun` is the number of the request's first data unit: for a
// per-extent key, its offset from the start of the original extent in data
// units (fscrypt::extent_data_unit_number). A plain value; `crypter` must
// outlive the request.
struct CryptContext {
  const DataUnitCrypter* crypter = nullptr;
  uint64_t first_dun = 0;
};

// The per-request process callback: called with the device offset of a run
// of the request and the bytes of that run as they are (or will be) on the
// device. A non-OK status aborts the request with that status.
//
// A non-owning reference to a callable, so the data path neither allocates
// nor copies the caller's lambda (std::function may do both). Only for
// parameters: the callable must outlive the call, which a lambda written in
// the argument list does. Default-constructed or from nullptr: no callback.
class ProcessDeviceBytes {
 public:
  ProcessDeviceBytes() = default;
  ProcessDeviceBytes(std::nullptr_t) {}  // NOLINT(google-explicit-constructor)

  template <typename Callable>
  requires(!std::is_same_v<std::remove_cvref_t<Callable>, ProcessDeviceBytes> &&
           !std::is_function_v<std::remove_reference_t<Callable>> &&
           std::is_invocable_r_v<Status, Callable&, uint64_t, ByteSpan>)
      ProcessDeviceBytes(Callable&& callable)  // NOLINT(google-explicit-constructor)
      : callable_(const_cast<void*>(static_cast<const void*>(std::addressof(callable)))),
        invoke_(&invoke<std::remove_reference_t<Callable>>) {}

  explicit operator bool() const { return invoke_ != nullptr; }
  // REQUIRES: *this is not empty.
  Status operator()(uint64_t device_offset, ByteSpan device_bytes) const {
    return invoke_(callable_, device_offset, device_bytes);
  }

 private:
  template <typename Callable>
  static Status invoke(void* callable, uint64_t device_offset, ByteSpan device_bytes) {
    return (*static_cast<Callable*>(callable))(device_offset, device_bytes);
  }

  void* callable_ = nullptr;
  Status (*invoke_)(void*, uint64_t, ByteSpan) = nullptr;
};

// Writes are encrypted and handed to the device in runs of at most this many
// bytes, so two bounce buffers of this size per thread serve any request
// (blk-crypto-fallback likewise encrypts into a bounded pool of bounce pages).
// A multiple of every accepted data unit size and of the block size.
inline constexpr size_t kInlineCryptBounceSize = 1 << 20;

// Writes `data` at device `offset`. With `crypt`, `data` is plaintext: each
// run of at most kInlineCryptBounceSize bytes is encrypted into a bounce
// buffer (the caller's buffer is never modified), passed to `process` with
// its device offset, then written. Without `crypt` the bytes go to `process`
// and the device as they are, in one run. Runs are processed in order and
// cover the request exactly once.
//
// EINVAL (before anything is written) for a request the device refuses
// (check_request: alignment to block_size(), range), a context without a
// crypter, a data unit size that is not a power of two in [512,
// kMaxDataUnitSize], a length that is not whole data units, or a DUN range
// that would wrap 2^64. Errors of the crypter, `process` or the device as
// they come; runs before the failing one may already be on the device.
// A request of more than one run is written by a helper thread, run after
// run in order, while the calling thread encrypts (and processes) the next
// one into a second bounce buffer; so the device must accept writes from
// any thread. Thread-safe when the device, crypter and callback are;
// requests may run concurrently on disjoint ranges. Requests of one run
// allocate nothing after a thread's first encrypted write.
Status submit_write(BlockDevice& device, uint64_t offset, ByteSpan data, const CryptContext* crypt,
                    ProcessDeviceBytes process = {});

// Reads out.size() bytes at device `offset` into `out`, passes them to
// `process` once (whole request, device bytes: ciphertext with `crypt`),
// and only if that succeeds decrypts them in place with `crypt`. On any
// failure `out` is zeroed, so neither unverified nor partly decrypted bytes
// (nor what the buffer held before) reach the caller. EINVAL as
// submit_write (nothing is read); errors of the device, `process` or the
// crypter as they come. Allocation-free; thread-safe as submit_write.
Status submit_read(BlockDevice& device, uint64_t offset, MutableByteSpan out,
                   const CryptContext* crypt, ProcessDeviceBytes process = {});

}  // namespace ecfs::block
