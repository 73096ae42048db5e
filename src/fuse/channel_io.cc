#include "fuse/channel_io.h"

#include <linux/fuse.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "fuse/ring_abi.h"

namespace ecfs::fuse {
namespace {

thread_local RawRequest current;

// The INIT request's unique id and what the kernel offered in it. INIT is
// read and answered by one thread before any other request is served.
thread_local uint64_t init_unique = 0;
thread_local bool killpriv_offered = false;
thread_local bool ring_offered = false;

std::atomic<bool> negotiated{false};

// The hooked session and the ring that serves it once INIT has agreed on it.
struct Channel {
  fuse_session* session = nullptr;
  ChannelOptions options;
  std::mutex mutex;
  std::unique_ptr<RingChannel> ring;
};
Channel channel;

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
      const bool has_flags = available >= offsetof(fuse_init_in, flags) + sizeof(init.flags);
      killpriv_offered = has_flags && (init.flags & FUSE_HANDLE_KILLPRIV_V2) != 0;
      ring_offered = has_flags && (init.flags & FUSE_INIT_EXT) != 0 &&
                     available >= offsetof(fuse_init_in, flags2) + sizeof(init.flags2) &&
                     (init.flags2 & (ring_abi::kOverIoUring >> 32)) != 0;
      break;
    }
    default:
      break;
  }
}

// Serves the requests libfuse does not know and returns the status to
// answer with, or nothing for a request to hand to libfuse.
std::optional<int> serve_here(const uint8_t* bytes, size_t length) {
  note_request(bytes, length);
  if (current.opcode != FUSE_SYNCFS) return std::nullopt;
  if (!channel.options.sync_filesystem) return ENOSYS;
  // This runs inside libfuse's receive, where its loop may cancel the
  // thread as it ends: a commit must never be cancelled halfway.
  int cancel_state = 0;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  struct RestoreCancelState {
    int state;
    ~RestoreCancelState() { pthread_setcancelstate(state, nullptr); }
  } restore{cancel_state};
  if (Status synced = channel.options.sync_filesystem(); !synced) {
    fuse_log(FUSE_LOG_ERR, "ecfs: sync failed: %s\n", synced.error().to_string().c_str());
    return synced.error().errno_value() > 0 ? synced.error().errno_value() : EIO;
  }
  return 0;
}

// Answers request `unique` on /dev/fuse with `error` and no body.
void answer_on_device(int fd, uint64_t unique, int error) {
  fuse_out_header out;
  out.len = sizeof(out);
  out.error = -error;
  out.unique = unique;
  if (::write(fd, &out, sizeof(out)) != static_cast<ssize_t>(sizeof(out))) {
    // ENOENT: the caller was interrupted and no longer waits.
    if (errno != ENOENT) {
      fuse_log(FUSE_LOG_ERR, "ecfs: answering a request failed: %s\n", std::strerror(errno));
    }
  }
}

// Set once the ring serves requests: /dev/fuse then carries forgets and
// interrupts only.
std::atomic<bool> ring_serving{false};

// How long a /dev/fuse reader pauses after a forget while the ring serves.
// Each unlink or evicted inode queues a FORGET, and a reader blocked on
// /dev/fuse is woken for every one, usually on another CPU; pausing lets
// the kernel gather what comes meanwhile into one BATCH_FORGET read
// instead. A forget only lowers a lookup count, so nothing waits for it.
constexpr auto kForgetGatherPause = std::chrono::milliseconds(2);
thread_local bool last_read_was_forget = false;

ssize_t read_request(int fd, void* buffer, size_t length, void*) {
  if (last_read_was_forget && ring_serving.load(std::memory_order_relaxed)) {
    std::this_thread::sleep_for(kForgetGatherPause);
  }
  for (;;) {
    const ssize_t got = ::read(fd, buffer, length);
    if (got <= 0) return got;
    const auto* bytes = static_cast<const uint8_t*>(buffer);
    if (const std::optional<int> answered = serve_here(bytes, static_cast<size_t>(got))) {
      fuse_in_header header;
      std::memcpy(&header, bytes, sizeof(header));  // serve_here checked the length
      answer_on_device(fd, header.unique, *answered);
      continue;
    }
    last_read_was_forget = current.opcode == FUSE_FORGET || current.opcode == FUSE_BATCH_FORGET;
    return got;
  }
}

template <typename Field>
Field read_field(const uint8_t* bytes, size_t offset) {
  Field value;
  std::memcpy(&value, bytes + offset, sizeof(value));
  return value;
}

