// The files the kernel is asked to encrypt in each kernel-as-judge case, and
// what is recorded about them while the filesystem is mounted with the key:
// inode numbers, nonces (FS_IOC_GET_ENCRYPTION_NONCE) and physical extents
// (FIEMAP), so that the ciphertext can be found in the raw image afterwards.
//
//   ROOT/         the directory with the policy
//   ROOT/files/   regular files of many sizes, and a sparse file
//   ROOT/names/   empty files with names of many lengths
//   ROOT/links/   symlinks, fast (target in the inode) and slow (in a block)
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"
#include "fscrypt/policy.h"
#include "fscrypt_ioctl.h"
#include "scratch_ext4.h"

namespace ecfs::kernel_test {

// Sizes around the 16-byte cipher block and the 4096-byte block, plus a
// file of many blocks with a partial last one.
inline const std::vector<size_t> kFileSizes = {0, 1, 15, 16, 17, 4095, 4096, 4097, (1 << 20) + 3};
// Name lengths around the 16-byte minimum, the no-key limit of 149 ciphertext
// bytes, and NAME_MAX.
inline const std::vector<size_t> kNameLengths = {1, 15, 16, 17, 100, 149, 150, 255};

// Symlink target lengths for a filesystem of `block_size`: short ones, ones
// around the fast-symlink limit (a record of at most 60 bytes lives in the
// inode), and the longest an encrypted target may be, block_size - 3
// (fs/crypto/hooks.c fscrypt_prepare_symlink: 2-byte length and NUL).
inline std::vector<size_t> symlink_target_lengths(unsigned block_size) {
  return {1, 16, 17, 32, 33, 56, 57, 100, 1000, block_size - 3};
}

struct JudgedDir {
  std::filesystem::path path;
  uint64_t ino = 0;
  fscrypt::Nonce nonce{};
};

struct JudgedFile {
  std::string name;
  uint64_t ino = 0;
  fscrypt::Nonce nonce{};
  Bytes plaintext;  // the whole file; holes as zeros
  bool sparse = false;
  std::vector<MappedExtent> extents;
};

struct JudgedName {
  std::string name;
  uint64_t ino = 0;
};

struct JudgedSymlink {
  std::string name;
  std::string target;
  uint64_t ino = 0;
};

struct JudgeTree {
  JudgedDir root;  // holds the policy; the three below inherit it
  JudgedDir files_dir, names_dir, links_dir;
  std::vector<JudgedFile> files;
  std::vector<JudgedName> names;
  std::vector<JudgedSymlink> links;
};

inline Bytes pseudo_random_bytes(size_t size, uint64_t seed) {
  std::mt19937_64 generator(seed);
  Bytes out(size);
  for (uint8_t& b : out) b = static_cast<uint8_t>(generator());
  return out;
}

// A name of `length` bytes: printable, no '/', never "." or "..", and
// distinct for distinct seeds.
inline std::string make_name(size_t length, uint64_t seed) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+=,~@";
  std::mt19937_64 generator(seed * 7919 + length);
  std::string name;
  for (size_t i = 0; i < length; ++i)
    name.push_back(kAlphabet[generator() % (sizeof kAlphabet - 1)]);
  name[0] = static_cast<char>('a' + seed % 26);
  return name;
}

// A path-like symlink target of `length` bytes.
inline std::string make_target(size_t length, uint64_t seed) {
  std::string target = make_name(length, seed + 1000);
  for (size_t i = 8; i < length; i += 9) target[i] = '/';
  return target;
}

inline Status write_all(int fd, ByteSpan data, off_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
    if (n < 0) return fail(errno, "pwrite");
    done += static_cast<size_t>(n);
  }
  return ok();
}

inline Result<uint64_t> inode_number(const std::filesystem::path& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return fail(errno, "lstat " + path.filename().string());
  return static_cast<uint64_t>(st.st_ino);
}

