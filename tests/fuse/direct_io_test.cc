// O_DIRECT through the mount: a direct write leaves no stale page behind
// for buffered readers, also when it is asynchronous (io_uring) and
// buffered reads of the same range race with it (xfstests generic/451).
#include <fcntl.h>
#include <liburing.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

class DirectIoTest : public FuseTest {};

TEST_F(DirectIoTest, AsynchronousDirectWritesLeaveNoStaleCachedPages) {
  constexpr size_t kSize = 640 << 10;
  const std::string file = path("cycled");
  ASSERT_TRUE(write_file(file, std::string(kSize, 'A')));
  const int buffered = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  const int direct = open(file.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(buffered, 0);
  ASSERT_GE(direct, 0) << std::strerror(errno);

  // Readers that keep the file's pages in the page cache, racing with
  // every write.
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) {
    readers.emplace_back([&] {
      std::string buffer(kSize, '\0');
      while (!stop) {
        const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        (void)!pread(fd, buffer.data(), kSize, 0);
        close(fd);
      }
    });
  }

  io_uring ring;
  ASSERT_EQ(io_uring_queue_init(4, &ring, 0), 0);
  void* memory = nullptr;
  ASSERT_EQ(posix_memalign(&memory, 4096, kSize), 0);
  std::unique_ptr<char, decltype(&std::free)> data(static_cast<char*>(memory), &std::free);
  std::string seen(kSize, '\0');
  int stale_cycles = 0;
  for (int cycle = 0; cycle < 200 && stale_cycles == 0; ++cycle) {
    const char byte = static_cast<char>('a' + cycle % 26);
    std::memset(data.get(), byte, kSize);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_write(sqe, direct, data.get(), kSize, 0);
    ASSERT_EQ(io_uring_submit(&ring), 1);
    io_uring_cqe* cqe = nullptr;
    ASSERT_EQ(io_uring_wait_cqe(&ring, &cqe), 0);
    const int written = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    ASSERT_EQ(written, static_cast<int>(kSize)) << std::strerror(-written);
    ASSERT_EQ(pread(buffered, seen.data(), kSize, 0), static_cast<ssize_t>(kSize));
    const size_t stale = seen.find_first_not_of(byte);
    if (stale != std::string::npos) {
      ++stale_cycles;
      ADD_FAILURE() << "cycle " << cycle << ": a buffered read after the direct write shows '"
                    << seen[stale] << "' at " << stale << ", not '" << byte << "'";
    }
  }
  stop = true;
  for (std::thread& reader : readers) reader.join();
  io_uring_queue_exit(&ring);
  close(direct);
  close(buffered);
}

}  // namespace
}  // namespace ecfs::fuse_test
