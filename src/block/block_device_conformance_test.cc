// One conformance suite run against every BlockDevice implementation (as
// CryFS tests its block stores): whatever sits under the engine must honour
// BlockDevice's contract in the same way.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "block/block_device.h"
#include "block/fault_device.h"
#include "block/file_device.h"
#include "block/memory_device.h"
#include "block/recording_device.h"
#include "block/testing.h"
#include "block/wrapping_device.h"

namespace ecfs::block {
namespace {

using testing::error_of;
using testing::pattern;
using testing::read_back;

constexpr uint64_t kDeviceSize = 4u << 20;  // larger than FileDevice's 1 MiB bounce chunk

// A device under test and whatever it needs to stay alive.
struct Subject {
  std::unique_ptr<testing::TempDir> dir;
  std::unique_ptr<BlockDevice> base;  // when `device` wraps another device
  std::unique_ptr<BlockDevice> device;
  std::string skip_reason;
};

struct Implementation {
  std::string name;
  std::function<Subject()> make;
};

Subject make_file(DirectIo direct_io) {
  Subject subject;
  subject.dir = std::make_unique<testing::TempDir>();
  FileDeviceOptions options;
  options.create_size = kDeviceSize;
  options.direct_io = direct_io;
  auto device = open_file_device(subject.dir->file("image"), options);
  if (!device) {
    if (direct_io == DirectIo::kRequire && device.error().errno_value() == EINVAL) {
      subject.skip_reason =
          "the temporary directory's filesystem refuses O_DIRECT: " + device.error().to_string();
    } else {
      ADD_FAILURE() << device.error().to_string();
    }
    return subject;
  }
  subject.device = std::move(*device);
  return subject;
}

const Implementation kImplementations[] = {
    {"Memory",
     [] {
       Subject s;
       s.device = std::make_unique<MemoryDevice>(kDeviceSize);
       return s;
     }},
    {"File", [] { return make_file(DirectIo::kOff); }},
    {"FileDirectIo", [] { return make_file(DirectIo::kRequire); }},
    {"RecordingOverMemory",
     [] {
       Subject s;
       s.device = std::make_unique<RecordingDevice>(std::make_unique<MemoryDevice>(kDeviceSize));
       return s;
     }},
    {"WrappingOverMemory",
     [] {
       Subject s;
       s.device = std::make_unique<WrappingDevice>(std::make_unique<MemoryDevice>(kDeviceSize));
       return s;
     }},
    {"FaultOverMemory",
     [] {
       Subject s;
       s.device = std::make_unique<FaultDevice>(std::make_unique<MemoryDevice>(kDeviceSize));
       return s;
     }},
    {"FaultOverRecordingOverFile",
     [] {
       Subject s = make_file(DirectIo::kOff);
       if (!s.device) return s;
       s.device =
           std::make_unique<FaultDevice>(std::make_unique<RecordingDevice>(std::move(s.device)));
       return s;
     }},
};

class BlockDeviceConformanceTest : public ::testing::TestWithParam<Implementation> {
 protected:
  void SetUp() override {
    subject_ = GetParam().make();
    if (!subject_.skip_reason.empty()) GTEST_SKIP() << subject_.skip_reason;
    ASSERT_NE(subject_.device, nullptr);
  }
  BlockDevice& device() { return *subject_.device; }

