// Runs numbered tasks on a shared pool and hands their results to the caller
// in index order, each as soon as every earlier one is ready.
#ifndef GARDEN_SERVER_ENGINE_ORDERED_TASKS_H_
#define GARDEN_SERVER_ENGINE_ORDERED_TASKS_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/cancel.h"
#include "server/engine/thread_pool.h"

namespace garden {

struct OrderedTasksOptions {
  size_t window = 4;  // tasks queued or running ahead of the next result
  // How often the caller's thread looks at `cancelled` while it waits.
  std::chrono::milliseconds poll{50};
  // Called on the caller's thread at each of those looks (progress of a long
  // wait: bytes still arriving for the next result); may be empty.
  std::function<void()> waiting = nullptr;
};

// task(i, cancel) runs on the pool and should stop early once *cancel is
// set; consume(i, result) runs on the calling thread in order 0, 1, ...,
// returning false to stop. Stops at the first failed task (its status is
// returned), when consume returns false or cancelled() turns true
// (CANCELLED). Tasks still running then finish on their own: they own what
// they use through the shared state, never the caller's stack.
template <typename T>
absl::Status RunOrdered(
    ThreadPool& pool, size_t count, const OrderedTasksOptions& options,
    std::function<absl::StatusOr<T>(size_t, const CancelFlag*)> task,
    const std::function<bool(size_t, T&)>& consume,
    const std::function<bool()>& cancelled) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<absl::StatusOr<T>>> results;
    CancelFlag cancel{false};
    std::function<absl::StatusOr<T>(size_t, const CancelFlag*)> task;
  };
  auto state = std::make_shared<State>();
  state->results.resize(count);
  state->task = std::move(task);
  auto stop = [&state](absl::Status status) {
    state->cancel.store(true);
    return status;
  };

  size_t submitted = 0;
  for (size_t next = 0; next < count; ++next) {
    while (submitted < count && submitted < next + options.window) {
      const size_t i = submitted++;
      pool.Submit([state, i] {
        absl::StatusOr<T> result = state->cancel.load()
                                       ? absl::CancelledError("sweep stopped")
                                       : state->task(i, &state->cancel);
        {
          std::lock_guard lock(state->mu);
          state->results[i].emplace(std::move(result));
        }
        state->cv.notify_all();
      });
    }
    std::optional<absl::StatusOr<T>> result;
    {
      std::unique_lock lock(state->mu);
      while (!state->results[next].has_value()) {
        state->cv.wait_for(lock, options.poll);
        if (state->results[next].has_value()) break;
        if (cancelled()) return stop(absl::CancelledError("request cancelled"));
        if (options.waiting) {
          lock.unlock();
          options.waiting();
          lock.lock();
        }
      }
      result = std::move(state->results[next]);
      state->results[next].reset();
    }
    if (!result->ok()) return stop(result->status());
    if (cancelled()) return stop(absl::CancelledError("request cancelled"));
    if (!consume(next, **result)) {
      return stop(absl::CancelledError("the client stopped reading"));
    }
  }
  return absl::OkStatus();
}

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_ORDERED_TASKS_H_
