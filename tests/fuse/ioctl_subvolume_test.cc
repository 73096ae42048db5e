// The subvolume ioctls' arguments as the daemon decodes them
// (fuse/ioctl_dispatch.h, ioctl_abi.h), without a mount: every malformed
// SubvolArg and SubvolInfoArg is refused with EINVAL (or EPERM for a caller
// without CAP_SYS_ADMIN) before anything changes, and well-formed ones work.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "block/memory_device.h"
#include "fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "fuse/ioctl_abi.h"
#include "fuse/ioctl_dispatch.h"

namespace ecfs::fuse {
namespace {

constexpr fscrypt::Caller kAdmin{0, true};

class IoctlSubvolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::testing::make_filesystem(device_);
    fs_ = fs::testing::must(fs::FileSystem::open(device_));
  }
  void TearDown() override { ASSERT_TRUE(fs_->close()); }

  static SubvolArg named(const std::string& name) {
    SubvolArg arg;
    std::memset(&arg, 0, sizeof(arg));
    arg.version = kIoctlAbiVersion;
    arg.name_len = static_cast<uint32_t>(name.size());
    std::memcpy(arg.name, name.data(), name.size());
    return arg;
  }
  template <typename Arg>
  IoctlAnswer ask(unsigned command, const Arg& arg, bool admin = true, uint64_t ino = 0) {
    return answer_ioctl(*fs_, ino == 0 ? fs::kRootDirIno : ino, kAdmin, command,
                        ByteSpan(reinterpret_cast<const uint8_t*>(&arg), sizeof(arg)), admin);
  }
  bool exists(const std::string& name) { return fs_->lookup(fs::kRootDirIno, name).has_value(); }

  block::MemoryDevice device_{64ull << 20};
  std::unique_ptr<fs::FileSystem> fs_;
};

TEST_F(IoctlSubvolumeTest, MalformedCreateAndDeleteRequestsChangeNothing) {
  const std::vector<std::pair<std::string, std::function<void(SubvolArg&)>>> malformed = {
      {"unknown flag", [](SubvolArg& a) { a.flags = 0x4; }},
      {"read-only without a source", [](SubvolArg& a) { a.flags = kSubvolReadOnly; }},
      {"reserved field", [](SubvolArg& a) { a.reserved = 1; }},
      {"output field set", [](SubvolArg& a) { a.id = 7; }},
      {"empty name", [](SubvolArg& a) { a.name_len = 0; }},
      {"name length past the buffer", [](SubvolArg& a) { a.name_len = kSubvolNameBytes; }},
      {"bytes after the name", [](SubvolArg& a) { a.name[a.name_len + 1] = 'x'; }},
      {"NUL inside the name", [](SubvolArg& a) { a.name[1] = 0; }},
      {"another ABI version", [](SubvolArg& a) { a.version = kIoctlAbiVersion + 1; }},
  };
  for (const auto& [what, damage] : malformed) {
    SCOPED_TRACE(what);
    SubvolArg arg = named("vol");
    damage(arg);
    EXPECT_EQ(ask(ECFS_IOC_SUBVOL_CREATE, arg).error, EINVAL);
    EXPECT_FALSE(exists("vol"));
  }
  // A short argument (a caller that bypassed the command number).
  const SubvolArg good = named("vol");
  EXPECT_EQ(answer_ioctl(*fs_, fs::kRootDirIno, kAdmin, ECFS_IOC_SUBVOL_CREATE,
                         ByteSpan(reinterpret_cast<const uint8_t*>(&good), sizeof(good) - 8), true)
                .error,
            EINVAL);
  // Names the directory cannot hold.
  EXPECT_NE(ask(ECFS_IOC_SUBVOL_CREATE, named("a/b")).error, 0);
  EXPECT_NE(ask(ECFS_IOC_SUBVOL_CREATE, named("..")).error, 0);
  // Without CAP_SYS_ADMIN: EPERM, whatever the argument.
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_CREATE, good, /*admin=*/false).error, EPERM);
  EXPECT_FALSE(exists("vol"));

  // Well formed: made, and the answer carries its id.
  const IoctlAnswer made = ask(ECFS_IOC_SUBVOL_CREATE, good);
  ASSERT_EQ(made.error, 0) << made.message;
  SubvolArg answer;
  ASSERT_EQ(made.out.size(), sizeof(answer));
  std::memcpy(&answer, made.out.data(), sizeof(answer));
  EXPECT_GE(answer.id, 256u);
  EXPECT_TRUE(exists("vol"));
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_CREATE, good).error, EEXIST);

  // Delete: a source or a flag is malformed; a missing name is ENOENT.
  SubvolArg with_source = named("vol");
  with_source.source = fs::kRootDirIno;
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_DELETE, with_source).error, EINVAL);
  SubvolArg with_flag = named("vol");
  with_flag.flags = kSubvolReadOnly;
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_DELETE, with_flag).error, EINVAL);
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_DELETE, named("none")).error, ENOENT);
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_DELETE, good, /*admin=*/false).error, EPERM);
  EXPECT_TRUE(exists("vol"));
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_DELETE, good).error, 0);
  EXPECT_FALSE(exists("vol"));
}

