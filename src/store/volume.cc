#include "store/volume.h"

#include <utility>

#include "base/log.h"

namespace ecfs::store {

// Space kept back for metadata so that a change that has begun does not run
// out of room half way (btrfs reserves metadata space the same way before a
// transaction handle is given out): enough for a few hundred node copies.
static constexpr uint64_t kMetadataReserveNodes = 256;
// Subtrees (leaves, or shared subtrees at one reference each) a deleted
// subvolume loses per transaction: about 2 MiB of leaves read with 16 KiB
// nodes, so requests wait at most one such transaction for the lock.
static constexpr uint64_t kDropSubtreesPerCommit = 128;

Volume::Volume(std::unique_ptr<Engine> engine, VolumeOptions options)
    : engine_(std::move(engine)), options_(options) {}

Result<std::unique_ptr<Volume>> Volume::open(block::BlockDevice& device,
                                             const VolumeOptions& options) {
  OpenOptions engine_options;
  engine_options.read_only = options.read_only;
  engine_options.node_cache_capacity = options.node_cache_capacity;
  engine_options.discard = options.discard && !options.read_only;
  auto engine = Engine::open(device, engine_options);
  if (!engine) return std::unexpected(engine.error());
  std::unique_ptr<Volume> volume(new Volume(std::move(*engine), options));
  // Read-only volumes read the committed trees (the engine refuses begin()
  // on a read-only image).
  if (!options.read_only) ECFS_TRY(volume->engine_->begin());
  return volume;
}

Volume::~Volume() {
  if (Status closed = close(); !closed) {
    log::error("closing the volume failed: " + closed.error().to_string());
  }
}

void Volume::add_client(VolumeClient& client) { clients_.push_back(&client); }

void Volume::start_background_jobs() {
  if (options_.read_only || committer_.joinable()) return;
  committer_ = std::thread([this] { committer_loop(); });
  cleaner_ = std::thread([this] { cleaner_loop(); });
}

Status Volume::close() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return ok();
    stop_committer_ = true;
  }
  commit_wakeup_.notify_all();
  cleaner_wakeup_.notify_all();
  if (committer_.joinable()) committer_.join();
  if (cleaner_.joinable()) cleaner_.join();
  std::lock_guard lock(mutex_);
  await_writeout();
  Status result = ok();
  if (!options_.read_only && !remounted_read_only_ && !failed_) {
    for (VolumeClient* client : clients_) {
      if (result) result = client->prepare_close();
    }
    if (result) result = commit_locked();
  }
  closed_ = true;
  deletions_done_.notify_all();
  // Reads still in flight finish before the device may go.
  std::unique_lock no_reads(read_pins_);
  engine_->abort();
  return result;
}

Status Volume::check_writable() const {
  if (closed_) return fail(ESHUTDOWN, "the filesystem is unmounted");
  if (options_.read_only || remounted_read_only_) {
    return fail(EROFS, "the filesystem is mounted read-only");
  }
  if (failed_) {
    return fail(EROFS, "the filesystem turned read-only after an error; remount it");
  }
  return ok();
}

Status Volume::check_syncable() const {
  if (closed_) return fail(ESHUTDOWN, "the filesystem is unmounted");
  if (failed_) return fail(EIO, "the filesystem turned read-only after an error");
  return ok();
}

Result<BTree*> Volume::tree(uint64_t id) {
  if (!engine_->in_transaction()) return fail(EROFS, "the filesystem is read-only");
  return engine_->open_tree(id);
}

Result<BTree> Volume::read_tree(uint64_t id) {
  if (!engine_->in_transaction()) return engine_->committed_tree(id);
  auto changing = engine_->open_tree(id);
  if (!changing) return std::unexpected(changing.error());
  return **changing;
}

uint64_t Volume::buffered_bytes() const {
  uint64_t total = 0;
  for (const VolumeClient* client : clients_) total += client->buffered_bytes();
  return total;
}

uint64_t Volume::metadata_reserve() const { return kMetadataReserveNodes * engine_->node_size(); }

