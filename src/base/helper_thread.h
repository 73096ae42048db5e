// A long-lived second thread for work that splits in two: the owner hands
// it one job and does its own meanwhile. Data writes use it so that one
// piece is encrypted and checksummed while another is on its way to the
// device (fs::Writeout, block::submit_write): on a machine with few CPUs the
// device wait of one thread is the other's CPU time.
//
// Kept for the life of its owner, so the helper's thread-local buffers
// (block/inline_crypt.cc's bounce buffers) stay allocated and faulted in.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "base/error.h"

namespace ecfs {

class HelperThread {
 public:
  HelperThread();
  // Waits for the job in progress, then ends the thread.
  ~HelperThread();
  HelperThread(const HelperThread&) = delete;
  HelperThread& operator=(const HelperThread&) = delete;

  // Runs `theirs` on the helper and `mine` on the calling thread at the
  // same time; returns once both are done, with the first failure (mine's
  // first). Any thread may call; when the helper already serves another
  // caller, `theirs` runs on the calling thread after `mine`.
  Status run_beside(const std::function<Status()>& mine, const std::function<Status()>& theirs);

  // For one owner that keeps a job going while it prepares the next:
  // start() hands the helper `job` (REQUIRES: the previous one was waited
  // for), wait() returns its status once it is done (ok when none was
  // started). Not to be mixed with run_beside calls from other threads.
  void start(std::function<Status()> job);
  Status wait();

 private:
  void loop();

  std::mutex caller_;  // held by the run_beside caller the helper serves
  std::mutex mutex_;
  std::condition_variable changed_;
  std::function<Status()> job_;   // guarded by mutex_; set while pending or running
  std::optional<Status> result_;  // guarded by mutex_; set once the job is done
  bool stopping_ = false;         // guarded by mutex_
  std::thread thread_;            // last: starts once the members above exist
};

}  // namespace ecfs
