// ComputeGate: at most `slots` holders, lanes in turn, cancellation while
// waiting, pause and resume.
#include "server/engine/compute_gate.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/thread_pool.h"

namespace garden {
namespace {

const std::function<bool()> kNever = [] { return false; };

void WaitUntil(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(done());
}

TEST(ComputeGateTest, AtMostSlotsHoldAtOnce) {
  ComputeGate gate(2);
  std::atomic<int> inside{0}, most{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto hold = gate.Enter(kNever);
      ASSERT_TRUE(hold.ok());
      const int now = ++inside;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      --inside;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(most.load(), 2);
  EXPECT_EQ(gate.running(), 0u);
}

TEST(ComputeGateTest, ZeroSlotsLetsEveryoneIn) {
  ComputeGate gate(0);
  auto a = gate.Enter(kNever);
  auto b = gate.Enter(kNever);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(gate.running(), 2u);
}

TEST(ComputeGateTest, LanesTakeTurns) {
  ComputeGate gate(1);
  auto first = gate.Enter(kNever);  // held while the others queue
  ASSERT_TRUE(first.ok());
  std::vector<std::string> order;
  std::mutex mu;
  std::vector<std::thread> threads;
  auto queue = [&](const std::string& lane) {
    threads.emplace_back([&, lane] {
      ScopedPoolLane in(lane);
      auto hold = gate.Enter(kNever);
      ASSERT_TRUE(hold.ok());
      std::lock_guard lock(mu);
      order.push_back(lane);
    });
  };
  for (int i = 0; i < 3; ++i) {
    queue("alice");
    WaitUntil([&] { return gate.waiting() == static_cast<size_t>(i + 1); });
  }
  queue("bob");
  WaitUntil([&] { return gate.waiting() == 4u; });
  { auto released = std::move(*first); }
  for (auto& t : threads) t.join();
  ASSERT_EQ(order.size(), 4u);
  // bob came last but goes no later than second.
  EXPECT_TRUE(order[0] == "bob" || order[1] == "bob") << order[0] << order[1];
}

TEST(ComputeGateTest, AWaiterThatIsCancelledLeavesTheQueue) {
  ComputeGate gate(1);
  auto held = gate.Enter(kNever);
  ASSERT_TRUE(held.ok());
  std::atomic<bool> cancel{false};
  absl::Status waited;
  std::thread waiter([&] {
    waited = gate.Enter([&] { return cancel.load(); }).status();
  });
  WaitUntil([&] { return gate.waiting() == 1u; });
  cancel = true;
  waiter.join();
  EXPECT_TRUE(absl::IsCancelled(waited)) << waited;
  EXPECT_EQ(gate.waiting(), 0u);
  EXPECT_EQ(gate.running(), 1u);
}

TEST(ComputeGateTest, PauseLetsAnotherInAndResumeWaitsItsTurn) {
  ComputeGate gate(1);
  auto hold = gate.Enter(kNever);
  ASSERT_TRUE(hold.ok());
  hold->Pause();
  auto other = gate.Enter(kNever);  // would block forever without the pause
  ASSERT_TRUE(other.ok());
  std::atomic<bool> resumed{false};
  std::thread t([&] {
    EXPECT_TRUE(hold->Resume(kNever).ok());
    resumed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(resumed.load());
  { auto released = std::move(*other); }
  t.join();
  EXPECT_TRUE(resumed.load());
  EXPECT_EQ(gate.running(), 1u);
}

TEST(ComputeGateTest, AReservationOverTheWholeBudgetIsRefusedAtOnce) {
  ComputeGate gate(1, 100);
  auto hold = gate.Enter(kNever);
  ASSERT_TRUE(hold.ok());
  const absl::Status status = hold->Reserve(101, kNever);
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_NE(status.message().find("about 101 bytes"), std::string::npos) << status;
  EXPECT_NE(status.message().find("--request-memory-bytes 100"), std::string::npos) << status;
  EXPECT_TRUE(hold->Reserve(100, kNever).ok());
  EXPECT_EQ(gate.reserved(), 100u);
}

TEST(ComputeGateTest, ReservationsWaitUntilTheyFit) {
  ComputeGate gate(0, 100);  // no limit on count: the budget alone decides
  auto a = gate.Enter(kNever);
  ASSERT_TRUE(a.ok() && a->Reserve(60, kNever).ok());
  std::atomic<bool> reserved{false};
  std::thread b([&] {
    auto hold = gate.Enter(kNever);
    ASSERT_TRUE(hold.ok());
    EXPECT_TRUE(hold->Reserve(60, kNever).ok());
    reserved = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_FALSE(reserved.load());  // 60 + 60 > 100
  { auto done = std::move(*a); }  // a finishes: its 60 bytes are free
  b.join();
  EXPECT_TRUE(reserved.load());
  EXPECT_EQ(gate.reserved(), 0u);  // b's hold ended too
}

TEST(ComputeGateTest, AWaitingReservationGivesItsSlotToAPausedHolderOfBytes) {
  // a holds bytes and pauses (a generation writing a token); b takes the one
  // slot and needs bytes only a can free. b must let the slot go while it
  // waits, or neither could go on.
  ComputeGate gate(1, 100);
  auto a = gate.Enter(kNever);
  ASSERT_TRUE(a.ok() && a->Reserve(60, kNever).ok());
  a->Pause();
  std::atomic<bool> b_done{false};
  std::thread b([&] {
    auto hold = gate.Enter(kNever);
    ASSERT_TRUE(hold.ok());
    EXPECT_TRUE(hold->Reserve(60, kNever).ok());
    EXPECT_EQ(gate.running(), 1u);  // it holds the slot again
    b_done = true;
  });
  WaitUntil([&] { return gate.reserved() == 60u && gate.running() == 0u; });
  ASSERT_TRUE(a->Resume(kNever).ok());  // would wait forever on b's slot
  { auto done = std::move(*a); }
  b.join();
  EXPECT_TRUE(b_done.load());
}

}  // namespace
}  // namespace garden
