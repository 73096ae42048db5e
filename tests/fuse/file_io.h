// Whole-range positional I/O for the mount tests: pread / pwrite loop until
// everything is transferred (a FUSE mount may answer with short counts).
#pragma once

#include <unistd.h>

#include <string>
#include <string_view>

namespace ecfs::fuse_test {

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
