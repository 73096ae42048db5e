// `make install` as a packager runs it: the build tree installed into a
// DESTDIR with prefix /usr (cmake --install, which the Makefile's install
// target runs), every file where a filesystem tool's files go, each manual
// page rendered by man(1), the installed binary's --version, its bash
// completion, and a mount through the installed mount(8) helper.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <string>

#include "cli_test_util.h"

namespace ecfs::cli_test {
namespace {

namespace stdfs = std::filesystem;

class InstallTest : public EcfsCommandTest {
 protected:
  void SetUp() override {
    build_ = stdfs::path(ECFS_BINARY).parent_path().parent_path().string();
    if (access("/usr/bin/help2man", X_OK) != 0 || !stdfs::exists(build_ + "/man/ecfs.8")) {
      GTEST_SKIP() << "help2man is not installed (make deps), so the build made no manual pages";
    }
    dest_ = scratch_.file("dest");
    // DESTDIR through the environment, as make passes it.
    const Outcome installed = run_program(
        {"/usr/bin/env", "DESTDIR=" + dest_, "cmake", "--install", build_, "--prefix", "/usr"},
        scratch_.path());
    ASSERT_EQ(installed.exit_status, 0) << installed.describe();
  }

  // The commands `ecfs --help` lists.
  std::set<std::string> commands() {
    std::set<std::string> names;
    std::istringstream help(ecfs({"--help"}).out);
    bool listing = false;
    for (std::string line; std::getline(help, line);) {
      if (line == "Subcommands:") {
        listing = true;
      } else if (listing && line.empty()) {
        break;
      } else if (listing && line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] != ' ') {
        std::string name = line.substr(2, line.find_first_of(", ", 2) - 2);
        names.insert(name);
      }
    }
    return names;
  }

