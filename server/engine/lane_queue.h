// Items queued by lane (a caller: a token's name, a peer's address), taken
// with the lanes in turn: after an item of lane L, the next comes from the
// first non-empty lane after L (in name order, wrapping), so a lane with one
// item waits behind at most one item of each other lane, however many those
// hold. The pool's tasks and the compute gate's waiters queue this way. Not
// thread-safe: its owner locks.
#ifndef GARDEN_SERVER_ENGINE_LANE_QUEUE_H_
#define GARDEN_SERVER_ENGINE_LANE_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <utility>

namespace garden {

template <typename T>
class LaneQueue {
 public:
  void Push(const std::string& lane, T item) {
    lanes_[lane].push_back(std::move(item));
    ++size_;
  }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  // The next item, lanes in turn; the queue must not be empty.
  T Take() {
    auto it = lanes_.upper_bound(last_lane_);
    if (it == lanes_.end()) it = lanes_.begin();
    T item = std::move(it->second.front());
    it->second.pop_front();
    last_lane_ = it->first;
    if (it->second.empty()) lanes_.erase(it);
    --size_;
    return item;
  }

  // Removes the first item equal to `item`, wherever it waits; false if
  // there is none.
  bool Erase(const T& item) {
    for (auto lane = lanes_.begin(); lane != lanes_.end(); ++lane) {
      auto& queue = lane->second;
      const auto found = std::find(queue.begin(), queue.end(), item);
      if (found == queue.end()) continue;
      queue.erase(found);
      if (queue.empty()) lanes_.erase(lane);
      --size_;
      return true;
    }
    return false;
  }

 private:
  std::map<std::string, std::deque<T>> lanes_;  // non-empty queues only
  std::string last_lane_;                       // served last
  size_t size_ = 0;
};

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_LANE_QUEUE_H_