template <typename Field>
void write_field(uint8_t* bytes, size_t offset, Field value) {
  std::memcpy(bytes + offset, &value, sizeof(value));
}

// The payload buffer the kernel requires of a ring entry: its largest
// request for the limits this INIT reply sets.
size_t ring_payload_size(const uint8_t* init, uint32_t flags) {
  const auto max_write = read_field<uint32_t>(init, offsetof(fuse_init_out, max_write));
  uint32_t max_pages = ring_abi::kDefaultMaxPages;
  if ((flags & FUSE_MAX_PAGES) != 0) {
    max_pages = std::max<uint32_t>(max_pages,
                                   read_field<uint16_t>(init, offsetof(fuse_init_out, max_pages)));
  }
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return std::max({ring_abi::kMinReadBuffer, size_t{max_write}, size_t{max_pages} * page});
}

void start_ring(size_t payload_size) {
  std::lock_guard lock(channel.mutex);
  RingOptions options;
  options.on_request = serve_here;
  auto ring = RingChannel::start(channel.session, fuse_session_fd(channel.session), payload_size,
                                 std::move(options));
  if (!ring) {
    fuse_log(FUSE_LOG_WARNING, "ecfs: not serving through io_uring: %s\n",
             ring.error().to_string().c_str());
    return;
  }
  channel.ring = std::move(*ring);
  ring_serving = true;
  fuse_log(FUSE_LOG_INFO,
           "ecfs: serving requests through io_uring (%u queues, %u threads each%s)\n",
           channel.ring->queues(), channel.ring->threads_per_queue(),
           channel.ring->pinned() ? ", pinned" : "");
}

// The INIT reply as libfuse builds it (fuse_lowlevel.c send_reply_ok): the
// header, then fuse_init_out in one piece. Adds FUSE_HANDLE_KILLPRIV_V2 and
// FUSE_OVER_IO_URING to a successful reply when they were offered (and the
// ring is wanted), and starts the ring once the kernel has the reply.
ssize_t write_reply(int fd, iovec* iov, int count, void*) {
  if (ssize_t written = 0; RingChannel::take_reply(iov, count, written)) return written;
  fuse_out_header header;
  size_t ring_payload = 0;
  if (init_unique != 0 && count >= 2 && iov[0].iov_len == sizeof(header)) {
    std::memcpy(&header, iov[0].iov_base, sizeof(header));
    if (header.unique == init_unique) {
      init_unique = 0;
      auto* init = static_cast<uint8_t*>(iov[1].iov_base);
      const size_t length = iov[1].iov_len;
      if (header.error == 0 && length >= offsetof(fuse_init_out, flags) + sizeof(uint32_t)) {
        auto flags = read_field<uint32_t>(init, offsetof(fuse_init_out, flags));
        if (killpriv_offered) {
          flags |= FUSE_HANDLE_KILLPRIV_V2;
          negotiated = true;
        }
        if (ring_offered && channel.options.io_uring &&
            length >= offsetof(fuse_init_out, flags2) + sizeof(uint32_t)) {
          flags |= FUSE_INIT_EXT;
          const auto flags2 = read_field<uint32_t>(init, offsetof(fuse_init_out, flags2));
          write_field<uint32_t>(init, offsetof(fuse_init_out, flags2),
                                flags2 | static_cast<uint32_t>(ring_abi::kOverIoUring >> 32));
          ring_payload = ring_payload_size(init, flags);
        }
        write_field<uint32_t>(init, offsetof(fuse_init_out, flags), flags);
      }
    }
  }
  const ssize_t written = ::writev(fd, iov, count);
  // The kernel has taken the reply (and is initialized) when writev returns.
  if (ring_payload != 0 && written >= 0) start_ring(ring_payload);
  return written;
}

}  // namespace

const RawRequest& current_request() { return current; }

bool killpriv_negotiated() { return negotiated; }

Status install_channel_io(fuse_session* session, ChannelOptions options) {
  negotiated = false;
  channel.session = session;
  channel.options = std::move(options);
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

void stop_channel_io() {
  std::unique_ptr<RingChannel> ring;
  {
    std::lock_guard lock(channel.mutex);
    ring = std::move(channel.ring);
  }
  if (!ring) return;
  ring_serving = false;
  ring->stop();
  fuse_log(FUSE_LOG_INFO, "ecfs: %llu requests served through io_uring\n",
           static_cast<unsigned long long>(ring->requests_served()));
}

}  // namespace ecfs::fuse
