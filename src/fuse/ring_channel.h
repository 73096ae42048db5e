// Serving FUSE requests through io_uring (fuse/ring_abi.h) beside /dev/fuse.
//
// Why: a request read from /dev/fuse wakes a server thread that, more often
// than not, sleeps on another CPU, and the reply wakes the caller back across
// CPUs: two cross-CPU wake-ups per synchronous request, 20-60 us each on a
// virtual machine, which bound a create/stat/unlink storm far below what the
// host filesystem does. The kernel's io_uring transport keeps one queue per
// CPU and hands a request to an entry of the caller's CPU; with the entry's
// thread on that CPU the request and its reply are same-CPU hand-offs, and
// one io_uring_enter both sends a reply and waits for the next request.
//
// How: `RingChannel::start` runs `threads_per_queue` threads for every
// possible CPU, each with an io_uring of its own (single issuer, task work
// deferred to its waits) and one registered entry. A thread turns the
// request its entry receives back into the byte stream a read of /dev/fuse
// gives (header, per-opcode header, payload, laid out contiguously in front
// of the payload buffer, so a write's data is not copied) and hands it to
// libfuse (fuse_session_process_buf), which calls the filesystem's handler
// on this thread. The handler's reply reaches channel_io's writev hook,
// which gives it to `take_reply`: the reply is copied into the entry and
// committed with the next wait. Requests the kernel does not route through
// the ring (forgets, interrupts) and the server's notifications keep using
// /dev/fuse and libfuse's own loop.
//
// Handlers must reply on the thread that called them (every ecfs handler
// does) and must not read the request's bytes after replying: the reply is
// written into the buffer the request arrived in.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "fuse/libfuse.h"

namespace ecfs::fuse {

struct RingOptions {
  // Threads (entries) per queue; more let a slow request (an fsync, a cold
  // read) leave others of the same CPU served. 0: 4 on up to two CPUs, 2
  // on more.
  unsigned threads_per_queue = 0;
  // Keep each queue's threads on the queue's CPU, where the requests come
  // from, so that a request and its reply are same-CPU wake-ups; unset:
  // pinning_helps().
  std::optional<bool> pin_threads;
  // Called on the serving thread with each request's bytes before libfuse
  // sees them (channel_io's bookkeeping of raw request flags, and requests
  // libfuse does not know). When it returns an errno (0 for success) the
  // request has been served: the thread answers it with that status and
  // no body instead of handing it to libfuse.
  std::function<std::optional<int>(const uint8_t*, size_t)> on_request;
};

class RingWorker;

class RingChannel {
 public:
  // Starts serving `session`'s requests from `device_fd` (its /dev/fuse
  // descriptor) through io_uring, with payload buffers of `payload_size`
  // bytes (the kernel's largest request for this connection). REQUIRES: the
  // INIT reply agreeing on FUSE_OVER_IO_URING has been written. Fails
  // (nothing started) when the first thread cannot set up its ring or the
  // kernel refuses its registration; /dev/fuse then keeps serving
  // everything. A later thread's failure only leaves fewer threads: the
  // kernel may already route requests to the entries registered (it does
  // once every queue has one), so those stay.
  static Result<std::unique_ptr<RingChannel>> start(fuse_session* session, int device_fd,
                                                    size_t payload_size, RingOptions options);

  // Stops and joins the threads.
  ~RingChannel();
  RingChannel(const RingChannel&) = delete;
  RingChannel& operator=(const RingChannel&) = delete;

  // Ends the threads (after the connection is gone they have ended already)
  // and waits for them.
  void stop();

  unsigned queues() const { return queues_; }
  unsigned threads_per_queue() const { return threads_per_queue_; }
  bool pinned() const { return options_.pin_threads.value_or(false); }
  uint64_t requests_served() const { return served_.load(std::memory_order_relaxed); }

  // If this thread is serving a ring request and `iov` is its reply, takes
  // the reply into the request's entry (committed when the thread next
  // waits), sets `written` to its length and returns true. Otherwise (no
  // ring request here, or a notification) returns false: the caller writes
  // to /dev/fuse.
  static bool take_reply(const iovec* iov, int count, ssize_t& written);

  // The payload buffer of the ring request this thread serves, for a reply
  // built in place (take_reply then copies nothing); empty when the thread
  // serves no ring request. Only for requests whose payload carries no
  // request bytes the handler still needs (READ: its arguments sit in the
  // per-opcode header).
  static MutableByteSpan reply_space();

 private:
  RingChannel() = default;

  RingOptions options_;
  unsigned queues_ = 0;
  unsigned threads_per_queue_ = 0;
  std::atomic<uint64_t> served_{0};
  std::vector<std::unique_ptr<RingWorker>> workers_;

  friend class RingWorker;
};

// Whether pinning the threads to their queues' CPUs pays here. It does
// when callers share the server's scheduling group: the scheduler then
// wakes a caller on the CPU that answered it. It does not when the server
// has a scheduling autogroup of its own (kernel.sched_autogroup_enabled,
// and the server leads its session, as the background daemon does after
// setsid): callers are then in other groups, the scheduler wakes a caller
// on the idle CPU instead, and pinned threads would make every reply a
// cross-CPU wake-up. (make bench-fs, background daemon: the storm's stat
// rate went from 0.03x to 0.08x of the host's once its threads were no
// longer pinned.)
bool pinning_helps();

// The number of queues the kernel keeps: one per possible CPU
// (/sys/devices/system/cpu/possible).
Result<unsigned> possible_cpus();

}  // namespace ecfs::fuse
