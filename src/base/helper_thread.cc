#include "base/helper_thread.h"

#include <utility>

namespace ecfs {

HelperThread::HelperThread() : thread_([this] { loop(); }) {}

HelperThread::~HelperThread() {
  (void)wait();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void HelperThread::start(std::function<Status()> job) {
  {
    std::lock_guard lock(mutex_);
    job_ = std::move(job);
    result_.reset();
  }
  changed_.notify_all();
}

Status HelperThread::wait() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return !job_ || result_.has_value(); });
  if (!job_) return ok();
  Status result = std::move(*result_);
  job_ = nullptr;
  result_.reset();
  return result;
}

Status HelperThread::run_beside(const std::function<Status()>& mine,
                                const std::function<Status()>& theirs) {
  std::unique_lock serving(caller_, std::try_to_lock);
  if (!serving.owns_lock()) {
    Status first = mine();
    Status second = theirs();
    return first ? std::move(second) : std::move(first);
  }
  start(theirs);
  Status first = mine();
  Status second = wait();
  return first ? std::move(second) : std::move(first);
}

void HelperThread::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || (job_ && !result_.has_value()); });
    if (stopping_) return;
    std::function<Status()> job = job_;
    lock.unlock();
    Status result = job();
    lock.lock();
    result_ = std::move(result);
    changed_.notify_all();
  }
}

}  // namespace ecfs
