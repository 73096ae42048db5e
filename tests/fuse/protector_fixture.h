// The fixture of the tests that run the key commands a user runs (encrypt,
// unlock, protector, rekey) through a real mount: passphrases on standard
// input, cheap Argon2id costs, the protector listing as JSON.
#pragma once

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fuse_test_util.h"

namespace ecfs::fuse_test {

// Cheap Argon2id costs: these tests are about the commands, not the hash.
inline const std::vector<std::string> kCheap = {"--kdf-time", "5ms"};
inline constexpr const char* kPassphrase = "correct horse battery staple 7f3a";

class ProtectorTest : public FuseTest {
 protected:
  // `ecfs ARGS...` with `input` on standard input (a passphrase for
  // --passphrase-fd 0).
  Outcome ecfs_in(std::vector<std::string> args, const std::string& input) {
    std::vector<std::string> argv = {ECFS_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return cli_test::run_program(argv, scratch_.path(), input);
  }
  std::vector<std::string> with(std::vector<std::string> args,
                                const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  // mkdir MNT/name and `ecfs encrypt` it with a passphrase on stdin; returns
  // the recovery passphrase printed.
  std::string encrypt(const std::string& name, const std::vector<std::string>& extra = {}) {
    EXPECT_EQ(mkdir(path(name).c_str(), 0755), 0) << std::strerror(errno);
    const Outcome run =
        ecfs_in(with(with({"encrypt", path(name), "--passphrase-fd", "0"}, kCheap), extra),
                std::string(kPassphrase) + "\n");
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    std::smatch match;
    const std::regex recovery("\n    ([a-z0-9-]{31})\n");
    return std::regex_search(run.out, match, recovery) ? match[1].str() : std::string();
  }
  // The protector ids `ecfs protector list --json` shows, with their kinds.
  std::vector<std::pair<std::string, std::string>> protectors() {
    const Outcome run = ecfs({"protector", "list", mountpoint_, "--json"});
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    const std::string listed = query(
        run.out, "' '.join(p['id'] + ':' + p['kind'].replace(' ', '_') for p in d['protectors'])");
    std::vector<std::pair<std::string, std::string>> out;
    std::istringstream words(listed);
    for (std::string word; words >> word;) {
      out.emplace_back(word.substr(0, 16), word.substr(17));
    }
    return out;
  }
  std::string id_of_kind(const std::string& kind) {
    for (const auto& [id, k] : protectors()) {
      if (k == kind) return id;
    }
    return {};
  }
  std::string query(const std::string& json, const std::string& expression) {
    const Outcome run = cli_test::python_json(json, expression, scratch_.path());
    EXPECT_EQ(run.exit_status, 0) << run.describe();
    return run.out;
  }
  bool readable(const std::string& file) { return read_file(file).has_value(); }
  std::string key_file() {
    const std::string file = scratch_.file("protector.key");
    std::string bytes(32, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 37 + 11);
    EXPECT_TRUE(write_file(file, bytes, O_TRUNC, 0600));
    return file;
  }
};

}  // namespace ecfs::fuse_test
