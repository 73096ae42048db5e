#include "block/inline_crypt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "block/fault_device.h"
#include "block/memory_device.h"
#include "block/testing.h"

namespace ecfs::block {
namespace {

using testing::error_of;
using testing::pattern;
using testing::read_back;

constexpr uint64_t kDeviceSize = 8ull << 20;

// The test cipher's keystream byte for byte `index` of data unit `dun`
// (splitmix64 of both, so every unit and every position differs). block_tests
// does not link crypto; what matters here is which DUN each unit gets.
uint8_t keystream_byte(uint64_t dun, uint64_t index) {
  uint64_t x = dun * 0x9E3779B97F4A7C15ull + (index / 8) * 0xBF58476D1CE4E5B9ull + 1;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return static_cast<uint8_t>(x >> (8 * (index % 8)));
}

// The ciphertext the test cipher defines for `plaintext` whose first data
// unit is numbered `first_dun` (byte by byte, independently of the crypter).
Bytes expected_ciphertext(ByteSpan plaintext, uint32_t unit, uint64_t first_dun) {
  Bytes out(plaintext.size());
  for (size_t i = 0; i < plaintext.size(); ++i) {
    out[i] = plaintext[i] ^ keystream_byte(first_dun + i / unit, i % unit);
  }
  return out;
}

// XOR with the keystream above, one data unit at a time. Records what it is
// asked to do (for checking the order of events and the buffers used) and
// can be told to fail at a given DUN.
class XorCrypter final : public DataUnitCrypter {
 public:
  explicit XorCrypter(uint32_t unit, std::vector<std::string>* events = nullptr)
      : unit_(unit), events_(events) {}

  uint32_t data_unit_size() const override { return unit_; }
  Status encrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    return crypt("encrypt", first_dun, in, out);
  }
  Status decrypt(uint64_t first_dun, ByteSpan in, MutableByteSpan out) const override {
    return crypt("decrypt", first_dun, in, out);
  }

  void fail_at_dun(uint64_t dun) { fail_at_ = dun; }
  const std::vector<const uint8_t*>& outputs() const { return outputs_; }

 private:
  Status crypt(const char* what, uint64_t first_dun, ByteSpan in, MutableByteSpan out) const {
    {
      std::lock_guard lock(mutex_);
      if (events_ != nullptr) events_->push_back(what);
      outputs_.push_back(out.data());
    }
    if (in.size() != out.size() || in.size() % unit_ != 0) return fail(EINVAL, "test crypter");
    for (size_t i = 0; i < in.size(); ++i) {
      const uint64_t dun = first_dun + i / unit_;
      // Leaves plaintext behind in `out` before failing, as a careless
      // in-place implementation might.
      if (fail_at_ && dun == *fail_at_) {
        std::copy(in.begin() + static_cast<ptrdiff_t>(i), in.end(),
                  out.begin() + static_cast<ptrdiff_t>(i));
        return fail(EKEYREJECTED, "test crypter refuses this data unit");
      }
      out[i] = in[i] ^ keystream_byte(dun, i % unit_);
    }
    return ok();
  }

  uint32_t unit_;
  std::vector<std::string>* events_;
  std::optional<uint64_t> fail_at_;
  mutable std::mutex mutex_;
  mutable std::vector<const uint8_t*> outputs_;
};

// Every call of a process callback: device offset and bytes.
struct ProcessedRun {
  uint64_t offset;
  Bytes bytes;
};

// A process callback that accepts every run and records it (and, given an
// event log, notes "process" there).
struct RunRecorder {
  explicit RunRecorder(std::vector<std::string>* event_log = nullptr) : events(event_log) {}

  std::vector<ProcessedRun> runs;
  std::vector<std::string>* events;

