// Helpers for the command-line tests of tests/cli: running `ecfs` with a
// deadline and telling an exit status from a crash, a scratch directory per
// test, byte surgery on image files, and JSON queries through python3.
// Header-only: the test build compiles only tests/cli/*_test.cc.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace ecfs::cli_test {

// How a child ended. `exit_status` is -1 when it was killed by a signal
// (`term_signal` says which) or timed out (`timed_out`).
struct Outcome {
  int exit_status = -1;
  int term_signal = 0;
  bool timed_out = false;
  std::string out;
  std::string err;

  // Exited by itself (no signal, no deadline): what "no crash, no hang" means.
  bool exited() const { return exit_status >= 0; }
  std::string describe() const {
    std::ostringstream text;
    text << "exit " << exit_status << " signal " << term_signal << (timed_out ? " TIMED OUT" : "")
         << "\nstdout:\n"
         << out << "\nstderr:\n"
         << err;
    return text.str();
  }
};

inline std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Starts `argv` (argv[0] a path) with stdin, stdout and stderr opened from
// the given paths (files, or a terminal device for stderr). Returns the
// child's pid, or -1 when it could not be started.
inline pid_t spawn_program(const std::vector<std::string>& argv, const std::string& in_path,
                           const std::string& out_path, const std::string& err_path) {
  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int in = open(in_path.c_str(), O_RDONLY);
  const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, 0600);
  if (in < 0 || out < 0 || err < 0) _exit(126);
  dup2(in, STDIN_FILENO);
  dup2(out, STDOUT_FILENO);
  dup2(err, STDERR_FILENO);
  execv(c_argv[0], c_argv.data());
  _exit(127);
}

// Waits for child `pid`, calling `while_running` (if given) every few
// milliseconds meanwhile, and kills it after `timeout_seconds`. Fills the
// exit status, signal and timeout fields of `run`.
inline void wait_for_program(pid_t pid, int timeout_seconds, Outcome& run,
                             const std::function<void()>& while_running = {}) {
  int status = 0;
  const time_t deadline = time(nullptr) + timeout_seconds;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return;
    if (time(nullptr) > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      run.timed_out = true;
      return;
    }
    if (while_running) while_running();
    usleep(2000);
  }
  if (WIFEXITED(status)) run.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.term_signal = WTERMSIG(status);
}

// Runs `argv` (argv[0] a path) with stdin from /dev/null or `input`, stdout
// and stderr into files of `scratch`, and kills it after `timeout_seconds`.
inline Outcome run_program(const std::vector<std::string>& argv, const std::string& scratch,
                           std::string_view input = {}, int timeout_seconds = 120) {
  Outcome run;
  const std::string out_path = scratch + "/.stdout", err_path = scratch + "/.stderr",
                    in_path = scratch + "/.stdin";
  {
    std::ofstream in(in_path, std::ios::binary | std::ios::trunc);
    in.write(input.data(), static_cast<std::streamsize>(input.size()));
  }
  const pid_t pid = spawn_program(argv, in_path, out_path, err_path);
  if (pid < 0) return run;
  wait_for_program(pid, timeout_seconds, run);
  run.out = read_whole_file(out_path);
  run.err = read_whole_file(err_path);
  return run;
}

// A fresh directory, removed with its contents when the test ends.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/ecfs-cli-test-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// XORs the byte at `offset` of file `path` with `mask`.
inline void flip_byte(const std::string& path, uint64_t offset, uint8_t mask = 0x01) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(file) << path;
  file.seekg(static_cast<std::streamoff>(offset));
  char byte = 0;
  file.read(&byte, 1);
  ASSERT_TRUE(file) << "reading byte " << offset << " of " << path;
  byte = static_cast<char>(static_cast<uint8_t>(byte) ^ mask);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(&byte, 1);
  ASSERT_TRUE(file) << "writing byte " << offset << " of " << path;
}

inline bool python3_available() { return access("/usr/bin/python3", X_OK) == 0; }

// Evaluates the python expression `expression` with `d` bound to the JSON
// document `json` (parsed by python3's json module, which rejects anything
// RFC 8259 does not allow) and returns what it prints, without the newline.
// The run fails (non-zero exit) when the document does not parse.
inline Outcome python_json(const std::string& json, const std::string& expression,
                           const std::string& scratch) {
  Outcome run =
      run_program({"/usr/bin/python3", "-c",
                   "import json, sys\nd = json.load(sys.stdin)\nprint(" + expression + ")"},
                  scratch, json);
  if (!run.out.empty() && run.out.back() == '\n') run.out.pop_back();
  return run;
}

#ifdef ECFS_BINARY
// A test of the `ecfs` command line: a scratch directory of its own, `ecfs`
// runs in it, and JSON answers are queried through python3.
class EcfsCommandTest : public ::testing::Test {
 protected:
  // Runs `ecfs ARGS...` (see run_program).
  Outcome ecfs(std::vector<std::string> args) {
    args.insert(args.begin(), ECFS_BINARY);
    return run_program(args, scratch_.path());
  }

  // The value of a python expression over the JSON document, which must
  // parse (the test fails otherwise).
  std::string query(const std::string& json, const std::string& expression) {
    const Outcome run = python_json(json, expression, scratch_.path());
    EXPECT_EQ(run.exit_status, 0) << expression << "\n" << run.describe() << "\n" << json;
    return run.out;
  }

  ScratchDir scratch_;
};
#endif

}  // namespace ecfs::cli_test
