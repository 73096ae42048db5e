// ext4's directory-index hash of a name, needed to predict the no-key names
// the kernel shows: ext4 reads every directory with dir_index (even a
// one-block one, fs/ext4/dir.c is_dx_dir) through the htree path, which hands
// fscrypt_fname_disk_to_usr() the dirhash of the raw (encrypted) name, so
// that hash sits in the first 8 bytes of each no-key name.
//
// The algorithms are ext4's "legacy", "half_md4" and "tea" hashes, each with
// a signed-char and an unsigned-char variant, seeded from the superblock
// (Documentation/filesystems/ext4/directory.rst, "Hash Tree Directories";
// fs/ext4/hash.c; e2fsprogs lib/ext2fs/dirhash.c). Only for tests: ecfs itself
// indexes directories its own way.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>

#include "base/bytes.h"
#include "base/error.h"
#include "ext4_raw.h"

namespace ecfs::kernel_test {

// DX_HASH_* (fs/ext4/ext4.h); the unsigned variants are the signed ones + 3.
enum class Ext4HashVersion : uint8_t {
  kLegacy = 0,
  kHalfMd4 = 1,
  kTea = 2,
  kLegacyUnsigned = 3,
  kHalfMd4Unsigned = 4,
  kTeaUnsigned = 5,
};

struct Ext4HashSetting {
  Ext4HashVersion version = Ext4HashVersion::kHalfMd4;
  std::array<uint32_t, 4> seed{};
};

struct Ext4DirHash {
  uint32_t hash = 0;
  uint32_t minor_hash = 0;
};

// Superblock fields (struct ext4_super_block): s_hash_seed __le32[4] at 0xEC,
// s_def_hash_version u8 at 0xFC, s_flags __le32 at 0x160 with
// EXT2_FLAGS_UNSIGNED_HASH 0x2 (mkfs records the char signedness it ran with).
inline Result<Ext4HashSetting> ext4_hash_setting(const std::filesystem::path& image) {
  auto sb = read_image(image, kSuperblockOffset, 1024);
  if (!sb) return std::unexpected(sb.error());
  Ext4HashSetting setting;
  for (size_t i = 0; i < 4; ++i) setting.seed[i] = load_le32(sb->data() + 0xEC + 4 * i);
  uint8_t version = (*sb)[0xFC];
  const uint32_t flags = load_le32(sb->data() + 0x160);
  if (version > 2) return fail(EINVAL, "unsupported ext4 default hash version");
  if (flags & 0x2) version += 3;
  setting.version = static_cast<Ext4HashVersion>(version);
  return setting;
}

namespace dirhash_detail {

inline uint32_t rotl(uint32_t v, int s) { return (v << s) | (v >> (32 - s)); }

// A name byte as ext4 reads it: as a signed or an unsigned char.
inline uint32_t name_char(uint8_t byte, bool unsigned_chars) {
  return unsigned_chars ? byte
                        : static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(byte)));
}

// Packs up to 4 * words bytes of `name` into big-endian-ish words, padding
// with a word made of the remaining length (ext4 str2hashbuf).
inline void pack_words(ByteSpan name, size_t remaining, uint32_t* out, int words,
                       bool unsigned_chars) {
  uint32_t pad = static_cast<uint32_t>(remaining) | (static_cast<uint32_t>(remaining) << 8);
  pad |= pad << 16;
  uint32_t value = pad;
  const size_t length = std::min<size_t>(remaining, size_t(words) * 4);
  for (size_t i = 0; i < length; ++i) {
    value = name_char(name[i], unsigned_chars) + (value << 8);
    if (i % 4 == 3) {
      *out++ = value;
      value = pad;
      --words;
    }
  }
  if (--words >= 0) *out++ = value;
  while (--words >= 0) *out++ = pad;
}

