#include "block/loop_device.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ecfs::block {
namespace {

// A descriptor closed when it goes out of scope.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Another process may take the free device LOOP_CTL_GET_FREE named before
// this one configures it (EBUSY): ask again, a few times.
constexpr int kAttachAttempts = 16;

}  // namespace

Result<LoopDevice> LoopDevice::attach(const std::string& backing_path, bool read_only) {
  OwnedFd backing(::open(backing_path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (backing.get() < 0) return fail(errno, backing_path + ": cannot open it for a loop device");
  OwnedFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (control.get() < 0) return fail(errno, "cannot open /dev/loop-control");

  loop_config config;
  std::memset(&config, 0, sizeof(config));
  config.fd = static_cast<uint32_t>(backing.get());
  config.info.lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0);
  // Shown by losetup; the kernel keeps at most LO_NAME_SIZE - 1 bytes.
  std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), backing_path.c_str(),
               LO_NAME_SIZE - 1);

  for (int attempt = 0; attempt < kAttachAttempts; ++attempt) {
    const int number = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (number < 0) return fail(errno, "no free loop device (LOOP_CTL_GET_FREE)");
    std::string path = "/dev/loop" + std::to_string(number);
    OwnedFd loop(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
    if (loop.get() < 0) return fail(errno, "cannot open " + path);
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &config) == 0) {
      return LoopDevice(loop.release(), std::move(path));
    }
    if (errno != EBUSY) {
      return fail(errno, "cannot attach " + backing_path + " to " + path + " (LOOP_CONFIGURE)");
    }
  }
  return fail(EBUSY, "cannot attach " + backing_path + ": every free loop device was taken");
}

LoopDevice::LoopDevice(LoopDevice&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

LoopDevice& LoopDevice::operator=(LoopDevice&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

LoopDevice::~LoopDevice() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace ecfs::block
