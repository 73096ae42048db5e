// fuse_floor MOUNTPOINT: the fastest FUSE filesystem this machine can run,
// for bench/fs_bench.sh to measure the metadata storm against. It keeps
// only a namespace in memory (no storage, no checksums, no transactions)
// and talks to the kernel exactly as `ecfs mount` does: the same libfuse
// (low-level API, multi-threaded loop with one cloned /dev/fuse descriptor
// per worker, 8 threads, 4 idle), ecfs's request hooks (fuse/channel_io.h:
// FUSE over io_uring where the kernel offers it), default_permissions, the write-back
// cache, readdirplus, the same entry and attribute timeouts, negative
// entries, and no FLUSH. What it costs per operation is what the kernel's
// FUSE round trips cost here; a storm through ecfs can approach it but not
// pass it.
//
// Serves until unmounted (fusermount3 -u); stays in the foreground.
//
//   fuse_floor MOUNTPOINT [--no-io-uring]
//
// --no-io-uring keeps to /dev/fuse where the kernel offers the ring.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fuse/channel_io.h"
#include "fuse/libfuse.h"

namespace {

constexpr double kTimeoutSeconds = 60.0;  // ecfs's AdapterOptions defaults

struct Node {
  struct stat attributes;
  std::map<std::string, fuse_ino_t> children;  // directories only
  uint64_t lookups = 0;
};

// One snapshot of a directory's entries per opendir, as (name, ino).
using Listing = std::vector<std::pair<std::string, fuse_ino_t>>;

class Namespace {
 public:
  Namespace() {
    Node& root = nodes_[FUSE_ROOT_ID];
    root.attributes = make_attributes(FUSE_ROOT_ID, S_IFDIR | 0755, 0, 0);
    root.attributes.st_nlink = 2;
    root.lookups = 1;
  }

  int lookup(fuse_ino_t parent, const char* name, fuse_entry_param& entry) {
    std::lock_guard lock(mutex_);
    auto dir = nodes_.find(parent);
    if (dir == nodes_.end()) return ENOENT;
    auto child = dir->second.children.find(name);
    if (child == dir->second.children.end()) return ENOENT;
    fill_entry(child->second, entry);
    return 0;
  }

  int make(fuse_ino_t parent, const char* name, mode_t mode, const fuse_ctx& caller,
           fuse_entry_param& entry) {
    std::lock_guard lock(mutex_);
    auto dir = nodes_.find(parent);
    if (dir == nodes_.end()) return ENOENT;
    if (dir->second.children.contains(name)) return EEXIST;
    const fuse_ino_t ino = next_ino_++;
    Node& node = nodes_[ino];
    node.attributes = make_attributes(ino, mode & ~caller.umask, caller.uid, caller.gid);
    if (S_ISDIR(mode)) {
      node.attributes.st_nlink = 2;
      ++dir->second.attributes.st_nlink;
    }
    dir->second.children.emplace(name, ino);
    touch(dir->second.attributes);
    fill_entry(ino, entry);
    return 0;
  }

  int remove(fuse_ino_t parent, const char* name, bool directory) {
    std::lock_guard lock(mutex_);
    auto dir = nodes_.find(parent);
    if (dir == nodes_.end()) return ENOENT;
    auto child = dir->second.children.find(name);
    if (child == dir->second.children.end()) return ENOENT;
    Node& node = nodes_.at(child->second);
    if (directory != S_ISDIR(node.attributes.st_mode)) return directory ? ENOTDIR : EISDIR;
    if (directory && !node.children.empty()) return ENOTEMPTY;
    if (directory) --dir->second.attributes.st_nlink;
    node.attributes.st_nlink = 0;
    const fuse_ino_t ino = child->second;
    dir->second.children.erase(child);
    touch(dir->second.attributes);
    drop_if_unused(ino);
    return 0;
  }

  void forget(fuse_ino_t ino, uint64_t count) {
    std::lock_guard lock(mutex_);
    auto node = nodes_.find(ino);
    if (node == nodes_.end()) return;
    node->second.lookups -= std::min(count, node->second.lookups);
    drop_if_unused(ino);
  }

  int getattr(fuse_ino_t ino, struct stat& out) {
    std::lock_guard lock(mutex_);
    auto node = nodes_.find(ino);
    if (node == nodes_.end()) return ENOENT;
    out = node->second.attributes;
    return 0;
  }

