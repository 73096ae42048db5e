// Helpers for the block layer's tests (only *_test.cc include this).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "base/bytes.h"
#include "block/block_device.h"

namespace ecfs::block::testing {

// The errno of a failed Result, or 0 when it succeeded.
template <typename R>
int error_of(const R& result) {
  return result ? 0 : result.error().errno_value();
}

// A message of a failed Result, or "" when it succeeded.
template <typename R>
std::string message_of(const R& result) {
  return result ? std::string() : result.error().message();
}

// Bytes that differ from block to block and from `tag` to `tag`, so a block
// read from the wrong place or an old version is caught.
inline Bytes pattern(size_t size, uint64_t tag) {
  Bytes out(size);
  uint64_t x = tag * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<uint8_t>(x);
  }
  return out;
}

inline Bytes read_back(BlockDevice& device, uint64_t offset, size_t length) {
  Bytes out(length);
  auto status = device.read(offset, out);
  EXPECT_TRUE(status) << status.error().to_string();
  return out;
}

// A directory under the system's temporary directory, removed with its
// contents when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "ecfs-block-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace ecfs::block::testing
