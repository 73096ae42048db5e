// The Linux kernel as the judge of ecfs's fscrypt compatibility.
//
// For each policy kind: the kernel encrypts a tree of files, names and
// symlinks on a scratch ext4 (`-O encrypt,stable_inodes`) through its own
// ioctls; after unmounting, the raw ciphertext is read from the image and
// ecfs must (a) decrypt every data unit, name and symlink target to what was
// written and (b) encrypt the plaintext to exactly the bytes the kernel
// stored. Then ecfs writes ciphertext of new contents into the files' blocks,
// and the kernel, remounted, must read the new plaintext. Without the key,
// readdir and readlink must show ecfs's no-key encoding of the raw
// ciphertext. One file and one name per policy also go through the `ecfs
// crypt` binary, so the command line is judged by the kernel as well.
//
// This follows what xfstests does with fscrypt-crypt-util
// (common/encrypt `_verify_ciphertext_for_encryption_policy`; generic/548-550,
// 582-584, 592, 602, 693, 739). Needs root, loop devices, mkfs.ext4 and
// debugfs; skips with the reason otherwise, and per policy when the kernel
// lacks the algorithm (ENOPKG, e.g. CONFIG_CRYPTO_ADIANTUM unset).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "ecfs_side.h"
#include "ext4_dirhash.h"
#include "ext4_raw.h"
#include "fscrypt/contents.h"
#include "fscrypt/fname.h"
#include "fscrypt/key_identifier.h"
#include "fscrypt/keysetup.h"
#include "fscrypt/master_key_secret.h"
#include "fscrypt/mode.h"
#include "fscrypt/nokey_name.h"
#include "fscrypt/policy.h"
#include "fscrypt/symlink.h"
#include "fscrypt_ioctl.h"
#include "judge_tree.h"
#include "scratch_ext4.h"
#include "subprocess.h"

namespace ecfs::kernel_test {
namespace {

using fscrypt::Context;
using fscrypt::FileKind;
using fscrypt::Policy;
using fscrypt::PolicyV1;
using fscrypt::PolicyV2;

// xfstests common/encrypt TEST_RAW_KEY: bytes 0x01..0x40.
Bytes test_raw_key() {
  Bytes key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i + 1);
  return key;
}

struct PolicyCase {
  std::string name;
  Policy policy;  // the key descriptor / identifier is filled in by the test
  unsigned block_size = 4096;
};

// Test names in failure messages instead of the variant's raw bytes.
void PrintTo(const PolicyCase& policy_case, std::ostream* out) { *out << policy_case.name; }

PolicyCase v2_case(std::string name, uint8_t contents, uint8_t filenames, uint8_t flags,
                   uint8_t log2_data_unit_size = 0, unsigned block_size = 4096) {
  PolicyV2 policy;
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  policy.log2_data_unit_size = log2_data_unit_size;
  return {std::move(name), policy, block_size};
}

PolicyCase v1_case(std::string name, uint8_t contents, uint8_t filenames, uint8_t flags) {
  PolicyV1 policy;
  policy.contents_mode = contents;
  policy.filenames_mode = filenames;
  policy.flags = flags;
  return {std::move(name), policy, 4096};
}

std::vector<PolicyCase> policy_cases() {
  using namespace fscrypt;
  constexpr uint8_t kXts = kModeAes256Xts, kCts = kModeAes256Cts;
  return {
      v2_case("V2_XtsCts_Pad4", kXts, kCts, kPolicyFlagsPad4),
      v2_case("V2_XtsCts_Pad8", kXts, kCts, kPolicyFlagsPad8),
      v2_case("V2_XtsCts_Pad16", kXts, kCts, kPolicyFlagsPad16),
      v2_case("V2_XtsCts_Pad32", kXts, kCts, kPolicyFlagsPad32),
      v2_case("V2_Aes128CbcEssiv_Aes128Cts", kModeAes128Cbc, kModeAes128Cts, kPolicyFlagsPad32),
      v2_case("V2_Adiantum", kModeAdiantum, kModeAdiantum, kPolicyFlagsPad32),
      v2_case("V2_Adiantum_DirectKey", kModeAdiantum, kModeAdiantum,
              kPolicyFlagsPad32 | kPolicyFlagDirectKey),
      v2_case("V2_Xts_Hctr2", kXts, kModeAes256Hctr2, kPolicyFlagsPad32),
      v2_case("V2_XtsCts_IvInoLblk64", kXts, kCts, kPolicyFlagsPad32 | kPolicyFlagIvInoLblk64),
      v2_case("V2_XtsCts_IvInoLblk32", kXts, kCts, kPolicyFlagsPad32 | kPolicyFlagIvInoLblk32),
      v2_case("V2_XtsCts_DataUnit512", kXts, kCts, kPolicyFlagsPad32, 9),
      v2_case("V2_XtsCts_Block1024", kXts, kCts, kPolicyFlagsPad16, 0, 1024),
      v1_case("V1_XtsCts", kXts, kCts, kPolicyFlagsPad32),
      v1_case("V1_Adiantum_DirectKey", kModeAdiantum, kModeAdiantum,
              kPolicyFlagsPad32 | kPolicyFlagDirectKey),
  };
}

std::string mode_name(uint8_t number) {
  const fscrypt::ModeInfo* mode = fscrypt::find_mode(number);
  return mode ? std::string(mode->name) : "mode " + std::to_string(number);
}

Result<Bytes> read_whole_file(const std::filesystem::path& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail(errno, "open " + path.filename().string());
  Bytes data;
  uint8_t buffer[65536];
  for (;;) {
    ssize_t n = read(fd.get(), buffer, sizeof buffer);
    if (n < 0) return fail(errno, "read");
    if (n == 0) return data;
    data.insert(data.end(), buffer, buffer + n);
  }
}

std::set<std::string> list_dir(const std::filesystem::path& path) {
  std::set<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return names;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.insert(name);
  }
  closedir(dir);
  return names;
}