inline Status record_dir(JudgedDir& dir) {
  UniqueFd fd(open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return fail(errno, "open directory");
  auto nonce = get_nonce(fd.get());
  if (!nonce) return std::unexpected(nonce.error());
  dir.nonce = *nonce;
  auto ino = inode_number(dir.path);
  if (!ino) return std::unexpected(ino.error());
  dir.ino = *ino;
  return ok();
}

// Writes one regular file (sparse: data at a few scattered offsets) and
// records its inode, nonce and extents.
inline Status create_file(const std::filesystem::path& dir, JudgedFile& file, unsigned block_size) {
  std::filesystem::path path = dir / file.name;
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return fail(errno, "create " + file.name);
  if (file.sparse) {
    // Three islands of data with holes between and a partial tail.
    const uint64_t bs = block_size;
    const struct {
      uint64_t offset, length;
    } islands[] = {{3 * bs + 5, 100}, {10 * bs, 2 * bs}, {20 * bs + 7, 1000}};
    for (const auto& island : islands) {
      if (file.plaintext.size() < island.offset + island.length)
        file.plaintext.resize(island.offset + island.length, 0);
      Bytes data = pseudo_random_bytes(island.length, island.offset);
      std::copy(data.begin(), data.end(),
                file.plaintext.begin() + static_cast<ptrdiff_t>(island.offset));
      ECFS_TRY(write_all(fd.get(), data, static_cast<off_t>(island.offset)));
    }
  } else {
    ECFS_TRY(write_all(fd.get(), file.plaintext, 0));
  }
  if (fsync(fd.get()) != 0) return fail(errno, "fsync");
  auto nonce = get_nonce(fd.get());
  if (!nonce) return std::unexpected(nonce.error());
  file.nonce = *nonce;
  auto extents = map_extents(fd.get());
  if (!extents) return std::unexpected(extents.error());
  file.extents = *extents;
  auto ino = inode_number(path);
  if (!ino) return std::unexpected(ino.error());
  file.ino = *ino;
  return ok();
}

// Builds the whole tree under `root`, which already has the policy (and the
// key is present).
inline Status populate_tree(const std::filesystem::path& root, unsigned block_size,
                            JudgeTree& tree) {
  tree.root.path = root;
  ECFS_TRY(record_dir(tree.root));
  tree.files_dir.path = root / "files";
  tree.names_dir.path = root / "names";
  tree.links_dir.path = root / "links";
  for (JudgedDir* dir : {&tree.files_dir, &tree.names_dir, &tree.links_dir}) {
    if (mkdir(dir->path.c_str(), 0755) != 0) return fail(errno, "mkdir");
    ECFS_TRY(record_dir(*dir));
  }

  uint64_t seed = 1;
  for (size_t size : kFileSizes) {
    JudgedFile file;
    file.name = "file-" + std::to_string(size);
    file.plaintext = pseudo_random_bytes(size, seed++);
    tree.files.push_back(std::move(file));
  }
  JudgedFile sparse;
  sparse.name = "sparse";
  sparse.sparse = true;
  tree.files.push_back(std::move(sparse));
  for (JudgedFile& file : tree.files) ECFS_TRY(create_file(tree.files_dir.path, file, block_size));

  for (size_t length : kNameLengths) {
    JudgedName name{make_name(length, seed++), 0};
    std::filesystem::path path = tree.names_dir.path / name.name;
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return fail(errno, "create a " + std::to_string(length) + "-byte name");
    auto ino = inode_number(path);
    if (!ino) return std::unexpected(ino.error());
    name.ino = *ino;
    tree.names.push_back(std::move(name));
  }

  for (size_t length : symlink_target_lengths(block_size)) {
    JudgedSymlink link{"link-" + std::to_string(length), make_target(length, seed++), 0};
    std::filesystem::path path = tree.links_dir.path / link.name;
    if (symlink(link.target.c_str(), path.c_str()) != 0)
      return fail(errno, "symlink with a " + std::to_string(length) + "-byte target");
    auto ino = inode_number(path);
    if (!ino) return std::unexpected(ino.error());
    link.ino = *ino;
    tree.links.push_back(std::move(link));
  }
  return ok();
}

}  // namespace ecfs::kernel_test
