// Seed inputs for the fuzz targets: valid encodings the fuzzer starts from
// and mutates, so that it begins past the magic and the checksum instead of
// having to discover them. Written to a directory by make_fuzz_seeds.cc.
// Also what the targets share: how an input splits into the control byte
// and the block, and how a target reports a broken property.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "store/format.h"

namespace ecfs::fuzz {

// The filesystem id and node address the seeds carry and the node target
// expects (unless the input's control byte says otherwise).
inline constexpr std::array<uint8_t, store::kFsidSize> kFuzzFsid = {
    0xec, 0xf5, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d};
inline constexpr uint64_t kFuzzBytenr = 1ull << 20;

// Bits of the first input byte (the rest is the block under test).
inline constexpr uint8_t kControlChecksumTypeMask = 0x03;  // node: index into the checksum types
inline constexpr uint8_t kControlReseal = 0x04;            // recompute the checksum before decoding
inline constexpr uint8_t kControlFsidFromBlock = 0x08;     // node: expect the block's own fsid
inline constexpr uint8_t kControlExpectGeneration = 0x10;  // node: expect the header's generation
inline constexpr uint8_t kControlExpectLevel = 0x20;       // node: expect the header's level
inline constexpr uint8_t kControlBytenrFromBlock = 0x40;   // expect the header's bytenr

inline constexpr store::ChecksumType kFuzzChecksumTypes[] = {
    store::ChecksumType::kCrc32c, store::ChecksumType::kXxhash64, store::ChecksumType::kSha256,
    store::ChecksumType::kBlake2b};

// Control byte followed by a valid node / superblock encoding.
std::vector<Bytes> node_seeds();
std::vector<Bytes> superblock_seeds();

// The whole of a target's LLVMFuzzerTestOneInput: splits the input into the
// control byte and the block under test and runs `test(control, block)` (the
// block may be changed, e.g. resealed). An empty input has no control byte
// and so nothing to test.
template <typename Test>
int test_one_input(const uint8_t* data, size_t size, Test&& test) {
  if (size < 1) return 0;
  Bytes block(data + 1, data + size);
  test(data[0], block);
  return 0;  // libFuzzer: 0 keeps the input eligible for the corpus
}

// The bytenr to expect of the block: with kControlBytenrFromBlock the
// block's own, `otherwise` otherwise. Both the node header and the
// superblock store it at byte 48, after the checksum and the fsid
// (docs/FORMAT.md). REQUIRES: the block holds a whole header.
inline uint64_t bytenr_to_expect(uint8_t control, ByteSpan block, uint64_t otherwise) {
  return (control & kControlBytenrFromBlock) ? load_le64(block.data() + 48) : otherwise;
}

// A target found an input that breaks one of its properties: says which on
// stderr ("node_fuzz: what: detail", the form scripts/fuzz.sh picks out of
// the log) and aborts, so that libFuzzer keeps the input as a crash.
[[noreturn]] inline void violated(const char* target, const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s: %s\n", target, what, detail.c_str());
  std::abort();
}

}  // namespace ecfs::fuzz
