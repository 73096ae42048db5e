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
// A libfuse worker reads a request and then serves it on the same thread
// (fuse_session_loop_mt), so what the read hook learns about a request is
// kept per thread and asked for by the handler with current_request().
#pragma once

#include <cstdint>

#include "base/error.h"
#include "fuse/libfuse.h"

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

// Reads and writes `session`'s requests through the hooks, which take
// FUSE_HANDLE_KILLPRIV_V2 when the kernel offers it.
Status install_channel_io(fuse_session* session);

// Whether the INIT exchange of this process agreed on
// FUSE_HANDLE_KILLPRIV_V2 (for logs and tests).
bool killpriv_negotiated();

}  // namespace ecfs::fuse
