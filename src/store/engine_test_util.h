// Helpers for the engine's tests (only *_test.cc include this).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "block/memory_device.h"
#include "block/recording_device.h"
#include "store/engine.h"

namespace ecfs::store::testing {

using TreeContents = std::map<Key, Bytes>;

#define ECFS_ASSERT_OK(expr)                                                     \
  do {                                                                           \
    auto ecfs_assert_result_ = (expr);                                           \
    ASSERT_TRUE(ecfs_assert_result_) << ecfs_assert_result_.error().to_string(); \
  } while (0)

template <typename T>
T value_or_die(Result<T> result) {
  if (!result) {
    ADD_FAILURE() << result.error().to_string();
    std::abort();
  }
  return std::move(*result);
}

inline Result<TreeContents> read_all(const BTree& tree) {
  TreeContents contents;
  ECFS_TRY(tree.for_each(Key::min(), Key::max(), [&](const Key& key, ByteSpan data) {
    contents.emplace(key, Bytes(data.begin(), data.end()));
    return true;
  }));
  return contents;
}

// The ops of `recorder` to crash at: each flush point (not done, and done
// with nothing after it), every `every`th op, and the end.
inline std::set<size_t> crash_points(const block::RecordingDevice& recorder, size_t every) {
  const size_t ops = recorder.op_count();
  std::set<size_t> points{ops};
  for (size_t flush : recorder.flush_points()) {
    points.insert(flush);
    points.insert(flush + 1);
  }
  for (size_t point = 0; point < ops; point += every) points.insert(point);
  return points;
}

// The engine's free-space map (loaded if it was not).
inline const SpaceAllocator& space_map(Engine& engine) { return *value_or_die(engine.space_map()); }

inline std::string problems_of(const CheckReport& report) {
  std::string out;
  for (const std::string& problem : report.problems) out += problem + "\n";
  return out;
}

inline Bytes value_bytes(uint64_t tag, size_t size) {
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(tag * 131 + i * 7);
  return out;
}

// The set-up most engine tests start from: a memory device (64 MiB unless
// the derived fixture says otherwise) formatted with `mkfs_options_` (4 KiB
// nodes: deep trees from few items) and the engine open on it. A derived
// fixture may change `mkfs_options_` in its constructor, before SetUp runs.
class EngineFixture : public ::testing::Test {
 protected:
  explicit EngineFixture(uint64_t device_size = uint64_t{64} << 20) : device_(device_size) {
    mkfs_options_.node_size = 4096;
  }

  void SetUp() override {
    ECFS_ASSERT_OK(mkfs(device_, mkfs_options_));
    reopen();
  }

  // Drops the engine (and its caches) and opens the device again.
  void reopen(bool read_only = false) {
    engine_.reset();
    OpenOptions options;
    options.read_only = read_only;
    auto engine = Engine::open(device_, options);
    ASSERT_TRUE(engine) << engine.error().to_string();
    engine_ = std::move(*engine);
  }

  void expect_clean() {
    auto report = engine_->check();
    ASSERT_TRUE(report) << report.error().to_string();
    EXPECT_TRUE(report->clean()) << problems_of(*report);
  }

  // Tree `id` as last committed.
  TreeContents committed(uint64_t id) {
    return value_or_die(read_all(value_or_die(engine_->committed_tree(id))));
  }

  MkfsOptions mkfs_options_;
  block::MemoryDevice device_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace ecfs::store::testing
