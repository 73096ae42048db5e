// stat latency in one directory, for bench/stat_latency.sh: creates FILES
// files in DIR, then stats them round robin until STOP_FILE exists (or for
// SECONDS when no stop file is named), timing every call, and prints the
// count and the 50th, 99th and 100th percentiles in microseconds. Each call
// is statx(2) with AT_STATX_FORCE_SYNC, which a FUSE mount always sends to
// its daemon (the kernel's attribute cache would answer a plain stat):
//
//   stat_latency DIR FILES SECONDS [STOP_FILE]
//   stats 123456 p50_us 8.1 p99_us 40.2 max_us 1200.0
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const char* what, const std::string& path) {
  std::fprintf(stderr, "stat_latency: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: stat_latency DIR FILES SECONDS [STOP_FILE]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const long files = std::strtol(argv[2], nullptr, 10);
  const double seconds = std::strtod(argv[3], nullptr);
  const std::string stop = argc == 5 ? argv[4] : "";
  if (files <= 0 || seconds <= 0) {
    std::fprintf(stderr, "stat_latency: FILES and SECONDS must be positive\n");
    return 2;
  }
  std::vector<std::string> paths;
  for (long i = 0; i < files; ++i) {
    paths.push_back(dir + "/s" + std::to_string(i));
    if (access(paths.back().c_str(), F_OK) == 0) continue;
    const int fd = open(paths.back().c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) die("create", paths.back());
    close(fd);
  }
  std::vector<double> micros;
  micros.reserve(1 << 22);
  const auto begin = std::chrono::steady_clock::now();
  for (size_t i = 0;; ++i) {
    if (i % 256 == 0) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
      if (stop.empty() ? elapsed >= seconds
                       : access(stop.c_str(), F_OK) == 0 || elapsed >= seconds) {
        break;
      }
    }
    struct statx st;
    const std::string& path = paths[i % paths.size()];
    const auto start = std::chrono::steady_clock::now();
    if (statx(AT_FDCWD, path.c_str(), AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &st) != 0) {
      die("statx", path);
    }
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(micros.begin(), micros.end());
  const auto at = [&](double q) { return micros[static_cast<size_t>(q * (micros.size() - 1))]; };
  std::printf("stats %zu p50_us %.1f p99_us %.1f max_us %.1f\n", micros.size(), at(0.5), at(0.99),
              micros.back());
  return 0;
}