Result<std::string> read_link(const std::filesystem::path& path) {
  std::string target(8192, '\0');
  ssize_t n = readlink(path.c_str(), target.data(), target.size());
  if (n < 0) return fail(errno, "readlink");
  target.resize(static_cast<size_t>(n));
  return target;
}

Bytes zero_padded(const Bytes& data, uint64_t offset, size_t length) {
  Bytes out(length, 0);
  if (offset < data.size()) {
    size_t n = std::min<uint64_t>(length, data.size() - offset);
    std::copy_n(data.begin() + static_cast<ptrdiff_t>(offset), n, out.begin());
  }
  return out;
}

// Fixture: everything one policy case needs across its phases.
class KernelJudgeTest : public testing::TestWithParam<PolicyCase> {
 protected:
  void SetUp() override {
    if (std::string why = kernel_judge_unavailable_reason(); !why.empty())
      GTEST_SKIP() << "kernel judge unavailable: " << why;
    param_ = GetParam();
    policy_ = param_.policy;
    block_size_ = param_.block_size;
    raw_key_ = test_raw_key();
    auto master = fscrypt::MasterKeySecret::create(raw_key_);
    ASSERT_TRUE(master) << master.error().to_string();
    master_.emplace(std::move(*master));
    ASSERT_EQ(fs_.create(block_size_), "");
    ASSERT_EQ(fs_.mount(), "");
    judge_root_ = fs_.mount_point() / "judge";
  }

  bool is_v1() const { return fscrypt::policy_version(policy_) == fscrypt::kPolicyV1; }
  size_t padding() const { return fscrypt::filename_padding(fscrypt::policy_flags(policy_)); }
  size_t data_unit_size() const {
    return size_t{1} << fscrypt::effective_log2_data_unit_size(policy_, block_size_);
  }
  uint32_t key_spec_type() const {
    return is_v1() ? FSCRYPT_KEY_SPEC_TYPE_DESCRIPTOR : FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER;
  }
  // The descriptor or identifier bytes naming the master key.
  Bytes key_spec() const {
    const fscrypt::KeySpecifier spec = fscrypt::policy_key_specifier(policy_);
    return Bytes(spec.bytes().begin(), spec.bytes().end());
  }

