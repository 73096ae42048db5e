// Helpers for the engine's tests (only *_test.cc include this).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>

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

}  // namespace ecfs::store::testing