  Status operator()(uint64_t offset, ByteSpan bytes) {
    if (events != nullptr) events->push_back("process");
    runs.push_back({offset, Bytes(bytes.begin(), bytes.end())});
    return ok();
  }
};

bool all_zero(ByteSpan bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

class InlineCryptTest : public ::testing::Test {
 protected:
  MemoryDevice device_{kDeviceSize, "disk"};
};

// The same checks for every data unit size fscrypt allows, from the smallest
// (several units per block) to the largest (several blocks per unit).
class InlineCryptUnitSizeTest : public InlineCryptTest,
                                public ::testing::WithParamInterface<uint32_t> {
 protected:
  uint32_t unit() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(DataUnitSizes, InlineCryptUnitSizeTest,
                         ::testing::Values(512u, 4096u, 16384u, 65536u));

TEST_P(InlineCryptUnitSizeTest, RoundTripsAndStoresTheCiphertextOfTheRightDuns) {
  const XorCrypter crypter(unit());
  const CryptContext crypt{&crypter, 7};
  const uint64_t offset = 3 * kBlockSize;
  const Bytes plaintext = pattern(4 * kMaxDataUnitSize, 1);

  ASSERT_TRUE(submit_write(device_, offset, plaintext, &crypt));

  const Bytes on_disk = read_back(device_, offset, plaintext.size());
  EXPECT_EQ(on_disk, expected_ciphertext(plaintext, unit(), 7));
  EXPECT_NE(on_disk, plaintext);

  Bytes out(plaintext.size());
  ASSERT_TRUE(submit_read(device_, offset, out, &crypt));
  EXPECT_EQ(out, plaintext);
}

TEST_P(InlineCryptUnitSizeTest, FirstDunNumbersAPartOfAnExtentAsTheWhole) {
  // Writing an extent at once, or its second half with first_dun = the half's
  // offset in data units, gives the same ciphertext (a partial reference
  // keeps the original numbering).
  const XorCrypter crypter(unit());
  const Bytes extent = pattern(2 * kMaxDataUnitSize, 2);
  const size_t half = extent.size() / 2;
  const CryptContext whole{&crypter, 0};
  ASSERT_TRUE(submit_write(device_, 0, extent, &whole));
  const CryptContext second_half{&crypter, half / unit()};
  ASSERT_TRUE(submit_write(device_, 1 << 20, ByteSpan(extent).subspan(half), &second_half));

  EXPECT_EQ(read_back(device_, 1 << 20, half), read_back(device_, half, half));
  Bytes out(half);
  ASSERT_TRUE(submit_read(device_, half, out, &second_half));
  EXPECT_EQ(out, Bytes(extent.begin() + static_cast<ptrdiff_t>(half), extent.end()));
}

TEST_P(InlineCryptUnitSizeTest, ProcessSeesCiphertextOnWriteAndBeforeDecryptionOnRead) {
  std::vector<std::string> events;
  const XorCrypter crypter(unit(), &events);
  const CryptContext crypt{&crypter, 100};
  const uint64_t offset = 5 * kBlockSize;
  const Bytes plaintext = pattern(kMaxDataUnitSize, 3);
  const Bytes ciphertext = expected_ciphertext(plaintext, unit(), 100);

  RunRecorder written(&events);
  ASSERT_TRUE(submit_write(device_, offset, plaintext, &crypt, written));
  ASSERT_EQ(written.runs.size(), 1u);
  EXPECT_EQ(written.runs[0].offset, offset);
  EXPECT_EQ(written.runs[0].bytes, ciphertext);

  RunRecorder read(&events);
  Bytes out(plaintext.size());
  ASSERT_TRUE(submit_read(device_, offset, out, &crypt, read));
  ASSERT_EQ(read.runs.size(), 1u);
  EXPECT_EQ(read.runs[0].offset, offset);
  EXPECT_EQ(read.runs[0].bytes, ciphertext);
  EXPECT_EQ(out, plaintext);
  EXPECT_EQ(events, (std::vector<std::string>{"encrypt", "process", "process", "decrypt"}));
}

TEST_P(InlineCryptUnitSizeTest, FailingProcessOnReadHandsUpNothing) {
  std::vector<std::string> events;
  const XorCrypter crypter(unit(), &events);
  const CryptContext crypt{&crypter, 0};
  const Bytes plaintext = pattern(kMaxDataUnitSize, 4);
  ASSERT_TRUE(submit_write(device_, 0, plaintext, &crypt));
  events.clear();

  Bytes out(plaintext.size(), 0xAA);
  auto read = submit_read(device_, 0, out, &crypt,
                          [](uint64_t, ByteSpan) -> Status { return fail(EBADMSG, "bad sum"); });
  EXPECT_EQ(error_of(read), EBADMSG);
  EXPECT_TRUE(all_zero(out));
  EXPECT_TRUE(events.empty()) << "decrypted before the callback accepted the bytes";
}

TEST_P(InlineCryptUnitSizeTest, LeavesTheCallersBufferAloneOnWrite) {
  const XorCrypter crypter(unit());
  const CryptContext crypt{&crypter, 9};
  const Bytes original = pattern(kMaxDataUnitSize, 5);
  Bytes data = original;
  ASSERT_TRUE(submit_write(device_, 0, data, &crypt, [&](uint64_t, ByteSpan bytes) {
    EXPECT_NE(bytes.data(), data.data());
    return ok();
  }));
  EXPECT_EQ(data, original);
  for (const uint8_t* out : crypter.outputs()) EXPECT_NE(out, data.data());
}

TEST_F(InlineCryptTest, LongWritesGoInBounceSizedRunsWithContinuingDuns) {
  const uint32_t unit = 4096;
  const XorCrypter crypter(unit);
  const CryptContext crypt{&crypter, 1000};
  const uint64_t offset = 2 * kBlockSize;
  const Bytes plaintext = pattern(2 * kInlineCryptBounceSize + 3 * kBlockSize, 6);

  RunRecorder recorder;
  ASSERT_TRUE(submit_write(device_, offset, plaintext, &crypt, recorder));
  const Bytes ciphertext = expected_ciphertext(plaintext, unit, 1000);
  const std::vector<ProcessedRun>& runs = recorder.runs;
  ASSERT_EQ(runs.size(), 3u);
  Bytes concatenated;
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].offset, offset + i * kInlineCryptBounceSize);
    concatenated.insert(concatenated.end(), runs[i].bytes.begin(), runs[i].bytes.end());
  }
  EXPECT_EQ(concatenated, ciphertext);
  EXPECT_EQ(read_back(device_, offset, plaintext.size()), ciphertext);

