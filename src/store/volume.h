// Volume: the owner of a mounted image's storage engine (DESIGN.md layer 4,
// above the engine and below the POSIX layer). It holds the Engine, the one
// running transaction and the lock that guards it, the periodic commit, the
// turn-to-read-only state after a failed change, and the pins that keep
// extents in use by work running without the lock. The layers above (the
// filesystem trees of fs/) register as clients: they buffer changes in
// memory and write them into the transaction when the volume commits.
//
// Nothing here needs a key: the volume sees trees, extents and ciphertext.
//
// The transaction lock (mutex()) is the volume's one lock over engine state
// and over every client's state; clients take it for each operation and may
// release it (unique_lock) around work that runs without the engine, under
// a pin. Lock order: mutex() first, then a pin's lock (read pins are taken
// with mutex() held, and commits take the pins exclusively with it held).
//
// After an internal failure in the middle of a change (an I/O error, or
// ENOSPC where space was promised) abort_change() aborts the running
// transaction and the volume turns read-only (EROFS), as btrfs does on a
// transaction abort: what was committed stays intact, and the reason is
// logged (base/log.h).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "base/error.h"
#include "block/block_device.h"
#include "store/engine.h"
#include "store/subvolume_catalog.h"

namespace ecfs::store {

struct VolumeOptions {
  bool read_only = false;
  std::chrono::milliseconds commit_interval{5000};
  size_t node_cache_capacity = 16384;
  bool discard = false;  // OpenOptions::discard
};

// What a layer above keeps in memory for the running transaction. Every
// call is made with the volume's lock held.
class VolumeClient {
 public:
  virtual ~VolumeClient() = default;
  // Bytes of file data buffered in memory, not yet in any extent: the space
  // check counts them as promised.
  virtual uint64_t buffered_bytes() const = 0;
  // Before a commit that may take long: writes most buffered data out,
  // releasing `lock` around device writes (Volume::begin_writeout) so that
  // requests go on meanwhile.
  virtual Status write_out_before_commit(std::unique_lock<std::mutex>& lock) = 0;
  // Right before the engine commits: everything buffered goes into the
  // transaction. A failure aborts the transaction.
  virtual Status flush_for_commit() = 0;
  // The commit is durable; `trim_caches`: memory nobody needs may go.
  virtual void committed(bool trim_caches) = 0;
  // The transaction was aborted: what was buffered or cached for it is
  // forgotten, and read again from the committed state.
  virtual void aborted() = 0;
  // At unmount, before the last commit (orphans of the mount go now).
  virtual Status prepare_close() = 0;
  // After a periodic commit, while nothing is pending.
  virtual void idle() {}
  // Whether the client still uses tree `id` (open files of a deleted
  // subvolume): its drop waits until it does not.
  virtual bool uses_tree(uint64_t /*id*/) const { return false; }
  // Tree `id` was dropped (committed): whatever the client keeps of it
  // goes, and nothing of it is written again.
  virtual void tree_dropped(uint64_t /*id*/) {}
};

class Volume {
 public:
  // Opens the engine on `device` (which must outlive the volume) and, unless
  // read-only, begins the first transaction. The periodic commit starts
  // with start_background_jobs(), once the clients are registered and any
  // mount-time work is done. Errors as Engine::open.
  static Result<std::unique_ptr<Volume>> open(block::BlockDevice& device,
                                              const VolumeOptions& options = {});
  // Closes (as close()) if that was not done.
  ~Volume();
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  // The transaction lock (see the file comment).
  std::mutex& mutex() const { return mutex_; }

  // Registers a client (not owned; it must stay until close()). REQUIRES
  // mutex() held.
  void add_client(VolumeClient& client);

  // Starts the periodic commit and the cleaner, which drops deleted
  // subvolumes in the background (and resumes drops a crash interrupted).
  void start_background_jobs();

  // Stops the periodic commit, waits for writeouts, lets clients prepare,
  // commits (unless read-only or failed) and ends the transaction. Later
  // changes fail with ESHUTDOWN. Idempotent. Must be called WITHOUT the
  // lock (it joins the commit thread).
  Status close();

  // ---- state; REQUIRE mutex() held ----
  store::Engine& engine() { return *engine_; }
  const store::Engine& engine() const { return *engine_; }
  bool closed() const { return closed_; }
  bool failed() const { return failed_; }
  // Opened read-only: the image is never written.
  bool opened_read_only() const { return options_.read_only; }
  // Nothing may change now: opened or remounted read-only, failed, closed.
  bool read_only() const {
    return options_.read_only || remounted_read_only_ || failed_ || closed_;
  }
  // ESHUTDOWN after close, EROFS when read-only (saying why).
  Status check_writable() const;
  // ESHUTDOWN after close, EIO after a failure, ok otherwise (also when
  // read-only: there is nothing to make durable). For sync and fsync.
  Status check_syncable() const;
  // Something changed in the running transaction: the next periodic commit
  // writes it.
  void note_change() { changed_ = true; }
  bool changed() const { return changed_; }

  // Tree `id` in the running transaction, for changing. EROFS without one.
  Result<BTree*> tree(uint64_t id);
  // Tree `id` for reading: the running transaction's, or the committed one
  // on a read-only mount. A handle valid until the next change.
  Result<BTree> read_tree(uint64_t id);

