// A fixed set of worker threads shared by every request, so concurrent
// streams never use more than --threads cores between them.
//
// Fair across callers: each task joins the queue of its lane (the caller
// that submitted it, set with ScopedPoolLane: gardend uses the token's name,
// else the peer's address), and workers take from the lanes in turn, so one
// user's 154-step sweep queues behind nobody else's one-step request. A task
// submitted from inside a task stays in that task's lane.
#ifndef GARDEN_SERVER_ENGINE_THREAD_POOL_H_
#define GARDEN_SERVER_ENGINE_THREAD_POOL_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/engine/lane_queue.h"

namespace garden {

// While alive, tasks this thread submits go into lane `lane`.
class ScopedPoolLane {
 public:
  explicit ScopedPoolLane(std::string lane);
  ~ScopedPoolLane();
  ScopedPoolLane(const ScopedPoolLane&) = delete;
  ScopedPoolLane& operator=(const ScopedPoolLane&) = delete;

 private:
  std::string previous_;
};

// The lane tasks submitted from this thread go into now ("" by default).
const std::string& CurrentPoolLane();

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  // Runs the tasks already queued, then joins the workers.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);
  size_t size() const { return workers_.size(); }
  // Tasks waiting for a worker, in all lanes (for metrics).
  size_t queued() const;

 private:
  void Work();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  LaneQueue<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_THREAD_POOL_H_
