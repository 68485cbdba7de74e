#include "server/engine/thread_pool.h"

#include <utility>

#include "common/base/transfer_meter.h"

namespace garden {
namespace {

thread_local std::string t_lane;

}  // namespace

const std::string& CurrentPoolLane() { return t_lane; }

ScopedPoolLane::ScopedPoolLane(std::string lane) : previous_(std::move(t_lane)) {
  t_lane = std::move(lane);
}

ScopedPoolLane::~ScopedPoolLane() { t_lane = std::move(previous_); }

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i)
    workers_.emplace_back([this] { Work(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::Submit(std::function<void()> task) {
  // The task counts its transfers to the request that submitted it, and
  // what it submits stays in its lane.
  auto carried = [meter = ShareCurrentTransferMeter(), lane = t_lane,
                  task = std::move(task)] {
    ScopedTransferMeter scope(meter);
    ScopedPoolLane in_lane(lane);
    task();
  };
  {
    std::lock_guard lock(mu_);
    queue_.Push(t_lane, std::move(carried));
  }
  cv_.notify_one();
}

void ThreadPool::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to run
      task = queue_.Take();
    }
    task();
  }
}

size_t ThreadPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

}  // namespace garden
