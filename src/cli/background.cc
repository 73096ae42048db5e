#include "cli/background.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/command.h"

namespace ecfs::cli {
namespace {

constexpr char kReadyByte = 'R';

void redirect_to_dev_null(int first_fd, int last_fd) {
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return;
  for (int fd = first_fd; fd <= last_fd; ++fd) dup2(null_fd, fd);
  if (null_fd > last_fd) close(null_fd);
}

}  // namespace

int run_in_background(const std::vector<std::string>& arguments) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    print_error("mount", std::string("cannot create a pipe: ") + std::strerror(errno));
    return kExitFailure;
  }
  const pid_t child = fork();
  if (child < 0) {
    print_error("mount", std::string("cannot start the daemon: ") + std::strerror(errno));
    return kExitFailure;
  }
  if (child == 0) {
    close(ready[0]);
    // Its own session: no controlling terminal, so the terminal's ^C and
    // hangup do not reach the daemon.
    setsid();
    redirect_to_dev_null(STDIN_FILENO, STDIN_FILENO);
    // The write end must survive the exec (pipe2 set O_CLOEXEC on both).
    fcntl(ready[1], F_SETFD, 0);
    std::vector<std::string> child_arguments = {"ecfs"};
    child_arguments.insert(child_arguments.end(), arguments.begin(), arguments.end());
    child_arguments.push_back("--ready-fd=" + std::to_string(ready[1]));
    std::vector<char*> argv;
    for (std::string& argument : child_arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    print_error("mount", std::string("cannot start the daemon: ") + std::strerror(errno));
    _exit(kExitFailure);
  }
  close(ready[1]);
  char byte = 0;
  ssize_t got;
  do {
    got = read(ready[0], &byte, 1);
  } while (got < 0 && errno == EINTR);
  close(ready[0]);
  if (got == 1 && byte == kReadyByte) return kExitOk;

  // The child ended (or closed the pipe) before the mount was up.
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return kExitFailure;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    print_error("mount",
                std::string("the daemon was killed by signal ") + strsignal(WTERMSIG(status)));
  }
  return kExitFailure;
}

void report_ready(int ready_fd) {
  if (chdir("/") != 0) {
    // Not fatal: every path the daemon keeps is absolute.
  }
  redirect_to_dev_null(STDIN_FILENO, STDERR_FILENO);
  const char byte = kReadyByte;
  ssize_t written;
  do {
    written = write(ready_fd, &byte, 1);
  } while (written < 0 && errno == EINTR);
  close(ready_fd);
}

}  // namespace ecfs::cli
