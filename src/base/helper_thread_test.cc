#include "base/helper_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

namespace ecfs {
namespace {

using namespace std::chrono_literals;

TEST(HelperThreadTest, RunBesideRunsBothJobsAtOnce) {
  HelperThread helper;
  // Each job waits for the other to have started: only concurrent runs
  // finish in time.
  std::promise<void> mine_started, theirs_started;
  std::thread::id theirs_thread;
  const Status status = helper.run_beside(
      [&]() -> Status {
        mine_started.set_value();
        if (theirs_started.get_future().wait_for(10s) != std::future_status::ready) {
          return fail(ETIMEDOUT, "the helper's job did not start");
        }
        return ok();
      },
      [&]() -> Status {
        theirs_thread = std::this_thread::get_id();
        theirs_started.set_value();
        if (mine_started.get_future().wait_for(10s) != std::future_status::ready) {
          return fail(ETIMEDOUT, "the caller's job did not start");
        }
        return ok();
      });
  EXPECT_TRUE(status) << status.error().to_string();
  EXPECT_NE(theirs_thread, std::this_thread::get_id());
}

TEST(HelperThreadTest, RunBesideReturnsTheFirstFailureMineFirst) {
  HelperThread helper;
  auto fine = []() -> Status { return ok(); };
  auto eio = []() -> Status { return fail(EIO, "mine"); };
  auto enospc = []() -> Status { return fail(ENOSPC, "theirs"); };
  EXPECT_TRUE(helper.run_beside(fine, fine));
  EXPECT_EQ(helper.run_beside(eio, fine).error().errno_value(), EIO);
  EXPECT_EQ(helper.run_beside(fine, enospc).error().errno_value(), ENOSPC);
  EXPECT_EQ(helper.run_beside(eio, enospc).error().errno_value(), EIO);
  // Still usable after failures.
  std::atomic<int> ran = 0;
  EXPECT_TRUE(helper.run_beside([&]() -> Status { return ++ran, ok(); },
                                [&]() -> Status { return ++ran, ok(); }));
  EXPECT_EQ(ran, 2);
}

TEST(HelperThreadTest, ASecondCallerRunsBothJobsItselfWhileTheHelperIsBusy) {
  HelperThread helper;
  std::promise<void> busy, done;
  std::shared_future<void> finish = done.get_future().share();
  auto first = std::async(std::launch::async, [&] {
    return helper.run_beside([]() -> Status { return ok(); },
                             [&]() -> Status {
                               busy.set_value();
                               finish.wait_for(10s);
                               return ok();
                             });
  });
  ASSERT_EQ(busy.get_future().wait_for(10s), std::future_status::ready);
  std::vector<std::thread::id> threads;
  const Status second = helper.run_beside(
      [&]() -> Status { return threads.push_back(std::this_thread::get_id()), ok(); },
      [&]() -> Status { return threads.push_back(std::this_thread::get_id()), ok(); });
  EXPECT_TRUE(second);
  EXPECT_EQ(threads, (std::vector{std::this_thread::get_id(), std::this_thread::get_id()}));
  done.set_value();
  EXPECT_TRUE(first.get());
}

TEST(HelperThreadTest, StartAndWaitRunJobsInTurn) {
  HelperThread helper;
  EXPECT_TRUE(helper.wait());  // nothing started
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) {
    helper.start([&order, i]() -> Status {
      order.push_back(i);
      if (i == 42) return fail(EIO, "job 42");
      return ok();
    });
    const Status status = helper.wait();
    EXPECT_EQ(status.has_value(), i != 42) << i;
  }
  std::vector<int> expected(100);
  for (int i = 0; i < 100; ++i) expected[i] = i;
  EXPECT_EQ(order, expected);
}

TEST(HelperThreadTest, DestructionWaitsForTheJobInProgress) {
  std::atomic<bool> finished = false;
  {
    HelperThread helper;
    helper.start([&]() -> Status {
      std::this_thread::sleep_for(50ms);
      finished = true;
      return ok();
    });
  }
  EXPECT_TRUE(finished);
}

}  // namespace
}  // namespace ecfs
