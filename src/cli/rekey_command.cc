#include "cli/rekey_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cli/ioctl_client.h"
#include "cli/key_client.h"
#include "cli/progress_line.h"
#include "cli/protected_key.h"
#include "cli/protector_access.h"
#include "cli/size_parse.h"
#include "fscrypt/key_identifier.h"

namespace ecfs::cli {
namespace {

constexpr const char* kCommand = "rekey";

constexpr const char* kDescription =
    "move an encrypted directory tree to another key for everything written from now on\n"
    "\n"
    "  ecfs rekey DIR --to KEY_ID [--contents] [--passphrase-fd N | --key-file FILE |\n"
    "             --protector ID]\n"
    "  ecfs rekey DIR --new-key [--contents] [--name NAME] [--no-recovery]\n"
    "             [--passphrase-fd N | --key-file FILE | --protector ID]\n"
    "\n"
    "Every directory, file and symlink under DIR (on the same filesystem) that you own\n"
    "(all of them, for root) moves to the new master key: names and symlink targets are\n"
    "encrypted again under it, a directory at a time, and whatever is written from now\n"
    "on is encrypted with it.\n"
    "What files already hold keeps the key it was written under, so one file may hold\n"
    "data under two keys; it stays readable while the old key is present ('ecfs key\n"
    "usage MNT' shows what an old key still protects). With --contents that data is\n"
    "re-encrypted under the new key too (read, verified, written as new extents with\n"
    "fresh nonces; data two files share stays shared), a step at a time while the files\n"
    "stay in use; the old keys must then be unlocked as well. Snapshots keep their keys.\n"
    "\n"
    "DIR must be unlocked. --to names a key kept by a protector in the image (opened with\n"
    "its passphrase or key file unless you added it already); --new-key makes a new key\n"
    "kept by a new protector (a passphrase asked twice, or --key-file) or an existing one\n"
    "(--protector), and a new recovery passphrase, printed once, as 'ecfs encrypt' does.\n"
    "\n"
    "Each directory moves in one step: after a crash or an error, run the same command\n"
    "again (with --to the new key) and it finishes what was left.";

constexpr const char* kFooter =
    "Exit status: 0 when the whole tree is under the new key; 1 if it could not be\n"
    "(locked, wrong passphrase, not the owner, not an ecfs mount, ...; what was moved\n"
    "stays moved, run again to finish) or other users' files were left alone; 2 for\n"
    "bad options.\n"
    "\n"
    "Examples:\n"
    "  Move /mnt/private to a new key with a new passphrase:\n"
    "    ecfs unlock /mnt/private && ecfs rekey /mnt/private --new-key\n"
    "\n"
    "  Finish an interrupted rotation, or move a tree to an existing key:\n"
    "    ecfs rekey /mnt/private --to 0f1e2d3c4b5a69788796a5b4c3d2e1f0\n"
    "\n"
    "  Re-encrypt what files still hold under the old key, then forget it:\n"
    "    ecfs rekey /mnt/private --to 0f1e2d3c4b5a69788796a5b4c3d2e1f0 --contents";

struct RekeyArgs {
  std::string directory;
  std::optional<std::string> to;
  bool new_key = false;
  bool contents = false;
  NewKeyArgs key;  // the secret options also open --to's protector
};

int failure(const Error& error) {
  print_error(kCommand, error.to_string());
  return kExitFailure;
}

int usage_error(const std::string& message) {
  print_error(kCommand, message);
  return kExitUsage;
}

// The key --to names, added to the mount by the caller: already, or now
// through a protector that keeps it.
Result<fscrypt::KeyIdentifier> existing_key(int fd, const fscrypt::KeyIdentifier& identifier,
                                            const RekeyArgs& args) {
  const std::string what = "key " + to_hex(identifier);
  auto state = master_key_status(fd, identifier, "checking " + what);
  if (!state) return std::unexpected(state.error());
  if (state->present() && state->added_by_self) return identifier;
  auto listing = list_protectors(fd, "listing the protectors of " + what);
  if (!listing) return std::unexpected(listing.error());
  auto key = unwrap_key(*listing, identifier, args.key.secret, what);
  if (!key) return std::unexpected(key.error());
  auto added = add_master_key(fd, key->key, "adding " + what);
  if (!added) return std::unexpected(added.error());
  if (*added != identifier) {
    return fail(EPROTO, "the mount computed another identifier for " + what);
  }
  return identifier;
}

// The work of one contents call: the lock goes back to other requests
// between calls.
constexpr uint64_t kContentsStep = 64ull << 20;

struct WalkCounts {
  uint64_t directories = 0;
  RekeyCounts moved;
  RekeyContentsCounts contents;
  // Directories and files of other users (or that the caller may not
  // open), left alone.
  uint64_t not_owned = 0;
  // Everything under the tree that belongs to its policy is under the new
  // key (contents included with --contents).
  bool complete() const { return not_owned == 0; }
};

// Another user's directory or file: the walk goes on without it.
bool not_owned(const Error& error) { return error.errno_value() == EACCES; }

// Re-encrypts what the files directly in `directory` hold under earlier
// keys (--contents).
Status rewrite_contents(const std::string& directory, WalkCounts& counts, ProgressLine& progress) {
  namespace stdfs = std::filesystem;
  std::error_code error;
  for (stdfs::directory_iterator it(directory, error); !error && it != stdfs::directory_iterator();
       it.increment(error)) {
    std::error_code status_error;
    if (!it->is_regular_file(status_error) || it->is_symlink(status_error)) continue;
    const std::string path = it->path().string();
    auto file = open_for_ioctl(path, false);
    if (!file && not_owned(file.error())) {
      ++counts.not_owned;
      continue;
    }
    if (!file) return std::unexpected(file.error());
    for (;;) {
      auto step = rekey_contents(file->fd(), kContentsStep, "re-encrypting " + path);
      if (!step && not_owned(step.error())) {
        ++counts.not_owned;
        break;
      }
      if (!step) return std::unexpected(step.error());
      counts.contents.bytes += step->bytes;
      counts.contents.extents += step->extents;
      counts.contents.shared += step->shared;
      progress.update("MiB re-encrypted", counts.contents.bytes >> 20, 0);
      if (step->done) break;
    }
  }
  if (error) return fail(error.value(), "listing " + directory + ": " + error.message());
  return ok();
}

// Calls `visit` with `root` (open as `root_fd`) and then with every
// directory under it on the same filesystem, parents before their children;
// directories the caller may not open are counted in `*unreadable` and
// passed over. Stops at the first error.
Status for_each_directory(const std::string& root, int root_fd,
                          const std::function<Status(int fd, const std::string& path)>& visit,
                          uint64_t* unreadable) {
  struct stat root_stat;
  if (fstat(root_fd, &root_stat) != 0) return fail(errno, "stat " + root);
  ECFS_TRY(visit(root_fd, root));
  namespace stdfs = std::filesystem;
  std::error_code error;
  stdfs::recursive_directory_iterator it(root, stdfs::directory_options::none, error);
  for (; !error && it != stdfs::recursive_directory_iterator(); it.increment(error)) {
    std::error_code status_error;
    if (!it->is_directory(status_error) || it->is_symlink(status_error)) continue;
    const std::string path = it->path().string();
    auto directory = open_for_ioctl(path, true);
    if (!directory && not_owned(directory.error())) {
      ++*unreadable;
      it.disable_recursion_pending();
      continue;
    }
    if (!directory) return std::unexpected(directory.error());
    struct stat sub_stat;
    if (fstat(directory->fd(), &sub_stat) != 0) return fail(errno, "stat " + path);
    if (sub_stat.st_dev != root_stat.st_dev) {
      it.disable_recursion_pending();  // another filesystem mounted here
      continue;
    }
    ECFS_TRY(visit(directory->fd(), path));
  }
  if (error) return fail(error.value(), "listing " + root + ": " + error.message());
  return ok();
}

// Moves `root` and every directory under it to key `to` (with `contents`,
// each directory's files' old data too; once all of it is done, the
// directories forget their earlier keys, so that unlock and status stop
// asking for them). Other users' directories and files are counted and
// left alone.
Status walk(const std::string& root, int root_fd, const fscrypt::KeyIdentifier& to, bool contents,
            WalkCounts& counts, ProgressLine& progress) {
  const auto move_one = [&](int fd, const std::string& path) -> Status {
    auto moved = rekey_directory(fd, to, "moving " + path + " to the new key");
    // DIR itself must be the caller's: below it, other users' directories
    // are passed over.
    if (!moved && not_owned(moved.error()) && path != root) {
      ++counts.not_owned;
      return ok();
    }
    if (!moved) return std::unexpected(moved.error());
    ++counts.directories;
    counts.moved.names += moved->names;
    counts.moved.inodes += moved->inodes;
    counts.moved.skipped += moved->skipped;
    counts.not_owned += moved->not_owned;
    progress.update("directories", counts.directories, 0);
    if (contents) return rewrite_contents(path, counts, progress);
    return ok();
  };
  ECFS_TRY(for_each_directory(root, root_fd, move_one, &counts.not_owned));
  if (!contents || !counts.complete()) return ok();
  uint64_t unreadable = 0;  // none: the walk above found everything readable
  return for_each_directory(
      root, root_fd,
      [&](int fd, const std::string& path) -> Status {
        auto forgot = rekey_contents(fd, kContentsStep, "finishing " + path);
        if (!forgot) return std::unexpected(forgot.error());
        return ok();
      },
      &unreadable);
}

int run(const RekeyArgs& args) {
  auto key_options = new_key_options(args.key);
  if (!key_options) return usage_error(key_options.error().message());
  if (args.to.has_value() == args.new_key) return usage_error("give one of --to and --new-key");
  if (args.to && (!args.key.name.empty() || args.key.no_recovery)) {
    return usage_error("--name and --no-recovery are for --new-key");
  }
  std::optional<fscrypt::KeyIdentifier> to;
  if (args.to) {
    auto spec = fscrypt::KeySpecifier::from_hex(*args.to);
    if (!spec || spec->type() != fscrypt::KeySpecifierType::kIdentifier) {
      return usage_error("--to takes a key identifier (32 hex digits, as 'ecfs status' shows)");
    }
    to.emplace();
    std::ranges::copy(spec->bytes(), to->begin());
  }

  auto directory = open_for_ioctl(args.directory, true);
  if (!directory) return failure(directory.error());
  const int fd = directory->fd();
  const std::string& where = args.directory;
  auto old_key = directory_key(fd, where);
  if (!old_key) return failure(old_key.error());
  auto old_state = master_key_status(fd, *old_key, "checking the key of " + where);
  if (!old_state) return failure(old_state.error());
  if (!old_state->present()) {
    return failure(Error(ENOKEY, where + " is locked: unlock it first ('ecfs unlock " + where +
                                     "'), its names are encrypted again under the new key"));
  }

  std::optional<ProtectedKey> made;
  if (to) {
    auto added = existing_key(fd, *to, args);
    if (!added) return failure(added.error());
  } else {
    auto key = make_protected_key(fd, kCommand, where, *key_options);
    if (!key) return failure(key.error());
    to = key->identifier();
    made = std::move(*key);
  }

  WalkCounts counts;
  ProgressLine progress("ecfs rekey");
  Status walked = walk(where, fd, *to, args.contents, counts, progress);
  progress.clear();
  if (!walked) {
    if (made && counts.directories == 0) {
      made->undo(kCommand, where);  // nothing uses the new key yet
      return failure(walked.error());
    }
    print_error(kCommand, walked.error().to_string());
    std::fprintf(stderr,
                 "ecfs rekey: %llu directories were moved to key %s; run 'ecfs rekey %s --to "
                 "%s%s' to finish\n",
                 static_cast<unsigned long long>(counts.directories), to_hex(*to).c_str(),
                 where.c_str(), to_hex(*to).c_str(), args.contents ? " --contents" : "");
    if (made) (void)made->print_recovery(where);
    return kExitFailure;
  }
  // Durable before reporting success.
  if (syncfs(fd) != 0) return failure(Error(errno, "syncing " + where));

  std::printf("Moved %s to key %s: %llu directories, %llu names, %llu inodes", where.c_str(),
              to_hex(*to).c_str(), static_cast<unsigned long long>(counts.directories),
              static_cast<unsigned long long>(counts.moved.names),
              static_cast<unsigned long long>(counts.moved.inodes));
  std::printf(".\n");
  if (args.contents) {
    std::printf("Re-encrypted %s of older data into %llu new extents (%llu shared again).\n",
                format_size(counts.contents.bytes).c_str(),
                static_cast<unsigned long long>(counts.contents.extents),
                static_cast<unsigned long long>(counts.contents.shared));
  }
  if (made) {
    std::printf("The new key is kept by protector %s (%s).\n",
                fscrypt::protector_id_text(made->protector()).c_str(), made->protector_kind());
  }
  if (*old_key != *to && !args.contents) {
    std::printf(
        "Data written before keeps key %s: keep it until 'ecfs key usage' shows it protects "
        "nothing (or run again with --contents).\n",
        to_hex(*old_key).c_str());
  } else if (*old_key != *to) {
    std::printf(
        "Key %s may still protect data in snapshots and in files outside %s: 'ecfs key usage' "
        "tells.\n",
        to_hex(*old_key).c_str(), where.c_str());
  }
  if (made) {
    if (Status printed = made->print_recovery(where); !printed) return failure(printed.error());
  }
  if (counts.moved.skipped > 0) {
    std::printf("%llu entries of another policy (other modes) were left as they are.\n",
                static_cast<unsigned long long>(counts.moved.skipped));
  }
  if (std::fflush(stdout) != 0) return failure(Error(EIO, "writing standard output failed"));
  if (!counts.complete()) {
    print_error(kCommand, std::to_string(counts.not_owned) +
                              " directories, files or symlinks were left under their keys: other "
                              "users' or ones you may not open (root can move them)");
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_rekey_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<RekeyArgs>();
  CLI::App* command = app.add_subcommand("rekey", kDescription);
  command->footer(kFooter);
  command->add_option("DIR", args->directory, "an unlocked encrypted directory")->required();
  CLI::Option* to = command->add_option("--to", args->to, "the key to move to (its identifier)")
                        ->type_name("KEY_ID");
  command->add_flag("--new-key", args->new_key, "make a new key kept by a protector")->excludes(to);
  command->add_flag("--contents", args->contents,
                    "also re-encrypt the data files hold under earlier keys");
  add_new_key_options(*command, args->key, "--new-key: ");
  command->callback([args, &runner] { runner = [args] { return run(*args); }; });
}

}  // namespace ecfs::cli