// MD4 with three rounds over 8 words, keeping the 4-word state.
inline void half_md4(std::array<uint32_t, 4>& state, const uint32_t in[8]) {
  auto f = [](uint32_t x, uint32_t y, uint32_t z) { return z ^ (x & (y ^ z)); };
  auto g = [](uint32_t x, uint32_t y, uint32_t z) { return (x & y) + ((x ^ y) & z); };
  auto h = [](uint32_t x, uint32_t y, uint32_t z) { return x ^ y ^ z; };
  constexpr uint32_t k2 = 013240474631u, k3 = 015666365641u;
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  auto step = [](auto fn, uint32_t& w, uint32_t x, uint32_t y, uint32_t z, uint32_t m, int s) {
    w = rotl(w + fn(x, y, z) + m, s);
  };
  // Round 1: words 0..7 in order, shifts 3 7 11 19.
  for (int i = 0; i < 8; i += 4) {
    step(f, a, b, c, d, in[i], 3);
    step(f, d, a, b, c, in[i + 1], 7);
    step(f, c, d, a, b, in[i + 2], 11);
    step(f, b, c, d, a, in[i + 3], 19);
  }
  // Round 2: words 1 3 5 7 0 2 4 6, shifts 3 5 9 13.
  static constexpr int kRound2[8] = {1, 3, 5, 7, 0, 2, 4, 6};
  for (int i = 0; i < 8; i += 4) {
    step(g, a, b, c, d, in[kRound2[i]] + k2, 3);
    step(g, d, a, b, c, in[kRound2[i + 1]] + k2, 5);
    step(g, c, d, a, b, in[kRound2[i + 2]] + k2, 9);
    step(g, b, c, d, a, in[kRound2[i + 3]] + k2, 13);
  }
  // Round 3: words 3 7 2 6 1 5 0 4, shifts 3 9 11 15.
  static constexpr int kRound3[8] = {3, 7, 2, 6, 1, 5, 0, 4};
  for (int i = 0; i < 8; i += 4) {
    step(h, a, b, c, d, in[kRound3[i]] + k3, 3);
    step(h, d, a, b, c, in[kRound3[i + 1]] + k3, 9);
    step(h, c, d, a, b, in[kRound3[i + 2]] + k3, 11);
    step(h, b, c, d, a, in[kRound3[i + 3]] + k3, 15);
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
}

// 16 rounds of TEA over 4 words into the first two state words.
inline void tea(std::array<uint32_t, 4>& state, const uint32_t in[4]) {
  uint32_t sum = 0, b0 = state[0], b1 = state[1];
  for (int n = 0; n < 16; ++n) {
    sum += 0x9E3779B9u;
    b0 += ((b1 << 4) + in[0]) ^ (b1 + sum) ^ ((b1 >> 5) + in[1]);
    b1 += ((b0 << 4) + in[2]) ^ (b0 + sum) ^ ((b0 >> 5) + in[3]);
  }
  state[0] += b0;
  state[1] += b1;
}

inline uint32_t legacy(ByteSpan name, bool unsigned_chars) {
  uint32_t hash0 = 0x12a3fe2d, hash1 = 0x37abe8f9;
  for (uint8_t byte : name) {
    uint32_t hash = hash1 + (hash0 ^ (name_char(byte, unsigned_chars) * 7152373u));
    if (hash & 0x80000000u) hash -= 0x7fffffff;
    hash1 = hash0;
    hash0 = hash;
  }
  return hash0 << 1;
}

}  // namespace dirhash_detail

// The (hash, minor_hash) ext4 gives `name` (fs/ext4/hash.c __ext4fs_dirhash).
inline Ext4DirHash ext4_dirhash(const Ext4HashSetting& setting, ByteSpan name) {
  using namespace dirhash_detail;
  std::array<uint32_t, 4> state = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  if (setting.seed != std::array<uint32_t, 4>{}) state = setting.seed;
  const auto version = static_cast<uint8_t>(setting.version);
  const bool unsigned_chars = version >= 3;
  Ext4DirHash result;
  switch (version % 3) {
    case 0:
      result.hash = legacy(name, unsigned_chars);
      break;
    case 1:
      for (size_t offset = 0; offset < name.size(); offset += 32) {
        uint32_t in[8];
        pack_words(name.subspan(offset), name.size() - offset, in, 8, unsigned_chars);
        half_md4(state, in);
      }
      result.hash = state[1];
      result.minor_hash = state[2];
      break;
    case 2:
      for (size_t offset = 0; offset < name.size(); offset += 16) {
        uint32_t in[4];
        pack_words(name.subspan(offset), name.size() - offset, in, 4, unsigned_chars);
        tea(state, in);
      }
      result.hash = state[0];
      result.minor_hash = state[1];
      break;
  }
  result.hash &= ~1u;
  // EXT4_HTREE_EOF_32BIT << 1 is reserved for end-of-directory.
  if (result.hash == (0x7fffffffu << 1)) result.hash = (0x7fffffffu - 1) << 1;
  return result;
}

}  // namespace ecfs::kernel_test
