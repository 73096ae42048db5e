// How the daemon reads requests from and writes replies to /dev/fuse.
//
// libfuse's session does the reading and writing through these hooks
// (fuse_session_custom_io), which add two things libfuse 3.14 (Debian 12)
// cannot express:
//
//  - FUSE_HANDLE_KILLPRIV_V2 in the INIT reply, when the kernel offers it.
//    With it the kernel marks the superblock SB_NOSEC and stops asking for
//    security.capability (a GETXATTR round trip) before every write(2); in
//    return the server clears set-user-ID and set-group-ID where the kernel
//    says so (include/uapi/linux/fuse.h, "FUSE_HANDLE_KILLPRIV_V2").
//  - The flags of a request that libfuse's decoding drops: WRITE's
//    FUSE_WRITE_KILL_SUIDGID and SETATTR's FATTR_KILL_SUIDGID.
//
// - FUSE_SYNCFS, which libfuse 3.14 does not know (it would answer ENOSYS,
//   and the kernel would never send it again): the hooks serve it
//   themselves with ChannelOptions::sync_filesystem. The kernel sends it at
//   sync(2), syncfs(2) and a remount read-only, after it has written its
//   dirty pages back, on fuseblk mounts (fs/fuse/inode.c fuse_sync_fs).
//
// - FUSE over io_uring (fuse/ring_channel.h): when the kernel offers it
//   (the fuse module's enable_uring parameter), the INIT reply takes it and
//   a RingChannel serves the requests from then on; replies to its requests
//   go back through the ring, everything else through /dev/fuse.
//
// A libfuse worker (or ring thread) reads a request and then serves it on
// the same thread, so what the hooks learn about a request is kept per
// thread and asked for by the handler with current_request().
#pragma once

#include <cstdint>
#include <functional>

#include "base/error.h"
#include "fuse/libfuse.h"
#include "fuse/ring_channel.h"

namespace ecfs::fuse {

// What the raw request being served on this thread said beyond what libfuse
// hands to the handler.
struct RawRequest {
  uint32_t opcode = 0;
  // The kernel asks the server to clear set-user-ID, and set-group-ID when
  // the file is group-executable (FUSE_WRITE_KILL_SUIDGID on a WRITE,
  // FATTR_KILL_SUIDGID on a SETATTR): an unprivileged write, truncate or
  // chown under FUSE_HANDLE_KILLPRIV_V2.
  bool kill_suidgid = false;
};

// The request this thread is serving (read by the hooks below).
const RawRequest& current_request();

struct ChannelOptions {
  // Serve through io_uring where the kernel offers it.
  bool io_uring = true;
  // Makes everything the filesystem has durable (FUSE_SYNCFS); unset, the
  // request is answered ENOSYS.
  std::function<Status()> sync_filesystem;
};

// Reads and writes `session`'s requests through the hooks, which take
// FUSE_HANDLE_KILLPRIV_V2 and FUSE_OVER_IO_URING when the kernel offers
// them. One session per process.
Status install_channel_io(fuse_session* session, ChannelOptions options = {});

// Ends the ring's threads once the session's loop has returned (the
// connection is gone) and logs how many requests they served.
void stop_channel_io();

// Whether the INIT exchange of this process agreed on
// FUSE_HANDLE_KILLPRIV_V2 (for logs and tests).
bool killpriv_negotiated();

}  // namespace ecfs::fuse
