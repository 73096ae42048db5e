// End-to-end tests of per-extent fscrypt through a real FUSE mount, driven
// as a user drives it: `ecfs key add|remove|status`, `ecfs policy set|get`,
// ecfs's ioctls (fuse/ioctl_abi.h) made directly, and plain system calls.
//
// Covered: what the commands print (fscryptctl's formats, JSON); the
// kernel's checks of every ioctl argument; policy rules (ENOTEMPTY, EEXIST,
// the same policy again, EINVAL with the reason for v1 / DIRECT_KEY /
// IV_INO_LBLK_*, ENOTDIR, EACCES for a non-owner, ENOKEY for a key the caller
// did not add); user claims of two uids, --all-users, ENOKEY; "incompletely
// removed" while a file is open, finished by a later removal; files,
// directories and symlinks under a policy, across a remount; the no-key view
// after removal (no-key names in readdir, stat, unlink / rmdir, ENOKEY for
// open / create / mkdir / symlink / link / rename / truncate, readlink's
// encoded form) and everything back after the key is added again; EXDEV for
// rename / link across policies; concurrent I/O while the key is removed.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "file_io.h"
#include "fscrypt/key_identifier.h"
#include "fuse/ioctl_abi.h"
#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

using fuse::AddKeyArg;
using fuse::KeyStatusArg;
using fuse::PolicyArg;
using fuse::RemoveKeyArg;

// A 64-byte raw master key (the usual size: AES-256-XTS takes 64).
std::string master_key(uint32_t seed) { return pattern(64, 1000 + seed); }

// The v2 key identifier of `key` (HKDF-SHA512, context 1), from the fscrypt
// library, which its own tests check against the kernel.
std::string identifier_of(const std::string& key) {
  auto identifier = fscrypt::compute_key_identifier(as_bytes(key));
  EXPECT_TRUE(identifier);
  return identifier ? to_hex(*identifier) : std::string();
}

std::string trimmed(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// The names in directory `path`, without "." and "..".
std::set<std::string> list_names(const std::string& path) {
  std::set<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) {
    ADD_FAILURE() << "opendir " << path << ": " << std::strerror(errno);
    return names;
  }
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.insert(name);
  }
  closedir(dir);
  return names;
}

// ioctl(open(path), command, argument) as an errno (0 = success). `path` is
// opened read-only (a directory or a file). An open failure is reported as
// its errno + 10000, so it cannot pass for the ioctl's.
int ioctl_errno(const std::string& path, unsigned command, void* argument, int flags = O_RDONLY) {
  const int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return 10000 + errno;
  const int result = ioctl(fd, command, argument);
  const int error = result < 0 ? errno : 0;
  close(fd);
  return error;
}

fuse::KeySpecifier identifier_spec(const std::string& identifier_hex) {
  fuse::KeySpecifier spec;
  std::memset(&spec, 0, sizeof(spec));
  spec.type = fuse::kKeySpecTypeIdentifier;
  auto bytes = from_hex(identifier_hex);
  EXPECT_TRUE(bytes && bytes->size() == fuse::kKeyIdentifierBytes) << identifier_hex;
  if (bytes) std::memcpy(spec.bytes, bytes->data(), std::min(bytes->size(), sizeof(spec.bytes)));
  return spec;
}

AddKeyArg add_key_arg(const std::string& key) {
  AddKeyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.key_spec.type = fuse::kKeySpecTypeIdentifier;
  arg.raw_size = static_cast<uint32_t>(key.size());
  std::memcpy(arg.raw, key.data(), std::min(key.size(), sizeof(arg.raw)));
  return arg;
}

RemoveKeyArg remove_key_arg(const std::string& identifier_hex, uint32_t flags = 0) {
  RemoveKeyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.flags = flags;
  arg.key_spec = identifier_spec(identifier_hex);
  return arg;
}

KeyStatusArg key_status_arg(const std::string& identifier_hex) {
  KeyStatusArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.key_spec = identifier_spec(identifier_hex);
  return arg;
}

// struct fscrypt_policy_v2 with the defaults of `ecfs policy set`.
PolicyArg policy_v2_arg(const std::string& identifier_hex, uint8_t flags = 0x03) {
  PolicyArg arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.version = fuse::kIoctlAbiVersion;
  arg.policy_size = fuse::kPolicyV2Bytes;
  arg.policy[0] = 2;  // FSCRYPT_POLICY_V2
  arg.policy[1] = 1;  // AES-256-XTS
  arg.policy[2] = 4;  // AES-256-CTS
  arg.policy[3] = flags;
  auto bytes = from_hex(identifier_hex);
  if (bytes && bytes->size() == 16) std::memcpy(arg.policy + 8, bytes->data(), 16);
  return arg;
}

class EncryptionTest : public FuseTest {
 protected:
  // The path of a file holding master_key(seed) (root's, mode 0600).
  std::string key_file(uint32_t seed) {
    const std::string path = scratch_.file("key-" + std::to_string(seed));
    EXPECT_TRUE(write_file(path, master_key(seed), O_TRUNC, 0600));
    return path;
  }

  // `ecfs key add MNT --key-file F` as root; returns the printed identifier.
  std::string add_key(uint32_t seed = 1) {
    const Outcome run = ecfs({"key", "add", mountpoint_, "--key-file", key_file(seed)});
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    const std::string identifier = trimmed(run.out);
    EXPECT_EQ(identifier, identifier_of(master_key(seed)));
    return identifier;
  }

  std::string key_status(const std::string& identifier) {
    const Outcome run = ecfs({"key", "status", mountpoint_, identifier});
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    return trimmed(run.out);
  }

  Outcome remove_key(const std::string& identifier, bool all_users = false) {
    std::vector<std::string> args = {"key", "remove", mountpoint_, identifier};
    if (all_users) args.emplace_back("--all-users");
    return ecfs(args);
  }

