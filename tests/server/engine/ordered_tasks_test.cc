// RunOrdered: results in index order whatever order tasks finish in, no more
// than `window` tasks ahead of the consumer, and the three ways to stop.
#include "common/base/transfer_meter.h"
#include "server/engine/ordered_tasks.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace garden {
namespace {

using ::testing::ElementsAre;

using namespace std::chrono_literals;

// Later indices finish first: task i sleeps (count - i) ms.
std::chrono::milliseconds Delay(size_t i, size_t count) {
  return std::chrono::milliseconds(2 * (count - i));
}

TEST(OrderedTasksTest, ConsumesInIndexOrderWithinTheWindow) {
  ThreadPool pool(4);
  constexpr size_t kCount = 12, kWindow = 3;
  std::atomic<size_t> consumed{0}, running{0}, most_running{0};
  std::atomic<bool> beyond_window{false};
  std::vector<size_t> order;
  const absl::Status status = RunOrdered<size_t>(
      pool, kCount, {.window = kWindow},
      [&](size_t i, const CancelFlag*) -> absl::StatusOr<size_t> {
        // Only tasks within the window of the next result may start.
        if (i >= consumed.load() + kWindow) beyond_window = true;
        const size_t now = ++running;
        size_t most = most_running.load();
        while (now > most && !most_running.compare_exchange_weak(most, now)) {
        }
        std::this_thread::sleep_for(Delay(i, kCount));
        --running;
        return i * i;
      },
      [&](size_t i, size_t& square) {
        EXPECT_EQ(square, i * i);
        order.push_back(i);
        ++consumed;
        return true;
      },
      [] { return false; });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_THAT(order, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
  EXPECT_FALSE(beyond_window);
  EXPECT_LE(most_running.load(), kWindow);
  EXPECT_GE(most_running.load(), 2u);  // they did run side by side
}

// A long wait calls `waiting` on the caller's thread (progress of a fetch),
// and the pool carries the caller's transfer meter into the tasks.
TEST(OrderedTasksTest, WaitingRunsOnTheCallerAndTasksCountToItsMeter) {
  ThreadPool pool(2);
  auto shared = std::make_shared<TransferMeter>();
  TransferMeter& meter = *shared;
  ScopedTransferMeter scope(shared);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> waits{0};
  std::atomic<bool> waited_elsewhere{false};
  OrderedTasksOptions options{.window = 2, .poll = std::chrono::milliseconds(10)};
  options.waiting = [&] {
    if (std::this_thread::get_id() != caller) waited_elsewhere = true;
    ++waits;
  };
  const absl::Status status = RunOrdered<int>(
      pool, 2, options,
      [](size_t i, const CancelFlag*) -> absl::StatusOr<int> {
        TransferMeter* in_task = CurrentTransferMeter();
        if (in_task == nullptr) return absl::InternalError("no meter in the task");
        in_task->received += 10 * (i + 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(120));
        return static_cast<int>(i);
      },
      [](size_t, int&) { return true; }, [] { return false; });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_GE(waits.load(), 3);
  EXPECT_FALSE(waited_elsewhere);
  EXPECT_EQ(meter.received.load(), 30u);
  // Outside a request's scope the pool's tasks have none.
  ScopedTransferMeter none(nullptr);
  std::atomic<bool> had{true};
  std::atomic<bool> ran{false};
  pool.Submit([&] {
    had = CurrentTransferMeter() != nullptr;
    ran = true;
  });
  while (!ran) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(had);
}

TEST(OrderedTasksTest, TheFirstFailureInIndexOrderIsReturned) {
  ThreadPool pool(3);
  std::vector<size_t> consumed;
  const absl::Status status = RunOrdered<int>(
      pool, 10, {.window = 4},
      [](size_t i, const CancelFlag*) -> absl::StatusOr<int> {
        if (i == 5) return absl::DataLossError("step 5 is corrupt");
        // A later failure finishes first; it must not win.
        if (i == 6) return absl::NotFoundError("step 6 is missing");
        std::this_thread::sleep_for(1ms);
        return static_cast<int>(i);
      },
      [&](size_t i, int&) {
        consumed.push_back(i);
        return true;
      },
      [] { return false; });
  EXPECT_EQ(status, absl::DataLossError("step 5 is corrupt"));
  EXPECT_THAT(consumed, ElementsAre(0, 1, 2, 3, 4));
}

TEST(OrderedTasksTest, AConsumerThatStopsEndsItAsCancelled) {
  ThreadPool pool(2);
  size_t consumed = 0;
  const absl::Status status = RunOrdered<int>(
      pool, 10, {.window = 2},
      [](size_t i, const CancelFlag*) -> absl::StatusOr<int> {
        return static_cast<int>(i);
      },
      [&](size_t, int&) { return ++consumed < 3; }, [] { return false; });
  EXPECT_EQ(status, absl::CancelledError("the client stopped reading"));
  EXPECT_EQ(consumed, 3u);
}

TEST(OrderedTasksTest, CancellationReachesRunningTasks) {
  auto pool = std::make_unique<ThreadPool>(2);
  std::atomic<bool> cancel_requested{false}, task_saw_cancel{false};
  std::atomic<int> started{0};
  const auto start = std::chrono::steady_clock::now();
  const absl::Status status = RunOrdered<int>(
      *pool, 4, {.window = 2, .poll = 5ms},
      [&](size_t, const CancelFlag* cancel) -> absl::StatusOr<int> {
        ++started;
        // A long task that polls its flag, as the sweeps do between chunks.
        for (int k = 0; k < 2000 && !IsCancelled(cancel); ++k) {
          std::this_thread::sleep_for(1ms);
        }
        if (IsCancelled(cancel)) task_saw_cancel = true;
        return 0;
      },
      [](size_t, int&) { return true; },
      [&] {
        if (started.load() > 0) cancel_requested = true;
        return cancel_requested.load();
      });
  EXPECT_EQ(status, absl::CancelledError("request cancelled"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  pool.reset();  // waits for the tasks still running
  EXPECT_TRUE(task_saw_cancel);
}

}  // namespace
}  // namespace garden
