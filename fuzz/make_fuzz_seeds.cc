// Writes the seed corpora of the fuzz targets: make_fuzz_seeds NODE_DIR
// SUPERBLOCK_DIR. Seeds are generated rather than committed: they are valid
// encodings of the current format, so they follow any change to it.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "fuzz_seeds.h"
#include "store/node.h"
#include "store/superblock.h"

namespace ecfs::fuzz {
namespace {

using namespace ecfs::store;

// The control byte of seeds: re-seal, so mutated seeds get past the checksum.
Bytes with_control(uint8_t control, ByteSpan block) {
  Bytes out{control};
  out.insert(out.end(), block.begin(), block.end());
  return out;
}

Bytes encoded_node(const Node& node, uint32_t node_size, uint8_t type_index) {
  Bytes block(node_size);
  if (!encode_node(node, kFuzzFsid, kFuzzChecksumTypes[type_index], block)) std::abort();
  return with_control(static_cast<uint8_t>(kControlReseal | type_index), block);
}

}  // namespace

std::vector<Bytes> node_seeds() {
  std::mt19937_64 rng(1);
  std::vector<Bytes> seeds;
  for (uint32_t node_size : {kMinNodeSize, kDefaultNodeSize}) {
    for (uint8_t type_index = 0; type_index < 4; ++type_index) {
      Node leaf;
      leaf.bytenr = kFuzzBytenr;
      leaf.generation = 7;
      leaf.owner = 5;
      for (uint64_t i = 0; i < 6 + type_index * 3; ++i) {
        leaf.items.push_back({Key{256 + i / 3, static_cast<uint8_t>(1 + i % 3), i},
                              Bytes(rng() % 64, static_cast<uint8_t>(i))});
      }
      seeds.push_back(encoded_node(leaf, node_size, type_index));

      Node internal;
      internal.bytenr = kFuzzBytenr;
      internal.generation = 9;
      internal.owner = 1;
      internal.level = static_cast<uint8_t>(1 + type_index);
      for (uint64_t i = 0; i < 4 + type_index; ++i) {
        internal.children.push_back({Key{i * 100, 1, i}, (i + 2) * node_size, 9 - i % 3});
      }
      seeds.push_back(encoded_node(internal, node_size, type_index));
    }
  }
  Node empty;
  empty.bytenr = kFuzzBytenr;
  seeds.push_back(encoded_node(empty, kMinNodeSize, 0));
  Node big;
  big.bytenr = kFuzzBytenr;
  big.items.push_back({Key{1, 1, 1}, Bytes(max_item_data_size(kMaxNodeSize), 0xee)});
  seeds.push_back(encoded_node(big, kMaxNodeSize, 0));
  return seeds;
}

std::vector<Bytes> superblock_seeds() {
  std::vector<Bytes> seeds;
  for (uint8_t type_index = 0; type_index < 4; ++type_index) {
    Superblock sb;
    sb.fsid = kFuzzFsid;
    sb.bytenr = kSuperblockOffsets[type_index % 2];
    sb.generation = 100 + type_index;
    sb.checksum_type = kFuzzChecksumTypes[type_index];
    sb.node_size = kMinNodeSize << type_index;
    sb.total_bytes = 1ull << 30;
    sb.bytes_used = 1ull << 24;
    sb.root_tree_bytenr = 4 * kMaxNodeSize;
    sb.root_tree_generation = 99;
    sb.root_tree_level = type_index;
    sb.label = std::string(type_index * 60, 'a' + type_index);
    auto block = encode_superblock(sb);
    if (!block) std::abort();
    // A copy at another offset than the primary is expected where it says it is.
    const uint8_t control =
        kControlReseal | (sb.bytenr != kSuperblockOffsets[0] ? kControlBytenrFromBlock : 0);
    seeds.push_back(with_control(control, *block));
  }
  return seeds;
}

}  // namespace ecfs::fuzz

namespace {

bool write_all(const std::string& dir, const char* prefix, const std::vector<ecfs::Bytes>& seeds) {
  for (size_t i = 0; i < seeds.size(); ++i) {
    const std::string path = dir + "/" + prefix + std::to_string(i);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(seeds[i].data()),
              static_cast<std::streamsize>(seeds[i].size()));
    if (!out) {
      std::fprintf(stderr, "make_fuzz_seeds: cannot write %s\n", path.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_fuzz_seeds NODE_CORPUS_DIR SUPERBLOCK_CORPUS_DIR\n");
    return 2;
  }
  const bool ok = write_all(argv[1], "seed-node-", ecfs::fuzz::node_seeds()) &&
                  write_all(argv[2], "seed-superblock-", ecfs::fuzz::superblock_seeds());
  return ok ? 0 : 1;
}
