#include "server/engine/thread_pool.h"

#include "common/base/transfer_meter.h"

namespace garden {

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
  // The task counts its transfers to the request that submitted it.
  auto carried = [meter = ShareCurrentTransferMeter(), task = std::move(task)] {
    ScopedTransferMeter scope(meter);
    task();
  };
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(carried));
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
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace garden
