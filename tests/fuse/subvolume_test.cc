// Subvolumes and snapshots through a real mount, driven as a user drives
// them: `ecfs subvolume create|snapshot|list|show|delete|sync`, rmdir, du
// and tar over a tree and its snapshot (st_ino unique across the mount),
// read-only snapshots, EXDEV across subvolumes, copy_file_range across
// them as a reflink, snapshots of encrypted trees
// without their key, df after a deletion, and -o subvol=.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

using namespace std::chrono_literals;

class SubvolumeTest : public FuseTest {
 protected:
  Outcome subvolume(const std::vector<std::string>& arguments) {
    std::vector<std::string> all = {"subvolume"};
    all.insert(all.end(), arguments.begin(), arguments.end());
    return ecfs(all);
  }
  void ok(const std::vector<std::string>& arguments) {
    const Outcome run = subvolume(arguments);
    ASSERT_EQ(run.exit_status, 0) << run.describe();
  }
  // A tree of `files` files of `size` bytes under `dir`.
  void fill(const std::string& dir, int files, size_t size) {
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << std::strerror(errno);
    for (int i = 0; i < files; ++i) {
      ASSERT_TRUE(write_file(dir + "/f" + std::to_string(i), pattern(size, i + 1)));
    }
  }
  std::string shell(const std::string& command) {
    const kernel_test::ProcessResult run = kernel_test::run_process({"sh", "-c", command});
    EXPECT_TRUE(run.succeeded()) << command << ": " << run.err;
    return run.out;
  }
};

