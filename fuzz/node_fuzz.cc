// libFuzzer target for decode_node (src/store/node.h): whatever the bytes,
// decoding must stay in bounds (AddressSanitizer), refuse with EIO, or
// return a node that satisfies every rule: the encoder accepts it and it
// decodes again to the same node.
//
// Input: one control byte (fuzz_seeds.h) and the node block. The block's
// length is the node size when it is a valid one; other lengths exercise the
// size check. With kControlReseal the checksum is recomputed first, so that
// mutations reach the rules behind it instead of all failing the checksum.
#include <algorithm>
#include <cerrno>

#include "fuzz_seeds.h"
#include "store/metadata_checksum.h"
#include "store/node.h"

namespace {

using namespace ecfs;
using namespace ecfs::store;

constexpr const char* kTarget = "node_fuzz";

void check_node(uint8_t control, Bytes& block) {
  NodeExpectation expect;
  expect.checksum_type = fuzz::kFuzzChecksumTypes[control & fuzz::kControlChecksumTypeMask];
  expect.node_size =
      is_valid_node_size(block.size()) ? static_cast<uint32_t>(block.size()) : kMinNodeSize;
  expect.fsid = fuzz::kFuzzFsid;
  expect.bytenr = fuzz::kFuzzBytenr;
  if (block.size() >= kNodeHeaderSize) {
    if (control & fuzz::kControlReseal) seal_metadata_block(expect.checksum_type, block);
    if (control & fuzz::kControlFsidFromBlock) {
      std::copy(block.begin() + 32, block.begin() + 48, expect.fsid.begin());
    }
    expect.bytenr = fuzz::bytenr_to_expect(control, block, expect.bytenr);
    if (control & fuzz::kControlExpectGeneration) expect.generation = load_le64(block.data() + 56);
    if (control & fuzz::kControlExpectLevel) expect.level = block[80];
  }

  auto node = decode_node(block, expect);
  if (!node) {
    if (node.error().errno_value() != EIO) {
      fuzz::violated(kTarget, "refusal is not EIO", node.error().message());
    }
    return;
  }
  if (node->encoded_size() > expect.node_size) {
    fuzz::violated(kTarget, "decoded node does not fit", "");
  }
  Bytes again(expect.node_size);
  if (auto encoded = encode_node(*node, expect.fsid, expect.checksum_type, again); !encoded) {
    fuzz::violated(kTarget, "encoder refuses a decoded node", encoded.error().message());
  }
  auto redecoded = decode_node(again, expect);
  if (!redecoded) {
    fuzz::violated(kTarget, "re-encoded node does not decode", redecoded.error().message());
  }
  if (*redecoded != *node) fuzz::violated(kTarget, "round trip changed the node", "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::test_one_input(data, size, check_node);
}
