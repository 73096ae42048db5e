#include "fuse/ring_channel.h"

#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "fuse/ring_abi.h"

namespace ecfs::fuse {

using namespace ring_abi;

namespace {

// Completion tags: the entry's command, or the read of the stop eventfd.
constexpr uint64_t kEntryTag = 1;
constexpr uint64_t kStopTag = 2;

// The request is rebuilt in front of the payload buffer: room for the
// fuse_in_header and the largest per-opcode header, rounded to a page.
constexpr size_t kPrefixSize = 4096;
static_assert(kPrefixSize >= sizeof(fuse_in_header) + kOpInSize);

// The command bytes of a 128-byte SQE.
constexpr size_t kCommandAreaSize = 128 - offsetof(io_uring_sqe, cmd);
static_assert(kCommandAreaSize == 80 && sizeof(CommandRequest) <= kCommandAreaSize);

// Consecutive failed commands after which a thread gives its entry up.
constexpr int kMaxConsecutiveFailures = 3;

std::string describe(int errno_value) { return std::strerror(errno_value); }

}  // namespace

// One thread with its own io_uring and one entry of one queue.
class RingWorker {
 public:
  RingWorker(RingChannel& channel, fuse_session* session, int device_fd, unsigned queue,
             size_t payload_size, const RingOptions& options)
      : channel_(channel),
        session_(session),
        device_fd_(device_fd),
        queue_(queue),
        payload_capacity_(payload_size),
        options_(options) {}

  ~RingWorker() {
    stop();
    if (stop_fd_ >= 0) close(stop_fd_);
    if (region_ != MAP_FAILED) munmap(region_, region_size_);
  }

  // Starts the thread; returns once it has registered its entry, with the
  // registration's failure if there was one.
  Status start() {
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0) return fail(errno, "eventfd: " + describe(errno));
    region_size_ = kPrefixSize + payload_capacity_;
    region_ =
        mmap(nullptr, region_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region_ == MAP_FAILED)
      return fail(errno, "mapping a ring payload buffer: " + describe(errno));
    payload_ = static_cast<uint8_t*>(region_) + kPrefixSize;
    iov_[0] = {&headers_, sizeof(headers_)};
    iov_[1] = {payload_, payload_capacity_};

    std::promise<Status> registered;
    std::future<Status> result = registered.get_future();
    thread_ = std::thread([this, &registered] { run(registered); });
    Status status = result.get();
    if (!status) stop();
    return status;
  }

  void stop() {
    if (!thread_.joinable()) return;
    const uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
    thread_.join();
  }

  // The reply_space and take_reply halves run only on this worker's thread
  // while it serves a request (current_ names it then).
  MutableByteSpan reply_space() { return MutableByteSpan(payload_, payload_capacity_); }

  // The reply hook's half (RingChannel::take_reply) on this worker's thread.
  bool take_reply(const iovec* iov, int count, ssize_t& written) {
    if (count < 1 || iov[0].iov_len != sizeof(fuse_out_header)) return false;
    fuse_out_header out;
    std::memcpy(&out, iov[0].iov_base, sizeof(out));
    // Notifications (unique 0) and anything but this request's answer go
    // to /dev/fuse.
    if (out.unique == 0 || out.unique != serving_unique_) return false;
    size_t body = 0;
    for (int i = 1; i < count; ++i) body += iov[i].iov_len;
    written = static_cast<ssize_t>(sizeof(out) + body);
    if (body > payload_capacity_) {
      // Never larger than the kernel's own largest request; refuse rather
      // than truncate.
      fuse_log(FUSE_LOG_ERR, "ecfs: a %zu-byte reply does not fit the ring's payload buffer\n",
               body);
      out.error = -EIO;
      body = 0;
    } else {
      uint8_t* to = payload_;
      for (int i = 1; i < count; ++i) {
        // A reply built in the payload buffer (reply_space) is in place.
        if (iov[i].iov_base != to) std::memmove(to, iov[i].iov_base, iov[i].iov_len);
        to += iov[i].iov_len;
      }
    }
    commit(out, body);
    return true;
  }

 private:
  void run(std::promise<Status>& registered) {
    if (options_.pin_threads.value_or(false)) {
      cpu_set_t cpus;
      CPU_ZERO(&cpus);
      CPU_SET(queue_, &cpus);
      // An offline CPU cannot be joined; the thread then serves from anywhere.
      (void)pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
    }
    if (Status set_up = set_up_ring(); !set_up) {
      registered.set_value(std::move(set_up));
      return;
    }
    Status status = register_entry();
    const bool serving = status.has_value();
    registered.set_value(std::move(status));
    if (serving) serve();
    io_uring_queue_exit(&ring_);
  }

