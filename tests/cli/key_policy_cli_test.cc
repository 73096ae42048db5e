// Command-line tests of `ecfs key` and `ecfs policy` that need no mount:
// argument and key-input checking (exit 2, nothing done), the messages for
// paths that are not on an ecfs mount (ENOTTY: "not an ecfs mount", exit 1),
// and that no key byte ever appears in a message. What the commands print
// for a real mount (identifiers, key status, policies as text and JSON) is
// covered through FUSE in tests/fuse/encryption_test.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "cli_test_util.h"

namespace ecfs::cli_test {
namespace {

constexpr const char* kIdentifier = "00112233445566778899aabbccddeeff";

// A recognizable raw key: if any message quoted it, as bytes or as hex, the
// tests below would find it.
std::string raw_key(size_t size) {
  std::string key(size, '\0');
  for (size_t i = 0; i < size; ++i) key[i] = static_cast<char>('K' + (i % 7));
  return key;
}

std::string hex_of(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned char byte : bytes) {
    hex.push_back(digits[byte >> 4]);
    hex.push_back(digits[byte & 15]);
  }
  return hex;
}

class KeyPolicyCliTest : public EcfsCommandTest {
 protected:
  // `ecfs ARGS...` with `input` on standard input.
  Outcome ecfs_with_input(std::vector<std::string> args, const std::string& input) {
    args.insert(args.begin(), ECFS_BINARY);
    return run_program(args, scratch_.path(), input);
  }

  // A directory that is surely not an ecfs mount.
  const std::string& plain_dir() const { return scratch_.path(); }

  void expect_no_key_material(const Outcome& run, const std::string& key) {
    EXPECT_EQ(run.out.find(key), std::string::npos) << run.describe();
    EXPECT_EQ(run.err.find(key), std::string::npos) << run.describe();
    EXPECT_EQ(run.err.find(hex_of(key).substr(0, 32)), std::string::npos) << run.describe();
  }
};

// `ecfs --version` (or -V): the program's version and the image formats it
// reads and writes, with no command needed; --help lists it.
TEST_F(KeyPolicyCliTest, VersionNamesTheProgramAndTheImageFormats) {
  for (const char* flag : {"--version", "-V"}) {
    const Outcome run = ecfs({flag});
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    EXPECT_EQ(run.out.rfind("ecfs 0.", 0), 0u) << run.out;
    EXPECT_NE(run.out.find("image format version 1"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("free_space_tree"), std::string::npos) << run.out;
    EXPECT_TRUE(run.err.empty()) << run.err;
  }
  const Outcome help = ecfs({"--help"});
  EXPECT_NE(help.out.find("--version"), std::string::npos) << help.out;
  // With a command it is not a version request (the command's own options).
  EXPECT_NE(ecfs({"mkfs", "--version"}).exit_status, 0);
}

TEST_F(KeyPolicyCliTest, HelpListsTheSubcommands) {
  const Outcome top = ecfs({"--help"});
  EXPECT_EQ(top.exit_status, 0) << top.describe();
  EXPECT_NE(top.out.find("  key "), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("  policy "), std::string::npos) << top.out;

  const Outcome key = ecfs({"key", "--help"});
  EXPECT_EQ(key.exit_status, 0) << key.describe();
  for (const char* sub : {"add", "remove", "status"}) {
    EXPECT_NE(key.out.find(std::string("  ") + sub + " "), std::string::npos) << sub;
  }
  const Outcome policy = ecfs({"policy", "--help"});
  EXPECT_EQ(policy.exit_status, 0) << policy.describe();
  for (const char* sub : {"set", "get"}) {
    EXPECT_NE(policy.out.find(std::string("  ") + sub + " "), std::string::npos) << sub;
  }
  const Outcome set = ecfs({"policy", "set", "--help"});
  EXPECT_EQ(set.exit_status, 0) << set.describe();
  for (const char* option :
       {"--contents", "--filenames", "--padding", "--data-unit-size", "AES-256-HCTR2"}) {
    EXPECT_NE(set.out.find(option), std::string::npos) << option;
  }
}

TEST_F(KeyPolicyCliTest, MissingOperandsAndUnknownSubcommandsAreUsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"key"},
           {"key", "frobnicate", "/tmp"},
           {"key", "add"},
           {"key", "remove", "/tmp"},
           {"key", "status", "/tmp"},
           {"key", "remove", "/tmp", kIdentifier, "--bogus"},
           {"policy"},
           {"policy", "set", "/tmp"},
           {"policy", "get"},
           {"policy", "set", "/tmp", kIdentifier, "--padding", "many"},
       }) {
    const Outcome run = ecfs(args);
    EXPECT_EQ(run.exit_status, 2) << args.size() << " " << args.back() << "\n" << run.describe();
    EXPECT_TRUE(run.out.empty()) << run.describe();
  }
}

