// Whole devices stored gzip-compressed, for the golden images of each
// format version (tests/golden/, docs/FORMAT.md "Golden images"). Only
// *_test.cc include this; every test binary links zlib.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/bytes.h"
#include "base/error.h"
#include "block/memory_device.h"

namespace ecfs::block::testing {

// The whole device, gzip-compressed (zlib's gz* functions write a header
// without a timestamp, so the file depends on the contents alone).
inline Status write_gzip_image(const MemoryDevice& device, const std::string& path) {
  Bytes contents(device.size());
  ECFS_TRY(device.read_at(0, contents));
  gzFile out = gzopen(path.c_str(), "wb9");
  if (out == nullptr) return fail(EIO, path + ": cannot create");
  const int written = gzwrite(out, contents.data(), static_cast<unsigned>(contents.size()));
  const int closed = gzclose(out);
  if (written != static_cast<int>(contents.size()) || closed != Z_OK) {
    return fail(EIO, path + ": writing the compressed image failed");
  }
  return ok();
}

inline Result<MemoryDevice> read_gzip_image(const std::string& path) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (in == nullptr) return fail(ENOENT, path + ": cannot open");
  Bytes contents;
  Bytes chunk(1 << 20);
  int n = 0;
  while ((n = gzread(in, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0) {
    contents.insert(contents.end(), chunk.begin(), chunk.begin() + n);
  }
  const bool failed = n < 0;
  gzclose(in);
  if (failed || contents.empty() || contents.size() % kBlockSize != 0) {
    return fail(EIO, path + ": not a gzip-compressed image of whole sectors");
  }
  MemoryDevice device(contents.size(), path);
  // Only blocks holding data take memory.
  for (size_t at = 0; at < contents.size(); at += kBlockSize) {
    const ByteSpan block(contents.data() + at, kBlockSize);
    if (std::any_of(block.begin(), block.end(), [](uint8_t b) { return b != 0; })) {
      ECFS_TRY(device.write_at(at, block));
    }
  }
  return device;
}

// tests/golden/`name` in the source tree (ECFS_SOURCE_DIR, defined for the
// test binaries that read golden images).
inline std::string golden_image_path(const std::string& name) {
  return std::string(ECFS_SOURCE_DIR) + "/tests/golden/" + name;
}

// With ECFS_WRITE_GOLDEN=DIR set (docs/FORMAT.md "Golden images"): writes
// `device` to DIR/`name` and says so; a failure fails the test.
inline void write_golden_image_if_asked(const MemoryDevice& device, const std::string& name) {
  const char* out_dir = std::getenv("ECFS_WRITE_GOLDEN");
  if (out_dir == nullptr) return;
  const std::string path = std::string(out_dir) + "/" + name;
  Status written = write_gzip_image(device, path);
  ASSERT_TRUE(written) << written.error().to_string();
  std::printf("wrote %s: %llu bytes\n", path.c_str(),
              static_cast<unsigned long long>(std::filesystem::file_size(path)));
}

}  // namespace ecfs::block::testing