  Status set_up_ring() {
    io_uring_params params;
    std::memset(&params, 0, sizeof(params));
    // 128-byte SQEs carry the command; one thread submits, and the kernel's
    // work for a completion runs when that thread waits, not by
    // interrupting it.
    params.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (const int result = io_uring_queue_init_params(4, &ring_, &params); result < 0) {
      return fail(-result, "setting up an io_uring: " + describe(-result));
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_read(sqe, stop_fd_, &stop_value_, sizeof(stop_value_), 0);
    sqe->user_data = kStopTag;
    return ok();
  }

  // Registers the entry and reports the kernel's verdict: a refusal is
  // completed at once; an accepted registration stays pending until a
  // request arrives.
  Status register_entry() {
    queue_command(kCommandRegister, 0);
    if (const int submitted = io_uring_submit(&ring_); submitted < 0) {
      return fail(-submitted, "submitting a ring registration: " + describe(-submitted));
    }
    io_uring_cqe* cqe = nullptr;
    if (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe->user_data == kEntryTag && cqe->res < 0) {
      const int error = -cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      return fail(error, "the kernel refused a ring entry: " + describe(error));
    }
    return ok();
  }

  void queue_command(uint32_t command, uint64_t commit_id) {
    // Never empty: this thread has at most its entry's command and the stop
    // read in flight, in a ring of four.
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    const bool registering = command == kCommandRegister;
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, device_fd_, registering ? iov_ : nullptr,
                     registering ? kRegisterIovecs : 0, 0);
    sqe->cmd_op = command;
    CommandRequest request;
    std::memset(&request, 0, sizeof(request));
    request.commit_id = commit_id;
    request.queue = static_cast<uint16_t>(queue_);
    // The command area runs from the cmd member to the end of the 128-byte
    // SQE, past what io_uring_sqe declares.
    auto* area =
        reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(sqe) + offsetof(io_uring_sqe, cmd));
    std::memset(area, 0, kCommandAreaSize);
    std::memcpy(area, &request, sizeof(request));
    sqe->user_data = kEntryTag;
  }

  void serve() {
    int failures = 0;
    for (;;) {
      const int waited = io_uring_submit_and_wait(&ring_, 1);
      if (waited < 0 && waited != -EINTR && waited != -EAGAIN && waited != -EBUSY) {
        fuse_log(FUSE_LOG_ERR, "ecfs: io_uring queue %u: %s\n", queue_, describe(-waited).c_str());
        return;
      }
      io_uring_cqe* cqe = nullptr;
      while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
        const uint64_t tag = cqe->user_data;
        const int result = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        if (tag == kStopTag) return;
        if (result == 0) {
          failures = 0;
          handle_request();
          continue;
        }
        // The connection is gone (unmounted, aborted) or going.
        if (result == -ENOTCONN || result == -ECONNABORTED || result == -ECANCELED) return;
        // A command failed on its own (the request it answered was
        // interrupted, say): the entry is lost to the kernel, so register it
        // anew, and give up on a thread that keeps failing.
        fuse_log(FUSE_LOG_WARNING, "ecfs: io_uring queue %u: %s\n", queue_,
                 describe(-result).c_str());
        if (++failures >= kMaxConsecutiveFailures) return;
        queue_command(kCommandRegister, 0);
      }
    }
  }

  void handle_request() {
    fuse_in_header in;
    std::memcpy(&in, headers_.in_out, sizeof(in));
    EntryInOut entry;
    std::memcpy(&entry, &headers_.entry, sizeof(entry));
    const size_t payload = entry.payload_size;
    if (in.len < sizeof(in) + payload || in.len - sizeof(in) - payload > kOpInSize ||
        payload > payload_capacity_) {
      fuse_log(FUSE_LOG_ERR, "ecfs: malformed ring request (opcode %u, %u bytes)\n", in.opcode,
               in.len);
      answer_error(entry.commit_id, in.unique, EIO);
      return;
    }
    const size_t op_size = in.len - sizeof(in) - payload;
    uint8_t* request = payload_ - sizeof(in) - op_size;
    std::memcpy(request, &in, sizeof(in));
    std::memcpy(request + sizeof(in), headers_.op_in, op_size);

    serving_unique_ = in.unique;
    commit_id_ = entry.commit_id;
    replied_ = false;
    if (options_.on_request) {
      if (const std::optional<int> answered = options_.on_request(request, in.len)) {
        answer_error(entry.commit_id, in.unique, *answered);
        channel_.served_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    fuse_buf buffer;
    std::memset(&buffer, 0, sizeof(buffer));
    buffer.size = in.len;
    buffer.mem = request;
    current_ = this;
    fuse_session_process_buf(session_, &buffer);
    current_ = nullptr;
    if (!replied_) {
      // Every request that travels through the ring expects an answer; an
      // entry left without one would keep the kernel's caller waiting.
      fuse_log(FUSE_LOG_ERR, "ecfs: ring request (opcode %u) left unanswered\n", in.opcode);
      answer_error(entry.commit_id, in.unique, EIO);
    }
    channel_.served_.fetch_add(1, std::memory_order_relaxed);
  }

  void answer_error(uint64_t commit_id, uint64_t unique, int error) {
    commit_id_ = commit_id;
    fuse_out_header out;
    out.unique = unique;
    out.error = -error;
    commit(out, 0);
  }

  // Puts the reply's header and size in the entry and queues the commit,
  // which the thread's next wait submits.
  void commit(fuse_out_header out, size_t body) {
    out.len = static_cast<uint32_t>(sizeof(out) + body);
    std::memset(headers_.in_out, 0, sizeof(headers_.in_out));
    std::memcpy(headers_.in_out, &out, sizeof(out));
    EntryInOut entry;
    std::memset(&entry, 0, sizeof(entry));
    entry.payload_size = static_cast<uint32_t>(body);
    std::memcpy(&headers_.entry, &entry, sizeof(entry));
    queue_command(kCommandCommitAndFetch, commit_id_);
    replied_ = true;
  }

  RingChannel& channel_;
  fuse_session* session_;
  const int device_fd_;
  const unsigned queue_;
  const size_t payload_capacity_;
  const RingOptions& options_;

  io_uring ring_;
  int stop_fd_ = -1;
  uint64_t stop_value_ = 0;
  alignas(64) EntryHeaders headers_{};
  void* region_ = MAP_FAILED;
  size_t region_size_ = 0;
  uint8_t* payload_ = nullptr;
  iovec iov_[kRegisterIovecs]{};
  std::thread thread_;

  // The request being served on this thread (while current_ is this).
  uint64_t serving_unique_ = 0;
  uint64_t commit_id_ = 0;
  bool replied_ = false;

 public:
  static thread_local RingWorker* current_;
};

thread_local RingWorker* RingWorker::current_ = nullptr;

Result<std::unique_ptr<RingChannel>> RingChannel::start(fuse_session* session, int device_fd,
                                                        size_t payload_size, RingOptions options) {
  auto cpus = possible_cpus();
  if (!cpus) return std::unexpected(cpus.error());
  std::unique_ptr<RingChannel> channel(new RingChannel());
  channel->queues_ = *cpus;
  channel->threads_per_queue_ =
      options.threads_per_queue != 0 ? options.threads_per_queue : (*cpus <= 2 ? 4u : 2u);
  if (!options.pin_threads) options.pin_threads = pinning_helps();
  channel->options_ = std::move(options);
  // One thread for every queue first, so that a failure further on leaves
  // each queue served.
  for (unsigned i = 0; i < channel->threads_per_queue_; ++i) {
    for (unsigned queue = 0; queue < channel->queues_; ++queue) {
      auto worker = std::make_unique<RingWorker>(*channel, session, device_fd, queue, payload_size,
                                                 channel->options_);
      Status started = worker->start();
      if (!started) {
        if (channel->workers_.empty()) return std::unexpected(std::move(started).error());
        fuse_log(FUSE_LOG_WARNING, "ecfs: io_uring serves with %zu threads: %s\n",
                 channel->workers_.size(), started.error().to_string().c_str());
        return channel;
      }
      channel->workers_.push_back(std::move(worker));
    }
  }
  return channel;
}

RingChannel::~RingChannel() { stop(); }

void RingChannel::stop() {
  for (auto& worker : workers_) worker->stop();
}

bool RingChannel::take_reply(const iovec* iov, int count, ssize_t& written) {
  RingWorker* worker = RingWorker::current_;
  return worker != nullptr && worker->take_reply(iov, count, written);
}

MutableByteSpan RingChannel::reply_space() {
  RingWorker* worker = RingWorker::current_;
  return worker != nullptr ? worker->reply_space() : MutableByteSpan();
}

bool pinning_helps() {
  std::ifstream setting("/proc/sys/kernel/sched_autogroup_enabled");
  int autogroups = 0;
  const bool own_group = setting >> autogroups && autogroups != 0 && getsid(0) == getpid();
  return !own_group;
}

Result<unsigned> possible_cpus() {
  std::ifstream file("/sys/devices/system/cpu/possible");
  std::string list;
  if (!file || !std::getline(file, list)) {
    return fail(ENOENT, "cannot read /sys/devices/system/cpu/possible");
  }
  // A list of ranges, "0-3,5,8-9"; the kernel numbers queues by CPU id, so
  // the count is the highest id plus one.
  unsigned highest = 0;
  size_t position = 0;
  while (position < list.size()) {
    const size_t comma = list.find(',', position);
    const std::string range =
        list.substr(position, comma == std::string::npos ? std::string::npos : comma - position);
    const size_t dash = range.find('-');
    const std::string last = dash == std::string::npos ? range : range.substr(dash + 1);
    try {
      highest = std::max(highest, static_cast<unsigned>(std::stoul(last)));
    } catch (const std::exception&) {
      return fail(EINVAL, "cannot parse /sys/devices/system/cpu/possible: " + list);
    }
    if (comma == std::string::npos) break;
    position = comma + 1;
  }
  return highest + 1;
}

}  // namespace ecfs::fuse