  // ENOSPC before a change that will take `data_bytes` more. Space freed by
  // this transaction is reusable only after it commits, so short of space
  // it commits first when anything changed (as btrfs commits to reclaim
  // pinned space before it reports ENOSPC), keeping client caches.
  Status check_space(uint64_t data_bytes);
  // check_space without that commit: for a check in the middle of a change,
  // where a commit would take the trees from under it.
  Status check_space_now(uint64_t data_bytes) const;
  // Bytes of file data every client buffers (VolumeClient::buffered_bytes).
  uint64_t buffered_bytes() const;
  // Bytes free for new data and metadata beyond what clients buffer and the
  // metadata reserve; what statfs reports as available.
  uint64_t free_bytes_after_buffered() const;
  uint64_t available_bytes() const;

  // A change failed half way: logs why, aborts the transaction, tells the
  // clients, turns read-only, and returns `error` for the caller to pass on.
  std::unexpected<Error> abort_change(Error error);

  // Commits: clients write out (releasing `lock` around device writes),
  // flush, and the engine commits; a new transaction begins. With nothing
  // to commit (read-only, failed) returns ok. `lock` holds mutex().
  Status commit(std::unique_lock<std::mutex>& lock);
  // The same without releasing the lock: for callers holding it by
  // lock_guard. `trim_caches` as VolumeClient::committed.
  Status commit_locked(bool trim_caches = true);

  // ---- read-only remount ----
  // Read-only: commits everything first, then refuses every change (EROFS)
  // and writes nothing more to the image, not even at close. Read-write
  // again: EROFS for a volume opened read-only or turned read-only by an
  // error. `lock` holds mutex().
  Status set_read_only(std::unique_lock<std::mutex>& lock, bool read_only);
  void set_commit_interval(std::chrono::milliseconds interval);
  std::chrono::milliseconds commit_interval() const { return options_.commit_interval; }

  // ---- subvolumes: keyless jobs ----
  // The catalog over the running transaction (or the committed state when
  // read-only). REQUIRES mutex() held.
  SubvolumeCatalog catalog() { return SubvolumeCatalog(*engine_); }
  // A change made a subvolume dead (SubvolumeCatalog::unlink): the cleaner
  // drops its tree after the change is committed. REQUIRES mutex() held.
  void wake_cleaner();
  // Returns when no deleted subvolume is left to drop (ecfs subvolume
  // sync), committing first so that deletions of the running transaction
  // count. EIO when the volume failed meanwhile, ESHUTDOWN when it closed.
  // `lock` holds mutex().
  Status wait_for_deletions(std::unique_lock<std::mutex>& lock);

  // ---- pins of extents in use without the lock ----
  // A read of committed or running-transaction data, finishing without the
  // lock: while pinned, no commit makes freed space reusable and no abort
  // frees the transaction's allocations, so the extents it reads are not
  // overwritten under it. Taken with mutex() held; released without.
  using ReadPin = std::shared_lock<std::shared_mutex>;
  ReadPin pin_for_read() { return ReadPin(read_pins_); }

  // A writeout (device writes of buffered data into new extents, with the
  // lock released) between begin_writeout() and end_writeout(). Commits,
  // aborts, and every change that may truncate, punch, copy or remove file
  // data wait for it (await_writeout), so that no commit splits it and no
  // change removes what it writes. REQUIRE mutex() held.
  void begin_writeout();
  void end_writeout();
  bool writeout_running() const { return writeout_running_; }
  // Returns when no writeout is running, releasing mutex() while it waits.
  // `lock` is mutex() held (by lock_guard or unique_lock).
  template <typename Lock>
  void await_writeout(Lock& lock) {
    while (writeout_running_) writeout_done_.wait(lock);
  }
  void await_writeout() { await_writeout(mutex_); }
  // Waits for the end of the running writeout (one wakeup).
  void wait_for_writeout_end(std::unique_lock<std::mutex>& lock) { writeout_done_.wait(lock); }

 private:
  Volume(std::unique_ptr<Engine> engine, VolumeOptions options);

  void committer_loop();
  void cleaner_loop();
  // Drops a bounded part of one dead tree nobody uses and commits (the
  // whole tree over successive calls); false when none is left to drop
  // now. A failure turns the volume read-only (logged).
  Result<bool> drop_one_dead_tree();
  // Space kept back for metadata so that a change that has begun does not
  // run out of room half way.
  uint64_t metadata_reserve() const;

  std::unique_ptr<Engine> engine_;
  VolumeOptions options_;
  // Guards everything below, the engine, and the clients' state.
  mutable std::mutex mutex_;
  std::vector<VolumeClient*> clients_;
  bool closed_ = false;
  bool failed_ = false;               // a transaction was aborted: read-only until remount
  bool remounted_read_only_ = false;  // set_read_only(): no change reaches the image
  bool changed_ = false;              // something to commit
  // Held shared by read pins, exclusively (with mutex_ held) by what makes
  // freed space reusable: a commit (unpins), an abort (frees allocations).
  std::shared_mutex read_pins_;
  bool writeout_running_ = false;
  // Waited on with mutex_ itself, so that holders of lock_guard can wait.
  std::condition_variable_any writeout_done_;

  // The periodic commit thread.
  std::condition_variable commit_wakeup_;
  bool stop_committer_ = false;
  uint64_t committer_wakeups_ = 0;  // bumped when the commit interval changes
  std::thread committer_;

  // The cleaner thread: drops dead trees, one per transaction.
  std::condition_variable cleaner_wakeup_;
  bool cleaner_woken_ = true;               // the first pass resumes drops left by a crash
  std::condition_variable deletions_done_;  // after every drop and when idle
  std::thread cleaner_;
};

}  // namespace ecfs::store