  int setattr(fuse_ino_t ino, const struct stat& in, int to_set, struct stat& out) {
    std::lock_guard lock(mutex_);
    auto node = nodes_.find(ino);
    if (node == nodes_.end()) return ENOENT;
    struct stat& a = node->second.attributes;
    if (to_set & FUSE_SET_ATTR_MODE) a.st_mode = (a.st_mode & S_IFMT) | (in.st_mode & 07777);
    if (to_set & FUSE_SET_ATTR_UID) a.st_uid = in.st_uid;
    if (to_set & FUSE_SET_ATTR_GID) a.st_gid = in.st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) a.st_size = in.st_size;
    if (to_set & FUSE_SET_ATTR_ATIME) a.st_atim = in.st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME) a.st_mtim = in.st_mtim;
    if (to_set & FUSE_SET_ATTR_CTIME) a.st_ctim = in.st_ctim;
    out = a;
    return 0;
  }

  int list(fuse_ino_t ino, Listing& out) {
    std::lock_guard lock(mutex_);
    auto dir = nodes_.find(ino);
    if (dir == nodes_.end()) return ENOENT;
    out.assign(dir->second.children.begin(), dir->second.children.end());
    return 0;
  }

  // A readdirplus entry: counts a lookup like fill_entry, or fails if the
  // entry went away since opendir.
  bool entry_of(fuse_ino_t ino, fuse_entry_param& entry) {
    std::lock_guard lock(mutex_);
    if (!nodes_.contains(ino)) return false;
    fill_entry(ino, entry);
    return true;
  }

 private:
  static struct stat make_attributes(fuse_ino_t ino, mode_t mode, uid_t uid, gid_t gid) {
    struct stat a;
    std::memset(&a, 0, sizeof(a));
    a.st_ino = ino;
    a.st_mode = mode;
    a.st_nlink = 1;
    a.st_uid = uid;
    a.st_gid = gid;
    a.st_blksize = 4096;
    touch(a);
    a.st_atim = a.st_mtim;
    return a;
  }

  static void touch(struct stat& a) {
    clock_gettime(CLOCK_REALTIME, &a.st_mtim);
    a.st_ctim = a.st_mtim;
  }

  void fill_entry(fuse_ino_t ino, fuse_entry_param& entry) {
    Node& node = nodes_.at(ino);
    ++node.lookups;
    std::memset(&entry, 0, sizeof(entry));
    entry.ino = ino;
    entry.attr = node.attributes;
    entry.attr_timeout = kTimeoutSeconds;
    entry.entry_timeout = kTimeoutSeconds;
  }

  void drop_if_unused(fuse_ino_t ino) {
    auto node = nodes_.find(ino);
    if (node != nodes_.end() && node->second.lookups == 0 &&
        node->second.attributes.st_nlink == 0) {
      nodes_.erase(node);
    }
  }

  std::mutex mutex_;
  std::unordered_map<fuse_ino_t, Node> nodes_;
  fuse_ino_t next_ino_ = FUSE_ROOT_ID + 1;
};

Namespace& names(fuse_req_t req) { return *static_cast<Namespace*>(fuse_req_userdata(req)); }

void reply_entry_or_error(fuse_req_t req, int error, const fuse_entry_param& entry) {
  if (error != 0) {
    fuse_reply_err(req, error);
  } else {
    fuse_reply_entry(req, &entry);
  }
}

void op_init(void*, fuse_conn_info* conn) {
  for (unsigned capability :
       {FUSE_CAP_WRITEBACK_CACHE, FUSE_CAP_POSIX_ACL, FUSE_CAP_DONT_MASK, FUSE_CAP_READDIRPLUS,
        FUSE_CAP_READDIRPLUS_AUTO, FUSE_CAP_PARALLEL_DIROPS, FUSE_CAP_ASYNC_READ}) {
    if (conn->capable & capability) conn->want |= capability;
  }
  conn->want &= ~(FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_SPLICE_READ |
                  FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  conn->max_write = 1u << 20;
  conn->time_gran = 1;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_entry_param entry;
  const int error = names(req).lookup(parent, name, entry);
  if (error == ENOENT) {  // a negative entry, as ecfs caches in plain directories
    std::memset(&entry, 0, sizeof(entry));
    entry.entry_timeout = kTimeoutSeconds;
    fuse_reply_entry(req, &entry);
    return;
  }
  reply_entry_or_error(req, error, entry);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t count) {
  names(req).forget(ino, count);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) names(req).forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat attributes;
  if (const int error = names(req).getattr(ino, attributes); error != 0) {
    fuse_reply_err(req, error);
    return;
  }
  fuse_reply_attr(req, &attributes, kTimeoutSeconds);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* in, int to_set, fuse_file_info*) {
  struct stat attributes;
  if (const int error = names(req).setattr(ino, *in, to_set, attributes); error != 0) {
    fuse_reply_err(req, error);
    return;
  }
  fuse_reply_attr(req, &attributes, kTimeoutSeconds);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  fuse_entry_param entry;
  reply_entry_or_error(
      req, names(req).make(parent, name, S_IFDIR | mode, *fuse_req_ctx(req), entry), entry);
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) {
  fuse_entry_param entry;
  if (const int error = names(req).make(parent, name, mode, *fuse_req_ctx(req), entry);
      error != 0) {
    fuse_reply_err(req, error);
    return;
  }
  fi->fh = 0;
  fuse_reply_create(req, &entry, fi);
}

