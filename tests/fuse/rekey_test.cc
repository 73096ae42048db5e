// Key rotation through a real mount and the commands a user runs (`ecfs
// rekey`, then `unlock`, `lock`, `status`, `key usage` after a remount):
// data written before a rotation stays under its key and readable while
// that key is unlocked, data written after is under the new one, names and
// symlink targets move at once, snapshots keep their key, and an
// interrupted rotation finishes when run again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "protector_fixture.h"

namespace ecfs::fuse_test {
namespace {

constexpr const char* kNewPassphrase = "a brand new passphrase 51c9";

class RekeyTest : public ProtectorTest {
 protected:
  std::string current_key(const std::string& dir) {
    const Outcome status = ecfs({"status", path(dir), "--json"});
    EXPECT_EQ(status.exit_status, 0) << status.describe();
    return query(status.out, "d['key']['key_identifier']");
  }
  std::string earlier_keys(const std::string& dir) {
    const Outcome status = ecfs({"status", path(dir), "--json"});
    EXPECT_EQ(status.exit_status, 0) << status.describe();
    return query(status.out,
                 "' '.join(k['key_identifier'] + ':' + k['state'] for k in d['earlier_keys'])");
  }
  // Extents per key identifier, as `ecfs key usage --json` counts them.
  std::string usage() {
    const Outcome run = ecfs({"key", "usage", mountpoint_, "--json"});
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    return query(run.out,
                 "' '.join(k['key_identifier'] + ':' + str(k['extents']) for k in d['keys'])");
  }
  // pread of `length` bytes at `offset`: the bytes, or the errno.
  std::pair<std::string, int> pread_at(const std::string& file, off_t offset, size_t length) {
    const int fd = open(path(file).c_str(), O_RDONLY);
    if (fd < 0) return {std::string(), errno};
    std::string out(length, '\0');
    const ssize_t n = pread(fd, out.data(), length, offset);
    const int error = n < 0 ? errno : 0;
    close(fd);
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return {out, error};
  }
  Outcome unlock(const std::string& dir, const std::string& passphrase) {
    return ecfs_in({"unlock", path(dir), "--passphrase-fd", "0"}, passphrase + "\n");
  }
};

TEST_F(RekeyTest, NewWritesTakeTheNewKeyAndOldDataNeedsTheOldOne) {
  encrypt("private", {"--no-recovery"});
  const std::string old_key = current_key("private");
  const std::string old_data(64 * 1024, 'o');
  ASSERT_TRUE(write_file(path("private/notes"), old_data));
  ASSERT_EQ(mkdir(path("private/sub").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(path("private/sub/inner"), "inner"));
  ASSERT_EQ(symlink("sub/inner", path("private/ln").c_str()), 0);

  const Outcome rekeyed =
      ecfs_in(with({"rekey", path("private"), "--new-key", "--passphrase-fd", "0", "--no-recovery"},
                   kCheap),
              std::string(kNewPassphrase) + "\n");
  ASSERT_EQ(rekeyed.exit_status, 0) << rekeyed.describe();
  EXPECT_NE(rekeyed.out.find("2 directories"), std::string::npos) << rekeyed.out;
  const std::string new_key = current_key("private");
  EXPECT_NE(new_key, old_key);
  EXPECT_EQ(current_key("private/sub"), new_key);
  EXPECT_EQ(earlier_keys("private"), old_key + ":unlocked");
  // Written after the rotation: a new file, and the old file's second half.
  const std::string new_data(64 * 1024, 'n');
  ASSERT_TRUE(write_file(path("private/after"), "written after"));
  const int fd = open(path("private/notes").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, new_data.data(), new_data.size(), 1 << 20), ssize_t(new_data.size()));
  close(fd);
  EXPECT_EQ(usage(), std::string(old_key < new_key ? old_key + ":2 " + new_key + ":2"
                                                   : new_key + ":2 " + old_key + ":2"));

  ASSERT_NO_FATAL_FAILURE(remount());
  // The new passphrase opens the new key only: names, links and new data
  // read; data written before says the key is missing.
  const Outcome first = unlock("private", kNewPassphrase);
  ASSERT_EQ(first.exit_status, 0) << first.describe();
  EXPECT_NE(first.out.find("stays locked"), std::string::npos) << first.out;
  EXPECT_EQ(read_file(path("private/after")), "written after");
  EXPECT_EQ(read_file(path("private/ln")).has_value(), false);  // sub/inner is old data
  char target[64] = {};
  EXPECT_EQ(readlink(path("private/ln").c_str(), target, sizeof target - 1), 9);
  EXPECT_EQ(std::string(target), "sub/inner");
  EXPECT_EQ(pread_at("private/notes", 1 << 20, new_data.size()).first, new_data);
  EXPECT_EQ(pread_at("private/notes", 0, 4096).second, ENOKEY);
  EXPECT_EQ(earlier_keys("private"), old_key + ":locked");
  // The old passphrase opens the earlier key.
  const Outcome second = unlock("private", kPassphrase);
  ASSERT_EQ(second.exit_status, 0) << second.describe();
  EXPECT_EQ(pread_at("private/notes", 0, old_data.size()).first, old_data);
  EXPECT_EQ(read_file(path("private/ln")), "inner");
  // Lock takes both keys away.
  const Outcome locked = ecfs({"lock", path("private")});
  ASSERT_EQ(locked.exit_status, 0) << locked.describe();
  EXPECT_EQ(earlier_keys("private"), old_key + ":locked");
  EXPECT_FALSE(readable(path("private/after")));
  // Neither passphrase nor any plaintext reached the image.
  ASSERT_NO_FATAL_FAILURE(unmount());
  const std::optional<std::string> image = read_file(image_);
  ASSERT_TRUE(image);
  for (const std::string& secret :
       {std::string(kPassphrase), std::string(kNewPassphrase), old_data.substr(0, 4096),
        new_data.substr(0, 4096), std::string("written after"), std::string("sub/inner")}) {
    EXPECT_EQ(image->find(secret), std::string::npos) << secret.substr(0, 16);
  }
  // `ecfs inspect` shows the one file's extents under both keys, and the
  // key it was under before.
  const Outcome inspect = ecfs({"inspect", "--json", image_});
  ASSERT_EQ(inspect.exit_status, 0) << inspect.describe();
  EXPECT_EQ(
      query(inspect.out,
            "[sorted(k) + i.get('previous_keys', []) for i in d['filesystem']['inodes']"
            " for k in [set(e['context']['master_key_identifier'] for e in i.get('extents', [])"
            " if 'context' in e)] if len(k) > 1]"),
      "[['" + std::min(old_key, new_key) + "', '" + std::max(old_key, new_key) + "', '" + old_key +
          "']]");
  ASSERT_NO_FATAL_FAILURE(mount());
}

TEST_F(RekeyTest, OneProtectorKeepingBothKeysUnlocksThemTogether) {
  encrypt("private", {"--no-recovery"});
  const std::string protector = id_of_kind("passphrase");
  ASSERT_TRUE(write_file(path("private/old"), "before"));
  const Outcome rekeyed = ecfs_in({"rekey", path("private"), "--new-key", "--protector", protector,
                                   "--passphrase-fd", "0", "--no-recovery"},
                                  std::string(kPassphrase) + "\n");
  ASSERT_EQ(rekeyed.exit_status, 0) << rekeyed.describe();
  ASSERT_TRUE(write_file(path("private/new"), "after"));
  ASSERT_NO_FATAL_FAILURE(remount());
  const Outcome unlocked = unlock("private", kPassphrase);
  ASSERT_EQ(unlocked.exit_status, 0) << unlocked.describe();
  EXPECT_NE(unlocked.out.find("Unlocked earlier key"), std::string::npos) << unlocked.out;
  EXPECT_EQ(read_file(path("private/old")), "before");
  EXPECT_EQ(read_file(path("private/new")), "after");
}

TEST_F(RekeyTest, SnapshotsKeepTheirKeyAndARotationFinishesWhenRunAgain) {
  const Outcome created = ecfs({"subvolume", "create", path("vol")});
  ASSERT_EQ(created.exit_status, 0) << created.describe();
  encrypt("vol/private", {"--no-recovery"});
  const std::string old_key = current_key("vol/private");
  for (const char* dir : {"vol/private/a", "vol/private/a/b", "vol/private/c"}) {
    ASSERT_EQ(mkdir(path(dir).c_str(), 0755), 0);
  }
  ASSERT_TRUE(write_file(path("vol/private/a/b/f"), "deep"));
  const Outcome snap = ecfs({"subvolume", "snapshot", "-r", path("vol"), path("snap")});
  ASSERT_EQ(snap.exit_status, 0) << snap.describe();

  // A rotation that reached only one subtree (as if interrupted there).
  const Outcome partial = ecfs_in(
      with({"rekey", path("vol/private/a"), "--new-key", "--passphrase-fd", "0", "--no-recovery"},
           kCheap),
      std::string(kNewPassphrase) + "\n");
  ASSERT_EQ(partial.exit_status, 0) << partial.describe();
  const std::string new_key = current_key("vol/private/a/b");
  EXPECT_EQ(current_key("vol/private"), old_key);
  // Run again from the top: everything is under the new key.
  const Outcome finished = ecfs({"rekey", path("vol/private"), "--to", new_key});
  ASSERT_EQ(finished.exit_status, 0) << finished.describe();
  for (const char* dir : {"vol/private", "vol/private/a", "vol/private/a/b", "vol/private/c"}) {
    EXPECT_EQ(current_key(dir), new_key) << dir;
  }
  EXPECT_EQ(read_file(path("vol/private/a/b/f")), "deep");
  // The read-only snapshot keeps its names and key.
  EXPECT_EQ(current_key("snap/private/a/b"), old_key);
  EXPECT_EQ(read_file(path("snap/private/a/b/f")), "deep");
}

TEST_F(RekeyTest, ContentsPassLeavesTheOldKeyToSnapshotsAlone) {
  ASSERT_EQ(ecfs({"subvolume", "create", path("vol")}).exit_status, 0);
  encrypt("vol/private", {"--no-recovery"});
  const std::string old_key = current_key("vol/private");
  ASSERT_EQ(mkdir(path("vol/private/a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(path("vol/private/b").c_str(), 0755), 0);
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 4096);
  ASSERT_TRUE(write_file(path("vol/private/a/big"), data));
  // A reflink in another directory: shared, and shared again afterwards.
  {
    const int in = open(path("vol/private/a/big").c_str(), O_RDONLY);
    const int out = open(path("vol/private/b/copy").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    loff_t in_offset = 0, out_offset = 0;
    size_t left = data.size();
    while (left > 0) {
      const ssize_t n = copy_file_range(in, &in_offset, out, &out_offset, left, 0);
      ASSERT_GT(n, 0) << std::strerror(errno);
      left -= static_cast<size_t>(n);
    }
    close(in);
    close(out);
  }
  ASSERT_TRUE(write_file(path("vol/private/small"), "small"));
  ASSERT_EQ(ecfs({"sync", mountpoint_}).exit_status, 0);
  const std::string before = usage();
  ASSERT_EQ(ecfs({"subvolume", "snapshot", "-r", path("vol"), path("snap")}).exit_status, 0);

  const Outcome rekeyed = ecfs_in(with({"rekey", path("vol/private"), "--new-key", "--contents",
                                        "--passphrase-fd", "0", "--no-recovery"},
                                       kCheap),
                                  std::string(kNewPassphrase) + "\n");
  ASSERT_EQ(rekeyed.exit_status, 0) << rekeyed.describe();
  EXPECT_NE(rekeyed.out.find("Re-encrypted"), std::string::npos) << rekeyed.out;
  const std::string new_key = current_key("vol/private");
  // The old key keeps exactly what the snapshot holds; the new one as many
  // extents (the reflinked data once).
  const std::string extents = before.substr(before.find(':'));
  EXPECT_EQ(usage(), old_key < new_key ? before + " " + new_key + extents
                                       : new_key + extents + " " + before);
  EXPECT_EQ(earlier_keys("vol/private"), "");
  EXPECT_EQ(earlier_keys("vol/private/a"), "");

  // After a remount the new passphrase alone opens everything in the tree;
  // the snapshot needs the old one.
  ASSERT_NO_FATAL_FAILURE(remount());
  const Outcome unlocked = unlock("vol/private", kNewPassphrase);
  ASSERT_EQ(unlocked.exit_status, 0) << unlocked.describe();
  EXPECT_EQ(unlocked.out.find("stays locked"), std::string::npos) << unlocked.out;
  EXPECT_EQ(read_file(path("vol/private/a/big")), data);
  EXPECT_EQ(read_file(path("vol/private/b/copy")), data);
  EXPECT_EQ(read_file(path("vol/private/small")), "small");
  EXPECT_FALSE(readable(path("snap/private/a/big")));
  const Outcome snapshot = unlock("snap/private", kPassphrase);
  ASSERT_EQ(snapshot.exit_status, 0) << snapshot.describe();
  EXPECT_EQ(read_file(path("snap/private/a/big")), data);
}

TEST_F(RekeyTest, RefusalsSayWhy) {
  encrypt("private", {"--no-recovery"});
  ASSERT_EQ(mkdir(path("plain").c_str(), 0755), 0);
  EXPECT_EQ(ecfs({"rekey", path("private")}).exit_status, 2);
  EXPECT_EQ(ecfs({"rekey", path("private"), "--to", "xyz"}).exit_status, 2);
  EXPECT_EQ(ecfs({"rekey", path("private"), "--to", std::string(32, 'a'), "--new-key"}).exit_status,
            2);
  const Outcome plain = ecfs({"rekey", path("plain"), "--to", std::string(32, 'a')});
  EXPECT_EQ(plain.exit_status, 1);
  EXPECT_NE(plain.err.find("not encrypted"), std::string::npos) << plain.err;
  // An unknown key: no protector keeps it.
  const Outcome unknown =
      ecfs_in({"rekey", path("private"), "--to", std::string(32, 'a'), "--passphrase-fd", "0"},
              "whatever\n");
  EXPECT_EQ(unknown.exit_status, 1);
  EXPECT_NE(unknown.err.find("no passphrase protector"), std::string::npos) << unknown.err;
  // Locked: the names cannot be encrypted again.
  ASSERT_EQ(ecfs({"lock", path("private")}).exit_status, 0);
  const Outcome locked = ecfs({"rekey", path("private"), "--to", std::string(32, 'a')});
  EXPECT_EQ(locked.exit_status, 1);
  EXPECT_NE(locked.err.find("is locked"), std::string::npos) << locked.err;
}

// tests/golden/format-v1-key-rotation.img.gz, made by an earlier build
// (docs/FORMAT.md "Golden images"): a directory rotated from one key-file
// key to another, with a file holding data under both.
TEST_F(RekeyTest, RotationOfAnEarlierBuildReads) {
  ASSERT_NO_FATAL_FAILURE(unmount());
  const Outcome unpacked = cli_test::run_program(
      {"/bin/sh", "-c", "gzip -dc \"$0\" > \"$1\"",
       std::string(ECFS_SOURCE_DIR) + "/tests/golden/format-v1-key-rotation.img.gz", image_},
      scratch_.path());
  ASSERT_EQ(unpacked.exit_status, 0) << unpacked.describe();
  expect_fsck_clean();
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(read_file(path("plain/file")), "plain\n");
  EXPECT_EQ(current_key("private"), "6045b1afd4ca7aa8818ee28d11313905");
  EXPECT_EQ(earlier_keys("private"), "6efaa0f3cf2f740cfc313e908ab42de4:locked");
  EXPECT_EQ(usage(), "6045b1afd4ca7aa8818ee28d11313905:2 6efaa0f3cf2f740cfc313e908ab42de4:2");
  // The second key file (byte i is 53i + 7) opens the current key.
  const std::string second = scratch_.file("second.key");
  std::string bytes(32, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 53 + 7);
  ASSERT_TRUE(write_file(second, bytes, O_TRUNC, 0600));
  const Outcome current = ecfs({"unlock", path("private"), "--key-file", second});
  ASSERT_EQ(current.exit_status, 0) << current.describe();
  EXPECT_EQ(read_file(path("private/after")), "written under the second key\n");
  EXPECT_EQ(pread_at("private/before", 8192, 16).first, "bbbb");
  EXPECT_EQ(pread_at("private/before", 0, 16).second, ENOKEY);
  // The first (byte i is 37i + 11) opens the earlier one.
  const Outcome earlier = ecfs({"unlock", path("private"), "--key-file", key_file()});
  ASSERT_EQ(earlier.exit_status, 0) << earlier.describe();
  EXPECT_EQ(pread_at("private/before", 0, 4096).first, std::string(4096, 'a'));
  EXPECT_EQ(read_file(path("private/ln")), "inner\n");
  char target[64] = {};
  EXPECT_EQ(readlink(path("private/ln").c_str(), target, sizeof target - 1), 9);
  EXPECT_EQ(std::string(target), "sub/inner");
}

}  // namespace
}  // namespace ecfs::fuse_test