  Bytes out(plaintext.size());
  ASSERT_TRUE(submit_read(device_, offset, out, &crypt));
  EXPECT_EQ(out, plaintext);
}

TEST_F(InlineCryptTest, ALongWriteStopsAtTheFirstFailedRun) {
  // Runs are written by a helper thread while the next is encrypted: a
  // device error in run 2 of 4 is reported, and runs 3 and 4 never reach
  // the device.
  const XorCrypter crypter(4096);
  const CryptContext crypt{&crypter, 0};
  const Bytes plaintext = pattern(4 * kInlineCryptBounceSize, 9);
  FaultDevice faulty(device_);
  faulty.fail_nth(FaultOp::kWrite, 2, EIO);
  auto written = submit_write(faulty, 0, plaintext, &crypt);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().errno_value(), EIO);
  EXPECT_LE(faulty.request_count(FaultOp::kWrite), 2u);
  const Bytes ciphertext = expected_ciphertext(plaintext, 4096, 0);
  EXPECT_EQ(read_back(device_, 0, kInlineCryptBounceSize),
            Bytes(ciphertext.begin(), ciphertext.begin() + kInlineCryptBounceSize));
  EXPECT_EQ(read_back(device_, 2 * kInlineCryptBounceSize, 2 * kInlineCryptBounceSize),
            Bytes(2 * kInlineCryptBounceSize, 0));
}

TEST_F(InlineCryptTest, ALongWriteWhoseCallbackFailsWaitsForTheRunInFlight) {
  // The third run's callback fails while the second is being written: the
  // error comes back once that write is done, and nothing after it is
  // written.
  const XorCrypter crypter(4096);
  const Bytes plaintext = pattern(4 * kInlineCryptBounceSize, 10);
  size_t runs = 0;
  auto written = submit_write(device_, 0, plaintext, nullptr, {});
  ASSERT_TRUE(written);  // plaintext everywhere first
  const CryptContext crypt{&crypter, 0};
  auto failed = submit_write(device_, 0, plaintext, &crypt, [&](uint64_t, ByteSpan) -> Status {
    if (++runs == 3) return fail(EIO, "process failed");
    return ok();
  });
  ASSERT_FALSE(failed);
  EXPECT_EQ(runs, 3u);
  const Bytes ciphertext = expected_ciphertext(plaintext, 4096, 0);
  EXPECT_EQ(read_back(device_, 0, 2 * kInlineCryptBounceSize),
            Bytes(ciphertext.begin(), ciphertext.begin() + 2 * kInlineCryptBounceSize));
  EXPECT_EQ(read_back(device_, 2 * kInlineCryptBounceSize, 2 * kInlineCryptBounceSize),
            Bytes(plaintext.begin() + 2 * kInlineCryptBounceSize, plaintext.end()));
}