TEST_F(KeyPolicyCliTest, KeyAddRefusesATerminalOnStandardInput) {
  Outcome run;
  const pid_t pid = spawn_program({ECFS_BINARY, "key", "add", plain_dir()}, "/dev/ptmx",
                                  scratch_.file(".out"), scratch_.file(".err"));
  ASSERT_GT(pid, 0);
  wait_for_program(pid, 30, run);
  run.err = read_whole_file(scratch_.file(".err"));
  EXPECT_EQ(run.exit_status, 2) << run.describe();
  EXPECT_NE(run.err.find("refusing to read a raw key from a terminal"), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("--key-file"), std::string::npos) << run.err;
}

TEST_F(KeyPolicyCliTest, KeyAddChecksTheKeySizeBeforeTouchingTheMount) {
  // Sizes as FS_IOC_ADD_ENCRYPTION_KEY allows them: 16..64 bytes.
  for (size_t size : {size_t{0}, size_t{1}, size_t{15}}) {
    const std::string key = raw_key(size);
    const Outcome run = ecfs_with_input({"key", "add", plain_dir()}, key);
    EXPECT_EQ(run.exit_status, 2) << size << "\n" << run.describe();
    EXPECT_NE(run.err.find("too short"), std::string::npos) << run.err;
    if (size > 0) expect_no_key_material(run, key);
  }
  for (size_t size : {size_t{65}, size_t{200}}) {
    const std::string key = raw_key(size);
    const Outcome run = ecfs_with_input({"key", "add", plain_dir()}, key);
    EXPECT_EQ(run.exit_status, 2) << size << "\n" << run.describe();
    EXPECT_NE(run.err.find("too long"), std::string::npos) << run.err;
    expect_no_key_material(run, key);
  }
  // A good size gets as far as the ioctl, which a non-ecfs directory refuses.
  for (size_t size : {size_t{16}, size_t{32}, size_t{64}}) {
    const std::string key = raw_key(size);
    const Outcome run = ecfs_with_input({"key", "add", plain_dir()}, key);
    EXPECT_EQ(run.exit_status, 1) << size << "\n" << run.describe();
    EXPECT_NE(run.err.find("not an ecfs mount"), std::string::npos) << run.err;
    EXPECT_TRUE(run.out.empty()) << run.out;
    expect_no_key_material(run, key);
  }
}

TEST_F(KeyPolicyCliTest, KeyAddReadsAKeyFile) {
  const std::string key = raw_key(64);
  const std::string key_path = scratch_.file("key");
  {
    std::ofstream out(key_path, std::ios::binary);
    out << key;
  }
  const Outcome run = ecfs({"key", "add", plain_dir(), "--key-file", key_path});
  EXPECT_EQ(run.exit_status, 1) << run.describe();
  EXPECT_NE(run.err.find("not an ecfs mount"), std::string::npos) << run.err;
  expect_no_key_material(run, key);

  const std::string short_path = scratch_.file("short-key");
  {
    std::ofstream out(short_path, std::ios::binary);
    out << raw_key(10);
  }
  const Outcome short_file = ecfs({"key", "add", plain_dir(), "--key-file", short_path});
  EXPECT_EQ(short_file.exit_status, 2) << short_file.describe();
  EXPECT_NE(short_file.err.find("too short"), std::string::npos) << short_file.err;

  const Outcome missing = ecfs({"key", "add", plain_dir(), "--key-file", scratch_.file("none")});
  EXPECT_EQ(missing.exit_status, 1) << missing.describe();
  EXPECT_NE(missing.err.find("opening the key file"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("No such file or directory"), std::string::npos) << missing.err;
}

TEST_F(KeyPolicyCliTest, KeyIdsMustBeIdentifiersOrDescriptorsAndAreNeverEchoed) {
  // 64 hex digits: what a pasted raw key looks like.
  const std::string pasted_key = hex_of(raw_key(32));
  for (const std::string& bad :
       {std::string("xyz"), std::string("0011"), std::string(kIdentifier) + "0",
        std::string(kIdentifier) + "zz", pasted_key}) {
    for (const char* command : {"remove", "status"}) {
      const Outcome run = ecfs({"key", command, plain_dir(), bad});
      EXPECT_EQ(run.exit_status, 2) << command << " " << bad << "\n" << run.describe();
      EXPECT_NE(run.err.find("KEY_ID must be a key identifier (32 hex digits"), std::string::npos)
          << run.err;
      EXPECT_EQ(run.err.find(bad), std::string::npos) << run.err;
    }
    const Outcome set = ecfs({"policy", "set", plain_dir(), bad});
    EXPECT_EQ(set.exit_status, 2) << set.describe();
    EXPECT_EQ(set.err.find(bad), std::string::npos) << set.err;
  }
}

TEST_F(KeyPolicyCliTest, PathsOutsideAnEcfsMountAreNotAnEcfsMount) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"key", "remove", plain_dir(), kIdentifier},
           {"key", "remove", plain_dir(), kIdentifier, "--all-users"},
           {"key", "status", plain_dir(), kIdentifier},
           {"key", "status", plain_dir(), "0011223344556677"},
           {"policy", "set", plain_dir(), kIdentifier},
           {"policy", "get", plain_dir()},
           {"policy", "get", plain_dir(), "--json"},
       }) {
    const Outcome run = ecfs(args);
    EXPECT_EQ(run.exit_status, 1) << args[0] << " " << args[1] << "\n" << run.describe();
    EXPECT_NE(run.err.find("not an ecfs mount"), std::string::npos) << run.err;
    // errno's own words follow the explanation.
    EXPECT_NE(run.err.find("(Inappropriate ioctl for device)"), std::string::npos) << run.err;
    EXPECT_EQ(run.err.find('\n'), run.err.size() - 1) << "one line: " << run.err;
    EXPECT_TRUE(run.out.empty()) << run.out;
  }
}

