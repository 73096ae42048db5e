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

#include "fuzz_seeds.h"
#include "store/metadata_checksum.h"
#include "store/superblock.h"

namespace {

using namespace ecfs;
using namespace ecfs::store;

constexpr const char* kTarget = "superblock_fuzz";

void check_superblock(uint8_t control, Bytes& block) {
  uint64_t expected_bytenr = kSuperblockOffsets[0];
  if (block.size() == kSuperblockSize) {
    const auto type = checksum_type_from_number(static_cast<uint16_t>(block[76] | block[77] << 8));
    if ((control & fuzz::kControlReseal) && type) seal_metadata_block(*type, block);
    expected_bytenr = fuzz::bytenr_to_expect(control, block, expected_bytenr);
  }

  auto sb = decode_superblock(block, expected_bytenr);
  if (!sb) {
    const int e = sb.error().errno_value();
    if (e != EIO && e != EINVAL && e != EOPNOTSUPP) {
      fuzz::violated(kTarget, "refusal with an unexpected errno", sb.error().message());
    }
    return;
  }
  auto encoded = encode_superblock(*sb);
  if (!encoded) {
    fuzz::violated(kTarget, "encoder refuses a decoded superblock", encoded.error().message());
  }
  if (!std::equal(encoded->begin(), encoded->end(), block.begin(), block.end())) {
    fuzz::violated(kTarget, "re-encoding differs from the decoded block", "");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::test_one_input(data, size, check_superblock);
}
