// The engine's data path through the inline-crypt layer: checksums over
// ciphertext, verification before decryption, and nothing below the
// filesystem needing a key (DESIGN.md "Layers", "Security model").
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "block/inline_crypt.h"
#include "block/memory_device.h"
#include "crypto/aes_xts.h"
#include "store/checksum.h"
#include "store/data_checksums.h"
#include "store/engine_test_util.h"
#include "store/relocation.h"

namespace ecfs::store {
namespace {

using testing::problems_of;
using testing::value_bytes;
using testing::value_or_die;

constexpr uint64_t kMiB = 1 << 20;

bool all_zero(ByteSpan bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// A fixed AES-256-XTS key (fscrypt mode 1; the two halves differ).
crypto::CipherPtr test_cipher() {
  Bytes key(64);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  return value_or_die(crypto::make_aes_xts(key));
}

// The fscrypt IV of a per-extent key's data unit: le64(DUN), zero-padded to
// 16 bytes (fscrypt.rst "Contents encryption"; fscrypt/iv.h, default scheme).
std::array<uint8_t, 16> dun_iv(uint64_t dun) {
  std::array<uint8_t, 16> iv{};
  store_le64(iv.data(), dun);
  return iv;
}

// What the filesystem will plug in: AES-256-XTS, every data unit with the IV
// of its DUN (the shape of fscrypt::encrypt_data_units with an extent key).
class XtsCrypter final : public block::DataUnitCrypter {
 public:
  explicit XtsCrypter(uint32_t unit) : unit_(unit), cipher_(test_cipher()) {}
  uint32_t data_unit_size() const override { return unit_; }
  Status encrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    for (size_t at = 0; at < in.size(); at += unit_) {
      ECFS_TRY(cipher_->encrypt(dun_iv(first_dun + at / unit_), in.subspan(at, unit_),
                                out.subspan(at, unit_)));
    }
    return ok();
  }
  Status decrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    for (size_t at = 0; at < in.size(); at += unit_) {
      ECFS_TRY(cipher_->decrypt(dun_iv(first_dun + at / unit_), in.subspan(at, unit_),
                                out.subspan(at, unit_)));
    }
    return ok();
  }

 private:
  uint32_t unit_;
  crypto::CipherPtr cipher_;
};

class EncryptedDataTest : public ::testing::TestWithParam<ChecksumType> {
 protected:
  EncryptedDataTest() : device_(80 * kMiB) {}

  void SetUp() override {
    MkfsOptions options;
    options.node_size = 4096;  // small nodes: several checksum items
    options.checksum_type = GetParam();
    ECFS_ASSERT_OK(mkfs(device_, options));
    engine_ = value_or_die(Engine::open(device_));
    cipher_ = test_cipher();
  }

  // The ciphertext of `plaintext` as units of `unit` bytes from `first_dun`,
  // straight from the cipher (not through the crypter or the engine).
  Bytes expected_ciphertext(ByteSpan plaintext, uint32_t unit, uint64_t first_dun) {
    Bytes out(plaintext.size());
    for (size_t at = 0; at < plaintext.size(); at += unit) {
      EXPECT_TRUE(cipher_->encrypt(dun_iv(first_dun + at / unit), plaintext.subspan(at, unit),
                                   MutableByteSpan(out).subspan(at, unit)));
    }
    return out;
  }

  // A committed data extent holding `plaintext` encrypted with `crypt`,
  // referenced by EXTENT_DATA (inode, 0) of the FS tree.
  uint64_t write_committed_extent(uint64_t inode, const Bytes& plaintext,
                                  const block::CryptContext& crypt) {
    EXPECT_TRUE(engine_->begin());
    const uint64_t extent = value_or_die(engine_->allocate_data(plaintext.size()));
    auto written = engine_->write_data(extent, plaintext, &crypt);
    EXPECT_TRUE(written) << written.error().to_string();
    BTree* tree = value_or_die(engine_->open_tree(kFsTreeId));
    const FileExtentRef ref{extent, plaintext.size(), 0, plaintext.size()};
    EXPECT_TRUE(tree->insert(Key{inode, kExtentDataKey, 0}, encode_file_extent_ref(ref)));
    EXPECT_TRUE(engine_->add_data_ref(extent, plaintext.size(),
                                      DataRef{kFsTreeId, inode, 0, 0, plaintext.size()}));
    EXPECT_TRUE(engine_->commit());
    return extent;
  }

  Bytes raw(uint64_t bytenr, uint64_t length) {
    Bytes out(length);
    EXPECT_TRUE(device_.read(bytenr, out));
    return out;
  }

