// FileDevice: an ecfs image in a regular file, or a whole block device.
//
// Opening takes an advisory lock (flock) on the file so two ecfs processes
// never write one image: exclusive for read-write opens, shared for
// read-only ones; a conflicting opener gets EBUSY. Block devices opened
// read-write are also opened O_EXCL, which the kernel refuses (EBUSY) while
// the device is mounted.
//
// With direct I/O (O_DIRECT) reads and writes bypass the host's page cache,
// so data is not cached twice (kernel FUSE cache and image page cache).
// O_DIRECT needs memory aligned to the device's DMA alignment; a caller's
// buffer that is not 4096-byte aligned is bounced through an aligned one.
//
// flush() is fdatasync(): every write that returned before flush() was
// called is on stable storage when it returns (DESIGN.md's commit barrier).
// Errors name the path and offset and keep the host's errno (ENOSPC from a
// full host filesystem stays ENOSPC, a read-only device gives EROFS).
// Thread-safety: as BlockDevice (pread/pwrite are positional).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "block/block_device.h"

namespace ecfs::block {

enum class DirectIo {
  kOff,      // buffered I/O through the host's page cache
  kPrefer,   // O_DIRECT where the host filesystem supports it, else buffered
  kRequire,  // O_DIRECT or fail with EINVAL naming the path
};

struct FileDeviceOptions {
  // Create a sparse regular file of this many bytes (a multiple of 4096,
  // EINVAL otherwise). If the path exists: a regular file gives EEXIST unless
  // replace_existing (then it is emptied and resized: all zeros); a block
  // device is used as is and size() is create_size, which must not exceed
  // the device (EINVAL). Not allowed with read_only.
  std::optional<uint64_t> create_size;
  bool replace_existing = false;
  bool read_only = false;
  DirectIo direct_io = DirectIo::kOff;
  // Take the flock described above. Only tests that open an image twice on
  // purpose turn this off.
  bool lock = true;
  // How long to wait for a conflicting lock to go before EBUSY: a daemon
  // that was just unmounted may still be committing its last transaction.
  std::chrono::milliseconds lock_wait{0};
};

class FileDevice final : public BlockDevice {
 public:
  ~FileDevice() override;
  FileDevice(const FileDevice&) = delete;
  FileDevice& operator=(const FileDevice&) = delete;

  uint64_t size() const override { return size_; }
  Status read(uint64_t offset, MutableByteSpan out) override;
  // EROFS on a device opened read-only.
  Status write(uint64_t offset, ByteSpan data) override;
  Status flush() override;
  // A hole punched in an image file (FALLOC_FL_PUNCH_HOLE, keeping its
  // size), BLKDISCARD on a block device. EOPNOTSUPP when the host
  // filesystem or the device cannot; EROFS on a device opened read-only.
  Status discard(uint64_t offset, uint64_t length) override;
  std::string describe() const override { return path_; }

  // Closes the image, and so lets go of its lock, before the object goes
  // (a daemon releases its image as soon as its filesystem is closed, so
  // that an unmount followed by a mount finds it free). Later reads,
  // writes and flushes fail with EBADF.
  void close();

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  // True when O_DIRECT is in effect (kPrefer may have fallen back).
  bool direct_io() const { return direct_io_; }
  bool is_block_device() const { return is_block_device_; }

 private:
  friend Result<std::unique_ptr<FileDevice>> open_file_device(const std::string& path,
                                                              const FileDeviceOptions& options);
  FileDevice(int fd, std::string path, uint64_t size, bool read_only, bool direct_io,
             bool is_block_device);

  Status read_fully(uint64_t offset, MutableByteSpan out) const;
  Status write_fully(uint64_t offset, ByteSpan data) const;

  int fd_;
  std::string path_;
  uint64_t size_;
  bool read_only_;
  bool direct_io_;
  bool is_block_device_;
};

// Opens (or creates, see FileDeviceOptions) the image at `path`. Errors:
// ENOENT (missing, not creating), EEXIST, EBUSY (locked by another opener or
// a mounted block device), EINVAL (bad size, not a regular file or block
// device, O_DIRECT required but refused), EACCES/EROFS from the host (EROFS
// also for a read-write open of a read-only block device), ENOSPC when the
// host cannot hold the file's metadata.
Result<std::unique_ptr<FileDevice>> open_file_device(const std::string& path,
                                                     const FileDeviceOptions& options = {});

}  // namespace ecfs::block
