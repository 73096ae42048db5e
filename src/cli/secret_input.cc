#include "cli/secret_input.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iterator>

#include "fscrypt/protector.h"

namespace ecfs::cli {
namespace {

// Reads from `fd` up to a newline or the end into locked memory, one byte
// at a time so that nothing after the newline is consumed (a script may
// pass several passphrases on one descriptor).
Result<crypto::SecretBytes> read_line(int fd) {
  crypto::SecretBytes buffer(kMaxPassphraseBytes + 1);
  size_t size = 0;
  for (;;) {
    uint8_t byte = 0;
    const ssize_t n = read(fd, &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, "reading the passphrase");
    if (n == 0 || byte == '\n') break;
    if (size == buffer.size()) {
      return fail(EMSGSIZE, "the passphrase is longer than 1024 bytes");
    }
    buffer.data()[size++] = byte;
  }
  if (size > kMaxPassphraseBytes) return fail(EMSGSIZE, "the passphrase is longer than 1024 bytes");
  return crypto::SecretBytes::copy_of(buffer.span().first(size));
}

// The terminal's settings while echo is off, for the signal handler that
// puts them back when Ctrl-C (or another signal) ends the program at the
// prompt. One prompt at a time.
int g_echo_off_tty = -1;
termios g_saved_termios{};

void restore_terminal_and_reraise(int signal_number) {
  if (g_echo_off_tty >= 0) tcsetattr(g_echo_off_tty, TCSAFLUSH, &g_saved_termios);
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

// The terminal with echo off while the line is read; refused (EIO) when
// echo cannot be turned off, since the passphrase would show.
Result<crypto::SecretBytes> read_from_terminal(int tty, const std::string& prompt) {
  termios saved{};
  if (tcgetattr(tty, &saved) != 0) return fail(errno, "reading the terminal's settings");
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  g_saved_termios = saved;
  g_echo_off_tty = tty;
  constexpr int kSignals[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP};
  struct sigaction handler {};
  handler.sa_handler = restore_terminal_and_reraise;
  sigemptyset(&handler.sa_mask);
  struct sigaction previous[std::size(kSignals)];
  for (size_t i = 0; i < std::size(kSignals); ++i) {
    sigaction(kSignals[i], &handler, &previous[i]);
  }
  Result<crypto::SecretBytes> line = fail(EIO, "the terminal would not stop echoing");
  if (tcsetattr(tty, TCSAFLUSH, &quiet) == 0) {
    std::fprintf(stderr, "%s", prompt.c_str());
    std::fflush(stderr);
    line = read_line(tty);
    tcsetattr(tty, TCSAFLUSH, &saved);
  }
  g_echo_off_tty = -1;
  for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &previous[i], nullptr);
  return line;
}

}  // namespace

Result<crypto::SecretBytes> read_passphrase(const PassphraseSource& source,
                                            const std::string& prompt, bool confirm,
                                            bool allow_empty) {
  std::optional<crypto::SecretBytes> passphrase;
  if (source.fd) {
    auto line = read_line(*source.fd);
    if (!line) return std::unexpected(line.error());
    passphrase = std::move(*line);
  } else {
    const int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0) {
      return fail(EINVAL,
                  "no terminal to ask for the passphrase on: pass it on a file descriptor with "
                  "--passphrase-fd N (for example --passphrase-fd 3 3<passphrase-file)");
    }
    auto first = read_from_terminal(tty, prompt);
    if (first && confirm) {
      auto second = read_from_terminal(tty, "Enter it again: ");
      if (!second) {
        first = std::unexpected(second.error());
      } else if (!first->equals(second->span()) || first->size() != second->size()) {
        first = fail(EINVAL, "the passphrases differ");
      }
    }
    close(tty);
    if (!first) return std::unexpected(first.error());
    passphrase = std::move(*first);
  }
  if (passphrase->empty() && !allow_empty) return fail(EINVAL, "the passphrase is empty");
  return std::move(*passphrase);
}

Result<crypto::SecretBytes> read_protector_key_file(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail(errno, "opening the key file " + path);
  crypto::SecretBytes buffer(fscrypt::kProtectorKeySize + 1);
  size_t size = 0;
  Status status = ok();
  while (size < buffer.size()) {
    const ssize_t n = read(fd, buffer.data() + size, buffer.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = fail(errno, "reading the key file " + path);
      break;
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  close(fd);
  ECFS_TRY(status);
  if (size != fscrypt::kProtectorKeySize) {
    return fail(EINVAL, "the key file " + path + " must hold exactly 32 bytes" +
                            (size > fscrypt::kProtectorKeySize
                                 ? " (it holds more)"
                                 : " (it holds " + std::to_string(size) + ")") +
                            "; make one with 'head -c 32 /dev/urandom > FILE'");
  }
  return crypto::SecretBytes::copy_of(buffer.span().first(size));
}

}  // namespace ecfs::cli