  void expect_clean_check(uint64_t sectors) {
    auto report = engine_->check();
    ASSERT_TRUE(report) << report.error().to_string();
    EXPECT_TRUE(report->clean()) << problems_of(*report);
    EXPECT_EQ(report->data_sectors_checked, sectors);
  }

  block::MemoryDevice device_;
  std::unique_ptr<Engine> engine_;
  crypto::CipherPtr cipher_;
};

INSTANTIATE_TEST_SUITE_P(ChecksumTypes, EncryptedDataTest,
                         ::testing::Values(ChecksumType::kCrc32c, ChecksumType::kXxhash64,
                                           ChecksumType::kSha256, ChecksumType::kBlake2b));

TEST_P(EncryptedDataTest, DeviceHoldsCiphertextWithItsChecksums) {
  const XtsCrypter crypter(4096);
  const block::CryptContext crypt{&crypter, 0};
  const Bytes plaintext = value_bytes(1, 16 * kSectorSize);
  const Bytes original = plaintext;
  const uint64_t extent = write_committed_extent(256, plaintext, crypt);
  EXPECT_EQ(plaintext, original) << "write_data changed the caller's plaintext";

  const Bytes ciphertext = expected_ciphertext(plaintext, 4096, 0);
  EXPECT_EQ(raw(extent, plaintext.size()), ciphertext);
  EXPECT_NE(ciphertext, plaintext);

  // The csum tree holds the checksums of the ciphertext...
  BTree csums = value_or_die(engine_->committed_tree(kCsumTreeId));
  const SectorChecksums stored =
      value_or_die(find_data_checksums(csums, GetParam(), extent, plaintext.size()));
  EXPECT_EQ(stored.sums, compute_sector_checksums(GetParam(), ciphertext));
  EXPECT_TRUE(std::all_of(stored.present.begin(), stored.present.end(), [](bool p) { return p; }));
  // ...so fsck verifies every sector without any key.
  expect_clean_check(16);

  // With the context the engine hands up plaintext; without, the bytes on
  // disk (what relocation and scrub see), still verified.
  EXPECT_EQ(value_or_die(engine_->read_data(extent, plaintext.size(), &crypt)), plaintext);
  EXPECT_EQ(value_or_die(engine_->read_data(extent, plaintext.size())), ciphertext);
  Bytes into(plaintext.size());
  ECFS_ASSERT_OK(engine_->read_data_into(extent, into, &crypt));
  EXPECT_EQ(into, plaintext);
}

TEST_P(EncryptedDataTest, FlippedByteOnDiskIsEioAndNoPlaintext) {
  const XtsCrypter crypter(4096);
  const block::CryptContext crypt{&crypter, 0};
  const Bytes plaintext = value_bytes(2, 8 * kSectorSize);
  const uint64_t extent = write_committed_extent(256, plaintext, crypt);

  const uint64_t bad = extent + 5 * kSectorSize + 100;
  uint8_t byte = 0;
  ECFS_ASSERT_OK(device_.read_at(bad, MutableByteSpan(&byte, 1)));
  byte ^= 0x10;
  ECFS_ASSERT_OK(device_.write_at(bad, ByteSpan(&byte, 1)));

  Bytes out(plaintext.size(), 0xAA);
  auto read = engine_->read_data_into(extent, out, &crypt);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().errno_value(), EIO);
  EXPECT_NE(
      read.error().message().find("data checksum mismatch in the data sector at byte offset " +
                                  std::to_string(extent + 5 * kSectorSize)),
      std::string::npos)
      << read.error().message();
  EXPECT_TRUE(all_zero(out)) << "bytes of a request that failed verification reached the caller";
  EXPECT_EQ(engine_->read_data(extent, plaintext.size(), &crypt).error().errno_value(), EIO);

  // The sectors before the damage still read; fsck finds it without a key.
  EXPECT_EQ(value_or_die(engine_->read_data(extent, 5 * kSectorSize, &crypt)),
            Bytes(plaintext.begin(), plaintext.begin() + 5 * kSectorSize));
  auto report = value_or_die(engine_->check());
  ASSERT_EQ(report.problems.size(), 1u) << problems_of(report);
}

