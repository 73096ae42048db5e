#include "block/file_device.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>

#include "block/io_buffer.h"

namespace ecfs::block {
namespace {

// Bounce buffers for misaligned O_DIRECT requests are at most this large.
constexpr size_t kBounceChunk = 1u << 20;

std::unexpected<Error> io_error(int errno_value, const std::string& path, const char* operation,
                                size_t length, uint64_t offset) {
  // The host's reason in words too: the command line prints messages only.
  return fail(errno_value, path + ": " + operation + " of " + std::to_string(length) +
                               " bytes at offset " + std::to_string(offset) +
                               " failed: " + std::strerror(errno_value));
}

// Closes a descriptor (and removes a file this open created) unless released.
class OpenGuard {
 public:
  OpenGuard(int fd, std::string created_path) : fd_(fd), created_path_(std::move(created_path)) {}
  ~OpenGuard() {
    if (fd_ < 0) return;
    if (!created_path_.empty()) ::unlink(created_path_.c_str());
    ::close(fd_);
  }
  OpenGuard(const OpenGuard&) = delete;
  OpenGuard& operator=(const OpenGuard&) = delete;
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
  std::string created_path_;
};

Status lock_image(int fd, const std::string& path, bool read_only, std::chrono::milliseconds wait) {
  // Shared for readers, so fsck --readonly and inspect can run side by
  // side, but never beside a writer.
  const int operation = (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (::flock(fd, operation) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      if (std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      return fail(EBUSY, path + ": the image is in use (another process holds its lock)");
    }
    return fail(errno, path + ": cannot lock the image");
  }
  return ok();
}

// Makes a newly created file's size and directory entry durable: fdatasync
// does not cover the entry, and only covers the size as far as reads need it.
Status sync_new_file(int fd, const std::string& path) {
  if (::fsync(fd) != 0) return fail(errno, path + ": fsync of the new image failed");
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  const int dir_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return fail(errno, parent.string() + ": cannot open the image's directory");
  const int result = ::fsync(dir_fd);
  const int saved_errno = errno;
  ::close(dir_fd);
  if (result != 0) return fail(saved_errno, parent.string() + ": fsync of the directory failed");
  return ok();
}

// Turns O_DIRECT on and proves it works with one aligned read: some
// filesystems accept the flag and refuse the I/O. Returns false (and leaves
// buffered I/O) where the host refuses it.
Result<bool> enable_direct_io(int fd, const std::string& path, uint64_t size) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return fail(errno, path + ": fcntl(F_GETFL) failed");
  if (::fcntl(fd, F_SETFL, flags | O_DIRECT) != 0) {
    if (errno == EINVAL) return false;
    return fail(errno, path + ": cannot enable O_DIRECT");
  }
  if (size >= kBlockSize) {
    IoBuffer probe(kBlockSize);
    ssize_t n;
    do {
      n = ::pread(fd, probe.data(), kBlockSize, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EINVAL) return io_error(errno, path, "O_DIRECT probe read", kBlockSize, 0);
      if (::fcntl(fd, F_SETFL, flags) != 0) return fail(errno, path + ": cannot disable O_DIRECT");
      return false;
    }
  }
  return true;
}

}  // namespace

FileDevice::FileDevice(int fd, std::string path, uint64_t size, bool read_only, bool direct_io,
                       bool is_block_device)
    : fd_(fd),
      path_(std::move(path)),
      size_(size),
      read_only_(read_only),
      direct_io_(direct_io),
      is_block_device_(is_block_device) {}

FileDevice::~FileDevice() { close(); }

void FileDevice::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<std::unique_ptr<FileDevice>> open_file_device(const std::string& path,
                                                     const FileDeviceOptions& options) {
  const bool creating = options.create_size.has_value();
  if (creating && options.read_only) {
    return fail(EINVAL, path + ": cannot create an image read-only");
  }
  if (creating && (*options.create_size == 0 || *options.create_size % kBlockSize != 0)) {
    return fail(EINVAL, path + ": image size " + std::to_string(*options.create_size) +
                            " is not a positive multiple of " + std::to_string(kBlockSize));
  }

  struct stat st {};
  bool exists = true;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT || !creating) return fail(errno, path + ": cannot open the image");
    exists = false;
  }
  if (exists && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return fail(S_ISDIR(st.st_mode) ? EISDIR : EINVAL,
                path + ": not a regular file or block device");
  }
  const bool block_device = exists && S_ISBLK(st.st_mode);
  if (exists && !block_device && creating && !options.replace_existing) {
    return fail(EEXIST, path + ": the image already exists");
  }

  int flags = O_CLOEXEC | (options.read_only ? O_RDONLY : O_RDWR);
  // O_EXCL on a block device: the kernel refuses it while the device is
  // mounted or otherwise claimed.
  if (block_device && !options.read_only) flags |= O_EXCL;
  if (!exists) flags |= O_CREAT | O_EXCL;
  const int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    if (block_device && errno == EBUSY) {
      return fail(EBUSY, path + ": the block device is in use (mounted or opened exclusively)");
    }
    return fail(errno, path + ": cannot open the image");
  }
  OpenGuard guard(fd, exists ? std::string() : path);

  struct stat opened {};
  if (::fstat(fd, &opened) != 0) return fail(errno, path + ": fstat failed");
  if (S_ISBLK(opened.st_mode) != block_device || (!block_device && !S_ISREG(opened.st_mode))) {
    return fail(EINVAL, path + ": the file changed type while being opened");
  }
  if (options.lock) ECFS_TRY(lock_image(fd, path, options.read_only, options.lock_wait));

  uint64_t size = 0;
  if (block_device) {
    // Linux lets a read-only block device (losetup -r, a write-protected
    // disk) be opened for writing and fails each write with EPERM instead;
    // say so at open (BLKROGET, include/uapi/linux/fs.h).
    int read_only_device = 0;
    if (!options.read_only && ::ioctl(fd, BLKROGET, &read_only_device) == 0 &&
        read_only_device != 0) {
      return fail(EROFS, path + ": the block device is read-only");
    }
    uint64_t device_size = 0;
    if (::ioctl(fd, BLKGETSIZE64, &device_size) != 0) {
      return fail(errno, path + ": cannot read the block device's size (BLKGETSIZE64)");
    }
    size = device_size - device_size % kBlockSize;
    if (creating) {
      if (*options.create_size > size) {
        return fail(EINVAL, path + ": requested size " + std::to_string(*options.create_size) +
                                " exceeds the block device (" + std::to_string(size) + " bytes)");
      }
      size = *options.create_size;
    }
  } else if (creating) {
    // Truncating only after the lock is held: an image in use is never
    // emptied underneath its owner.
    if (exists && ::ftruncate(fd, 0) != 0) return fail(errno, path + ": cannot empty the image");
    if (::ftruncate(fd, static_cast<off_t>(*options.create_size)) != 0) {
      return fail(errno, path + ": cannot size the image to " +
                             std::to_string(*options.create_size) + " bytes");
    }
    ECFS_TRY(sync_new_file(fd, path));
    size = *options.create_size;
  } else {
    const auto file_size = static_cast<uint64_t>(opened.st_size);
    size = file_size - file_size % kBlockSize;
  }

  bool direct = false;
  if (options.direct_io != DirectIo::kOff) {
    auto enabled = enable_direct_io(fd, path, size);
    if (!enabled) return std::unexpected(std::move(enabled).error());
    direct = *enabled;
    if (!direct && options.direct_io == DirectIo::kRequire) {
      return fail(EINVAL, path +
                              ": the host filesystem does not support O_DIRECT; "
                              "open the image without direct I/O");
    }
  }

  return std::unique_ptr<FileDevice>(
      new FileDevice(guard.release(), path, size, options.read_only, direct, block_device));
}