  Subject subject_;
};

TEST_P(BlockDeviceConformanceTest, ReportsSizeBlockSizeAndDescription) {
  EXPECT_EQ(device().size(), kDeviceSize);
  EXPECT_EQ(device().block_size(), 4096u);
  EXPECT_FALSE(device().describe().empty());
}

TEST_P(BlockDeviceConformanceTest, NewDeviceReadsZeros) {
  EXPECT_EQ(read_back(device(), 0, 3 * kBlockSize), Bytes(3 * kBlockSize, 0));
  EXPECT_EQ(read_back(device(), kDeviceSize - kBlockSize, kBlockSize), Bytes(kBlockSize, 0));
}

TEST_P(BlockDeviceConformanceTest, WritesReadBackAtStartMiddleAndEnd) {
  const Bytes first = pattern(kBlockSize, 1);
  const Bytes middle = pattern(5 * kBlockSize, 2);
  const Bytes last = pattern(2 * kBlockSize, 3);
  ASSERT_TRUE(device().write(0, first));
  ASSERT_TRUE(device().write(100 * kBlockSize, middle));
  ASSERT_TRUE(device().write(kDeviceSize - last.size(), last));
  EXPECT_EQ(read_back(device(), 0, first.size()), first);
  EXPECT_EQ(read_back(device(), 100 * kBlockSize, middle.size()), middle);
  EXPECT_EQ(read_back(device(), kDeviceSize - last.size(), last.size()), last);
  // A read across written and unwritten blocks.
  Bytes expected(kBlockSize, 0);
  expected.insert(expected.end(), middle.begin(), middle.begin() + kBlockSize);
  EXPECT_EQ(read_back(device(), 99 * kBlockSize, 2 * kBlockSize), expected);
}

TEST_P(BlockDeviceConformanceTest, OverwriteChangesOnlyItsBlocks) {
  const Bytes original = pattern(4 * kBlockSize, 4);
  const Bytes update = pattern(kBlockSize, 5);
  ASSERT_TRUE(device().write(8 * kBlockSize, original));
  ASSERT_TRUE(device().write(10 * kBlockSize, update));
  Bytes expected = original;
  std::copy(update.begin(), update.end(), expected.begin() + 2 * kBlockSize);
  EXPECT_EQ(read_back(device(), 8 * kBlockSize, expected.size()), expected);
}

TEST_P(BlockDeviceConformanceTest, FlushKeepsData) {
  const Bytes data = pattern(2 * kBlockSize, 6);
  ASSERT_TRUE(device().write(kBlockSize, data));
  auto status = device().flush();
  ASSERT_TRUE(status) << status.error().to_string();
  EXPECT_EQ(read_back(device(), kBlockSize, data.size()), data);
  EXPECT_TRUE(device().flush());  // nothing to flush is fine too
}

TEST_P(BlockDeviceConformanceTest, MisalignedBuffersWork) {
  // The engine may hand over any buffer; O_DIRECT devices must bounce it.
  // 2 MiB + 1 block spans several bounce chunks.
  const size_t length = (2u << 20) + kBlockSize;
  const Bytes data = pattern(length, 7);
  Bytes unaligned(length + 1);
  std::copy(data.begin(), data.end(), unaligned.begin() + 1);
  ASSERT_TRUE(device().write(kBlockSize, ByteSpan(unaligned.data() + 1, length)));
  Bytes out(length + 1, 0xAA);
  ASSERT_TRUE(device().read(kBlockSize, MutableByteSpan(out.data() + 1, length)));
  EXPECT_TRUE(std::equal(data.begin(), data.end(), out.begin() + 1));
  EXPECT_EQ(out[0], 0xAA);
}

TEST_P(BlockDeviceConformanceTest, MisalignedOrOutOfRangeRequestsAreEinval) {
  Bytes block(kBlockSize);
  Bytes odd(kBlockSize + 512);
  EXPECT_EQ(error_of(device().read(512, block)), EINVAL);
  EXPECT_EQ(error_of(device().write(1, block)), EINVAL);
  EXPECT_EQ(error_of(device().read(0, odd)), EINVAL);
  EXPECT_EQ(error_of(device().write(0, odd)), EINVAL);
  EXPECT_EQ(error_of(device().read(kDeviceSize, block)), EINVAL);
  EXPECT_EQ(error_of(device().write(kDeviceSize - kBlockSize, Bytes(2 * kBlockSize))), EINVAL);
  // offset + length would wrap around 2^64.
  const uint64_t huge = UINT64_MAX - (kBlockSize - 1);
  EXPECT_EQ(error_of(device().write(huge, block)), EINVAL);
  EXPECT_EQ(error_of(device().read(huge, block)), EINVAL);
  // A refused write changes nothing, and the message names the device.
  auto refused = device().write(kDeviceSize - kBlockSize, pattern(2 * kBlockSize, 8));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find(device().describe()), std::string::npos);
  EXPECT_EQ(read_back(device(), kDeviceSize - kBlockSize, kBlockSize), Bytes(kBlockSize, 0));
}

TEST_P(BlockDeviceConformanceTest, EmptyRequestsUpToTheEndAreFine) {
  EXPECT_TRUE(device().read(0, MutableByteSpan()));
  EXPECT_TRUE(device().write(kDeviceSize, ByteSpan()));
  EXPECT_EQ(error_of(device().write(kDeviceSize + kBlockSize, ByteSpan())), EINVAL);
}

TEST_P(BlockDeviceConformanceTest, ConcurrentDisjointWritesAndFlushes) {
  constexpr int kThreads = 4;
  constexpr int kBlocksPerThread = 32;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBlocksPerThread; ++i) {
        const uint64_t block = static_cast<uint64_t>(i * kThreads + t);
        if (!device().write(block * kBlockSize, pattern(kBlockSize, 1000 + block))) ++failures;
        if (i % 8 == 0 && !device().flush()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  for (uint64_t block = 0; block < kThreads * kBlocksPerThread; ++block) {
    ASSERT_EQ(read_back(device(), block * kBlockSize, kBlockSize),
              pattern(kBlockSize, 1000 + block))
        << "block " << block;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDevices, BlockDeviceConformanceTest,
                         ::testing::ValuesIn(kImplementations),
                         [](const ::testing::TestParamInfo<Implementation>& param_info) {
                           return param_info.param.name;
                         });

TEST(CheckRequestTest, NamesTheDeviceAndTheProblem) {
  MemoryDevice device(8 * kBlockSize, "test device");
  auto misaligned = check_request(device, 100, kBlockSize);
  ASSERT_EQ(error_of(misaligned), EINVAL);
  EXPECT_NE(misaligned.error().message().find("test device"), std::string::npos);
  EXPECT_NE(misaligned.error().message().find("aligned"), std::string::npos);
  auto beyond = check_request(device, 8 * kBlockSize, kBlockSize);
  ASSERT_EQ(error_of(beyond), EINVAL);
  EXPECT_NE(beyond.error().message().find("beyond the end"), std::string::npos);
  EXPECT_TRUE(check_request(device, 7 * kBlockSize, kBlockSize));
  EXPECT_TRUE(check_request(device, 0, 8 * kBlockSize));
}

}  // namespace
}  // namespace ecfs::block