TEST_F(SubvolumeTest, CreateSnapshotListShowDelete) {
  ok({"create", path("home")});
  ASSERT_TRUE(write_file(path("home/notes"), "first version"));
  ok({"snapshot", "-r", path("home"), path("home-snap")});
  ASSERT_TRUE(write_file(path("home/notes"), "second version", O_TRUNC));
  EXPECT_EQ(read_file(path("home-snap/notes")), "first version");
  EXPECT_EQ(read_file(path("home/notes")), "second version");

  const Outcome listed = subvolume({"list", mountpoint_});
  ASSERT_EQ(listed.exit_status, 0) << listed.describe();
  EXPECT_NE(listed.out.find("ID 256 gen"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("top level 5 path home\n"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("path home-snap (readonly)"), std::string::npos) << listed.out;
  const Outcome json = subvolume({"list", mountpoint_, "--json"});
  ASSERT_EQ(json.exit_status, 0) << json.describe();
  EXPECT_NE(json.out.find("\"path\": \"home-snap\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"read_only\": true"), std::string::npos) << json.out;

  const Outcome shown = subvolume({"show", path("home-snap/notes")});
  ASSERT_EQ(shown.exit_status, 0) << shown.describe();
  EXPECT_NE(shown.out.find("Subvolume ID: \t\t257"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("Flags: \t\t\treadonly"), std::string::npos) << shown.out;
  // The snapshot's parent UUID is its source's UUID.
  const Outcome home = subvolume({"show", path("home")});
  const auto uuid_of = [](const std::string& text, const std::string& label) {
    const size_t at = text.find(label);
    return at == std::string::npos ? std::string() : text.substr(at + label.size(), 36);
  };
  EXPECT_EQ(uuid_of(shown.out, "Parent UUID: \t\t"), uuid_of(home.out, "\tUUID: \t\t\t"));

  ok({"delete", path("home-snap")});
  EXPECT_NE(access(path("home-snap").c_str(), F_OK), 0);
  ok({"sync", mountpoint_});
  const Outcome after = subvolume({"list", mountpoint_});
  EXPECT_EQ(after.out.find("home-snap"), std::string::npos) << after.out;
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(read_file(path("home/notes")), "second version");
}

TEST_F(SubvolumeTest, DuAndTarSeeATreeAndItsSnapshotAsDifferentFiles) {
  ok({"create", path("vol")});
  ASSERT_NO_FATAL_FAILURE(fill(path("vol/data"), 20, 64 * 1024));
  ok({"snapshot", path("vol"), path("snap")});
  // Same inode numbers inside each tree, different st_ino across the mount.
  EXPECT_NE(stat_of(path("vol/data/f3")).st_ino, stat_of(path("snap/data/f3")).st_ino);
  EXPECT_EQ(stat_of(path("vol/data/f3")).st_dev, stat_of(path("snap/data/f3")).st_dev);
  // du counts a (dev, ino) once: equal numbers would halve the total.
  const std::string du = shell("du -s --apparent-size -B1 " + path("vol") + " " + path("snap"));
  uint64_t vol = 0, snap = 0;
  std::sscanf(du.c_str(), "%lu", &vol);
  std::sscanf(du.substr(du.find('\n') + 1).c_str(), "%lu", &snap);
  EXPECT_GE(vol, 20u * 64 * 1024) << du;
  EXPECT_GE(snap, 20u * 64 * 1024) << du;
  // tar records a file whose (dev, ino) it met before as a hard link.
  const std::string listing =
      shell("tar -cf - -C " + mountpoint_ + " vol snap | tar -tvf - | grep -c ' link to ' || true");
  EXPECT_EQ(listing, "0\n");
  const std::string same = shell("find " + mountpoint_ + " -samefile " + path("vol/data/f3"));
  EXPECT_EQ(same, path("vol/data/f3") + "\n");
}

TEST_F(SubvolumeTest, AReadOnlySnapshotRefusesEveryChange) {
  ASSERT_TRUE(write_file(path("file"), "data"));
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  ok({"snapshot", "-r", mountpoint_, path("ro")});
  const std::string file = path("ro/file");
  EXPECT_EQ(read_file(file), "data");
  EXPECT_EQ(open_errno(file, O_WRONLY), EROFS);
  EXPECT_EQ(open_errno(path("ro/new"), O_WRONLY | O_CREAT), EROFS);
  EXPECT_NE(mkdir(path("ro/d").c_str(), 0755), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(chmod(file.c_str(), 0600), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(truncate(file.c_str(), 0), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(setxattr(file.c_str(), "user.x", "1", 1, 0), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(unlink(file.c_str()), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(rename(file.c_str(), path("ro/moved").c_str()), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(symlink("file", path("ro/link").c_str()), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_NE(rmdir(path("ro/dir").c_str()), 0);
  EXPECT_EQ(errno, EROFS);
  // Into it and out of it: another subvolume (EXDEV), as in btrfs.
  EXPECT_NE(rename(path("file").c_str(), path("ro/in").c_str()), 0);
  EXPECT_EQ(errno, EXDEV);
  EXPECT_NE(rename(file.c_str(), path("out").c_str()), 0);
  EXPECT_EQ(errno, EXDEV);
}

TEST_F(SubvolumeTest, LinksAndRenamesAcrossSubvolumesGiveExdevAndCopiesWork) {
  ok({"create", path("a")});
  ASSERT_TRUE(write_file(path("a/file"), pattern(300000, 7)));
  ASSERT_TRUE(write_file(path("top"), "top"));
  EXPECT_NE(link(path("top").c_str(), path("a/top").c_str()), 0);
  EXPECT_EQ(errno, EXDEV);
  EXPECT_NE(rename(path("a/file").c_str(), path("file").c_str()), 0);
  EXPECT_EQ(errno, EXDEV);
  // mv falls back to a copy; cp --reflink=auto copies across.
  shell("mv " + path("a/file") + " " + path("moved"));
  EXPECT_EQ(read_file(path("moved")), pattern(300000, 7));
  shell("cp --reflink=auto " + path("moved") + " " + path("a/copy"));
  EXPECT_EQ(read_file(path("a/copy")), pattern(300000, 7));
}

// copy_file_range(2) from a read-only snapshot into the live tree shares
// the data (df barely moves) instead of copying it.
TEST_F(SubvolumeTest, CopyFileRangeFromASnapshotSharesTheData) {
  ok({"create", path("vol")});
  const std::string data = pattern(16 << 20, 9);
  ASSERT_TRUE(write_file(path("vol/big"), data));
  ok({"snapshot", "-r", path("vol"), path("snap")});
  ASSERT_TRUE(write_file(path("vol/big"), pattern(16 << 20, 10), O_TRUNC));
  ASSERT_EQ(ecfs({"sync", mountpoint_}).exit_status, 0);
  const struct statvfs before = fs_stats();
  const int in = open(path("snap/big").c_str(), O_RDONLY);
  const int out = open(path("restored").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  size_t copied = 0;
  while (copied < data.size()) {
    const ssize_t n = copy_file_range(in, nullptr, out, nullptr, data.size() - copied, 0);
    ASSERT_GT(n, 0) << std::strerror(errno);
    copied += static_cast<size_t>(n);
  }
  close(in);
  close(out);
  ASSERT_EQ(ecfs({"sync", mountpoint_}).exit_status, 0);
  const struct statvfs after = fs_stats();
  const uint64_t used = (before.f_bfree - after.f_bfree) * after.f_frsize;
  EXPECT_LT(used, 2ull << 20) << "16 MiB shared, not copied";
  EXPECT_EQ(read_file(path("restored")), data);
  EXPECT_EQ(read_file(path("vol/big")), pattern(16 << 20, 10));
}

TEST_F(SubvolumeTest, DeletingASnapshotGivesItsSpaceBack) {
  ok({"create", path("vol")});
  ASSERT_NO_FATAL_FAILURE(fill(path("vol/big"), 8, 4 << 20));
  ok({"snapshot", path("vol"), path("snap")});
  // Rewriting the source un-shares the data: the snapshot alone holds the
  // old copy.
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(
        write_file(path("vol/big/f" + std::to_string(i)), pattern(4 << 20, 100 + i), O_TRUNC));
  }
  const Outcome synced = ecfs({"sync", mountpoint_});
  ASSERT_EQ(synced.exit_status, 0) << synced.describe();
  const struct statvfs before = fs_stats();
  ok({"delete", path("snap")});
  ok({"sync", mountpoint_});
  const struct statvfs after = fs_stats();
  const uint64_t freed = (after.f_bfree - before.f_bfree) * after.f_frsize;
  EXPECT_GE(freed, 30ull << 20) << "df shows the snapshot's 32 MiB coming back";
  EXPECT_EQ(read_file(path("vol/big/f5")), pattern(4 << 20, 105));
}

// A snapshot of an encrypted tree taken while its key is absent: the same
// no-key names as the source; with the key added, every byte as written.
TEST_F(SubvolumeTest, SnapshotOfAnEncryptedTreeWithoutItsKey) {
  const std::string key = scratch_.file("key");
  ASSERT_TRUE(write_file(key, pattern(64, 4242), O_TRUNC, 0600));
  const Outcome added = ecfs({"key", "add", mountpoint_, "--key-file", key});
  ASSERT_EQ(added.exit_status, 0) << added.describe();
  std::string id = added.out;
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  ok({"create", path("vol")});
  ASSERT_EQ(mkdir(path("vol/secret").c_str(), 0755), 0);
  const Outcome policy = ecfs({"policy", "set", path("vol/secret"), id});
  ASSERT_EQ(policy.exit_status, 0) << policy.describe();
  ASSERT_EQ(mkdir(path("vol/secret/sub").c_str(), 0755), 0);
  std::vector<std::string> contents;
  for (int i = 0; i < 6; ++i) {
    contents.push_back(pattern(50000 + i * 70000, 300 + i));
    ASSERT_TRUE(write_file(path("vol/secret/sub/file" + std::to_string(i)), contents.back()));
  }
  ASSERT_EQ(symlink("sub/file3", path("vol/secret/link").c_str()), 0);
  const Outcome removed = ecfs({"key", "remove", mountpoint_, id});
  ASSERT_EQ(removed.exit_status, 0) << removed.describe();
  const auto names_in = [&](const std::string& dir) {
    std::set<std::string> names;
    DIR* listing = opendir(dir.c_str());
    EXPECT_NE(listing, nullptr) << dir << ": " << std::strerror(errno);
    if (listing == nullptr) return names;
    while (const dirent* entry = readdir(listing)) names.insert(entry->d_name);
    closedir(listing);
    return names;
  };
  const std::set<std::string> nokey = names_in(path("vol/secret"));
  EXPECT_FALSE(nokey.contains("sub"));
  ok({"snapshot", "-r", path("vol"), path("snap")});
  EXPECT_EQ(names_in(path("snap/secret")), nokey);
  const Outcome again = ecfs({"key", "add", mountpoint_, "--key-file", key});
  ASSERT_EQ(again.exit_status, 0) << again.describe();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(read_file(path("snap/secret/sub/file" + std::to_string(i))), contents[i]) << i;
  }
  char target[64] = {};
  ASSERT_GT(readlink(path("snap/secret/link").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "sub/file3");
  // Writing the source afterwards leaves the snapshot as it was.
  ASSERT_TRUE(write_file(path("vol/secret/sub/file0"), "changed", O_TRUNC));
  EXPECT_EQ(read_file(path("snap/secret/sub/file0")), contents[0]);
  ASSERT_NO_FATAL_FAILURE(remount());
  const Outcome after_remount = ecfs({"key", "add", mountpoint_, "--key-file", key});
  ASSERT_EQ(after_remount.exit_status, 0) << after_remount.describe();
  EXPECT_EQ(read_file(path("snap/secret/sub/file5")), contents[5]);
  EXPECT_EQ(read_file(path("vol/secret/sub/file0")), "changed");
}

// inspect shows every subvolume's inodes; fsck checks every subvolume.
TEST_F(SubvolumeTest, InspectAndFsckCoverEverySubvolume) {
  ok({"create", path("vol")});
  ASSERT_TRUE(write_file(path("vol/file"), "x"));
  ok({"snapshot", path("vol"), path("snap")});
  ASSERT_NO_FATAL_FAILURE(unmount());
  const Outcome inspected = ecfs({"inspect", image_, "--json"});
  ASSERT_EQ(inspected.exit_status, 0) << inspected.describe();
  const size_t subvolumes = inspected.out.find("\"subvolumes\"");
  ASSERT_NE(subvolumes, std::string::npos);
  EXPECT_NE(inspected.out.find("\"tree\": 256", subvolumes), std::string::npos);
  EXPECT_NE(inspected.out.find("\"tree\": 257", subvolumes), std::string::npos);
  const Outcome text = ecfs({"inspect", image_});
  EXPECT_NE(text.out.find("ROOT_REF"), std::string::npos);
  EXPECT_NE(text.out.find("filesystem (tree 257): 2 inodes"), std::string::npos) << text.out;
  const Outcome checked = ecfs({"fsck", image_});
  EXPECT_EQ(checked.exit_status, 0) << checked.describe();
  ASSERT_NO_FATAL_FAILURE(mount());
}

TEST_F(SubvolumeTest, RmdirRemovesAnEmptySubvolume) {
  ok({"create", path("empty")});
  ok({"create", path("full")});
  ASSERT_TRUE(write_file(path("full/x"), "x"));
  EXPECT_EQ(rmdir(path("empty").c_str()), 0) << std::strerror(errno);
  EXPECT_NE(rmdir(path("full").c_str()), 0);
  EXPECT_EQ(errno, ENOTEMPTY);
  ok({"delete", path("full")});
  ok({"sync", mountpoint_});
}

TEST_F(SubvolumeTest, ASubvolumeMountsAsTheRoot) {
  ASSERT_EQ(mkdir(path("vols").c_str(), 0755), 0);
  ok({"create", path("vols/home")});
  ASSERT_TRUE(write_file(path("vols/home/file"), "in home"));
  ASSERT_NO_FATAL_FAILURE(unmount());
  ASSERT_NO_FATAL_FAILURE(mount({"-o", "subvol=/vols/home"}));
  EXPECT_EQ(read_file(path("file")), "in home");
  EXPECT_NE(access(path("vols").c_str(), F_OK), 0);
  ASSERT_TRUE(write_file(path("second"), "written through subvol="));
  ASSERT_NO_FATAL_FAILURE(unmount());
  ASSERT_NO_FATAL_FAILURE(mount());
  EXPECT_EQ(read_file(path("vols/home/second")), "written through subvol=");
  ASSERT_NO_FATAL_FAILURE(unmount());
  const Outcome refused = ecfs({"mount", image_, mountpoint_, "-o", "subvol=vols"});
  EXPECT_NE(refused.exit_status, 0);
  EXPECT_NE(refused.err.find("not a subvolume"), std::string::npos) << refused.describe();
  ASSERT_NO_FATAL_FAILURE(mount());
}

}  // namespace
}  // namespace ecfs::fuse_test