uint64_t Volume::free_bytes_after_buffered() const {
  const uint64_t free_bytes = engine_->space_usage().free_bytes;
  const uint64_t buffered = buffered_bytes();
  return free_bytes > buffered ? free_bytes - buffered : 0;
}

uint64_t Volume::available_bytes() const {
  const uint64_t free_now = free_bytes_after_buffered();
  return free_now > metadata_reserve() ? free_now - metadata_reserve() : 0;
}

Status Volume::check_space_now(uint64_t data_bytes) const {
  if (engine_->space_usage().free_bytes >= metadata_reserve() + buffered_bytes() + data_bytes) {
    return ok();
  }
  return fail(ENOSPC, "no space left on the device");
}

Status Volume::check_space(uint64_t data_bytes) {
  auto needed = [&] { return metadata_reserve() + buffered_bytes() + data_bytes; };
  if (engine_->space_usage().free_bytes >= needed()) return ok();
  // What the transaction frees (extents whose last reference it dropped,
  // nodes it copied) becomes free space only through its commit.
  if ((changed_ || engine_->space_usage().pinned_bytes > 0) && engine_->in_transaction() &&
      !failed_) {
    ECFS_TRY(commit_locked(/*trim_caches=*/false));
    if (engine_->space_usage().free_bytes >= needed()) return ok();
  }
  return fail(ENOSPC, "no space left on the device");
}

std::unexpected<Error> Volume::abort_change(Error error) {
  // The transaction holds part of a change: nothing of it may be committed.
  // What the last commit made durable stays; the volume turns read-only.
  if (!failed_) {
    log::error("the filesystem turned read-only after a failed change: " + error.to_string());
  }
  failed_ = true;
  // A writeout running meanwhile sees failed() and cancels itself.
  await_writeout();
  {
    std::unique_lock no_reads(read_pins_);
    engine_->abort();
  }
  for (VolumeClient* client : clients_) client->aborted();
  // For reads of the committed state.
  if (!options_.read_only) {
    if (Status begun = engine_->begin(); !begun) {
      log::error("cannot read the committed state after the failure: " + begun.error().to_string());
    }
  }
  return std::unexpected(std::move(error));
}

Status Volume::commit(std::unique_lock<std::mutex>& lock) {
  await_writeout(lock);
  if (read_only() || !engine_->in_transaction()) return ok();
  for (VolumeClient* client : clients_) {
    ECFS_TRY(client->write_out_before_commit(lock));
    await_writeout(lock);
    if (read_only() || !engine_->in_transaction()) return ok();
  }
  return commit_locked();
}

Status Volume::commit_locked(bool trim_caches) {
  await_writeout();
  if (read_only() || !engine_->in_transaction()) return ok();
  for (VolumeClient* client : clients_) {
    if (auto flushed = client->flush_for_commit(); !flushed) return abort_change(flushed.error());
  }
  std::unique_lock no_reads(read_pins_);
  if (auto committed = engine_->commit(); !committed) {
    // The engine aborted the transaction itself.
    log::error("the filesystem turned read-only after a failed commit: " +
               committed.error().to_string());
    failed_ = true;
    for (VolumeClient* client : clients_) client->aborted();
    if (Status begun = engine_->begin(); !begun) {
      log::error("cannot read the committed state after the failure: " + begun.error().to_string());
    }
    return committed;
  }
  no_reads.unlock();
  changed_ = false;
  for (VolumeClient* client : clients_) client->committed(trim_caches);
  if (Status begun = engine_->begin(); !begun) {
    log::error("the filesystem turned read-only: cannot begin a transaction: " +
               begun.error().to_string());
    failed_ = true;
    return begun;
  }
  return ok();
}

Status Volume::set_read_only(std::unique_lock<std::mutex>& lock, bool read_only) {
  if (closed_) return fail(ESHUTDOWN, "the filesystem is unmounted");
  if (!read_only) {
    if (options_.read_only) {
      return fail(EROFS,
                  "mounted read-only from the start (its image was opened read-only): "
                  "unmount it and mount it read-write");
    }
    if (failed_) {
      return fail(EROFS, "the filesystem turned read-only after an error: unmount and mount it");
    }
  } else if (!options_.read_only && !remounted_read_only_ && !failed_) {
    ECFS_TRY(commit(lock));
  }
  remounted_read_only_ = read_only && !options_.read_only;
  return ok();
}

