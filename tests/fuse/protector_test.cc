// Passphrase, key-file and recovery protectors through a real mount and the
// `ecfs` commands a user runs: encrypt, unlock after a remount, lock with
// busy files, several protectors, change-passphrase, removal rules,
// `mount --unlock`, and that no secret reaches the image or the daemon's
// log.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <string>
#include <vector>

#include "protector_fixture.h"

namespace ecfs::fuse_test {
namespace {

TEST_F(ProtectorTest, PassphraseAndRecoveryUnlockAfterARemount) {
  const std::string recovery = encrypt("private");
  ASSERT_EQ(recovery.size(), 31u);
  ASSERT_TRUE(write_file(path("private/notes"), "meet at noon"));
  ASSERT_NO_FATAL_FAILURE(remount());
  // The data is counted under its key without the key.
  const Outcome usage = ecfs({"key", "usage", mountpoint_, "--json"});
  EXPECT_EQ(query(usage.out, "[(k['extents'], k['bytes']) for k in d['keys']]"), "[(1, 4096)]");

  // Locked after the mount: names are no-key names, contents unreadable.
  EXPECT_FALSE(readable(path("private/notes")));
  const Outcome status = ecfs({"status", path("private"), "--json"});
  EXPECT_EQ(query(status.out, "d['key']['state'], len(d['key']['protectors'])"), "locked 2");

  // A wrong passphrase: one clear error, nothing unlocked.
  const Outcome wrong = ecfs_in({"unlock", path("private"), "--passphrase-fd", "0"}, "wrong\n");
  EXPECT_EQ(wrong.exit_status, 1) << wrong.describe();
  EXPECT_NE(wrong.err.find("wrong passphrase"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("wrong\n"), std::string::npos);
  EXPECT_FALSE(readable(path("private/notes")));

  const Outcome unlocked =
      ecfs_in({"unlock", path("private"), "--passphrase-fd", "0"}, std::string(kPassphrase) + "\n");
  ASSERT_EQ(unlocked.exit_status, 0) << unlocked.describe();
  EXPECT_EQ(read_file(path("private/notes")), "meet at noon");

  const Outcome locked = ecfs({"lock", path("private")});
  EXPECT_EQ(locked.exit_status, 0) << locked.describe();
  EXPECT_FALSE(readable(path("private/notes")));

  // The recovery passphrase, typed in upper case with spaces.
  std::string typed;
  for (char c : recovery) typed += c == '-' ? ' ' : static_cast<char>(std::toupper(c));
  const Outcome recovered =
      ecfs_in({"unlock", path("private"), "--passphrase-fd", "0"}, typed + "\n");
  ASSERT_EQ(recovered.exit_status, 0) << recovered.describe();
  EXPECT_NE(recovered.out.find("recovery passphrase"), std::string::npos) << recovered.out;
  EXPECT_EQ(read_file(path("private/notes")), "meet at noon");
}

TEST_F(ProtectorTest, SeveralProtectorsAndTheLastOneStays) {
  const std::string key = key_file();
  ASSERT_EQ(mkdir(path("vault").c_str(), 0755), 0);
  const Outcome encrypted =
      ecfs(with({"encrypt", path("vault"), "--key-file", key, "--no-recovery"}, kCheap));
  ASSERT_EQ(encrypted.exit_status, 0) << encrypted.describe();
  ASSERT_TRUE(write_file(path("vault/data"), "payload"));
  // A passphrase as a second way in, opened with the key file.
  const Outcome added = ecfs_in(with({"protector", "add", path("vault"), "--passphrase-fd", "0",
                                      "--with-key-file", key, "--name", "backup"},
                                     kCheap),
                                std::string(kPassphrase) + "\n");
  ASSERT_EQ(added.exit_status, 0) << added.describe();
  const std::string key_protector = id_of_kind("key_file");
  const std::string passphrase_protector = id_of_kind("passphrase");
  ASSERT_FALSE(key_protector.empty());
  ASSERT_FALSE(passphrase_protector.empty());

  ASSERT_NO_FATAL_FAILURE(remount());
  const Outcome by_passphrase =
      ecfs_in({"unlock", path("vault"), "--passphrase-fd", "0"}, std::string(kPassphrase) + "\n");
  ASSERT_EQ(by_passphrase.exit_status, 0) << by_passphrase.describe();
  EXPECT_EQ(read_file(path("vault/data")), "payload");
  EXPECT_EQ(ecfs({"lock", path("vault")}).exit_status, 0);

  // The key-file protector goes; the key stays reachable by passphrase.
  const Outcome removed = ecfs({"protector", "remove", mountpoint_, key_protector});
  ASSERT_EQ(removed.exit_status, 0) << removed.describe();
  const Outcome by_key = ecfs({"unlock", path("vault"), "--key-file", key});
  EXPECT_EQ(by_key.exit_status, 1);
  EXPECT_NE(by_key.err.find("no key-file protector"), std::string::npos) << by_key.err;
  // The last protector is not removed without --force.
  const Outcome last = ecfs({"protector", "remove", mountpoint_, passphrase_protector});
  EXPECT_EQ(last.exit_status, 1);
  EXPECT_NE(last.err.find("last protector"), std::string::npos) << last.err;
  const Outcome again =
      ecfs_in({"unlock", path("vault"), "--passphrase-fd", "0"}, std::string(kPassphrase) + "\n");
  ASSERT_EQ(again.exit_status, 0) << again.describe();
  EXPECT_EQ(read_file(path("vault/data")), "payload");
}

// Adding a protector to a locked directory needs its key for a moment; the
// directory is locked again afterwards.
TEST_F(ProtectorTest, AddingAProtectorLeavesALockedDirectoryLocked) {
  encrypt("private", {"--no-recovery"});
  ASSERT_TRUE(write_file(path("private/f"), "x"));
  ASSERT_NO_FATAL_FAILURE(remount());
  const Outcome added = ecfs_in(with({"protector", "add", path("private"), "--key-file", key_file(),
                                      "--with-passphrase-fd", "0"},
                                     kCheap),
                                std::string(kPassphrase) + "\n");
  ASSERT_EQ(added.exit_status, 0) << added.describe();
  const Outcome status = ecfs({"status", path("private"), "--json"});
  EXPECT_EQ(query(status.out, "d['key']['state'], len(d['key']['protectors'])"), "locked 2");
  EXPECT_FALSE(readable(path("private/f")));
  // A bad name is refused before any secret is asked for.
  const Outcome bad_name =
      ecfs({"protector", "add", path("private"), "--key-file", key_file(), "--name", "tab\there"});
  EXPECT_EQ(bad_name.exit_status, 2) << bad_name.describe();
}

TEST_F(ProtectorTest, ChangePassphraseKeepsTheKey) {
  encrypt("private", {"--no-recovery"});
  ASSERT_TRUE(write_file(path("private/f"), "x"));
  const std::string id = id_of_kind("passphrase");
  ASSERT_FALSE(id.empty());
  const Outcome changed = ecfs_in(
      with({"protector", "change-passphrase", mountpoint_, id, "--passphrase-fd", "0"}, kCheap),
      std::string(kPassphrase) + "\nnew passphrase\n");
  ASSERT_EQ(changed.exit_status, 0) << changed.describe();
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(
      ecfs_in({"unlock", path("private"), "--passphrase-fd", "0"}, std::string(kPassphrase) + "\n")
          .exit_status,
      1);
  const Outcome unlocked =
      ecfs_in({"unlock", path("private"), "--passphrase-fd", "0"}, "new passphrase\n");
  ASSERT_EQ(unlocked.exit_status, 0) << unlocked.describe();
  EXPECT_EQ(read_file(path("private/f")), "x");
}

TEST_F(ProtectorTest, LockReportsBusyFilesAndFinishesOnceClosed) {
  encrypt("private", {"--no-recovery"});
  ASSERT_TRUE(write_file(path("private/open"), "still here"));
  const int fd = open(path("private/open").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const Outcome busy = ecfs({"lock", path("private")});
  EXPECT_EQ(busy.exit_status, 0) << busy.describe();
  EXPECT_NE(busy.out.find("still open"), std::string::npos) << busy.out;
  char buffer[16] = {};
  EXPECT_EQ(pread(fd, buffer, sizeof(buffer), 0), 10);  // the open file keeps working
  close(fd);
  bool locked = false;
  for (int attempt = 0; attempt < 50 && !locked; ++attempt) {
    const Outcome status = ecfs({"status", path("private"), "--json"});
    locked = query(status.out, "d['key']['state']") == "locked";
    if (!locked) {
      (void)ecfs({"lock", path("private")});
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_TRUE(locked);
  EXPECT_FALSE(readable(path("private/open")));
}

TEST_F(ProtectorTest, OnlyTheOwnerChangesAProtector) {
  encrypt("private");
  const std::string id = id_of_kind("passphrase");
  const Outcome by_nobody =
      ecfs_as(kNobodyUid, {"protector", "remove", mountpoint_, id, "--force"});
  EXPECT_EQ(by_nobody.exit_status, 1) << by_nobody.describe();
  EXPECT_NE(by_nobody.err.find("belongs to another user"), std::string::npos) << by_nobody.err;
  EXPECT_EQ(protectors().size(), 2u);
  // Anyone may list them: the records are public.
  const Outcome listed = ecfs_as(kNobodyUid, {"protector", "list", mountpoint_});
  EXPECT_EQ(listed.exit_status, 0) << listed.describe();
  EXPECT_NE(listed.out.find(id), std::string::npos);
}

TEST_F(ProtectorTest, MountUnlocksAtOnceForBoot) {
  const std::string key = key_file();
  ASSERT_EQ(mkdir(path("boot").c_str(), 0755), 0);
  ASSERT_EQ(
      ecfs(with({"encrypt", path("boot"), "--key-file", key, "--no-recovery"}, kCheap)).exit_status,
      0);
  ASSERT_TRUE(write_file(path("boot/config"), "ready"));
  ASSERT_NO_FATAL_FAILURE(unmount());
  const Outcome mounted =
      ecfs({"mount", image_, mountpoint_, "--unlock", "boot", "--key-file", key}, 60);
  ASSERT_EQ(mounted.exit_status, 0) << mounted.describe();
  mounted_ = true;
  EXPECT_EQ(read_file(path("boot/config")), "ready");
  ASSERT_NO_FATAL_FAILURE(unmount());
  // The same as mount options, as /etc/fstab gives them to mount.fuse.ecfs.
  const Outcome by_options =
      ecfs({"mount", image_, mountpoint_, "-o", "noatime,unlock=boot,unlock_key_file=" + key}, 60);
  ASSERT_EQ(by_options.exit_status, 0) << by_options.describe();
  mounted_ = true;
  EXPECT_EQ(read_file(path("boot/config")), "ready");
  ASSERT_NO_FATAL_FAILURE(unmount());
  // A wrong key: mounted, locked, exit status 1.
  const std::string other = scratch_.file("other.key");
  ASSERT_TRUE(write_file(other, std::string(32, 'x'), O_TRUNC, 0600));
  const Outcome refused =
      ecfs({"mount", image_, mountpoint_, "--unlock", "boot", "--key-file", other}, 60);
  EXPECT_EQ(refused.exit_status, 1) << refused.describe();
  EXPECT_NE(refused.err.find("stays locked"), std::string::npos) << refused.err;
  mounted_ = is_mounted(mountpoint_);
  EXPECT_TRUE(mounted_);
  EXPECT_FALSE(readable(path("boot/config")));
}

// No passphrase, recovery passphrase or key-file byte in the image or the
// daemon's log after a session that used them all.
TEST_F(ProtectorTest, NoSecretReachesTheImageOrTheLog) {
  ASSERT_NO_FATAL_FAILURE(unmount());
  const std::string log = scratch_.file("daemon.log");
  const pid_t daemon = start_foreground_daemon({"-o", "debug"}, log);
  mounted_ = true;
  const std::string recovery = encrypt("private");
  const std::string key = key_file();
  ASSERT_EQ(ecfs_in(with({"protector", "add", path("private"), "--key-file", key,
                          "--with-passphrase-fd", "0"},
                         kCheap),
                    std::string(kPassphrase) + "\n")
                .exit_status,
            0);
  ASSERT_TRUE(write_file(path("private/secret"), "contents"));
  ASSERT_EQ(ecfs({"lock", path("private")}).exit_status, 0);
  ASSERT_EQ(ecfs({"unlock", path("private"), "--key-file", key}).exit_status, 0);
  ASSERT_NO_FATAL_FAILURE(unmount());
  int status = 0;
  waitpid(daemon, &status, 0);
  const std::optional<std::string> image = read_file(image_);
  const std::optional<std::string> logged = read_file(log);
  ASSERT_TRUE(image && logged);
  const std::string key_bytes = *read_file(key);
  for (const std::string& secret : {std::string(kPassphrase), recovery, key_bytes,
                                    key_bytes.substr(0, 16), key_bytes.substr(16)}) {
    ASSERT_GE(secret.size(), 16u);
    EXPECT_EQ(image->find(secret), std::string::npos);
    EXPECT_EQ(logged->find(secret), std::string::npos);
  }
}

// tests/golden/format-v1-protectors.img.gz, made by an earlier build
// (docs/FORMAT.md "Golden images"): its three protectors still open, each
// on its own, and the files read back.
TEST_F(ProtectorTest, ProtectorsOfAnEarlierBuildOpen) {
  ASSERT_NO_FATAL_FAILURE(unmount());
  const Outcome unpacked = cli_test::run_program(
      {"/bin/sh", "-c", "gzip -dc \"$0\" > \"$1\"",
       std::string(ECFS_SOURCE_DIR) + "/tests/golden/format-v1-protectors.img.gz", image_},
      scratch_.path());
  ASSERT_EQ(unpacked.exit_status, 0) << unpacked.describe();
  expect_fsck_clean();
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(read_file(path("plain/file")), "plain\n");
  EXPECT_FALSE(readable(path("private/notes")));
  const Outcome status = ecfs({"status", path("private"), "--json"});
  EXPECT_EQ(query(status.out,
                  "d['key']['key_identifier'], sorted(p['id'] for p in d['key']['protectors'])"),
            "d475da33210eb5c41a89ba81e1f8d08b ['23e3b2908756481c', '6a8c6ffd9094164c', "
            "'96194ebc4993d174']");
  // The passphrase, the key file (byte i is 37i + 11), the recovery
  // passphrase: each unlocks it.
  const std::string key = key_file();
  const std::vector<std::pair<std::vector<std::string>, std::string>> ways = {
      {{"--passphrase-fd", "0"}, "ecfs golden passphrase\n"},
      {{"--key-file", key}, ""},
      {{"--passphrase-fd", "0"}, "83g3r-ztqmz-bx6u7-6w58w-ddxy7-3\n"},
  };
  for (const auto& [options, input] : ways) {
    const Outcome unlocked = ecfs_in(with({"unlock", path("private")}, options), input);
    ASSERT_EQ(unlocked.exit_status, 0) << unlocked.describe();
    EXPECT_EQ(read_file(path("private/notes")), "golden protectors\n");
    ASSERT_EQ(ecfs({"lock", path("private")}).exit_status, 0);
    EXPECT_FALSE(readable(path("private/notes")));
  }
}

}  // namespace
}  // namespace ecfs::fuse_test
