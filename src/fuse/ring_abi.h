// The kernel's FUSE-over-io_uring interface (Linux 6.14+, FUSE protocol
// 7.42): what a server exchanges with /dev/fuse through IORING_OP_URING_CMD.
// Debian 12's <linux/fuse.h> (Linux 6.1) predates it, so the constants and
// layouts are restated here from include/uapi/linux/fuse.h and
// Documentation/filesystems/fuse-io-uring.rst; the static_asserts pin the
// sizes the kernel expects.
//
// The exchange: the server registers entries (a header buffer and a payload
// buffer each) per queue; the kernel keeps one queue per possible CPU and
// hands a request from a task on CPU n to an entry of queue n by completing
// that entry's command. The server answers with COMMIT_AND_FETCH, which
// delivers the reply and makes the entry available again in one step.
// Forgets, interrupts and notifications still travel over /dev/fuse.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ecfs::fuse::ring_abi {

// INIT flag (fuse_init_in/out flags2 bit 9): the server may serve requests
// through io_uring. The kernel offers it only while the fuse module's
// enable_uring parameter is on.
inline constexpr uint64_t kOverIoUring = uint64_t{1} << 41;

// The sub-commands (io_uring_sqe.cmd_op) of IORING_OP_URING_CMD on /dev/fuse.
inline constexpr uint32_t kCommandRegister = 1;        // FUSE_IO_URING_CMD_REGISTER
inline constexpr uint32_t kCommandCommitAndFetch = 2;  // FUSE_IO_URING_CMD_COMMIT_AND_FETCH

// A registration passes an array of two iovecs in sqe->addr: the entry's
// headers, then its payload buffer.
inline constexpr unsigned kRegisterIovecs = 2;

// The trailer of an entry's header buffer (struct fuse_uring_ent_in_out).
struct EntryInOut {
  uint64_t flags;
  // On a fetch: the request's unique id, to be named by the commit.
  uint64_t commit_id;
  // Bytes of the payload buffer in use: the request's arguments after the
  // first, or the reply's arguments.
  uint32_t payload_size;
  uint32_t padding;
  uint64_t reserved;
};
static_assert(sizeof(EntryInOut) == 32);

// An entry's header buffer (struct fuse_uring_req_header).
inline constexpr size_t kInOutHeaderSize = 128;  // FUSE_URING_IN_OUT_HEADER_SZ
inline constexpr size_t kOpInSize = 128;         // FUSE_URING_OP_IN_OUT_SZ
struct EntryHeaders {
  // fuse_in_header on a fetch, fuse_out_header on a commit.
  uint8_t in_out[kInOutHeaderSize];
  // The request's first argument, the per-opcode header (may be empty).
  uint8_t op_in[kOpInSize];
  EntryInOut entry;
};
static_assert(sizeof(EntryHeaders) == 288);

// The command in the SQE's 80-byte command area (struct fuse_uring_cmd_req);
// the SQEs are 128 bytes (IORING_SETUP_SQE128) to hold it.
struct CommandRequest {
  uint64_t flags;
  uint64_t commit_id;  // COMMIT_AND_FETCH: the request answered
  uint16_t queue;      // the queue (CPU) the entry belongs to
  uint8_t padding[6];
};
static_assert(sizeof(CommandRequest) == 24);

// The smallest payload buffer the kernel accepts is its largest request:
// max(FUSE_MIN_READ_BUFFER, max_write, max_pages * page size).
inline constexpr size_t kMinReadBuffer = 8192;
// max_pages when FUSE_MAX_PAGES was not agreed (FUSE_DEFAULT_MAX_PAGES_PER_REQ).
inline constexpr uint32_t kDefaultMaxPages = 32;

}  // namespace ecfs::fuse::ring_abi