  // Adds the master key to the mounted filesystem; the first time, also
  // fills the policy's key descriptor / identifier.
  void add_key() {
    UniqueFd root(open(fs_.mount_point().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root.valid());
    if (is_v1()) {
      // The descriptor is the user's choice; fscrypt tools use this one.
      auto& v1 = std::get<PolicyV1>(policy_);
      v1.master_key_descriptor = fscrypt::compute_v1_key_descriptor(raw_key_);
      auto added = add_key_v1(root.get(), v1.master_key_descriptor, raw_key_);
      ASSERT_TRUE(added) << added.error().to_string();
      return;
    }
    auto identifier = add_key_v2(root.get(), raw_key_);
    ASSERT_TRUE(identifier) << identifier.error().to_string();
    // The kernel computes the identifier itself: judge ecfs's.
    auto ours = fscrypt::compute_key_identifier(raw_key_);
    ASSERT_TRUE(ours);
    EXPECT_EQ(to_hex(*identifier), to_hex(*ours)) << "key identifier differs from the kernel's";
    std::get<PolicyV2>(policy_).master_key_identifier = *identifier;
  }

  // Makes the policy root and the test tree. Skips when the kernel lacks
  // the policy's algorithms.
  void build_tree() {
    ASSERT_EQ(mkdir(judge_root_.c_str(), 0755), 0);
    {
      UniqueFd dir(open(judge_root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      ASSERT_TRUE(dir.valid());
      Bytes policy_bytes = fscrypt::serialize_policy(policy_);
      auto set = set_policy(dir.get(), policy_bytes);
      ASSERT_TRUE(set) << set.error().to_string();
      auto reported = get_policy(dir.get());
      ASSERT_TRUE(reported) << reported.error().to_string();
      EXPECT_EQ(to_hex(*reported), to_hex(policy_bytes)) << "policy bytes differ from the kernel's";
    }
    std::filesystem::path probe = judge_root_ / "probe";
    UniqueFd probe_fd(open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!probe_fd.valid() && errno == ENOPKG)
      GTEST_SKIP() << "the kernel lacks the crypto for "
                   << mode_name(fscrypt::policy_contents_mode(policy_)) << " / "
                   << mode_name(fscrypt::policy_filenames_mode(policy_))
                   << " (ENOPKG: e.g. CONFIG_CRYPTO_ADIANTUM, _HCTR2 or _ESSIV unset)";
    ASSERT_TRUE(probe_fd.valid()) << strerror(errno);
    probe_fd.reset();
    ASSERT_EQ(unlink(probe.c_str()), 0);

    auto populated = populate_tree(judge_root_, block_size_, tree_);
    ASSERT_TRUE(populated) << populated.error().to_string();

    // One byte past the longest encrypted target (block size - 3) must fail.
    std::filesystem::path too_long = tree_.links_dir.path / "too-long";
    const int too_long_rc = symlink(make_target(block_size_ - 2, 7).c_str(), too_long.c_str());
    const int too_long_errno = errno;
    EXPECT_EQ(too_long_rc, -1);
    EXPECT_EQ(too_long_errno, ENAMETOOLONG);
    sync();
  }

  // Reads every encrypted inode's stored context from the raw image.
  void load_contexts() {
    auto uuid = filesystem_uuid(fs_.image());
    ASSERT_TRUE(uuid);
    fs_uuid_ = *uuid;
    auto hash_setting = ext4_hash_setting(fs_.image());
    ASSERT_TRUE(hash_setting) << hash_setting.error().to_string();
    hash_setting_ = *hash_setting;
    std::vector<uint64_t> inodes = {tree_.root.ino, tree_.files_dir.ino, tree_.names_dir.ino,
                                    tree_.links_dir.ino};
    for (const auto& f : tree_.files) inodes.push_back(f.ino);
    for (const auto& n : tree_.names) inodes.push_back(n.ino);
    for (const auto& l : tree_.links) inodes.push_back(l.ino);
    for (uint64_t ino : inodes) {
      auto raw = raw_encryption_context(fs_.image(), ino, fs_.work_dir());
      ASSERT_TRUE(raw) << raw.error().to_string();
      auto context = fscrypt::parse_context(*raw);
      ASSERT_TRUE(context) << "inode " << ino << ": " << context.error().to_string();
      EXPECT_TRUE(fscrypt::policies_equal(context->policy, policy_)) << "inode " << ino;
      contexts_.emplace(ino, *context);
    }
    for (const JudgedDir* dir : {&tree_.root, &tree_.files_dir, &tree_.names_dir, &tree_.links_dir})
      EXPECT_EQ(to_hex(contexts_.at(dir->ino).nonce), to_hex(dir->nonce));
    for (const JudgedFile& file : tree_.files)
      EXPECT_EQ(to_hex(contexts_.at(file.ino).nonce), to_hex(file.nonce)) << file.name;
  }

  Result<InodeCrypt> crypt_for(uint64_t ino, FileKind kind) const {
    return setup_inode_crypt(*master_, contexts_.at(ino), kind, ino, fs_uuid_);
  }

  // Every block the kernel wrote for `file`, checked in both directions.
  void check_file_contents(const JudgedFile& file) {
    SCOPED_TRACE(file.name);
    auto crypt = crypt_for(file.ino, FileKind::kRegular);
    ASSERT_TRUE(crypt) << crypt.error().to_string();
    const size_t unit = data_unit_size();
    uint64_t covered = 0;
    for (const MappedExtent& extent : file.extents) {
      EXPECT_EQ(
          extent.flags & (FIEMAP_EXTENT_UNWRITTEN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_UNKNOWN),
          0u);
      for (uint64_t offset = 0; offset < extent.length; offset += block_size_) {
        const uint64_t logical = extent.logical + offset;
        auto raw = read_image(fs_.image(), extent.physical + offset, block_size_);
        ASSERT_TRUE(raw);
        const Bytes plain = zero_padded(file.plaintext, logical, block_size_);
        Bytes out(block_size_);
        auto decrypted = fscrypt::decrypt_data_units(*crypt->key.cipher, crypt->iv, unit,
                                                     logical / unit, *raw, out);
        ASSERT_TRUE(decrypted) << decrypted.error().to_string();
        // Stop at the first wrong block: one wrong key makes every block wrong.
        ASSERT_TRUE(out == plain) << "decryption differs at file offset " << logical;
        auto encrypted = fscrypt::encrypt_data_units(*crypt->key.cipher, crypt->iv, unit,
                                                     logical / unit, plain, out);
        ASSERT_TRUE(encrypted) << encrypted.error().to_string();
        ASSERT_TRUE(out == *raw) << "encryption differs at file offset " << logical;
        covered += block_size_;
      }
    }
    if (!file.sparse) {
      EXPECT_EQ(covered, (file.plaintext.size() + block_size_ - 1) / block_size_ * block_size_);
    } else {
      EXPECT_GT(covered, 0u);
      EXPECT_LT(covered, file.plaintext.size()) << "the sparse file has no holes";
    }
  }

  // The raw entries of `dir`, keyed by inode number.
  std::map<uint64_t, Bytes> raw_entries(const JudgedDir& dir) {
    std::map<uint64_t, Bytes> by_inode;
    auto entries = raw_dir_entries(fs_.image(), dir.ino);
    EXPECT_TRUE(entries) << entries.error().to_string();
    if (entries)
      for (RawDirEntry& entry : *entries) by_inode[entry.inode] = std::move(entry.name);
    return by_inode;
  }

  // Every name in `dir`, checked in both directions.
  void check_dir_names(const JudgedDir& dir, const std::map<uint64_t, std::string>& expected) {
    SCOPED_TRACE(dir.path.filename().string());
    auto crypt = crypt_for(dir.ino, FileKind::kDirectory);
    ASSERT_TRUE(crypt) << crypt.error().to_string();
    std::map<uint64_t, Bytes> raw = raw_entries(dir);
    ASSERT_EQ(raw.size(), expected.size());
    for (const auto& [ino, name] : expected) {
      SCOPED_TRACE(std::to_string(name.size()) + "-byte name");
      ASSERT_TRUE(raw.contains(ino));
      auto decrypted = fscrypt::decrypt_name(*crypt->key.cipher, crypt->iv, raw.at(ino));
      ASSERT_TRUE(decrypted) << decrypted.error().to_string();
      EXPECT_EQ(*decrypted, name);
      auto encrypted = fscrypt::encrypt_name(*crypt->key.cipher, crypt->iv, name, padding());
      ASSERT_TRUE(encrypted) << encrypted.error().to_string();
      EXPECT_EQ(to_hex(*encrypted), to_hex(raw.at(ino)));
    }
    raw_names_[dir.ino] = std::move(raw);
  }

  void check_symlinks() {
    for (const JudgedSymlink& link : tree_.links) {
      SCOPED_TRACE(link.name);
      auto record = raw_symlink_record(fs_.image(), link.ino, block_size_, fs_.work_dir());
      ASSERT_TRUE(record) << record.error().to_string();
      auto crypt = crypt_for(link.ino, FileKind::kSymlink);
      ASSERT_TRUE(crypt) << crypt.error().to_string();
      auto target = fscrypt::decrypt_symlink(*crypt->key.cipher, crypt->iv, *record);
      ASSERT_TRUE(target) << target.error().to_string();
      EXPECT_EQ(*target, link.target);
      auto encrypted = fscrypt::encrypt_symlink(*crypt->key.cipher, crypt->iv, link.target,
                                                padding(), block_size_);
      ASSERT_TRUE(encrypted) << encrypted.error().to_string();
      Bytes stored = *record;
      stored.push_back(0);  // i_size leaves out the record's NUL
      EXPECT_EQ(to_hex(*encrypted), to_hex(stored));
      records_[link.ino] = std::move(*record);
    }
  }

  // The kernel's ciphertext of one file and one name through `ecfs crypt`.
  void check_command_line() {
    const std::string key_hex = to_hex(raw_key_);
    if (!is_v1()) {
      ProcessResult dump = run_process(
          {ECFS_BINARY, "crypt", "--kdf=HKDF-SHA512", "--dump-key-identifier", key_hex});
      ASSERT_EQ(dump.exit_status, 0) << dump.err;
      EXPECT_EQ(dump.out, to_hex(key_spec()));
    }

    const JudgedFile& file =
        *std::find_if(tree_.files.begin(), tree_.files.end(),
                      [](const JudgedFile& f) { return f.name == "file-4097"; });
    Bytes raw;  // the file's blocks in logical order (it has no holes)
    for (const MappedExtent& extent : file.extents) {
      ASSERT_EQ(extent.logical, raw.size());
      auto blocks = read_image(fs_.image(), extent.physical, extent.length);
      ASSERT_TRUE(blocks);
      raw.insert(raw.end(), blocks->begin(), blocks->end());
    }
    const Context& context = contexts_.at(file.ino);
    const uint8_t contents_mode = fscrypt::policy_contents_mode(policy_);
    std::vector<std::string> argv = {ECFS_BINARY, "crypt"};
    for (std::string& option : crypt_cli_key_options(context, contents_mode, file.ino, fs_uuid_))
      argv.push_back(std::move(option));
    argv.push_back("--data-unit-size=" + std::to_string(data_unit_size()));
    argv.push_back(mode_name(contents_mode));
    argv.push_back(key_hex);

    ProcessResult encrypted =
        run_process(argv, std::string(file.plaintext.begin(), file.plaintext.end()));
    ASSERT_EQ(encrypted.exit_status, 0) << encrypted.err;
    // Whole data units: 4097 bytes are ceil(4097 / unit) units.
    const size_t units_size =
        (file.plaintext.size() + data_unit_size() - 1) / data_unit_size() * data_unit_size();
    ASSERT_EQ(encrypted.out.size(), units_size);
    EXPECT_TRUE(Bytes(encrypted.out.begin(), encrypted.out.end()) ==
                Bytes(raw.begin(), raw.begin() + static_cast<ptrdiff_t>(units_size)))
        << "ecfs crypt's ciphertext differs from the kernel's";

    argv.insert(argv.begin() + 2, "--decrypt");
    ProcessResult decrypted = run_process(argv, std::string(raw.begin(), raw.begin() + units_size));
    ASSERT_EQ(decrypted.exit_status, 0) << decrypted.err;
    EXPECT_TRUE(Bytes(decrypted.out.begin(), decrypted.out.end()) ==
                zero_padded(file.plaintext, 0, units_size));

    // One block from the middle of the big file: --data-unit-index.
    const JudgedFile& big = tree_.files[kFileSizes.size() - 1];
    const uint64_t logical = uint64_t{100} * block_size_;
    for (const MappedExtent& extent : big.extents) {
      if (logical < extent.logical || logical >= extent.logical + extent.length) continue;
      auto block =
          read_image(fs_.image(), extent.physical + (logical - extent.logical), block_size_);
      ASSERT_TRUE(block);
      std::vector<std::string> block_argv = {ECFS_BINARY, "crypt", "--decrypt"};
      for (std::string& option :
           crypt_cli_key_options(contexts_.at(big.ino), contents_mode, big.ino, fs_uuid_))
        block_argv.push_back(std::move(option));
      block_argv.insert(block_argv.end(),
                        {"--data-unit-size=" + std::to_string(data_unit_size()),
                         "--data-unit-index=" + std::to_string(logical / data_unit_size()),
                         mode_name(contents_mode), key_hex});
      ProcessResult block_out = run_process(block_argv, std::string(block->begin(), block->end()));
      ASSERT_EQ(block_out.exit_status, 0) << block_out.err;
      EXPECT_TRUE(Bytes(block_out.out.begin(), block_out.out.end()) ==
                  zero_padded(big.plaintext, logical, block_size_))
          << "ecfs crypt --data-unit-index decrypts block 100 wrongly";
    }

    // A 17-byte name: padded, so it also exercises --padding.
    const JudgedName& name = tree_.names[3];
    ASSERT_EQ(name.name.size(), 17u);
    const Context& dir_context = contexts_.at(tree_.names_dir.ino);
    const uint8_t filenames_mode = fscrypt::policy_filenames_mode(policy_);
    argv = {ECFS_BINARY, "crypt"};
    for (std::string& option :
         crypt_cli_key_options(dir_context, filenames_mode, tree_.names_dir.ino, fs_uuid_))
      argv.push_back(std::move(option));
    argv.insert(argv.end(), {"--data-unit-size=255", "--padding=" + std::to_string(padding()),
                             mode_name(filenames_mode), key_hex});
    ProcessResult name_out = run_process(argv, name.name);
    ASSERT_EQ(name_out.exit_status, 0) << name_out.err;
    const Bytes& raw_name = raw_names_.at(tree_.names_dir.ino).at(name.ino);
    EXPECT_EQ(to_hex(as_bytes(name_out.out)), to_hex(raw_name));
  }

  // Replaces every file's contents, below the filesystem, by ciphertext ecfs
  // makes of new plaintext. The kernel must read the new plaintext back.
  void write_new_contents_with_ecfs() {
    uint64_t seed = 5000;
    for (JudgedFile& file : tree_.files) {
      SCOPED_TRACE(file.name);
      auto crypt = crypt_for(file.ino, FileKind::kRegular);
      ASSERT_TRUE(crypt) << crypt.error().to_string();
      Bytes fresh(file.plaintext.size(), 0);
      for (const MappedExtent& extent : file.extents) {
        for (uint64_t offset = 0; offset < extent.length; offset += block_size_) {
          const uint64_t logical = extent.logical + offset;
          Bytes plain = pseudo_random_bytes(block_size_, seed++);
          // Bytes past the end of the file stay zero, as the kernel keeps them.
          for (uint64_t i = 0; i < block_size_; ++i) {
            if (logical + i < fresh.size())
              fresh[logical + i] = plain[i];
            else
              plain[i] = 0;
          }
          Bytes cipher(block_size_);
          auto encrypted =
              fscrypt::encrypt_data_units(*crypt->key.cipher, crypt->iv, data_unit_size(),
                                          logical / data_unit_size(), plain, cipher);
          ASSERT_TRUE(encrypted) << encrypted.error().to_string();
          auto written = write_image(fs_.image(), extent.physical + offset, cipher);
          ASSERT_TRUE(written) << written.error().to_string();
        }
      }
      file.plaintext = std::move(fresh);
    }
  }

  // The no-key name the kernel shows for entry `ino` of directory `dir_ino`:
  // ecfs's encoding of the raw name with ext4's dirhash of it. ext4 reads
  // every dir_index directory, even a one-block one, through its htree code
  // (fs/ext4/dir.c is_dx_dir), which passes that hash to
  // fscrypt_fname_disk_to_usr; only directories read linearly get hash 0.
  std::string nokey_name(uint64_t dir_ino, uint64_t ino) const {
    const Bytes& raw = raw_names_.at(dir_ino).at(ino);
    const Ext4DirHash hash = ext4_dirhash(hash_setting_, raw);
    auto name = fscrypt::encode_nokey_name(raw, hash.hash, hash.minor_hash);
    EXPECT_TRUE(name) << name.error().to_string();
    return name ? *name : std::string("?");
  }

  // Where `dir` is without the key: below the policy root under its no-key
  // name, which the kernel must also accept for lookup.
  std::filesystem::path nokey_path(const JudgedDir& dir) const {
    return judge_root_ / nokey_name(tree_.root.ino, dir.ino);
  }

  // What readdir of `dir` must show without the key.
  std::set<std::string> expected_nokey_listing(const JudgedDir& dir) const {
    std::set<std::string> expected;
    for (const auto& [ino, name] : raw_names_.at(dir.ino))
      expected.insert(nokey_name(dir.ino, ino));
    return expected;
  }

  // Without the key: names and symlink targets appear as ecfs's no-key
  // encoding of the raw ciphertext, lookups by those names work, and
  // contents cannot be opened.
  void check_nokey_view() {
    EXPECT_EQ(list_dir(judge_root_), expected_nokey_listing(tree_.root));
    for (const JudgedDir* dir : {&tree_.files_dir, &tree_.names_dir, &tree_.links_dir}) {
      SCOPED_TRACE(dir->path.filename().string());
      EXPECT_EQ(list_dir(nokey_path(*dir)), expected_nokey_listing(*dir));
    }
    // Symlink targets carry no hash (fscrypt_get_symlink passes 0, 0).
    const std::filesystem::path links_path = nokey_path(tree_.links_dir);
    for (const JudgedSymlink& link : tree_.links) {
      auto shown_target = read_link(links_path / nokey_name(tree_.links_dir.ino, link.ino));
      ASSERT_TRUE(shown_target) << shown_target.error().to_string();
      auto expected = fscrypt::nokey_symlink_target(records_.at(link.ino));
      ASSERT_TRUE(expected) << expected.error().to_string();
      EXPECT_EQ(*shown_target, *expected) << link.name;
    }
    const JudgedFile& last_file = tree_.files.back();
    std::filesystem::path some_file =
        nokey_path(tree_.files_dir) / nokey_name(tree_.files_dir.ino, last_file.ino);
    struct stat file_st {};
    ASSERT_EQ(stat(some_file.c_str(), &file_st), 0) << "stat of a no-key name failed";
    EXPECT_EQ(static_cast<size_t>(file_st.st_size), last_file.plaintext.size());
    UniqueFd opened(open(some_file.c_str(), O_RDONLY | O_CLOEXEC));
    const int open_errno = errno;
    EXPECT_FALSE(opened.valid()) << "opened without the key";
    EXPECT_EQ(open_errno, ENOKEY);
    UniqueFd root(open(fs_.mount_point().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto status = key_status(root.get(), key_spec_type(), key_spec());
    ASSERT_TRUE(status) << status.error().to_string();
    EXPECT_EQ(*status, uint32_t{FSCRYPT_KEY_STATUS_ABSENT});
  }

  // With the key back: the kernel reads what ecfs wrote, and the plaintext
  // names and targets.
  void check_kernel_reads_ecfs_contents() {
    for (const JudgedFile& file : tree_.files) {
      auto data = read_whole_file(tree_.files_dir.path / file.name);
      ASSERT_TRUE(data) << file.name << ": " << data.error().to_string();
      EXPECT_TRUE(*data == file.plaintext) << file.name << ": the kernel read other plaintext";
    }
    std::set<std::string> expected;
    for (const JudgedName& name : tree_.names) expected.insert(name.name);
    EXPECT_EQ(list_dir(tree_.names_dir.path), expected);
    for (const JudgedSymlink& link : tree_.links) {
      auto target = read_link(tree_.links_dir.path / link.name);
      ASSERT_TRUE(target);
      EXPECT_EQ(*target, link.target);
    }
  }

  void remove_key_and_check() {
    UniqueFd root(open(fs_.mount_point().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto removed = remove_key(root.get(), key_spec_type(), key_spec());
    ASSERT_TRUE(removed) << removed.error().to_string();
    EXPECT_EQ(*removed, 0u) << "files still busy after closing them all";
    auto status = key_status(root.get(), key_spec_type(), key_spec());
    ASSERT_TRUE(status);
    EXPECT_EQ(*status, uint32_t{FSCRYPT_KEY_STATUS_ABSENT});
    // The plaintext names are gone from the caches: no-key names again.
    EXPECT_EQ(list_dir(judge_root_), expected_nokey_listing(tree_.root));
    EXPECT_EQ(list_dir(nokey_path(tree_.names_dir)), expected_nokey_listing(tree_.names_dir));
  }

  PolicyCase param_;
  Policy policy_;
  unsigned block_size_ = 4096;
  Bytes raw_key_;
  std::optional<fscrypt::MasterKeySecret> master_;
  ScratchExt4 fs_;
  std::filesystem::path judge_root_;
  JudgeTree tree_;
  fscrypt::FsUuid fs_uuid_{};
  Ext4HashSetting hash_setting_;
  std::map<uint64_t, Context> contexts_;
  std::map<uint64_t, std::map<uint64_t, Bytes>> raw_names_;  // dir ino -> entries
  std::map<uint64_t, Bytes> records_;                        // symlink ino -> record
};

TEST_P(KernelJudgeTest, EcfsAndTheKernelAgreeOnEveryByte) {
  ASSERT_NO_FATAL_FAILURE(add_key());
  ASSERT_NO_FATAL_FAILURE(build_tree());
  if (IsSkipped()) return;
  fs_.unmount();

  // Kernel -> ecfs, on the raw image.
  ASSERT_NO_FATAL_FAILURE(load_contexts());
  for (const JudgedFile& file : tree_.files) ASSERT_NO_FATAL_FAILURE(check_file_contents(file));
  std::map<uint64_t, std::string> names, file_names, link_names, dir_names;
  dir_names[tree_.files_dir.ino] = "files";
  dir_names[tree_.names_dir.ino] = "names";
  dir_names[tree_.links_dir.ino] = "links";
  ASSERT_NO_FATAL_FAILURE(check_dir_names(tree_.root, dir_names));
  for (const JudgedName& n : tree_.names) names[n.ino] = n.name;
  for (const JudgedFile& f : tree_.files) file_names[f.ino] = f.name;
  for (const JudgedSymlink& l : tree_.links) link_names[l.ino] = l.name;
  ASSERT_NO_FATAL_FAILURE(check_dir_names(tree_.names_dir, names));
  ASSERT_NO_FATAL_FAILURE(check_dir_names(tree_.files_dir, file_names));
  ASSERT_NO_FATAL_FAILURE(check_dir_names(tree_.links_dir, link_names));
  ASSERT_NO_FATAL_FAILURE(check_symlinks());
  ASSERT_NO_FATAL_FAILURE(check_command_line());

  // ecfs -> kernel.
  ASSERT_NO_FATAL_FAILURE(write_new_contents_with_ecfs());
  ASSERT_EQ(fs_.mount(), "");
  ASSERT_NO_FATAL_FAILURE(check_nokey_view());
  ASSERT_NO_FATAL_FAILURE(add_key());
  ASSERT_NO_FATAL_FAILURE(check_kernel_reads_ecfs_contents());
  ASSERT_NO_FATAL_FAILURE(remove_key_and_check());
}

INSTANTIATE_TEST_SUITE_P(Policies, KernelJudgeTest, testing::ValuesIn(policy_cases()),
                         [](const testing::TestParamInfo<PolicyCase>& case_info) {
                           return case_info.param.name;
                         });

}  // namespace
}  // namespace ecfs::kernel_test
