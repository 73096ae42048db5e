// Who made a FUSE request, as fscrypt needs to know it: the request's fsuid
// and whether the process holds the capability the kernel's fscrypt checks
// with capable(CAP_SYS_ADMIN) (v1 descriptor keys, removing every user's
// claim) and capable(CAP_FOWNER) (using a v2 key one has not added).
//
// The kernel hands a FUSE server only uid, gid and pid (fuse_req_ctx), not
// the caller's credentials. So "privileged" is decided here: uid 0, or
// CAP_SYS_ADMIN in the effective set that /proc/<pid>/status shows for the
// requesting thread. The thread is blocked in its ioctl while the request
// is served, so its pid names it for the whole request.
//
// Stateless; thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "fscrypt/keyring.h"

namespace ecfs::fuse {

// The CapEff mask of a /proc/<pid>/status text ("CapEff:\t000001ffffffffff"),
// or nullopt when the line is missing or malformed.
std::optional<uint64_t> effective_capabilities(std::string_view proc_status);

// Whether the request of `uid` from process `pid` is privileged: uid 0, or
// CAP_SYS_ADMIN in /proc/<pid>/status CapEff. A pid of 0 (a caller outside
// the daemon's pid namespace) or an unreadable status counts as not
// privileged: when in doubt, refuse.
bool request_is_privileged(uint32_t uid, pid_t pid);

// Whether process `pid` holds `capability` (a CAP_* number) in its
// effective set, from /proc/<pid>/status. False when the status cannot be
// read (pid 0: a caller outside the daemon's pid namespace).
bool process_has_capability(pid_t pid, int capability);

// The fscrypt caller of a request.
fscrypt::Caller fscrypt_caller(uint32_t uid, pid_t pid);

}  // namespace ecfs::fuse
