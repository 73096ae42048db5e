// fsx through a real mount: the randomized model of fsx_model.h (writes,
// reads, truncates, fallocate modes, copy_file_range, renames, links, fsync,
// SEEK_DATA / SEEK_HOLE walks and full remounts) against `ecfs mount`, with
// and without the kernel's write-back cache. After the last unmount, `ecfs
// fsck` must pass (and after every remount in between).
//
// ECFS_FSX_OPS sets the number of operations of each run (default: a short
// run, ~10-15 s each); ECFS_FSX_SEED the seed ("random" draws one). A failure
// prints the seed and the last operations.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "fsx_model.h"
#include "fuse_test_util.h"

namespace ecfs::fuse_test {
namespace {

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::strtoull(value, nullptr, 0) : fallback;
}

uint64_t test_seed(uint64_t fallback) {
  const char* value = std::getenv("ECFS_FSX_SEED");
  if (value && std::string(value) == "random") return std::random_device{}();
  return env_number("ECFS_FSX_SEED", fallback);
}

class FsxTest : public FuseTest {
 protected:
  void run_fsx(uint64_t default_seed, uint64_t default_operations,
               const std::vector<std::string>& mount_options) {
    const uint64_t seed = test_seed(default_seed);
    const uint64_t operations = env_number("ECFS_FSX_OPS", default_operations);
    SCOPED_TRACE("fsx seed " + std::to_string(seed) + " (ECFS_FSX_SEED=" + std::to_string(seed) +
                 " ECFS_FSX_OPS=" + std::to_string(operations) + " reproduce)");
    if (!mount_options.empty()) {
      ASSERT_NO_FATAL_FAILURE(remount(mount_options));
    }

    fsx::FsxOptions options;
    options.seed = seed;
    options.operations = operations;
    options.remount_every = std::max<uint64_t>(150, operations / 10);
    options.remount = [&] { remount(mount_options); };
    ASSERT_EQ(mkdir(path("fsx").c_str(), 0755), 0);
    fsx::FsxModel model(path("fsx"), options);
    const auto start = std::chrono::steady_clock::now();
    model.run();
    model.close_all();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (HasFailure()) {
      std::printf("fsx FAILED with seed %llu after these operations:\n%s",
                  static_cast<unsigned long long>(seed), model.recent_operations().c_str());
    }
    std::printf("fsx seed %llu: %llu operations in %.1f s: %s\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(operations),
                seconds, model.counts().summary().c_str());
    // The final unmount, then fsck of the image.
    ASSERT_NO_FATAL_FAILURE(unmount());
    expect_fsck_clean();
  }
};

TEST_F(FsxTest, RandomFileOperationsMatchTheModel) {
  ASSERT_NO_FATAL_FAILURE(run_fsx(20261122, 6000, {}));
}

TEST_F(FsxTest, RandomFileOperationsMatchTheModelWithoutWritebackCache) {
  ASSERT_NO_FATAL_FAILURE(run_fsx(7041, 3000, {"-o", "no_writeback_cache"}));
}

}  // namespace
}  // namespace ecfs::fuse_test