Status FileDevice::read_fully(uint64_t offset, MutableByteSpan out) const {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(errno, path_, "read", out.size() - done, offset + done);
    }
    if (n == 0) {
      return fail(EIO, path_ + ": unexpected end of file at offset " +
                           std::to_string(offset + done) + " (was the image truncated?)");
    }
    done += static_cast<size_t>(n);
  }
  return ok();
}

Status FileDevice::write_fully(uint64_t offset, ByteSpan data) const {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(errno, path_, "write", data.size() - done, offset + done);
    }
    if (n == 0)
      return io_error(EIO, path_, "write (no progress)", data.size() - done, offset + done);
    done += static_cast<size_t>(n);
  }
  return ok();
}

Status FileDevice::read(uint64_t offset, MutableByteSpan out) {
  ECFS_TRY(check_request(*this, offset, out.size()));
  if (out.empty()) return ok();
  if (!direct_io_ || is_io_aligned(out.data())) return read_fully(offset, out);
  IoBuffer bounce(std::min(kBounceChunk, out.size()));
  for (size_t done = 0; done < out.size();) {
    const size_t chunk = std::min(kBounceChunk, out.size() - done);
    ECFS_TRY(read_fully(offset + done, MutableByteSpan(bounce.data(), chunk)));
    std::memcpy(out.data() + done, bounce.data(), chunk);
    done += chunk;
  }
  return ok();
}

Status FileDevice::write(uint64_t offset, ByteSpan data) {
  if (read_only_) {
    return fail(EROFS, path_ + ": write at offset " + std::to_string(offset) +
                           " to an image opened read-only");
  }
  ECFS_TRY(check_request(*this, offset, data.size()));
  if (data.empty()) return ok();
  if (!direct_io_ || is_io_aligned(data.data())) return write_fully(offset, data);
  IoBuffer bounce(std::min(kBounceChunk, data.size()));
  for (size_t done = 0; done < data.size();) {
    const size_t chunk = std::min(kBounceChunk, data.size() - done);
    std::memcpy(bounce.data(), data.data() + done, chunk);
    ECFS_TRY(write_fully(offset + done, ByteSpan(bounce.data(), chunk)));
    done += chunk;
  }
  return ok();
}

Status FileDevice::discard(uint64_t offset, uint64_t length) {
  ECFS_TRY(check_request(*this, offset, length));
  if (read_only_) return fail(EROFS, path_ + ": discard on a read-only device");
  if (length == 0) return ok();
  if (is_block_device_) {
    uint64_t range[2] = {offset, length};
    while (::ioctl(fd_, BLKDISCARD, range) != 0) {
      if (errno == EINTR) continue;
      return fail(errno, path_ + ": discard (BLKDISCARD) of " + std::to_string(length) +
                             " bytes at offset " + std::to_string(offset) + " failed");
    }
    return ok();
  }
  while (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                     static_cast<off_t>(length)) != 0) {
    if (errno == EINTR) continue;
    return fail(errno, path_ + ": punching a hole of " + std::to_string(length) +
                           " bytes at offset " + std::to_string(offset) + " failed");
  }
  return ok();
}

Status FileDevice::flush() {
  if (read_only_) return ok();
  while (::fdatasync(fd_) != 0) {
    if (errno == EINTR) continue;
    return fail(errno, path_ + ": flush (fdatasync) failed");
  }
  return ok();
}

}  // namespace ecfs::block