void Volume::set_commit_interval(std::chrono::milliseconds interval) {
  options_.commit_interval = interval;
  ++committer_wakeups_;
  commit_wakeup_.notify_all();
}

void Volume::begin_writeout() { writeout_running_ = true; }

void Volume::end_writeout() {
  writeout_running_ = false;
  writeout_done_.notify_all();
}

void Volume::committer_loop() {
  std::unique_lock lock(mutex_);
  while (!stop_committer_) {
    const uint64_t generation = committer_wakeups_;
    commit_wakeup_.wait_for(lock, options_.commit_interval,
                            [&] { return stop_committer_ || committer_wakeups_ != generation; });
    if (stop_committer_) break;
    // A new interval starts the wait again.
    if (committer_wakeups_ != generation) continue;
    if (remounted_read_only_ || failed_) continue;
    if (changed_ || buffered_bytes() > 0) {
      // A failure was logged and turned the volume read-only; the next
      // change reports it to its caller.
      (void)commit(lock);
    }
    for (VolumeClient* client : clients_) client->idle();
  }
}

void Volume::wake_cleaner() {
  cleaner_woken_ = true;
  cleaner_wakeup_.notify_all();
}

Result<bool> Volume::drop_one_dead_tree() {
  if (read_only()) return false;
  SubvolumeCatalog subvolumes = catalog();
  auto dead = subvolumes.dead_trees();
  if (!dead) return abort_change(dead.error());
  for (uint64_t id : *dead) {
    bool in_use = false;
    for (const VolumeClient* client : clients_) in_use = in_use || client->uses_tree(id);
    if (in_use) continue;
    // The drop runs in transactions of its own, so that the deletion is
    // durable before any of the tree's space is freed: a commit first,
    // unless nothing changed since the last one (the previous part's).
    if (changed_ || buffered_bytes() > 0) ECFS_TRY(commit_locked());
    if (read_only()) return false;
    // A bounded part per transaction: the lock is given up between parts,
    // so a large deletion does not stall requests (kDropSubtreesPerCommit).
    auto gone = subvolumes.drop_dead_step(id, kDropSubtreesPerCommit);
    if (!gone) {
      return abort_change(Error(
          gone.error().errno_value(),
          "dropping deleted subvolume " + std::to_string(id) + ": " + gone.error().message()));
    }
    changed_ = true;
    // From the first part on, the tree is no longer whole: its subvolume
    // object answers with errors (nothing has it open).
    for (VolumeClient* client : clients_) client->tree_dropped(id);
    ECFS_TRY(commit_locked());
    return true;
  }
  return false;
}

void Volume::cleaner_loop() {
  std::unique_lock lock(mutex_);
  while (!stop_committer_) {
    // Woken by a deletion, or every commit interval for trees that were in
    // use at the last pass.
    cleaner_wakeup_.wait_for(lock, options_.commit_interval,
                             [&] { return stop_committer_ || cleaner_woken_; });
    if (stop_committer_) break;
    cleaner_woken_ = false;
    // One tree per turn, releasing the lock in between so that requests go
    // on; a failure was logged and turned the volume read-only.
    for (;;) {
      auto dropped = drop_one_dead_tree();
      deletions_done_.notify_all();
      if (!dropped || !*dropped || stop_committer_) break;
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
  }
}

Status Volume::wait_for_deletions(std::unique_lock<std::mutex>& lock) {
  ECFS_TRY(check_syncable());
  if (options_.read_only) return ok();
  ECFS_TRY(commit(lock));
  for (;;) {
    ECFS_TRY(check_syncable());
    auto dead = catalog().dead_trees();
    if (!dead) return std::unexpected(dead.error());
    if (dead->empty()) return ok();
    if (remounted_read_only_) {
      return fail(EROFS, "deleted subvolumes are dropped only while mounted read-write");
    }
    wake_cleaner();
    deletions_done_.wait(lock);
  }
}

}  // namespace ecfs::store
