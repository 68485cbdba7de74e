// A fixed set of worker threads shared by every request, so concurrent
// streams never use more than --threads cores between them.
#ifndef GARDEN_SERVER_ENGINE_THREAD_POOL_H_
#define GARDEN_SERVER_ENGINE_THREAD_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace garden {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  // Runs the tasks already queued, then joins the workers.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);
  size_t size() const { return workers_.size(); }

 private:
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_THREAD_POOL_H_