TEST_P(EncryptedDataTest, PartsOfAnExtentUseTheOriginalDataUnitNumbers) {
  // 16 KiB data units over 4 KiB sectors: a read or write of a part passes
  // the DUN of its first unit, counted from the start of the extent.
  const XtsCrypter crypter(16384);
  const Bytes plaintext = value_bytes(3, 16 * kSectorSize);  // 4 units
  ASSERT_TRUE(engine_->begin());
  const uint64_t extent = value_or_die(engine_->allocate_data(plaintext.size()));
  const block::CryptContext units_0_1{&crypter, 0};
  const block::CryptContext units_2_3{&crypter, 2};
  ECFS_ASSERT_OK(engine_->write_data(extent, ByteSpan(plaintext).first(32768), &units_0_1));
  ECFS_ASSERT_OK(
      engine_->write_data(extent + 32768, ByteSpan(plaintext).subspan(32768), &units_2_3));
  EXPECT_EQ(raw(extent, plaintext.size()), expected_ciphertext(plaintext, 16384, 0));

  const block::CryptContext unit_1{&crypter, 1};
  EXPECT_EQ(value_or_die(engine_->read_data(extent + 16384, 32768, &unit_1)),
            Bytes(plaintext.begin() + 16384, plaintext.begin() + 49152));

  // Less than a data unit cannot be encrypted or decrypted on its own.
  EXPECT_EQ(engine_->read_data(extent, kSectorSize, &units_0_1).error().errno_value(), EINVAL);
  Bytes out(kSectorSize, 0xAA);
  EXPECT_EQ(engine_->read_data_into(extent, out, &units_0_1).error().errno_value(), EINVAL);
  EXPECT_TRUE(all_zero(out));
  const uint64_t other = value_or_die(engine_->allocate_data(2 * kSectorSize));
  EXPECT_EQ(engine_->write_data(other, Bytes(kSectorSize), &units_0_1).error().errno_value(),
            EINVAL);
  BTree* csums = value_or_die(engine_->open_tree(kCsumTreeId));
  const SectorChecksums none = value_or_die(find_data_checksums(*csums, GetParam(), other, 8192));
  EXPECT_TRUE(std::none_of(none.present.begin(), none.present.end(), [](bool p) { return p; }));
  engine_->abort();
}

TEST_P(EncryptedDataTest, WritesLongerThanTheBounceBufferAreChecksummedThroughout) {
  const XtsCrypter crypter(4096);
  const block::CryptContext crypt{&crypter, 0};
  const Bytes plaintext = value_bytes(4, 2 * block::kInlineCryptBounceSize + 3 * kSectorSize);
  const uint64_t extent = write_committed_extent(256, plaintext, crypt);
  EXPECT_EQ(raw(extent, plaintext.size()), expected_ciphertext(plaintext, 4096, 0));
  expect_clean_check(plaintext.size() / kSectorSize);
  EXPECT_EQ(value_or_die(engine_->read_data(extent, plaintext.size(), &crypt)), plaintext);
}

TEST_P(EncryptedDataTest, RelocatedCiphertextDecryptsWithTheSameContext) {
  // Relocation copies ciphertext without a key; the DUNs count from the
  // extent's start, not from its place on the device.
  const XtsCrypter crypter(4096);
  const block::CryptContext crypt{&crypter, 0};
  const Bytes plaintext = value_bytes(5, 6 * kSectorSize);
  const uint64_t extent = write_committed_extent(256, plaintext, crypt);
  ASSERT_TRUE(engine_->begin());
  const uint64_t moved = value_or_die(relocate_data_extent(*engine_, extent));
  ECFS_ASSERT_OK(engine_->commit());
  ASSERT_NE(moved, extent);
  EXPECT_EQ(value_or_die(engine_->read_data(moved, plaintext.size(), &crypt)), plaintext);
  expect_clean_check(6);
}

TEST_P(EncryptedDataTest, WrongDataUnitNumbersGiveGarbageNotAnError) {
  // Checksums protect the bytes on disk; choosing the right key and DUN is
  // the filesystem's job (the extent's context), so a wrong DUN is not EIO.
  const XtsCrypter crypter(4096);
  const block::CryptContext crypt{&crypter, 0};
  const Bytes plaintext = value_bytes(6, 2 * kSectorSize);
  const uint64_t extent = write_committed_extent(256, plaintext, crypt);
  const block::CryptContext shifted{&crypter, 1};
  const Bytes read = value_or_die(engine_->read_data(extent, plaintext.size(), &shifted));
  const Bytes ciphertext = raw(extent, plaintext.size());
  Bytes expected(plaintext.size());
  for (uint64_t unit = 0; unit < 2; ++unit) {
    ASSERT_TRUE(cipher_->decrypt(
        dun_iv(unit + 1), ByteSpan(ciphertext).subspan(unit * kSectorSize, kSectorSize),
        MutableByteSpan(expected).subspan(unit * kSectorSize, kSectorSize)));
  }
  EXPECT_EQ(read, expected);
  EXPECT_NE(read, plaintext);
}

}  // namespace
}  // namespace ecfs::store
