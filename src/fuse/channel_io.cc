#include "fuse/channel_io.h"

#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace ecfs::fuse {
namespace {

thread_local RawRequest current;

// The INIT request's unique id and what the kernel offered in it. INIT is
// read and answered by one thread before any other request is served.
thread_local uint64_t init_unique = 0;
thread_local bool killpriv_offered = false;

std::atomic<bool> negotiated{false};

// Copies the fixed part of a request's body after its header, or returns
// false when the request is too short to hold it.
template <typename Body>
bool body_of(const uint8_t* bytes, size_t length, Body& body) {
  if (length < sizeof(fuse_in_header) + sizeof(Body)) return false;
  std::memcpy(&body, bytes + sizeof(fuse_in_header), sizeof(Body));
  return true;
}

void note_request(const uint8_t* bytes, size_t length) {
  current = RawRequest{};
  fuse_in_header header;
  if (length < sizeof(header)) return;
  std::memcpy(&header, bytes, sizeof(header));
  current.opcode = header.opcode;
  switch (header.opcode) {
    case FUSE_WRITE: {
      fuse_write_in write;
      if (body_of(bytes, length, write)) {
        current.kill_suidgid = (write.write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
      }
      break;
    }
    case FUSE_SETATTR: {
      fuse_setattr_in setattr;
      if (body_of(bytes, length, setattr)) {
        current.kill_suidgid = (setattr.valid & FATTR_KILL_SUIDGID) != 0;
      }
      break;
    }
    case FUSE_INIT: {
      // fuse_init_in grew over time; flags sits at the same place in all
      // of them (major, minor, max_readahead, flags).
      fuse_init_in init;
      std::memset(&init, 0, sizeof(init));
      const size_t available = length - sizeof(header);
      std::memcpy(&init, bytes + sizeof(header), std::min(available, sizeof(init)));
      init_unique = header.unique;
      killpriv_offered = available >= offsetof(fuse_init_in, flags) + sizeof(init.flags) &&
                         (init.flags & FUSE_HANDLE_KILLPRIV_V2) != 0;
      break;
    }
    default:
      break;
  }
}

ssize_t read_request(int fd, void* buffer, size_t length, void*) {
  const ssize_t got = ::read(fd, buffer, length);
  if (got > 0) note_request(static_cast<const uint8_t*>(buffer), static_cast<size_t>(got));
  return got;
}

// The INIT reply as libfuse builds it (fuse_lowlevel.c send_reply_ok): the
// header, then fuse_init_out in one piece. Adds FUSE_HANDLE_KILLPRIV_V2 to
// a successful reply when it was offered.
ssize_t write_reply(int fd, iovec* iov, int count, void*) {
  fuse_out_header header;
  if (init_unique != 0 && count >= 2 && iov[0].iov_len == sizeof(header)) {
    std::memcpy(&header, iov[0].iov_base, sizeof(header));
    if (header.unique == init_unique) {
      init_unique = 0;
      if (header.error == 0 && killpriv_offered &&
          iov[1].iov_len >= offsetof(fuse_init_out, flags) + sizeof(uint32_t)) {
        auto* flags = reinterpret_cast<uint8_t*>(iov[1].iov_base) + offsetof(fuse_init_out, flags);
        uint32_t value;
        std::memcpy(&value, flags, sizeof(value));
        value |= FUSE_HANDLE_KILLPRIV_V2;
        std::memcpy(flags, &value, sizeof(value));
        negotiated = true;
      }
    }
  }
  return ::writev(fd, iov, count);
}

}  // namespace

const RawRequest& current_request() { return current; }

bool killpriv_negotiated() { return negotiated; }

Status install_channel_io(fuse_session* session) {
  negotiated = false;
  fuse_custom_io io;
  std::memset(&io, 0, sizeof(io));
  io.read = read_request;
  io.writev = write_reply;
  if (const int result = fuse_session_custom_io(session, &io, fuse_session_fd(session));
      result != 0) {
    return fail(-result, "libfuse refused the request hooks");
  }
  return ok();
}

}  // namespace ecfs::fuse