TEST_F(InlineCryptTest, WithoutAContextBytesPassThroughTheCallback) {
  const Bytes data = pattern(3 * kBlockSize, 7);
  RunRecorder recorder;
  ASSERT_TRUE(submit_write(device_, kBlockSize, data, nullptr, recorder));
  EXPECT_EQ(read_back(device_, kBlockSize, data.size()), data);
  Bytes out(data.size());
  ASSERT_TRUE(submit_read(device_, kBlockSize, out, nullptr, recorder));
  EXPECT_EQ(out, data);
  ASSERT_EQ(recorder.runs.size(), 2u);
  for (const ProcessedRun& run : recorder.runs) {
    EXPECT_EQ(run.offset, kBlockSize);
    EXPECT_EQ(run.bytes, data);
  }
  // And without a callback.
  ASSERT_TRUE(submit_write(device_, 0, data, nullptr));
  ASSERT_TRUE(submit_read(device_, 0, out, nullptr));
  EXPECT_EQ(out, data);
}

TEST_F(InlineCryptTest, FailingProcessOnWriteWritesNothing) {
  const XorCrypter crypter(4096);
  const CryptContext crypt{&crypter, 0};
  auto refuse = [](uint64_t, ByteSpan) -> Status { return fail(ENOSPC, "no room for sums"); };
  EXPECT_EQ(error_of(submit_write(device_, 0, pattern(kBlockSize, 8), &crypt, refuse)), ENOSPC);
  EXPECT_EQ(error_of(submit_write(device_, 0, pattern(kBlockSize, 8), nullptr, refuse)), ENOSPC);
  EXPECT_EQ(device_.allocated_blocks(), 0u);
}

TEST_F(InlineCryptTest, CrypterErrorsAbortAndLeaveNoPlaintext) {
  XorCrypter crypter(4096);
  const CryptContext crypt{&crypter, 0};
  const Bytes plaintext = pattern(4 * kBlockSize, 9);
  ASSERT_TRUE(submit_write(device_, 0, plaintext, &crypt));

  crypter.fail_at_dun(2);
  RunRecorder recorder;
  EXPECT_EQ(error_of(submit_write(device_, 1 << 20, plaintext, &crypt, recorder)), EKEYREJECTED);
  EXPECT_TRUE(recorder.runs.empty());
  EXPECT_TRUE(all_zero(read_back(device_, 1 << 20, plaintext.size())));

  Bytes out(plaintext.size(), 0xAA);
  EXPECT_EQ(error_of(submit_read(device_, 0, out, &crypt)), EKEYREJECTED);
  EXPECT_TRUE(all_zero(out));
}

TEST_F(InlineCryptTest, DeviceReadErrorsZeroTheOutput) {
  FaultDevice faulty(device_);
  const XorCrypter crypter(4096);
  const CryptContext crypt{&crypter, 0};
  ASSERT_TRUE(submit_write(faulty, 0, pattern(2 * kBlockSize, 10), &crypt));
  faulty.fail_nth(FaultOp::kRead, 1, EIO);
  RunRecorder recorder;
  Bytes out(2 * kBlockSize, 0xAA);
  EXPECT_EQ(error_of(submit_read(faulty, 0, out, &crypt, recorder)), EIO);
  EXPECT_TRUE(recorder.runs.empty());
  EXPECT_TRUE(all_zero(out));
}

