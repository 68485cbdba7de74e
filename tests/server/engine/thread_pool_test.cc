// ThreadPool: every task runs, and lanes take turns.
#include "server/engine/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <latch>
#include <mutex>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace garden {
namespace {

TEST(ThreadPoolTest, RunsEveryTask) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(3);
    for (int i = 0; i < 1000; ++i) pool.Submit([&] { ++ran; });
  }  // the destructor runs what is queued
  EXPECT_EQ(ran.load(), 1000);
}

// One worker, held busy while the lanes fill: the order it then runs them in.
std::vector<std::string> RunOrder(const std::vector<std::pair<std::string, int>>& lanes) {
  std::vector<std::string> order;
  std::mutex mu;
  std::latch release(1), started(1);
  ThreadPool pool(1);
  pool.Submit([&] {
    started.count_down();
    release.wait();
  });
  started.wait();
  for (const auto& [lane, n] : lanes) {
    ScopedPoolLane in(lane);
    for (int i = 0; i < n; ++i) {
      pool.Submit([&, lane = lane] {
        std::lock_guard lock(mu);
        order.push_back(lane);
      });
    }
  }
  EXPECT_EQ(pool.queued(), [&] {
    size_t n = 0;
    for (const auto& l : lanes) n += l.second;
    return n;
  }());
  release.count_down();
  while (pool.queued() > 0) std::this_thread::yield();
  // Let the last task finish before reading.
  std::latch done(1);
  pool.Submit([&] { done.count_down(); });
  done.wait();
  std::lock_guard lock(mu);
  return order;
}

TEST(ThreadPoolTest, ALaneWithOneTaskDoesNotWaitBehindALongOne) {
  const std::vector<std::string> order = RunOrder({{"alice", 20}, {"bob", 1}});
  ASSERT_EQ(order.size(), 21u);
  // bob's task runs first or second, not 21st.
  const auto bob = std::find(order.begin(), order.end(), "bob") - order.begin();
  EXPECT_LE(bob, 1) << "bob ran " << bob + 1 << "th";
}

TEST(ThreadPoolTest, LanesTakeTurns) {
  const std::vector<std::string> order = RunOrder({{"a", 3}, {"b", 3}, {"c", 3}});
  ASSERT_EQ(order.size(), 9u);
  for (size_t i = 0; i + 2 < order.size(); i += 3) {
    std::vector<std::string> round(order.begin() + i, order.begin() + i + 3);
    std::sort(round.begin(), round.end());
    EXPECT_EQ(round, (std::vector<std::string>{"a", "b", "c"})) << "round " << i / 3;
  }
}

TEST(ThreadPoolTest, NestedTasksStayInTheirLane) {
  std::vector<std::string> seen;
  std::mutex mu;
  std::latch done(1);
  ThreadPool pool(2);
  {
    ScopedPoolLane in("carol");
    pool.Submit([&] {
      {
        std::lock_guard lock(mu);
        seen.push_back(CurrentPoolLane());
      }
      pool.Submit([&] {
        std::lock_guard lock(mu);
        seen.push_back(CurrentPoolLane());
        done.count_down();
      });
    });
  }
  done.wait();
  EXPECT_EQ(seen, (std::vector<std::string>{"carol", "carol"}));
  EXPECT_EQ(CurrentPoolLane(), "");
}

}  // namespace
}  // namespace garden
