// Whole-range positional I/O for the mount tests: pread / pwrite loop until
// everything is transferred (a FUSE mount may answer with short counts).
#pragma once

#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>

namespace ecfs::fuse_test {

// Closes its descriptor when it goes.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Up to `size` bytes from `offset`; fewer only at the end of the file or on
// an error.
inline std::string pread_string(int fd, size_t size, off_t offset) {
  std::string out(size, '\0');
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, out.data() + done, size - done, offset + static_cast<off_t>(done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

// All of `data` at `offset`; false on an error.
inline bool pwrite_all(int fd, std::string_view data, off_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace ecfs::fuse_test