void op_open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  fi->fh = 0;
  fuse_reply_open(req, fi);
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, names(req).remove(parent, name, false));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, names(req).remove(parent, name, true));
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto listing = std::make_unique<Listing>();
  if (const int error = names(req).list(ino, *listing); error != 0) {
    fuse_reply_err(req, error);
    return;
  }
  fi->fh = reinterpret_cast<uint64_t>(listing.release());
  fuse_reply_open(req, fi);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<Listing*>(fi->fh);
  fuse_reply_err(req, 0);
}

// Entries at offsets 1.. (0 is the start); "." and ".." are left to the
// kernel's callers, as the storm does not need them.
void op_readdirplus(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
  const Listing& listing = *reinterpret_cast<const Listing*>(fi->fh);
  std::vector<char> buffer(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(offset); i < listing.size(); ++i) {
    fuse_entry_param entry;
    std::memset(&entry, 0, sizeof(entry));
    const size_t needed = fuse_add_direntry_plus(req, nullptr, 0, listing[i].first.c_str(), &entry,
                                                 static_cast<off_t>(i + 1));
    if (needed > size - used) break;
    if (!names(req).entry_of(listing[i].second, entry)) continue;
    used += fuse_add_direntry_plus(req, buffer.data() + used, size - used, listing[i].first.c_str(),
                                   &entry, static_cast<off_t>(i + 1));
  }
  fuse_reply_buf(req, buffer.data(), used);
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, ENOSYS); }

// No extended attributes, so no ACLs: the kernel's permission checks use
// the mode (as they do in ecfs for files without ACLs).
void op_getxattr(fuse_req_t req, fuse_ino_t, const char*, size_t) { fuse_reply_err(req, ENODATA); }

fuse_lowlevel_ops operations() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof(ops));
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.mkdir = op_mkdir;
  ops.create = op_create;
  ops.open = op_open;
  ops.release = op_release;
  ops.flush = op_flush;
  ops.getxattr = op_getxattr;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.opendir = op_opendir;
  ops.releasedir = op_releasedir;
  ops.readdirplus = op_readdirplus;
  return ops;
}

}  // namespace

int main(int argc, char** argv) {
  const bool ring = argc == 2;
  if (argc != 2 && !(argc == 3 && std::strcmp(argv[2], "--no-io-uring") == 0)) {
    std::fprintf(stderr, "usage: fuse_floor MOUNTPOINT [--no-io-uring]\n");
    return 2;
  }
  char program[] = "fuse_floor";
  char option_flag[] = "-o";
  char options[] = "default_permissions,subtype=fuse_floor,fsname=fuse_floor";
  char* arguments[] = {program, option_flag, options, nullptr};
  fuse_args args = FUSE_ARGS_INIT(3, arguments);
  Namespace root;
  const fuse_lowlevel_ops ops = operations();
  fuse_session* session = fuse_session_new(&args, &ops, sizeof(ops), &root);
  if (session == nullptr) return 1;
  if (fuse_session_mount(session, argv[1]) != 0) {
    fuse_session_destroy(session);
    return 1;
  }
  ecfs::fuse::ChannelOptions channel;
  channel.io_uring = ring;
  if (auto hooked = ecfs::fuse::install_channel_io(session, channel); !hooked) {
    std::fprintf(stderr, "fuse_floor: %s\n", hooked.error().to_string().c_str());
    fuse_session_unmount(session);
    fuse_session_destroy(session);
    return 1;
  }
  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(config, 1);
  fuse_loop_cfg_set_max_threads(config, 8);
  fuse_loop_cfg_set_idle_threads(config, 4);
  const int looped = fuse_session_loop_mt(session, config);
  fuse_loop_cfg_destroy(config);
  ecfs::fuse::stop_channel_io();
  fuse_session_unmount(session);
  fuse_session_destroy(session);
  return looped == 0 ? 0 : 1;
}
