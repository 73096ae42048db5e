// FileData and the keys of encrypted inodes: one InodeKeys per inode and
// operation (fs/extent_keys.h), every extent with its own key and context,
// and no plaintext on the device.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "fs/extent_keys.h"
#include "fs/file_data_test_util.h"
#include "fscrypt/keyring_for_test.h"

namespace ecfs::fs {
namespace {

using fscrypt::test_support::counting_nonce;
using fscrypt::test_support::v2_context;
using fscrypt::test_support::xfstests_raw_key;

// The keys of every inode from one master key, counting how often FileData
// asks for them.
class CountingKeys final : public ExtentKeys {
 public:
  explicit CountingKeys(fscrypt::Keyring& keyring, const fscrypt::KeyIdentifier& identifier)
      : keyring_(keyring), identifier_(identifier) {}

  Result<std::shared_ptr<const InodeKeys>> inode_keys(uint64_t ino) override {
    ++asked_[ino];
    auto info = keyring_.setup_file_info(v2_context(identifier_, counting_nonce(ino & 0xff)),
                                         fscrypt::FileKind::kRegular, ino);
    if (!info) return std::unexpected(info.error());
    return std::make_shared<const InodeKeys>(keyring_, std::move(*info), ino);
  }
  std::map<uint64_t, int> asked_;

 private:
  fscrypt::Keyring& keyring_;
  fscrypt::KeyIdentifier identifier_;
};

class FileDataKeysTest : public testing::FileDataTest {
 protected:
  void SetUp() override {
    auto identifier = keyring_.add_v2_key(fscrypt::test_support::root(), xfstests_raw_key());
    ASSERT_TRUE(identifier) << identifier.error().to_string();
    keys_ = std::make_unique<CountingKeys>(keyring_, *identifier);
    options_.keys = keys_.get();
    options_.max_extent_size = 64 << 10;  // many extents from little data
    FileDataTest::SetUp();
  }

  fscrypt::Keyring keyring_;
  std::unique_ptr<CountingKeys> keys_;
};

TEST_F(FileDataKeysTest, AnOperationAsksForAnInodesKeysOnce) {
  const Bytes data = testing::pattern(7, 1 << 20);
  write(11, 0, data);
  keys_->asked_.clear();
  // One writeout of 16 extents of one inode: its keys once.
  ASSERT_TRUE(data_->flush_all());
  EXPECT_EQ(keys_->asked_[11], 1);
  EXPECT_GE(extents(11).size(), 16u);
  // One read across all of them: once more.
  keys_->asked_.clear();
  EXPECT_EQ(read_all(11), data);
  EXPECT_EQ(keys_->asked_[11], 1);
  // Every extent has a context of its own, and no plaintext reached the
  // device.
  std::set<Bytes> contexts;
  for (const PlacedExtent& extent : extents(11)) {
    EXPECT_EQ(extent.item.encryption, ExtentEncryption::kFscrypt);
    contexts.insert(extent.item.context);
    Bytes raw(extent.item.disk_length);
    ASSERT_TRUE(engine_->read_data_into(extent.item.disk_bytenr, raw));
    EXPECT_NE(Bytes(raw.begin(), raw.begin() + 64),
              Bytes(data.begin() + static_cast<ptrdiff_t>(extent.offset),
                    data.begin() + static_cast<ptrdiff_t>(extent.offset) + 64));
  }
  EXPECT_EQ(contexts.size(), extents(11).size());
  // A read of a hole and of buffered data needs no key at all.
  write(12, 0, testing::pattern(8, 4096));
  keys_->asked_.clear();
  EXPECT_EQ(read_all(12), testing::pattern(8, 4096));
  EXPECT_EQ(keys_->asked_[12], 0);
  flush_commit_reopen();
}

}  // namespace
}  // namespace ecfs::fs