TEST_F(IoctlSubvolumeTest, SnapshotRequestsNameTheirSourceByNodeId) {
  ASSERT_EQ(ask(ECFS_IOC_SUBVOL_CREATE, named("vol")).error, 0);
  const uint64_t vol = fs::testing::must(fs_->lookup(fs::kRootDirIno, "vol")).ino;
  SubvolArg snapshot = named("snap");
  snapshot.source = vol;
  snapshot.flags = kSubvolReadOnly;
  const IoctlAnswer made = ask(ECFS_IOC_SUBVOL_CREATE, snapshot);
  ASSERT_EQ(made.error, 0) << made.message;
  // A source that is not a subvolume's root, or no node at all.
  const uint64_t dir = fs::testing::must(fs_->mkdir(fs::kRootDirIno, "dir", 0755, {})).ino;
  SubvolArg not_a_root = named("snap2");
  not_a_root.source = dir;
  EXPECT_NE(ask(ECFS_IOC_SUBVOL_CREATE, not_a_root).error, 0);
  SubvolArg nowhere = named("snap3");
  nowhere.source = (uint64_t{77} << 40) | 256;
  EXPECT_NE(ask(ECFS_IOC_SUBVOL_CREATE, nowhere).error, 0);
  EXPECT_FALSE(exists("snap2"));
  EXPECT_FALSE(exists("snap3"));
}

TEST_F(IoctlSubvolumeTest, MalformedInfoRequestsAreRefusedAndListingsEnd) {
  ASSERT_EQ(ask(ECFS_IOC_SUBVOL_CREATE, named("vol")).error, 0);
  SubvolInfoArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = kIoctlAbiVersion;
  arg.which = 2;
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_INFO, arg).error, EINVAL);
  arg.which = kSubvolInfoOfFile;
  arg.id = 5;  // an input only for listings
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_INFO, arg).error, EINVAL);
  arg.id = 0;
  arg.reserved[1] = 1;
  EXPECT_EQ(ask(ECFS_IOC_SUBVOL_INFO, arg).error, EINVAL);
  arg.reserved[1] = 0;

  // Of the file: the top level. Then the listing: the top level, the one
  // subvolume, then the end (id 0).
  IoctlAnswer top = ask(ECFS_IOC_SUBVOL_INFO, arg, /*admin=*/false);
  ASSERT_EQ(top.error, 0) << top.message;
  SubvolInfoArg out;
  std::memcpy(&out, top.out.data(), sizeof(out));
  EXPECT_EQ(out.id, 5u);
  arg.which = kSubvolInfoNext;
  std::vector<std::pair<uint64_t, std::string>> listed;
  for (int guard = 0; guard < 10; ++guard) {
    const IoctlAnswer next = ask(ECFS_IOC_SUBVOL_INFO, arg, /*admin=*/false);
    ASSERT_EQ(next.error, 0) << next.message;
    std::memcpy(&out, next.out.data(), sizeof(out));
    if (out.id == 0) break;
    listed.emplace_back(out.id, std::string(reinterpret_cast<const char*>(out.path), out.path_len));
    arg.id = out.id;
  }
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].first, 5u);
  EXPECT_GE(listed[1].first, 256u);
  EXPECT_EQ(listed[1].second, "vol");
}

}  // namespace
}  // namespace ecfs::fuse
