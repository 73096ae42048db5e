// metadata_storm DIR COUNT: creates COUNT empty files in DIR (spread over
// 100 subdirectories), stats each, lists every directory, then unlinks them
// all, and prints one line per phase: "<phase> <operations> <seconds>
// <operations per second>". Run by bench/fs_bench.sh on an ecfs mount and on
// a directory of the host filesystem to compare the two.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr int kDirectories = 100;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void report(const char* phase, long operations, double seconds) {
  std::printf("%s %ld %.3f %.0f\n", phase, operations, seconds, operations / seconds);
  std::fflush(stdout);
}

[[noreturn]] void die(const char* what, const std::string& path) {
  std::fprintf(stderr, "metadata_storm: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
  std::exit(1);
}

std::string file_path(const std::string& root, long i) {
  return root + "/d" + std::to_string(i % kDirectories) + "/f" + std::to_string(i);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: metadata_storm DIR COUNT\n");
    return 2;
  }
  const std::string root = argv[1];
  const long count = std::strtol(argv[2], nullptr, 10);
  if (count <= 0) {
    std::fprintf(stderr, "metadata_storm: COUNT must be positive\n");
    return 2;
  }
  for (int d = 0; d < kDirectories; ++d) {
    const std::string dir = root + "/d" + std::to_string(d);
    if (mkdir(dir.c_str(), 0755) != 0) die("mkdir", dir);
  }

  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    const std::string path = file_path(root, i);
    const int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) die("create", path);
    close(fd);
  }
  report("create", count, seconds_since(start));

  start = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    struct stat st;
    const std::string path = file_path(root, i);
    if (stat(path.c_str(), &st) != 0) die("stat", path);
  }
  report("stat", count, seconds_since(start));

  start = std::chrono::steady_clock::now();
  long listed = 0;
  for (int d = 0; d < kDirectories; ++d) {
    const std::string dir = root + "/d" + std::to_string(d);
    DIR* handle = opendir(dir.c_str());
    if (handle == nullptr) die("opendir", dir);
    while (readdir(handle) != nullptr) ++listed;
    closedir(handle);
  }
  report("readdir", listed, seconds_since(start));

  start = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    const std::string path = file_path(root, i);
    if (unlink(path.c_str()) != 0) die("unlink", path);
  }
  report("unlink", count, seconds_since(start));

  for (int d = 0; d < kDirectories; ++d) {
    const std::string dir = root + "/d" + std::to_string(d);
    if (rmdir(dir.c_str()) != 0) die("rmdir", dir);
  }
  return 0;
}
