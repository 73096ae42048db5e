// A scratch ext4 filesystem for the kernel-as-judge tests: a sparse image in
// a private temporary directory, formatted with encryption enabled, attached
// to a loop device and mounted. Every resource is released by a destructor,
// so a failing test still leaves no mount, loop device or file behind.
//
// Thread-safety: none; one test owns one ScratchExt4.
#pragma once

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "subprocess.h"

namespace ecfs::kernel_test {

// Why the kernel judge cannot run here, or "" when it can.
inline std::string kernel_judge_unavailable_reason() {
  if (geteuid() != 0) return "needs root (mount, loop devices, debugfs on the image)";
  if (access("/dev/loop-control", R_OK | W_OK) != 0) return "no /dev/loop-control";
  if (access("/sys/fs/ext4/features/encryption", F_OK) != 0)
    return "the kernel's ext4 has no encryption support (/sys/fs/ext4/features/encryption)";
  for (const char* tool : {"mkfs.ext4", "debugfs"})
    if (!program_available(tool)) return std::string(tool) + " is not installed";
  return {};
}

// An open file descriptor closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// A directory made by mkdtemp and removed, with its contents, on destruction.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "ecfs-judge-XXXXXX").string();
    if (mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }

  bool valid() const { return !path_.empty(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A loop device backed by an image file, detached on destruction. Attaching
// uses LOOP_CONFIGURE (Linux 5.8+) and retries when another process grabs
// the free device first.
class LoopDevice {
 public:
  LoopDevice() = default;
  LoopDevice(LoopDevice&&) = default;
  LoopDevice& operator=(LoopDevice&&) = default;
  ~LoopDevice() { detach(); }

  // Attaches `image`; returns "" or why it failed.
  std::string attach(const std::filesystem::path& image) {
    UniqueFd control(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (!control.valid()) return std::string("open /dev/loop-control: ") + strerror(errno);
    UniqueFd backing(open(image.c_str(), O_RDWR | O_CLOEXEC));
    if (!backing.valid()) return std::string("open image: ") + strerror(errno);
    for (int attempt = 0; attempt < 32; ++attempt) {
      int number = ioctl(control.get(), LOOP_CTL_GET_FREE);
      if (number < 0) return std::string("LOOP_CTL_GET_FREE: ") + strerror(errno);
      std::string path = "/dev/loop" + std::to_string(number);
      // Containers often have only /dev/loop0..7 as nodes.
      if (access(path.c_str(), F_OK) != 0)
        mknod(path.c_str(), S_IFBLK | 0660, makedev(7, static_cast<unsigned>(number)));
      UniqueFd device(open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (!device.valid()) return "open " + path + ": " + strerror(errno);
      loop_config config{};
      config.fd = static_cast<uint32_t>(backing.get());
      config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
      if (ioctl(device.get(), LOOP_CONFIGURE, &config) == 0) {
        device_ = std::move(device);
        path_ = path;
        return {};
      }
      if (errno != EBUSY) return "LOOP_CONFIGURE " + path + ": " + strerror(errno);
    }
    return "no free loop device after 32 attempts";
  }

  void detach() {
    if (!device_.valid()) return;
    // With LO_FLAGS_AUTOCLEAR the device is torn down once the last opener
    // (us, after the unmount) closes it; LOOP_CLR_FD makes that explicit.
    ioctl(device_.get(), LOOP_CLR_FD, 0);
    device_.reset();
    path_.clear();
  }

  const std::string& path() const { return path_; }

 private:
  UniqueFd device_;
  std::string path_;
};

// The scratch filesystem. Typical use:
//   ScratchExt4 fs;  if (auto why = fs.create(4096); !why.empty()) FAIL() << why;
//   fs.mount(); ... fs.unmount(); read fs.image() raw ...; fs.mount(); ...
class ScratchExt4 {
 public:
  ScratchExt4() = default;
  ScratchExt4(const ScratchExt4&) = delete;
  ScratchExt4& operator=(const ScratchExt4&) = delete;
  ~ScratchExt4() { unmount(); }

  // Makes and formats a sparse image of `size_mib` MiB with `block_size`
  // byte blocks. The features are those fscrypt needs: `encrypt`, and
  // `stable_inodes` for the IV_INO_LBLK_* policies. Returns "" or why not.
  std::string create(unsigned block_size, unsigned size_mib = 64) {
    if (!dir_.valid()) return "mkdtemp failed";
    image_ = dir_.path() / "ext4.img";
    mount_point_ = dir_.path() / "mnt";
    std::error_code error;
    std::filesystem::create_directory(mount_point_, error);
    if (error) return "mkdir mount point: " + error.message();
    {
      UniqueFd fd(open(image_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd.valid() || ftruncate(fd.get(), off_t{size_mib} << 20) != 0)
        return std::string("create image: ") + strerror(errno);
    }
    block_size_ = block_size;
    ProcessResult mkfs =
        run_process({"mkfs.ext4", "-q", "-F", "-O", "encrypt,stable_inodes", "-b",
                     std::to_string(block_size), "-E", "nodiscard", image_.string()});
    if (!mkfs.succeeded()) return "mkfs.ext4 failed: " + mkfs.err;
    return {};
  }

  // Attaches the image and mounts it at mount_point(). Returns "" or why not.
  std::string mount() {
    if (mounted_) return {};
    if (std::string why = loop_.attach(image_); !why.empty()) return why;
    if (::mount(loop_.path().c_str(), mount_point_.c_str(), "ext4", 0, nullptr) != 0) {
      std::string why = std::string("mount: ") + strerror(errno);
      loop_.detach();
      return why;
    }
    mounted_ = true;
    return {};
  }

  // Unmounts and detaches. Retries briefly when the mount is busy (a file
  // descriptor being closed by a failed assertion's unwinding) and falls back
  // to a lazy unmount, so nothing is left mounted.
  void unmount() {
    if (mounted_) {
      bool done = false;
      for (int attempt = 0; attempt < 50 && !done; ++attempt) {
        done = umount2(mount_point_.c_str(), 0) == 0 || errno == EINVAL;
        if (!done) usleep(20000);
      }
      if (!done) umount2(mount_point_.c_str(), MNT_DETACH);
      mounted_ = false;
    }
    loop_.detach();
  }

  bool mounted() const { return mounted_; }
  unsigned block_size() const { return block_size_; }
  const std::filesystem::path& image() const { return image_; }
  const std::filesystem::path& mount_point() const { return mount_point_; }
  // A private directory outside the filesystem for the test's own files.
  const std::filesystem::path& work_dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::filesystem::path image_;
  std::filesystem::path mount_point_;
  unsigned block_size_ = 0;
  LoopDevice loop_;
  bool mounted_ = false;
};

}  // namespace ecfs::kernel_test