TEST_F(InlineCryptTest, RejectsBadRequestsBeforeTouchingTheDevice) {
  const Bytes block = pattern(kBlockSize, 11);
  Bytes out(kBlockSize);
  RunRecorder recorder;

  // Device alignment and range.
  EXPECT_EQ(error_of(submit_write(device_, 512, block, nullptr, recorder)), EINVAL);
  EXPECT_EQ(error_of(submit_write(device_, 0, ByteSpan(block).first(512), nullptr, recorder)),
            EINVAL);
  EXPECT_EQ(error_of(submit_read(device_, kDeviceSize, out, nullptr, recorder)), EINVAL);

  // Not whole data units: a 16 KiB unit cannot be written 4 KiB at a time.
  const XorCrypter big(16384);
  const CryptContext big_units{&big, 0};
  EXPECT_EQ(error_of(submit_write(device_, 0, block, &big_units, recorder)), EINVAL);
  EXPECT_EQ(error_of(submit_read(device_, 0, out, &big_units, recorder)), EINVAL);

  // Data unit sizes blk-crypto / fscrypt refuse.
  for (const uint32_t bad : {0u, 256u, 1000u, 3072u, 131072u}) {
    const XorCrypter odd(bad);
    const CryptContext crypt{&odd, 0};
    EXPECT_EQ(error_of(submit_write(device_, 0, block, &crypt, recorder)), EINVAL) << bad;
    EXPECT_EQ(error_of(submit_read(device_, 0, out, &crypt, recorder)), EINVAL) << bad;
  }

  // A context without a key.
  const CryptContext keyless{nullptr, 0};
  EXPECT_EQ(error_of(submit_write(device_, 0, block, &keyless, recorder)), EINVAL);

  // DUNs that would wrap: the last unit may be 2^64 - 1, not beyond.
  const XorCrypter small(512);
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  const CryptContext wraps{&small, max - 6};  // 8 units: max - 6 .. max + 1
  EXPECT_EQ(error_of(submit_write(device_, 0, block, &wraps, recorder)), EINVAL);
  EXPECT_TRUE(recorder.runs.empty());
  EXPECT_EQ(device_.allocated_blocks(), 0u);

  const CryptContext fits{&small, max - 7};
  EXPECT_TRUE(submit_write(device_, 0, block, &fits));
  ASSERT_TRUE(submit_read(device_, 0, out, &fits));
  EXPECT_EQ(out, block);
}

TEST_F(InlineCryptTest, EmptyRequestsDoNothing) {
  const XorCrypter crypter(4096);
  const CryptContext crypt{&crypter, 0};
  RunRecorder recorder;
  EXPECT_TRUE(submit_write(device_, 0, {}, &crypt, recorder));
  EXPECT_TRUE(submit_read(device_, 0, {}, &crypt, recorder));
  EXPECT_TRUE(recorder.runs.empty());
}

TEST_F(InlineCryptTest, ACallbackMaySubmitAnotherEncryptedWrite) {
  // The inner write must not reuse the outer request's bounce buffer while
  // the outer run is still to be written.
  const XorCrypter crypter(4096);
  const CryptContext outer{&crypter, 1};
  const CryptContext inner{&crypter, 50};
  const Bytes outer_data = pattern(4 * kBlockSize, 12);
  const Bytes inner_data = pattern(4 * kBlockSize, 13);
  ASSERT_TRUE(submit_write(device_, 0, outer_data, &outer, [&](uint64_t, ByteSpan) {
    return submit_write(device_, 1 << 20, inner_data, &inner);
  }));
  EXPECT_EQ(read_back(device_, 0, outer_data.size()), expected_ciphertext(outer_data, 4096, 1));
  EXPECT_EQ(read_back(device_, 1 << 20, inner_data.size()),
            expected_ciphertext(inner_data, 4096, 50));
}

TEST_F(InlineCryptTest, ThreadsWriteAndReadDisjointRangesAtOnce) {
  const XorCrypter crypter(4096);
  constexpr int kThreads = 4;
  constexpr size_t kPerThread = 256 * 1024;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const CryptContext crypt{&crypter, static_cast<uint64_t>(t) * 1000};
      const uint64_t offset = static_cast<uint64_t>(t) * kPerThread;
      for (uint64_t round = 0; round < 20; ++round) {
        const Bytes data = pattern(kPerThread, round * kThreads + static_cast<uint64_t>(t));
        Bytes out(kPerThread);
        if (!submit_write(device_, offset, data, &crypt) ||
            !submit_read(device_, offset, out, &crypt) || out != data) {
          ++failures[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(kThreads, 0));
}

}  // namespace
}  // namespace ecfs::block