  std::string build_;
  std::string dest_;
};

TEST_F(InstallTest, EveryFileGoesWhereAFilesystemToolsFilesGo) {
  const std::string binary = dest_ + "/usr/sbin/ecfs";
  struct stat st {};
  ASSERT_EQ(stat(binary.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode) && (st.st_mode & 0111) == 0111);
  // mount(8)'s helpers link to the binary: in /sbin, or with the prefix /usr
  // in /usr/sbin (the same directory on merged-/usr systems).
  for (const char* helper : {"mount.fuse.ecfs", "mount.fuseblk.ecfs"}) {
    const stdfs::path link = dest_ + "/usr/sbin/" + helper;
    ASSERT_TRUE(stdfs::is_symlink(link)) << link;
    EXPECT_EQ(stdfs::read_symlink(link), "/usr/sbin/ecfs");
  }
  // One page per command, and ecfs(8); each renders.
  std::set<std::string> pages{"ecfs.8.gz"};
  const std::set<std::string> names = commands();
  ASSERT_GE(names.size(), 9u);
  for (const std::string& name : names) pages.insert("ecfs-" + name + ".8.gz");
  std::set<std::string> installed;
  for (const auto& entry : stdfs::directory_iterator(dest_ + "/usr/share/man/man8")) {
    installed.insert(entry.path().filename());
  }
  EXPECT_EQ(installed, pages);
  for (const std::string& page : pages) {
    SCOPED_TRACE(page);
    const Outcome shown = run_program(
        {"/usr/bin/env", "MANWIDTH=80", "man", "-l", dest_ + "/usr/share/man/man8/" + page},
        scratch_.path());
    EXPECT_EQ(shown.exit_status, 0) << shown.describe();
    EXPECT_NE(shown.out.find("NAME"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("SYNOPSIS"), std::string::npos) << shown.out;
    EXPECT_EQ(shown.err, "");
  }
  const Outcome mount_page = run_program(
      {"/usr/bin/env", "MANWIDTH=80", "man", "-l", dest_ + "/usr/share/man/man8/ecfs-mount.8.gz"},
      scratch_.path());
  EXPECT_NE(mount_page.out.find("ecfs-mount - mount an ecfs image"), std::string::npos)
      << mount_page.out;
  EXPECT_NE(mount_page.out.find("fstab(5)"), std::string::npos) << mount_page.out;
  // A command with several forms has each on its own SYNOPSIS line; its
  // examples are a section of their own.
  const Outcome subvolume_page = run_program({"/usr/bin/env", "MANWIDTH=80", "man", "-l",
                                              dest_ + "/usr/share/man/man8/ecfs-subvolume.8.gz"},
                                             scratch_.path());
  for (const char* line : {"SYNOPSIS\n       ecfs subvolume create PATH\n"
                           "       ecfs subvolume snapshot [-r] SOURCE DEST\n",
                           "\nEXAMPLES\n", "ecfs subvolume snapshot -r /mnt/home"}) {
    EXPECT_NE(subvolume_page.out.find(line), std::string::npos) << line << subvolume_page.out;
  }
  EXPECT_TRUE(stdfs::is_regular_file(dest_ + "/usr/share/bash-completion/completions/ecfs"));
  // Nothing else.
  size_t files = 0;
  for (const auto& entry : stdfs::recursive_directory_iterator(dest_)) {
    if (!entry.is_directory()) ++files;
  }
  EXPECT_EQ(files, 1 + 2 + pages.size() + 1);
}

// With any other prefix (make install's /usr/local) the helpers go to /sbin,
// where mount(8) looks on every system, and point into the prefix.
TEST_F(InstallTest, HelpersOfOtherPrefixesGoToSbin) {
  const std::string dest = scratch_.file("local");
  const Outcome installed = run_program(
      {"/usr/bin/env", "DESTDIR=" + dest, "cmake", "--install", build_, "--prefix", "/usr/local"},
      scratch_.path());
  ASSERT_EQ(installed.exit_status, 0) << installed.describe();
  EXPECT_TRUE(stdfs::is_regular_file(dest + "/usr/local/sbin/ecfs"));
  for (const char* helper : {"mount.fuse.ecfs", "mount.fuseblk.ecfs"}) {
    const stdfs::path link = dest + "/sbin/" + helper;
    ASSERT_TRUE(stdfs::is_symlink(link)) << link;
    EXPECT_EQ(stdfs::read_symlink(link), "/usr/local/sbin/ecfs");
  }
  EXPECT_TRUE(stdfs::is_regular_file(dest + "/usr/local/share/man/man8/ecfs-mount.8.gz"));
}

TEST_F(InstallTest, TheInstalledBinaryRunsAndCompletes) {
  const std::string binary = dest_ + "/usr/sbin/ecfs";
  const Outcome version = run_program({binary, "--version"}, scratch_.path());
  EXPECT_EQ(version.exit_status, 0) << version.describe();
  EXPECT_EQ(version.out.rfind("ecfs 0.", 0), 0u) << version.out;
  // The completion, sourced by bash as bash-completion would.
  const std::string script =
      "source " + dest_ +
      "/usr/share/bash-completion/completions/ecfs\n"
      "PATH=" +
      dest_ +
      "/usr/sbin:$PATH\n"
      "COMP_WORDS=(ecfs sub); COMP_CWORD=1; _ecfs; echo \"${COMPREPLY[*]}\"\n"
      "COMP_WORDS=(ecfs subvolume ''); COMP_CWORD=2; _ecfs; echo \"${COMPREPLY[*]}\"\n"
      "COMP_WORDS=(ecfs mkfs --node); COMP_CWORD=2; _ecfs; echo \"${COMPREPLY[*]}\"\n";
  const Outcome completed = run_program({"/bin/bash", "-c", script}, scratch_.path());
  EXPECT_EQ(completed.exit_status, 0) << completed.describe();
  EXPECT_EQ(completed.out, "subvolume\ncreate snapshot list show delete sync\n--nodesize\n");
}

// `make package`'s Debian package (cpack with the build tree's config): the
// same files under /usr, stripped, and the runtime dependencies
// dpkg-shlibdeps finds, with fuse3 for fusermount3.
TEST_F(InstallTest, TheDebianPackageHoldsTheFilesAndNamesItsDependencies) {
  if (access("/usr/bin/cpack", X_OK) != 0 || access("/usr/bin/dpkg-shlibdeps", X_OK) != 0) {
    GTEST_SKIP() << "cpack or dpkg-shlibdeps (dpkg-dev) is not installed";
  }
  const std::string out = scratch_.file("package");
  const Outcome packed = run_program(
      {"/usr/bin/cpack", "-G", "DEB", "-B", out, "--config", build_ + "/CPackConfig.cmake"},
      scratch_.path(), {}, 300);
  ASSERT_EQ(packed.exit_status, 0) << packed.describe();
  std::string deb;
  for (const auto& entry : stdfs::directory_iterator(out)) {
    if (entry.path().extension() == ".deb") deb = entry.path();
  }
  ASSERT_FALSE(deb.empty()) << packed.out;
  const Outcome info = run_program({"/usr/bin/dpkg-deb", "-I", deb}, scratch_.path());
  ASSERT_EQ(info.exit_status, 0) << info.describe();
  for (const char* needed : {"Package: ecfs", "fuse3", "libfuse3-3", "libssl3", "liburing2",
                             "libisal2", "libxxhash0", "libb2-1", "libargon2-1"}) {
    EXPECT_NE(info.out.find(needed), std::string::npos) << needed << "\n" << info.out;
  }
  const Outcome contents = run_program({"/usr/bin/dpkg-deb", "-c", deb}, scratch_.path());
  ASSERT_EQ(contents.exit_status, 0) << contents.describe();
  std::set<std::string> expected{
      "./usr/sbin/ecfs", "./usr/sbin/mount.fuse.ecfs", "./usr/sbin/mount.fuseblk.ecfs",
      "./usr/share/bash-completion/completions/ecfs", "./usr/share/man/man8/ecfs.8.gz"};
  for (const std::string& name : commands()) {
    expected.insert("./usr/share/man/man8/ecfs-" + name + ".8.gz");
  }
  for (const std::string& path : expected) {
    EXPECT_NE(contents.out.find(" " + path), std::string::npos) << path << "\n" << contents.out;
  }
  EXPECT_NE(contents.out.find("./usr/sbin/mount.fuse.ecfs -> /usr/sbin/ecfs"), std::string::npos);
  // Debian ships files under /usr only (merged /usr).
  EXPECT_EQ(contents.out.find(" ./sbin/"), std::string::npos) << contents.out;
}

// mount(8) runs /sbin/mount.fuse.ecfs IMAGE DIR -o OPTIONS: through a link
// of that name to the installed binary, -f (mount(8)'s fake) checks it all;
// as root with /dev/fuse the mount itself is made and undone.
TEST_F(InstallTest, AMountThroughTheInstalledHelper) {
  const std::string binary = dest_ + "/usr/sbin/ecfs";
  const std::string image = scratch_.file("image");
  const std::string mountpoint = scratch_.file("mnt");
  ASSERT_EQ(run_program({binary, "mkfs", image, "--size", "256M", "--quiet"}, scratch_.path())
                .exit_status,
            0);
  ASSERT_TRUE(stdfs::create_directory(mountpoint));
  const std::string helper = scratch_.file("mount.fuse.ecfs");
  stdfs::create_symlink(binary, helper);
  Outcome fake = run_program({helper, image, mountpoint, "-f", "-o", "rw"}, scratch_.path());
  EXPECT_EQ(fake.exit_status, 0) << fake.describe();
  if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "a real mount needs root and /dev/fuse";
  }
  const Outcome mounted =
      run_program({helper, image, mountpoint, "-o", "rw,no_blkdev"}, scratch_.path(), {}, 60);
  ASSERT_EQ(mounted.exit_status, 0) << mounted.describe();
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    seen = read_whole_file("/proc/self/mounts").find(mountpoint) != std::string::npos;
    if (!seen) usleep(50000);
  }
  EXPECT_TRUE(seen) << "not mounted";
  const Outcome unmounted = run_program({"/bin/fusermount3", "-u", mountpoint}, scratch_.path());
  EXPECT_EQ(unmounted.exit_status, 0) << unmounted.describe();
}

}  // namespace
}  // namespace ecfs::cli_test