  // After the last file using an incompletely removed key was closed: the
  // removal finishes, by itself when the file is released (ecfs drops the
  // file's key then) or by a later removal (the kernel, which keeps closed
  // inodes cached until that removal evicts them). A removal after it
  // finished is ENOKEY ("already fully removed", fscrypt.rst). True once
  // the key is absent, within 10 s.
  bool finish_removal(const std::string& identifier) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (key_status(identifier) == "Absent") return true;
      const Outcome again = remove_key(identifier);
      if (again.exit_status != 0 &&
          again.err.find("(Required key not available)") == std::string::npos) {
        ADD_FAILURE() << again.describe();
        return false;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // mkdir MNT/name, then `ecfs policy set` with `options`; returns the path.
  std::string encrypted_dir(const std::string& name, const std::string& identifier,
                            const std::vector<std::string>& options = {}) {
    const std::string dir = path(name);
    EXPECT_EQ(mkdir(dir.c_str(), 0755), 0) << std::strerror(errno);
    std::vector<std::string> args = {"policy", "set", dir, identifier};
    args.insert(args.end(), options.begin(), options.end());
    const Outcome run = ecfs(args);
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    return dir;
  }
};

// ---- What the commands print ------------------------------------------

TEST_F(EncryptionTest, PolicySetAndGetPrintLikeFscryptctl) {
  const std::string id = add_key(1);
  EXPECT_EQ(key_status(id), "Present (user_count=1, added_by_self)");

  const std::string dir = encrypted_dir("enc", id);
  const Outcome text = ecfs({"policy", "get", dir});
  ASSERT_EQ(text.exit_status, 0) << text.describe();
  EXPECT_EQ(text.out, "Encryption policy for " + dir +
                          ":\n"
                          "\tPolicy version: 2\n"
                          "\tMaster key identifier: " +
                          id +
                          "\n"
                          "\tContents encryption mode: AES-256-XTS\n"
                          "\tFilenames encryption mode: AES-256-CTS\n"
                          "\tFlags: PAD_32\n"
                          "\tData unit size: default\n");

  if (cli_test::python3_available()) {
    const Outcome json = ecfs({"policy", "get", dir, "--json"});
    ASSERT_EQ(json.exit_status, 0) << json.describe();
    const auto query = [&](const std::string& expression) {
      const Outcome run = cli_test::python_json(json.out, expression, scratch_.path());
      EXPECT_EQ(run.exit_status, 0) << expression << "\n" << json.out << run.describe();
      return run.out;
    };
    EXPECT_EQ(query("d['version']"), "2");
    EXPECT_EQ(query("d['contents_mode']['name'], d['contents_mode']['number']"), "AES-256-XTS 1");
    EXPECT_EQ(query("d['filenames_mode']['name'], d['filenames_mode']['number']"), "AES-256-CTS 4");
    EXPECT_EQ(query("d['flags'], d['flag_names'], d['padding']"), "3 ['PAD_32'] 32");
    EXPECT_EQ(query("d['data_unit_size'], d['log2_data_unit_size']"), "None 0");
    EXPECT_EQ(query("d['master_key_identifier']"), id);
    EXPECT_EQ(query("d['path']"), dir);
  }

  // New files and directories inherit the policy; their policy reads back
  // the same (a regular file needs its key to be opened).
  ASSERT_TRUE(write_file(dir + "/file", "contents"));
  ASSERT_EQ(mkdir((dir + "/sub").c_str(), 0755), 0);
  for (const std::string& inner : {dir + "/file", dir + "/sub"}) {
    const Outcome inherited = ecfs({"policy", "get", inner});
    ASSERT_EQ(inherited.exit_status, 0) << inherited.describe();
    EXPECT_NE(inherited.out.find("\tMaster key identifier: " + id + "\n"), std::string::npos)
        << inherited.out;
    EXPECT_NE(inherited.out.find("\tFlags: PAD_32\n"), std::string::npos) << inherited.out;
  }

  // Non-default options, as fscryptctl spells them.
  const std::string other = encrypted_dir(
      "other", id, {"--filenames", "AES-256-HCTR2", "--padding", "16", "--data-unit-size", "512"});
  const Outcome shown = ecfs({"policy", "get", other});
  ASSERT_EQ(shown.exit_status, 0) << shown.describe();
  EXPECT_NE(shown.out.find("\tContents encryption mode: AES-256-XTS\n"), std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find("\tFilenames encryption mode: AES-256-HCTR2\n"), std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find("\tFlags: PAD_16\n"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("\tData unit size: 512\n"), std::string::npos) << shown.out;
  const std::string data = pattern(3 * 4096 + 100, 7);
  ASSERT_TRUE(write_file(other + "/a file with a long name of sixty bytes or so.....", data));
  EXPECT_EQ(read_file(other + "/a file with a long name of sixty bytes or so....."), data);
}

TEST_F(EncryptionTest, PolicyGetOfAnUnencryptedPathIsNotEncrypted) {
  ASSERT_EQ(mkdir(path("plain").c_str(), 0755), 0);
  for (const std::string& target : {mountpoint_, path("plain")}) {
    const Outcome run = ecfs({"policy", "get", target});
    EXPECT_EQ(run.exit_status, 1) << run.describe();
    EXPECT_NE(run.err.find("file or directory not encrypted"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("(No data available)"), std::string::npos) << run.err;
    PolicyArg arg;
    std::memset(&arg, 0, sizeof(arg));
    arg.version = fuse::kIoctlAbiVersion;
    EXPECT_EQ(ioctl_errno(target, fuse::ECFS_IOC_GET_POLICY, &arg), ENODATA);
  }
}

// ---- Policy rules ------------------------------------------------------

TEST_F(EncryptionTest, PolicyIsSetOnlyOnEmptyDirectoriesAndOnlyOnce) {
  const std::string id = add_key(1);
  const std::string other_id = add_key(2);

  ASSERT_EQ(mkdir(path("full").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(path("full/f"), "x"));
  const Outcome not_empty = ecfs({"policy", "set", path("full"), id});
  EXPECT_EQ(not_empty.exit_status, 1) << not_empty.describe();
  EXPECT_NE(not_empty.err.find("not empty"), std::string::npos) << not_empty.err;
  EXPECT_NE(not_empty.err.find("(Directory not empty)"), std::string::npos) << not_empty.err;
  PolicyArg arg = policy_v2_arg(id);
  EXPECT_EQ(ioctl_errno(path("full"), fuse::ECFS_IOC_SET_POLICY, &arg), ENOTEMPTY);

  const std::string dir = encrypted_dir("enc", id);
  // The same policy again succeeds (fscrypt_ioctl_set_policy compares).
  const Outcome again = ecfs({"policy", "set", dir, id});
  EXPECT_EQ(again.exit_status, 0) << again.describe();
  arg = policy_v2_arg(id);
  EXPECT_EQ(ioctl_errno(dir, fuse::ECFS_IOC_SET_POLICY, &arg), 0);
  // Also once it holds files.
  ASSERT_TRUE(write_file(dir + "/f", "x"));
  EXPECT_EQ(ioctl_errno(dir, fuse::ECFS_IOC_SET_POLICY, &arg), 0);
  // A different one: EEXIST, whatever differs.
  for (const std::vector<std::string>& different : std::vector<std::vector<std::string>>{
           {id, "--padding", "16"},
           {other_id},
           {id, "--filenames", "AES-256-HCTR2"},
       }) {
    std::vector<std::string> args = {"policy", "set", dir};
    args.insert(args.end(), different.begin(), different.end());
    const Outcome run = ecfs(args);
    EXPECT_EQ(run.exit_status, 1) << run.describe();
    EXPECT_NE(run.err.find("already encrypted with a different policy"), std::string::npos)
        << run.err;
    EXPECT_NE(run.err.find("(File exists)"), std::string::npos) << run.err;
  }
  arg = policy_v2_arg(other_id);
  EXPECT_EQ(ioctl_errno(dir, fuse::ECFS_IOC_SET_POLICY, &arg), EEXIST);
}

TEST_F(EncryptionTest, PoliciesThatTieCiphertextToInodesAreRefusedWithTheReason) {
  const std::string id = add_key(1);
  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0);
  struct Case {
    std::vector<std::string> args;
    const char* reason;
  };
  for (const Case& refused : std::vector<Case>{
           {{"0011223344556677"}, "needs a v2 encryption policy"},
           {{id, "--direct-key"}, "DIRECT_KEY"},
           {{id, "--direct-key", "--contents", "Adiantum", "--filenames", "Adiantum"},
            "DIRECT_KEY"},
           {{id, "--iv-ino-lblk-64"}, "IV_INO_LBLK_64"},
           {{id, "--iv-ino-lblk-32"}, "IV_INO_LBLK_32"},
       }) {
    std::vector<std::string> args = {"policy", "set", path("d")};
    args.insert(args.end(), refused.args.begin(), refused.args.end());
    const Outcome run = ecfs(args);
    EXPECT_EQ(run.exit_status, 1) << refused.reason << "\n" << run.describe();
    EXPECT_NE(run.err.find(refused.reason), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("only plain v2 policies"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("(Invalid argument)"), std::string::npos) << run.err;
  }
  // Invalid for fscrypt itself: a mode pair the kernel does not allow.
  const Outcome pair =
      ecfs({"policy", "set", path("d"), id, "--contents", "AES-256-XTS", "--filenames", "SM4-CTS"});
  EXPECT_EQ(pair.exit_status, 1) << pair.describe();
  EXPECT_NE(pair.err.find("invalid encryption options provided"), std::string::npos) << pair.err;

  // The same through the ioctl: EINVAL for each flag; the directory stays
  // unencrypted and empty.
  for (uint8_t flag : {uint8_t{0x04}, uint8_t{0x08}, uint8_t{0x10}}) {
    PolicyArg arg = policy_v2_arg(id, static_cast<uint8_t>(0x03 | flag));
    EXPECT_EQ(ioctl_errno(path("d"), fuse::ECFS_IOC_SET_POLICY, &arg), EINVAL) << int{flag};
  }
  PolicyArg v1;
  std::memset(&v1, 0, sizeof(v1));
  v1.version = fuse::kIoctlAbiVersion;
  v1.policy_size = fuse::kPolicyV1Bytes;
  const uint8_t v1_policy[12] = {0, 1, 4, 3, 0, 1, 2, 3, 4, 5, 6, 7};
  std::memcpy(v1.policy, v1_policy, sizeof(v1_policy));
  EXPECT_EQ(ioctl_errno(path("d"), fuse::ECFS_IOC_SET_POLICY, &v1), EINVAL);
  const Outcome get = ecfs({"policy", "get", path("d")});
  EXPECT_EQ(get.exit_status, 1) << get.describe();
  EXPECT_NE(get.err.find("not encrypted"), std::string::npos) << get.err;
}

TEST_F(EncryptionTest, PolicyIsSetOnDirectoriesByTheirOwnerWithTheirOwnKey) {
  const std::string id = add_key(1);
  // ENOTDIR: the ioctl on a regular file (the command opens O_DIRECTORY).
  ASSERT_TRUE(write_file(path("file"), ""));
  PolicyArg arg = policy_v2_arg(id);
  EXPECT_EQ(ioctl_errno(path("file"), fuse::ECFS_IOC_SET_POLICY, &arg), ENOTDIR);
  const Outcome not_dir = ecfs({"policy", "set", path("file"), id});
  EXPECT_EQ(not_dir.exit_status, 1) << not_dir.describe();
  EXPECT_NE(not_dir.err.find("(Not a directory)"), std::string::npos) << not_dir.err;

  // EACCES: another user on root's directory (inode_owner_or_capable).
  ASSERT_EQ(mkdir(path("roots").c_str(), 0777), 0);
  EXPECT_EQ(errno_as_nobody([&] {
              PolicyArg nobody_arg = policy_v2_arg(id);
              return ioctl_errno(path("roots"), fuse::ECFS_IOC_SET_POLICY, &nobody_arg);
            }),
            EACCES);
  const Outcome denied = ecfs_as(kNobodyUid, {"policy", "set", path("roots"), id});
  EXPECT_EQ(denied.exit_status, 1) << denied.describe();
  EXPECT_NE(denied.err.find("only the directory's owner"), std::string::npos) << denied.err;
  EXPECT_NE(denied.err.find("(Permission denied)"), std::string::npos) << denied.err;

  // ENOKEY: the owner, but with a key it has not added
  // (fscrypt_verify_key_added); fine once it has added the key too.
  ASSERT_EQ(mkdir(path("nobodys").c_str(), 0755), 0);
  ASSERT_EQ(chown(path("nobodys").c_str(), kNobodyUid, kNobodyGid), 0);
  const Outcome no_key = ecfs_as(kNobodyUid, {"policy", "set", path("nobodys"), id});
  EXPECT_EQ(no_key.exit_status, 1) << no_key.describe();
  EXPECT_NE(no_key.err.find("the key is not added"), std::string::npos) << no_key.err;
  EXPECT_NE(no_key.err.find("(Required key not available)"), std::string::npos) << no_key.err;
  const Outcome added = ecfs_as(kNobodyUid, {"key", "add", mountpoint_}, master_key(1));
  ASSERT_EQ(added.exit_status, 0) << added.describe();
  EXPECT_EQ(trimmed(added.out), id);
  const Outcome set = ecfs_as(kNobodyUid, {"policy", "set", path("nobodys"), id});
  EXPECT_EQ(set.exit_status, 0) << set.describe();
  EXPECT_EQ(errno_as_nobody([&] { return write_file(path("nobodys/mine"), "x") ? 0 : errno; }), 0);
}

// ---- The ioctl arguments -------------------------------------------------

TEST_F(EncryptionTest, AddKeyArgumentsAreCheckedAsTheKernelChecksThem) {
  const std::string key = master_key(1);
  struct Case {
    const char* what;
    void (*spoil)(AddKeyArg&);
  };
  for (const Case& bad : std::vector<Case>{
           {"ABI version 0", [](AddKeyArg& a) { a.version = 0; }},
           {"ABI version 2", [](AddKeyArg& a) { a.version = 2; }},
           {"unknown flag", [](AddKeyArg& a) { a.flags = 1; }},
           {"key_spec reserved", [](AddKeyArg& a) { a.key_spec.reserved = 1; }},
           {"key_spec type 0", [](AddKeyArg& a) { a.key_spec.type = 0; }},
           {"key_spec type 3", [](AddKeyArg& a) { a.key_spec.type = 3; }},
           {"identifier set on input", [](AddKeyArg& a) { a.key_spec.bytes[3] = 1; }},
           {"byte past the identifier", [](AddKeyArg& a) { a.key_spec.bytes[20] = 1; }},
           {"key_id", [](AddKeyArg& a) { a.key_id = 5; }},
           {"raw_size 0", [](AddKeyArg& a) { a.raw_size = 0; }},
           {"raw_size 15", [](AddKeyArg& a) { a.raw_size = 15; }},
           {"raw_size 65", [](AddKeyArg& a) { a.raw_size = 65; }},
           {"raw byte past raw_size", [](AddKeyArg& a) { a.raw_size = 32; }},
           {"reserved", [](AddKeyArg& a) { a.reserved[7] = 1; }},
       }) {
    AddKeyArg arg = add_key_arg(key);
    bad.spoil(arg);
    EXPECT_EQ(ioctl_errno(mountpoint_, fuse::ECFS_IOC_ADD_KEY, &arg), EINVAL) << bad.what;
  }
  // Nothing was added by any of them.
  KeyStatusArg status = key_status_arg(identifier_of(key));
  ASSERT_EQ(ioctl_errno(mountpoint_, fuse::ECFS_IOC_KEY_STATUS, &status), 0);
  EXPECT_EQ(status.status, fuse::kKeyStatusAbsent);

  // A descriptor (v1) key needs CAP_SYS_ADMIN: EACCES before anything else.
  EXPECT_EQ(errno_as_nobody([&] {
              AddKeyArg arg = add_key_arg(key);
              arg.key_spec.type = fuse::kKeySpecTypeDescriptor;
              std::memcpy(arg.key_spec.bytes, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
              arg.raw_size = 3;  // also bad, but the capability is checked first
              return ioctl_errno(mountpoint_, fuse::ECFS_IOC_ADD_KEY, &arg);
            }),
            EACCES);

  // A good call: the identifier comes back, raw[] comes back zeroed.
  AddKeyArg good = add_key_arg(key);
  ASSERT_EQ(ioctl_errno(mountpoint_, fuse::ECFS_IOC_ADD_KEY, &good), 0);
  EXPECT_EQ(good.version, fuse::kIoctlAbiVersion);
  EXPECT_EQ(good.key_spec.type, fuse::kKeySpecTypeIdentifier);
  EXPECT_EQ(to_hex(ByteSpan(good.key_spec.bytes, 16)), identifier_of(key));
  EXPECT_TRUE(std::all_of(good.key_spec.bytes + 16, good.key_spec.bytes + 32,
                          [](uint8_t b) { return b == 0; }));
  EXPECT_TRUE(std::all_of(good.raw, good.raw + sizeof(good.raw), [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(good.raw_size, 64u);
  // Shorter keys are fine for adding (16..64 bytes).
  AddKeyArg short_key = add_key_arg(pattern(16, 5));
  ASSERT_EQ(ioctl_errno(mountpoint_, fuse::ECFS_IOC_ADD_KEY, &short_key), 0);
  EXPECT_EQ(to_hex(ByteSpan(short_key.key_spec.bytes, 16)), identifier_of(pattern(16, 5)));

  // A v1 descriptor key as root: present, no user claims (fscryptctl prints
  // just "Present").
  AddKeyArg v1 = add_key_arg(key);
  v1.key_spec.type = fuse::kKeySpecTypeDescriptor;
  std::memcpy(v1.key_spec.bytes, "\x00\x11\x22\x33\x44\x55\x66\x77", 8);
  ASSERT_EQ(ioctl_errno(mountpoint_, fuse::ECFS_IOC_ADD_KEY, &v1), 0);
  EXPECT_EQ(v1.key_spec.type, fuse::kKeySpecTypeDescriptor);
  EXPECT_EQ(to_hex(ByteSpan(v1.key_spec.bytes, 8)), "0011223344556677");
  EXPECT_EQ(key_status("0011223344556677"), "Present");
}

// Runs `action` in a child as uid/gid 65534 that keeps CAP_SYS_ADMIN.
int errno_as_nobody_with_cap_sys_admin(const std::function<int()>& action) {
  return errno_as_user(kNobodyUid, kNobodyGid, action, 1u << CAP_SYS_ADMIN);
}

TEST_F(EncryptionTest, CapSysAdminMakesAnotherUidPrivileged) {
  // Decided from /proc/<pid>/status CapEff of the caller: a descriptor key
  // and an all-users removal need CAP_SYS_ADMIN, not uid 0.
  AddKeyArg v1 = add_key_arg(master_key(1));
  v1.key_spec.type = fuse::kKeySpecTypeDescriptor;
  std::memcpy(v1.key_spec.bytes, "\x00\x11\x22\x33\x44\x55\x66\x77", 8);
  EXPECT_EQ(errno_as_nobody([&] {
              AddKeyArg arg = v1;
              return ioctl_errno(mountpoint_, fuse::ECFS_IOC_ADD_KEY, &arg);
            }),
            EACCES);
  EXPECT_EQ(errno_as_nobody_with_cap_sys_admin([&] {
              AddKeyArg arg = v1;
              return ioctl_errno(mountpoint_, fuse::ECFS_IOC_ADD_KEY, &arg);
            }),
            0);
  EXPECT_EQ(key_status("0011223344556677"), "Present");

  const std::string id = add_key(2);
  EXPECT_EQ(errno_as_nobody_with_cap_sys_admin([&] {
              RemoveKeyArg arg = remove_key_arg(id, fuse::kRemoveKeyFlagAllUsers);
              return ioctl_errno(mountpoint_, fuse::ECFS_IOC_REMOVE_KEY, &arg);
            }),
            0);
  EXPECT_EQ(key_status(id), "Absent");
}

TEST_F(EncryptionTest, KeyStatusRemovalAndPolicyArgumentsAreChecked) {
  const std::string id = add_key(1);
  const auto status_errno = [&](void (*spoil)(KeyStatusArg&)) {
    KeyStatusArg arg = key_status_arg(id);
    spoil(arg);
    return ioctl_errno(mountpoint_, fuse::ECFS_IOC_KEY_STATUS, &arg);
  };
  EXPECT_EQ(status_errno([](KeyStatusArg& a) { a.version = 7; }), EINVAL);
  EXPECT_EQ(status_errno([](KeyStatusArg& a) { a.flags = 1; }), EINVAL);
  EXPECT_EQ(status_errno([](KeyStatusArg& a) { a.key_spec.type = 9; }), EINVAL);
  EXPECT_EQ(status_errno([](KeyStatusArg& a) { a.key_spec.bytes[31] = 1; }), EINVAL);
  EXPECT_EQ(status_errno([](KeyStatusArg& a) { a.reserved[0] = 1; }), EINVAL);
  // Output fields are outputs: whatever they held, they are overwritten.
  KeyStatusArg status = key_status_arg(id);
  status.status = 77;
  status.user_count = 9;
  ASSERT_EQ(ioctl_errno(mountpoint_, fuse::ECFS_IOC_KEY_STATUS, &status), 0);
  EXPECT_EQ(status.status, fuse::kKeyStatusPresent);
  EXPECT_EQ(status.status_flags, fuse::kKeyStatusFlagAddedBySelf);
  EXPECT_EQ(status.user_count, 1u);

  const auto remove_errno = [&](void (*spoil)(RemoveKeyArg&)) {
    RemoveKeyArg arg = remove_key_arg(id);
    spoil(arg);
    return ioctl_errno(mountpoint_, fuse::ECFS_IOC_REMOVE_KEY, &arg);
  };
  EXPECT_EQ(remove_errno([](RemoveKeyArg& a) { a.flags = 2; }), EINVAL);
  EXPECT_EQ(remove_errno([](RemoveKeyArg& a) { a.key_spec.reserved = 4; }), EINVAL);
  EXPECT_EQ(remove_errno([](RemoveKeyArg& a) { a.reserved[4] = 1; }), EINVAL);
  // All users, or a descriptor key: CAP_SYS_ADMIN.
  EXPECT_EQ(errno_as_nobody([&] {
              RemoveKeyArg arg = remove_key_arg(id, fuse::kRemoveKeyFlagAllUsers);
              return ioctl_errno(mountpoint_, fuse::ECFS_IOC_REMOVE_KEY, &arg);
            }),
            EACCES);
  EXPECT_EQ(errno_as_nobody([&] {
              RemoveKeyArg arg = remove_key_arg(id);
              arg.key_spec.type = fuse::kKeySpecTypeDescriptor;
              std::memset(arg.key_spec.bytes + 8, 0, 24);
              return ioctl_errno(mountpoint_, fuse::ECFS_IOC_REMOVE_KEY, &arg);
            }),
            EACCES);
  EXPECT_EQ(key_status(id), "Present (user_count=1, added_by_self)");

  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0);
  const auto policy_errno = [&](void (*spoil)(PolicyArg&)) {
    PolicyArg arg = policy_v2_arg(id);
    spoil(arg);
    return ioctl_errno(path("d"), fuse::ECFS_IOC_SET_POLICY, &arg);
  };
  EXPECT_EQ(policy_errno([](PolicyArg& a) { a.version = 0; }), EINVAL);
  EXPECT_EQ(policy_errno([](PolicyArg& a) { a.policy_size = 12; }), EINVAL);
  EXPECT_EQ(policy_errno([](PolicyArg& a) { a.policy_size = 32; }), EINVAL);
  EXPECT_EQ(policy_errno([](PolicyArg& a) { a.policy[0] = 1; }), EINVAL);
  EXPECT_EQ(policy_errno([](PolicyArg& a) { a.policy[24] = 1; }), EINVAL);
  EXPECT_EQ(policy_errno([](PolicyArg& a) { a.policy[5] = 1; }), EINVAL);  // v2 reserved
  EXPECT_EQ(policy_errno([](PolicyArg& a) { a.reserved[2] = 1; }), EINVAL);
  EXPECT_EQ(policy_errno([](PolicyArg& a) { a.policy[1] = 2; }), EINVAL);  // no mode 2
  EXPECT_TRUE(list_names(path("d")).empty());
  PolicyArg get;
  std::memset(&get, 0, sizeof(get));
  get.version = fuse::kIoctlAbiVersion;
  EXPECT_EQ(ioctl_errno(path("d"), fuse::ECFS_IOC_GET_POLICY, &get), ENODATA);

  // A good one comes back as it went, and reads back byte for byte.
  PolicyArg good = policy_v2_arg(id);
  const PolicyArg sent = good;
  ASSERT_EQ(ioctl_errno(path("d"), fuse::ECFS_IOC_SET_POLICY, &good), 0);
  EXPECT_EQ(std::memcmp(&good, &sent, sizeof(good)), 0);
  get.policy_size = 99;  // an output
  ASSERT_EQ(ioctl_errno(path("d"), fuse::ECFS_IOC_GET_POLICY, &get), 0);
  EXPECT_EQ(get.policy_size, fuse::kPolicyV2Bytes);
  EXPECT_EQ(std::memcmp(get.policy, sent.policy, sizeof(get.policy)), 0);
  get.reserved[1] = 1;
  EXPECT_EQ(ioctl_errno(path("d"), fuse::ECFS_IOC_GET_POLICY, &get), EINVAL);

  // A number of the 'E' type that ecfs does not define.
  PolicyArg unknown = policy_v2_arg(id);
  EXPECT_EQ(ioctl_errno(mountpoint_, _IOWR(fuse::kIoctlType, 0x45, PolicyArg), &unknown), ENOTTY);
}

// ---- Keys and their users ------------------------------------------------

TEST_F(EncryptionTest, TwoUsersHoldClaimsOnOneKey) {
  const std::string id = add_key(1);
  const Outcome nobody_add = ecfs_as(kNobodyUid, {"key", "add", mountpoint_}, master_key(1));
  ASSERT_EQ(nobody_add.exit_status, 0) << nobody_add.describe();
  EXPECT_EQ(trimmed(nobody_add.out), id);
  EXPECT_EQ(key_status(id), "Present (user_count=2, added_by_self)");

  // Root removes its claim: the key stays for the other user.
  const Outcome root_remove = remove_key(id);
  EXPECT_EQ(root_remove.exit_status, 0) << root_remove.describe();
  EXPECT_EQ(root_remove.out, "warning: other users still have this key added\n");
  EXPECT_EQ(key_status(id), "Present (user_count=1)");
  const Outcome nobody_status = ecfs_as(kNobodyUid, {"key", "status", mountpoint_, id});
  EXPECT_EQ(nobody_status.exit_status, 0) << nobody_status.describe();
  EXPECT_EQ(nobody_status.out, "Present (user_count=1, added_by_self)\n");

  // Root has no claim left: ENOKEY.
  const Outcome root_again = remove_key(id);
  EXPECT_EQ(root_again.exit_status, 1) << root_again.describe();
  EXPECT_NE(root_again.err.find("the key is not present, or was not added by you"),
            std::string::npos)
      << root_again.err;
  EXPECT_NE(root_again.err.find("(Required key not available)"), std::string::npos)
      << root_again.err;

  // The last claim goes: the key is removed.
  const Outcome nobody_remove = ecfs_as(kNobodyUid, {"key", "remove", mountpoint_, id});
  EXPECT_EQ(nobody_remove.exit_status, 0) << nobody_remove.describe();
  EXPECT_EQ(nobody_remove.out, "");
  EXPECT_EQ(key_status(id), "Absent");
  const Outcome gone = remove_key(id);
  EXPECT_EQ(gone.exit_status, 1) << gone.describe();
}

TEST_F(EncryptionTest, AllUsersRemovalNeedsRootAndDropsEveryClaim) {
  const std::string id = add_key(1);
  ASSERT_EQ(ecfs_as(kNobodyUid, {"key", "add", mountpoint_}, master_key(1)).exit_status, 0);
  const Outcome denied = ecfs_as(kNobodyUid, {"key", "remove", mountpoint_, id, "--all-users"});
  EXPECT_EQ(denied.exit_status, 1) << denied.describe();
  EXPECT_NE(denied.err.find("permission denied"), std::string::npos) << denied.err;
  EXPECT_NE(denied.err.find("(Permission denied)"), std::string::npos) << denied.err;
  EXPECT_EQ(key_status(id), "Present (user_count=2, added_by_self)");

  const Outcome removed = remove_key(id, true);
  EXPECT_EQ(removed.exit_status, 0) << removed.describe();
  EXPECT_EQ(removed.out, "");
  EXPECT_EQ(key_status(id), "Absent");
  const Outcome nobody_status = ecfs_as(kNobodyUid, {"key", "status", mountpoint_, id});
  EXPECT_EQ(nobody_status.out, "Absent\n") << nobody_status.describe();
}

TEST_F(EncryptionTest, RemovingAKeyNobodyAddedIsEnokey) {
  const std::string never = identifier_of(master_key(9));
  EXPECT_EQ(key_status(never), "Absent");
  const Outcome run = remove_key(never);
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_NE(run.err.find("the key is not present, or was not added by you"), std::string::npos)
      << run.err;
  // Someone else's key: the other user has no claim on it.
  const std::string id = add_key(1);
  const Outcome other = ecfs_as(kNobodyUid, {"key", "remove", mountpoint_, id});
  EXPECT_EQ(other.exit_status, 1) << other.describe();
  EXPECT_NE(other.err.find("(Required key not available)"), std::string::npos) << other.err;
  EXPECT_EQ(key_status(id), "Present (user_count=1, added_by_self)");
}

// ---- Data under a policy -------------------------------------------------

TEST_F(EncryptionTest, FilesDirectoriesAndSymlinksUnderAPolicySurviveARemount) {
  const std::string id = add_key(1);
  const std::string dir = encrypted_dir("vault", id);
  std::map<std::string, std::string> files = {
      {"empty", ""},
      {"small", "hello, encrypted world"},
      {"one block", pattern(4096, 2)},
      {"unaligned large file", pattern(3 * 1024 * 1024 + 123, 3)},
      {"sub/nested file", pattern(10000, 4)},
      {"sub/deeper/x", pattern(70000, 5)},
      {std::string(200, 'n'), pattern(100, 6)},  // a long name
  };
  ASSERT_EQ(mkdir((dir + "/sub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dir + "/sub/deeper").c_str(), 0700), 0);
  for (const auto& [name, data] : files) ASSERT_TRUE(write_file(dir + "/" + name, data)) << name;
  ASSERT_EQ(symlink("sub/nested file", (dir + "/link").c_str()), 0);
  ASSERT_EQ(symlink(std::string(300, 't').c_str(), (dir + "/long link").c_str()), 0);
  // An overwrite in the middle of a file, and a hard link.
  {
    const int fd = open((dir + "/one block").c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(pwrite_all(fd, "OVERWRITE", 1000));
    close(fd);
    files["one block"].replace(1000, 9, "OVERWRITE");
  }
  ASSERT_EQ(link((dir + "/small").c_str(), (dir + "/sub/small link").c_str()), 0);
  files["sub/small link"] = files["small"];

  const auto check_all = [&] {
    for (const auto& [name, data] : files) EXPECT_EQ(read_file(dir + "/" + name), data) << name;
    char target[1024];
    ssize_t n = readlink((dir + "/link").c_str(), target, sizeof(target));
    EXPECT_EQ(std::string(target, n > 0 ? static_cast<size_t>(n) : 0), "sub/nested file");
    n = readlink((dir + "/long link").c_str(), target, sizeof(target));
    EXPECT_EQ(std::string(target, n > 0 ? static_cast<size_t>(n) : 0), std::string(300, 't'));
    EXPECT_EQ(read_file(dir + "/link"), files["sub/nested file"]);
    EXPECT_EQ(list_names(dir),
              (std::set<std::string>{"empty", "small", "one block", "unaligned large file", "sub",
                                     std::string(200, 'n'), "link", "long link"}));
    EXPECT_EQ(list_names(dir + "/sub"),
              (std::set<std::string>{"nested file", "deeper", "small link"}));
    EXPECT_EQ(stat_of(dir + "/unaligned large file").st_size, 3 * 1024 * 1024 + 123);
    EXPECT_EQ(stat_of(dir + "/sub/deeper").st_mode & 07777, 0700u);
  };
  check_all();

  // Keys live in the mount only: after a remount, nothing is readable until
  // the key is added again.
  ASSERT_NO_FATAL_FAILURE(remount());
  EXPECT_EQ(key_status(id), "Absent");
  // A plaintext name is no name at all without the key (the kernel looks it
  // up as a no-key name, which it does not decode as): ENOENT.
  EXPECT_EQ(open_errno(dir + "/small", O_RDONLY), ENOENT);
  EXPECT_EQ(list_names(dir).count("small"), 0u);
  EXPECT_EQ(list_names(dir).size(), 8u);
  EXPECT_EQ(add_key(1), id);
  check_all();
}

// ---- Without the key -----------------------------------------------------

TEST_F(EncryptionTest, WithoutTheKeyNamesAreNoKeyNamesAndChangesFailWithEnokey) {
  const std::string id = add_key(1);
  const std::string dir = encrypted_dir("vault", id);
  const std::string secret_data = pattern(50000, 8);
  ASSERT_TRUE(write_file(dir + "/secret plan.txt", secret_data));
  ASSERT_TRUE(write_file(dir + "/to be unlinked", "bye"));
  ASSERT_EQ(mkdir((dir + "/empty dir").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dir + "/full dir").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(dir + "/full dir/inner", "inner data"));
  ASSERT_EQ(symlink("secret plan.txt", (dir + "/plan link").c_str()), 0);
  ASSERT_TRUE(write_file(path("outside"), "plain"));
  const std::set<std::string> plain_names = {"secret plan.txt", "to be unlinked", "empty dir",
                                             "full dir", "plan link"};
  ASSERT_EQ(list_names(dir), plain_names);

  const Outcome removed = remove_key(id);
  ASSERT_EQ(removed.exit_status, 0) << removed.describe();
  EXPECT_EQ(removed.out, "") << "no file was open";
  EXPECT_EQ(key_status(id), "Absent");

  // readdir: as many names, none of them plaintext.
  const std::set<std::string> no_key_names = list_names(dir);
  ASSERT_EQ(no_key_names.size(), plain_names.size());
  for (const std::string& name : no_key_names) {
    EXPECT_EQ(plain_names.count(name), 0u) << name;
    EXPECT_EQ(name.find("secret"), std::string::npos) << name;
  }
  // stat works on every no-key name; sort them by type.
  std::string file, small_file, empty_dir, full_dir, link_name;
  for (const std::string& name : no_key_names) {
    struct stat st;
    ASSERT_EQ(lstat((dir + "/" + name).c_str(), &st), 0) << name << ": " << std::strerror(errno);
    if (S_ISREG(st.st_mode) && st.st_size == static_cast<off_t>(secret_data.size())) file = name;
    if (S_ISREG(st.st_mode) && st.st_size == 3) small_file = name;
    if (S_ISDIR(st.st_mode) && st.st_nlink == 2) {
      // Tell the two directories apart by their contents.
      (list_names(dir + "/" + name).empty() ? empty_dir : full_dir) = name;
    }
    if (S_ISLNK(st.st_mode)) link_name = name;
  }
  ASSERT_FALSE(file.empty());
  ASSERT_FALSE(small_file.empty());
  ASSERT_FALSE(empty_dir.empty());
  ASSERT_FALSE(full_dir.empty());
  ASSERT_FALSE(link_name.empty());
  EXPECT_EQ(list_names(dir + "/" + full_dir).size(), 1u);
  EXPECT_EQ(list_names(dir + "/" + full_dir).count("inner"), 0u);

  // Contents and changes need the key.
  EXPECT_EQ(open_errno(dir + "/" + file, O_RDONLY), ENOKEY);
  EXPECT_EQ(open_errno(dir + "/" + file, O_WRONLY), ENOKEY);
  EXPECT_EQ(open_errno(dir + "/new file", O_WRONLY | O_CREAT), ENOKEY);
  EXPECT_EQ(errno_of(mkdir((dir + "/new dir").c_str(), 0755)), ENOKEY);
  EXPECT_EQ(errno_of(symlink("x", (dir + "/new link").c_str())), ENOKEY);
  EXPECT_EQ(errno_of(mknod((dir + "/new fifo").c_str(), S_IFIFO | 0644, 0)), ENOKEY);
  EXPECT_EQ(errno_of(link((dir + "/" + file).c_str(), (dir + "/" + file + "2").c_str())), ENOKEY);
  EXPECT_EQ(errno_of(rename((dir + "/" + file).c_str(), (dir + "/" + small_file).c_str())), ENOKEY);
  EXPECT_EQ(errno_of(rename((dir + "/" + file).c_str(), path("moved").c_str())), ENOKEY);
  EXPECT_EQ(errno_of(truncate((dir + "/" + file).c_str(), 0)), ENOKEY);
  // Into the locked directory from outside: the key check comes before the
  // policy check (fscrypt_prepare_link / _rename: ENOKEY, not EXDEV).
  EXPECT_EQ(errno_of(link(path("outside").c_str(), (dir + "/linked in").c_str())), ENOKEY);
  EXPECT_EQ(errno_of(rename(path("outside").c_str(), (dir + "/moved in").c_str())), ENOKEY);
  EXPECT_EQ(stat_of(dir + "/" + file).st_size, static_cast<off_t>(secret_data.size()));
  // Symlink targets read as their encoded ciphertext.
  char target[1024];
  const ssize_t n = readlink((dir + "/" + link_name).c_str(), target, sizeof(target));
  ASSERT_GT(n, 0) << std::strerror(errno);
  const std::string encoded(target, static_cast<size_t>(n));
  EXPECT_NE(encoded, "secret plan.txt");
  EXPECT_EQ(encoded.find("secret"), std::string::npos) << encoded;
  EXPECT_EQ(stat_of(dir + "/" + link_name).st_size, n);
  // Names can be removed without the key.
  EXPECT_EQ(errno_of(unlink((dir + "/" + small_file).c_str())), 0);
  EXPECT_EQ(errno_of(rmdir((dir + "/" + empty_dir).c_str())), 0);
  EXPECT_EQ(errno_of(rmdir((dir + "/" + full_dir).c_str())), ENOTEMPTY);
  EXPECT_EQ(list_names(dir).size(), plain_names.size() - 2);
  // The unencrypted part of the mount is unaffected.
  EXPECT_EQ(read_file(path("outside")), "plain");

  // With the key again: plaintext names, contents and targets are back,
  // the removed names stay removed, and no no-key name resolves.
  EXPECT_EQ(add_key(1), id);
  EXPECT_EQ(list_names(dir), (std::set<std::string>{"secret plan.txt", "full dir", "plan link"}));
  EXPECT_EQ(read_file(dir + "/secret plan.txt"), secret_data);
  EXPECT_EQ(read_file(dir + "/full dir/inner"), "inner data");
  EXPECT_EQ(read_file(dir + "/plan link"), secret_data);
  const ssize_t m = readlink((dir + "/plan link").c_str(), target, sizeof(target));
  EXPECT_EQ(std::string(target, m > 0 ? static_cast<size_t>(m) : 0), "secret plan.txt");
  EXPECT_EQ(stat_of(dir + "/plan link").st_size, 15);
  for (const std::string& name : no_key_names) {
    struct stat st;
    EXPECT_EQ(errno_of(lstat((dir + "/" + name).c_str(), &st)), ENOENT) << name;
  }
  EXPECT_EQ(open_errno(dir + "/to be unlinked", O_RDONLY), ENOENT);
  // And changes work again.
  ASSERT_TRUE(write_file(dir + "/new file", "new"));
  EXPECT_EQ(read_file(dir + "/new file"), "new");
}

// Pages of `fd`'s file resident in the page cache, in its first `size`
// bytes (mincore(2) over a shared read-only mapping), or -1.
long resident_pages(int fd, size_t size) {
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return -1;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> residency((size + page - 1) / page);
  long count = -1;
  if (mincore(map, size, residency.data()) == 0) {
    count =
        std::count_if(residency.begin(), residency.end(), [](unsigned char r) { return r & 1; });
  }
  munmap(map, size);
  return count;
}

TEST_F(EncryptionTest, KeyRemovalDropsThePlaintextPagesTheKernelCaches) {
  // The kernel evicts the inodes of a removed key, and with them their
  // page cache: no plaintext stays in memory. Through FUSE the daemon
  // invalidates them (fuse_lowlevel_notify_inval_inode); the mount keeps
  // pages across opens (keep_cache), so without that they would survive.
  const std::string id = add_key(1);
  const std::string dir = encrypted_dir("vault", id);
  constexpr size_t kSize = 64 * 4096;
  const std::string data = pattern(kSize, 21);
  ASSERT_TRUE(write_file(dir + "/cached", data));
  int fd = open((dir + "/cached").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pread_string(fd, kSize, 0), data);
  EXPECT_GT(resident_pages(fd, kSize), 0) << "reading should fill the page cache";
  close(fd);

  const Outcome removed = remove_key(id);
  ASSERT_EQ(removed.exit_status, 0) << removed.describe();
  ASSERT_TRUE(finish_removal(id));
  EXPECT_EQ(add_key(1), id);
  fd = open((dir + "/cached").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(resident_pages(fd, kSize), 0) << "plaintext pages survived the key's removal";
  EXPECT_EQ(pread_string(fd, kSize, 0), data);
  close(fd);
}

TEST_F(EncryptionTest, RenameOrLinkIntoAnotherPolicyIsExdev) {
  const std::string id = add_key(1);
  const std::string other_id = add_key(2);
  const std::string dir = encrypted_dir("enc", id);
  const std::string other = encrypted_dir("other", other_id);
  ASSERT_TRUE(write_file(path("plain"), "plain"));
  ASSERT_EQ(mkdir(path("plain dir").c_str(), 0755), 0);
  ASSERT_TRUE(write_file(dir + "/inside", "inside"));

  // Unencrypted into encrypted (fscrypt_prepare_link / _rename: EXDEV).
  EXPECT_EQ(errno_of(rename(path("plain").c_str(), (dir + "/plain").c_str())), EXDEV);
  EXPECT_EQ(errno_of(rename(path("plain dir").c_str(), (dir + "/plain dir").c_str())), EXDEV);
  EXPECT_EQ(errno_of(link(path("plain").c_str(), (dir + "/plain").c_str())), EXDEV);
  // One policy into another.
  EXPECT_EQ(errno_of(rename((dir + "/inside").c_str(), (other + "/inside").c_str())), EXDEV);
  EXPECT_EQ(errno_of(link((dir + "/inside").c_str(), (other + "/inside").c_str())), EXDEV);
  // Within one policy: fine.
  ASSERT_EQ(mkdir((dir + "/sub").c_str(), 0755), 0);
  EXPECT_EQ(errno_of(rename((dir + "/inside").c_str(), (dir + "/sub/moved").c_str())), 0);
  EXPECT_EQ(errno_of(link((dir + "/sub/moved").c_str(), (dir + "/linked").c_str())), 0);
  EXPECT_EQ(read_file(dir + "/linked"), "inside");
  EXPECT_EQ(read_file(path("plain")), "plain");
  EXPECT_EQ(list_names(other).size(), 0u);
}

// ---- Removal while files are in use --------------------------------------

TEST_F(EncryptionTest, KeyIsIncompletelyRemovedWhileAFileIsOpen) {
  const std::string id = add_key(1);
  const std::string dir = encrypted_dir("vault", id);
  ASSERT_TRUE(write_file(dir + "/closed", "closed file"));
  const std::string first = pattern(20000, 11);
  const int fd = open((dir + "/open").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(pwrite_all(fd, first, 0));

  const Outcome removed = remove_key(id);
  ASSERT_EQ(removed.exit_status, 0) << removed.describe();
  EXPECT_EQ(removed.out, "warning: some files using this key are still in-use\n");
  EXPECT_EQ(key_status(id), "Incompletely removed");
  // New opens fail; the open file keeps working, writes included.
  EXPECT_EQ(open_errno(dir + "/closed", O_RDONLY), ENOENT);
  EXPECT_EQ(open_errno(dir + "/another", O_WRONLY | O_CREAT), ENOKEY);
  const std::string second = pattern(30000, 12);
  ASSERT_TRUE(pwrite_all(fd, second, 10000));
  ASSERT_EQ(fsync(fd), 0) << std::strerror(errno);
  std::string expected = first;
  expected.resize(40000);
  expected.replace(10000, second.size(), second);
  EXPECT_EQ(pread_string(fd, 100000, 0), expected);
  ASSERT_EQ(close(fd), 0);

  // Once the file is closed (FUSE releases asynchronously), removing again
  // finishes the removal.
  EXPECT_TRUE(finish_removal(id)) << "the key stayed busy after the file was closed";
  EXPECT_EQ(key_status(id), "Absent");
  EXPECT_EQ(remove_key(id).exit_status, 1);

  // Nothing written while the key was going away was lost.
  EXPECT_EQ(add_key(1), id);
  EXPECT_EQ(read_file(dir + "/open"), expected);
  EXPECT_EQ(read_file(dir + "/closed"), "closed file");
}

TEST_F(EncryptionTest, ReaddingAnIncompletelyRemovedKeyMakesItPresentAgain) {
  const std::string id = add_key(1);
  const std::string dir = encrypted_dir("vault", id);
  const int fd = open((dir + "/open").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(remove_key(id).exit_status, 0);
  EXPECT_EQ(key_status(id), "Incompletely removed");
  EXPECT_EQ(add_key(1), id);
  EXPECT_EQ(key_status(id), "Present (user_count=1, added_by_self)");
  ASSERT_TRUE(pwrite_all(fd, "still fine", 0));
  close(fd);
  EXPECT_EQ(read_file(dir + "/open"), "still fine");
}

TEST_F(EncryptionTest, ConcurrentIoWhileTheKeyIsRemovedLosesNothing) {
  const std::string id = add_key(1);
  const std::string dir = encrypted_dir("vault", id);
  constexpr int kWriters = 3;
  constexpr int kChunks = 48;
  constexpr size_t kChunkSize = 48 * 1024;
  std::vector<int> fds(kWriters, -1);
  for (int w = 0; w < kWriters; ++w) {
    fds[w] = open((dir + "/file" + std::to_string(w)).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fds[w], 0) << std::strerror(errno);
  }
  const auto chunk = [](int writer, int index) {
    return pattern(kChunkSize, static_cast<uint32_t>(writer * 1000 + index));
  };

  std::atomic<int> chunks_written{0};
  std::atomic<bool> stop_openers{false};
  std::atomic<int> write_failures{0};
  std::atomic<int> unexpected_open_errors{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kChunks; ++i) {
        if (!pwrite_all(fds[w], chunk(w, i), static_cast<off_t>(i * kChunkSize))) ++write_failures;
        if (i % 8 == 7 && fsync(fds[w]) != 0) ++write_failures;
        ++chunks_written;
      }
    });
  }
  // Others keep opening and creating files: each succeeds or fails with
  // ENOKEY, depending on when the key went.
  for (int o = 0; o < 2; ++o) {
    threads.emplace_back([&, o] {
      for (int i = 0; !stop_openers; ++i) {
        const std::string name = dir + "/opener" + std::to_string(o) + "-" + std::to_string(i % 5);
        const int error = open_errno(name, O_WRONLY | O_CREAT);
        if (error != 0 && error != ENOKEY) ++unexpected_open_errors;
        std::this_thread::sleep_for(2ms);
      }
    });
  }
  ASSERT_TRUE(wait_until([&] { return chunks_written >= kWriters * kChunks / 3; }, 60s));
  const Outcome removed = remove_key(id);
  EXPECT_EQ(removed.exit_status, 0) << removed.describe();
  EXPECT_EQ(removed.out, "warning: some files using this key are still in-use\n");
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  stop_openers = true;
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(write_failures, 0);
  EXPECT_EQ(unexpected_open_errors, 0);
  EXPECT_EQ(open_errno(dir + "/created after", O_WRONLY | O_CREAT), ENOKEY);

  // Every open file reads back whole through its descriptor.
  for (int w = 0; w < kWriters; ++w) {
    const std::string data = pread_string(fds[w], kChunks * kChunkSize + 1, 0);
    ASSERT_EQ(data.size(), kChunks * kChunkSize) << w;
    for (int i = 0; i < kChunks; ++i) {
      ASSERT_EQ(data.compare(i * kChunkSize, kChunkSize, chunk(w, i)), 0) << w << " " << i;
    }
    ASSERT_EQ(close(fds[w]), 0);
  }
  EXPECT_TRUE(is_mounted(mountpoint_));

  // And after the key comes back, through new opens.
  EXPECT_TRUE(finish_removal(id));
  EXPECT_EQ(add_key(1), id);
  for (int w = 0; w < kWriters; ++w) {
    const auto data = read_file(dir + "/file" + std::to_string(w));
    ASSERT_TRUE(data) << w;
    ASSERT_EQ(data->size(), kChunks * kChunkSize) << w;
    for (int i = 0; i < kChunks; ++i) {
      ASSERT_EQ(data->compare(i * kChunkSize, kChunkSize, chunk(w, i)), 0) << w << " " << i;
    }
  }
}

}  // namespace
}  // namespace ecfs::fuse_test