TEST_F(KeyPolicyCliTest, PathErrorsNameThePathAndTheErrno) {
  const Outcome missing = ecfs({"policy", "get", scratch_.file("absent")});
  EXPECT_EQ(missing.exit_status, 1) << missing.describe();
  EXPECT_NE(missing.err.find("opening " + scratch_.file("absent")), std::string::npos)
      << missing.err;
  EXPECT_NE(missing.err.find("No such file or directory"), std::string::npos) << missing.err;

  // Policies are set on directories: the directory is opened O_DIRECTORY.
  const std::string file = scratch_.file("file");
  { std::ofstream(file) << "x"; }
  const Outcome not_dir = ecfs({"policy", "set", file, kIdentifier});
  EXPECT_EQ(not_dir.exit_status, 1) << not_dir.describe();
  EXPECT_NE(not_dir.err.find("not a directory"), std::string::npos) << not_dir.err;
  EXPECT_NE(not_dir.err.find("(Not a directory)"), std::string::npos) << not_dir.err;

  const Outcome no_mount = ecfs({"key", "status", scratch_.file("absent"), kIdentifier});
  EXPECT_EQ(no_mount.exit_status, 1) << no_mount.describe();
  EXPECT_NE(no_mount.err.find("No such file or directory"), std::string::npos) << no_mount.err;
}

TEST_F(KeyPolicyCliTest, PolicySetOptionsAreCheckedBeforeTheDirectory) {
  // A directory that does not exist: an option error must come first.
  const std::string dir = scratch_.file("absent");
  struct Case {
    std::vector<std::string> options;
    const char* message;
  };
  for (const Case& bad : std::vector<Case>{
           {{"--contents", "AES-256-GCM"}, "invalid contents mode: AES-256-GCM"},
           {{"--filenames", "rot13"}, "invalid filenames mode: rot13"},
           {{"--padding", "5"}, "invalid padding: 5"},
           {{"--padding", "64"}, "invalid padding: 64"},
           {{"--data-unit-size", "1000"}, "invalid data unit size: 1000"},
           {{"--data-unit-size", "1"}, "invalid data unit size: 1"},
           {{"--data-unit-size", "4k"}, "invalid data unit size: 4k"},
       }) {
    std::vector<std::string> args = {"policy", "set", dir, kIdentifier};
    args.insert(args.end(), bad.options.begin(), bad.options.end());
    const Outcome run = ecfs(args);
    EXPECT_EQ(run.exit_status, 2) << bad.message << "\n" << run.describe();
    EXPECT_NE(run.err.find(bad.message), std::string::npos) << run.err;
  }
  // v1 policies have no data unit size field.
  const Outcome v1 = ecfs({"policy", "set", dir, "0011223344556677", "--data-unit-size", "4096"});
  EXPECT_EQ(v1.exit_status, 2) << v1.describe();
  EXPECT_NE(v1.err.find("--data-unit-size needs a v2 policy"), std::string::npos) << v1.err;

  // Every mode name fscryptctl knows, and the fscrypt library's spellings,
  // get past the option checks (to the missing directory).
  for (const char* mode :
       {"AES-256-XTS", "AES-256-CTS", "AES-128-CBC", "AES-128-CTS", "SM4-XTS", "SM4-CTS",
        "Adiantum", "AES-256-HCTR2", "aes-256-cts-cbc", "AES-128-CBC-ESSIV"}) {
    const Outcome run = ecfs({"policy", "set", dir, kIdentifier, "--contents", mode});
    EXPECT_EQ(run.exit_status, 1) << mode << "\n" << run.describe();
    EXPECT_NE(run.err.find("opening " + dir), std::string::npos) << run.err;
  }
  for (const char* padding : {"4", "8", "16", "32"}) {
    const Outcome run = ecfs({"policy", "set", dir, kIdentifier, "--padding", padding});
    EXPECT_EQ(run.exit_status, 1) << padding << "\n" << run.describe();
  }
}

}  // namespace
}  // namespace ecfs::cli_test
