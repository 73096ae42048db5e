// Running `ecfs mount` as a daemon whose start-up errors still reach the
// terminal.
//
// The parent re-executes this program (/proc/self/exe) with the same mount
// arguments plus --foreground and a hidden "--ready-fd N", in a new session,
// and waits: the child reports through fd N once the mount exists (the
// parent then exits 0), or exits with its own status after printing its
// error on the still-shared stderr (the parent exits with that status).
//
// Why not fuse_daemonize(): it forks the process that already opened the
// image, and fork keeps neither the filesystem's threads (the periodic
// commit) nor the mlock of OpenSSL's secure heap that holds key material
// (mlock(2): "Memory locks are not inherited by a child created via
// fork"). A fresh exec sets both up in the daemon itself.
#pragma once

#include <string>
#include <vector>

namespace ecfs::cli {

// Starts `arguments` (without argv[0]) in the background as described and
// returns the exit status for the parent.
int run_in_background(const std::vector<std::string>& arguments);

// In the child, once mounted: moves to "/", points stdin, stdout and stderr
// at /dev/null and tells the waiting parent. Later messages go to syslog.
void report_ready(int ready_fd);

}  // namespace ecfs::cli
