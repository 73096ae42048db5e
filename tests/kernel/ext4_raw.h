// Reading what the kernel wrote, below the filesystem: raw blocks of the
// image, raw directory entries, inodes and xattrs through debugfs
// (e2fsprogs), which never decrypts anything. Only used on an unmounted
// image.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "scratch_ext4.h"
#include "subprocess.h"

namespace ecfs::kernel_test {

inline Result<Bytes> read_image(const std::filesystem::path& image, uint64_t offset,
                                size_t length) {
  UniqueFd fd(open(image.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail(errno, "open image");
  Bytes data(length);
  ssize_t n = pread(fd.get(), data.data(), length, static_cast<off_t>(offset));
  if (n != static_cast<ssize_t>(length)) return fail(EIO, "short read from image");
  return data;
}

inline Status write_image(const std::filesystem::path& image, uint64_t offset, ByteSpan data) {
  UniqueFd fd(open(image.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return fail(errno, "open image");
  ssize_t n = pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(offset));
  if (n != static_cast<ssize_t>(data.size()) || fsync(fd.get()) != 0)
    return fail(EIO, "short write to image");
  return ok();
}

// ext4 superblock fields (fs/ext4/ext4.h struct ext4_super_block; the
// superblock starts 1024 bytes into the device).
constexpr uint64_t kSuperblockOffset = 1024;
constexpr uint64_t kSuperblockUuidOffset = 0x68;  // s_uuid[16]

// s_uuid: the UUID that IV_INO_LBLK_* key derivation mixes in (the kernel
// uses sb->s_uuid, which ext4 fills from s_uuid).
inline Result<std::array<uint8_t, 16>> filesystem_uuid(const std::filesystem::path& image) {
  auto raw = read_image(image, kSuperblockOffset + kSuperblockUuidOffset, 16);
  if (!raw) return std::unexpected(raw.error());
  std::array<uint8_t, 16> uuid{};
  std::copy(raw->begin(), raw->end(), uuid.begin());
  return uuid;
}

inline ProcessResult debugfs(const std::filesystem::path& image, const std::string& request) {
  return run_process({"debugfs", "-R", request, image.string()});
}

// One directory entry as stored: inode number and the raw (encrypted) name.
struct RawDirEntry {
  uint64_t inode = 0;
  Bytes name;
};

// Turns debugfs's "-r" escaping back into bytes: printable ASCII is shown
// as is, every other byte and the backslash itself as \xHH.
inline Bytes unescape_debugfs_name(const std::string& shown) {
  Bytes out;
  for (size_t i = 0; i < shown.size(); ++i) {
    if (shown[i] == '\\' && i + 3 < shown.size() && shown[i + 1] == 'x') {
      auto value = from_hex(shown.substr(i + 2, 2));
      if (value && value->size() == 1) {
        out.push_back((*value)[0]);
        i += 3;
        continue;
      }
    }
    out.push_back(static_cast<uint8_t>(shown[i]));
  }
  return out;
}

// The entries of directory `dir_inode`, "." and ".." excluded, with raw
// names: `debugfs -R "ls -l -r <ino>"` prints each name unencrypted-as-is
// (e2fsprogs 1.46+ prints "<encrypted (N)>" without -r).
inline Result<std::vector<RawDirEntry>> raw_dir_entries(const std::filesystem::path& image,
                                                        uint64_t dir_inode) {
  ProcessResult listing = debugfs(image, "ls -l -r <" + std::to_string(dir_inode) + ">");
  if (!listing.succeeded()) return fail(EIO, "debugfs ls failed: " + listing.err);
  // "  13  100644 (1)  0  0  2 22-Nov-2026 00:21 name"
  static const std::regex line_format(
      R"(^\s*(\d+)\s+[0-7]+\s+\(\d+\)\s+\d+\s+\d+\s+\d+\s+\S+\s+\d\d:\d\d (.*)$)");
  std::vector<RawDirEntry> entries;
  std::istringstream lines(listing.out);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch match;
    if (!std::regex_match(line, match, line_format)) continue;
    RawDirEntry entry{std::stoull(match[1]), unescape_debugfs_name(match[2])};
    Bytes dot = {'.'}, dotdot = {'.', '.'};
    if (entry.name == dot || entry.name == dotdot) continue;
    entries.push_back(std::move(entry));
  }
  if (entries.empty() && listing.out.find(" .") == std::string::npos)
    return fail(EIO, "debugfs printed no directory listing: " + listing.err);
  return entries;
}

// Where inode `ino` sits in the image, from `debugfs -R "imap <ino>"`:
// "located at block 42, offset 0x0100".
inline Result<uint64_t> inode_offset(const std::filesystem::path& image, uint64_t ino,
                                     unsigned block_size) {
  ProcessResult imap = debugfs(image, "imap <" + std::to_string(ino) + ">");
  static const std::regex located(R"(located at block (\d+), offset 0x([0-9a-fA-F]+))");
  std::smatch match;
  if (!std::regex_search(imap.out, match, located))
    return fail(EIO, "debugfs imap gave no location: " + imap.err);
  return std::stoull(match[1]) * block_size + std::stoull(match[2], nullptr, 16);
}

// Fields of struct ext4_inode (fs/ext4/ext4.h).
constexpr size_t kInodeSizeLoOffset = 4;  // i_size_lo
constexpr size_t kInodeFlagsOffset = 32;  // i_flags
constexpr size_t kInodeBlockOffset = 40;  // i_block[15], 60 bytes
constexpr size_t kInodeBlockBytes = 60;
constexpr uint32_t kExt4ExtentsFlag = 0x80000;  // EXT4_EXTENTS_FL

// The on-disk symlink record (struct fscrypt_symlink_data: __le16 len,
// ciphertext) of an encrypted symlink, without the trailing NUL. Fast
// symlinks (record of at most 60 bytes with its NUL, fs/ext4/namei.c
// ext4_symlink) live in i_block; slow ones in a data block that
// `debugfs dump` copies out raw. i_size is the record size minus the NUL.
inline Result<Bytes> raw_symlink_record(const std::filesystem::path& image, uint64_t ino,
                                        unsigned block_size, const std::filesystem::path& scratch) {
  auto offset = inode_offset(image, ino, block_size);
  if (!offset) return std::unexpected(offset.error());
  auto inode = read_image(image, *offset, kInodeBlockOffset + kInodeBlockBytes);
  if (!inode) return std::unexpected(inode.error());
  uint32_t size = load_le32(inode->data() + kInodeSizeLoOffset);
  uint32_t flags = load_le32(inode->data() + kInodeFlagsOffset);
  if ((flags & kExt4ExtentsFlag) == 0) {
    if (size >= kInodeBlockBytes) return fail(EIO, "fast symlink larger than i_block");
    return Bytes(inode->begin() + kInodeBlockOffset, inode->begin() + kInodeBlockOffset + size);
  }
  std::filesystem::path out = scratch / ("symlink-" + std::to_string(ino));
  ProcessResult dump = debugfs(image, "dump <" + std::to_string(ino) + "> " + out.string());
  std::ifstream in(out, std::ios::binary);
  if (!in) return fail(EIO, "debugfs dump of a symlink failed: " + dump.err);
  Bytes record((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (record.size() != size) return fail(EIO, "debugfs dump size differs from i_size");
  return record;
}

// The raw fscrypt context of inode `ino`: ext4 keeps it in the hidden xattr
// "c" of index 9 (EXT4_XATTR_INDEX_ENCRYPTION), which debugfs shows as "c".
inline Result<Bytes> raw_encryption_context(const std::filesystem::path& image, uint64_t ino,
                                            const std::filesystem::path& scratch) {
  std::filesystem::path out = scratch / ("context-" + std::to_string(ino));
  ProcessResult get =
      debugfs(image, "ea_get -f " + out.string() + " <" + std::to_string(ino) + "> c");
  std::ifstream in(out, std::ios::binary);
  if (!in) return fail(EIO, "debugfs ea_get of the context failed: " + get.err);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace ecfs::kernel_test
