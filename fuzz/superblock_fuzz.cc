// libFuzzer target for decode_superblock (src/store/superblock.h): whatever
// the bytes, decoding must stay in bounds, refuse with EIO, EINVAL (format
// version) or EOPNOTSUPP (incompat features), or return a superblock whose
// encoding is exactly the input: the format leaves no byte free (reserved
// space, label tail and checksum padding must be zero), so decode and
// encode are inverse.
//
// Input: one control byte (fuzz_seeds.h) and the 4096-byte block. With
// kControlReseal the checksum is recomputed (with the checksum type the
// block names, when known) so that mutations reach the field rules.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_seeds.h"
#include "store/metadata_checksum.h"
#include "store/superblock.h"

namespace {

using namespace ecfs;
using namespace ecfs::store;

[[noreturn]] void violated(const char* what, const std::string& detail) {
  std::fprintf(stderr, "superblock_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  Bytes block(data + 1, data + size);

  uint64_t expected_bytenr = kSuperblockOffsets[0];
  if (block.size() == kSuperblockSize) {
    const auto type = checksum_type_from_number(static_cast<uint16_t>(block[76] | block[77] << 8));
    if ((control & fuzz::kControlReseal) && type) seal_metadata_block(*type, block);
    if (control & fuzz::kControlBytenrFromBlock) expected_bytenr = load_le64(block.data() + 48);
  }

  auto sb = decode_superblock(block, expected_bytenr);
  if (!sb) {
    const int e = sb.error().errno_value();
    if (e != EIO && e != EINVAL && e != EOPNOTSUPP) {
      violated("refusal with an unexpected errno", sb.error().message());
    }
    return 0;
  }
  auto encoded = encode_superblock(*sb);
  if (!encoded) violated("encoder refuses a decoded superblock", encoded.error().message());
  if (!std::equal(encoded->begin(), encoded->end(), block.begin(), block.end())) {
    violated("re-encoding differs from the decoded block", "");
  }
  return 0;
}
