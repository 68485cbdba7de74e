// How many model computations run at once (gardend --compute-slots, default
// 1). libtorch already spreads one forward pass over every --threads core;
// requests that run side by side would each start their own team of compute
// threads and fight over the cores (50 concurrent generates took 8x longer
// than the same 50 one after another). Behind the gate, N concurrent
// requests cost about N times one, and the compute threads stay bounded.
//
// Fair like the pool (thread_pool.h): waiters queue by their lane and lanes
// take turns, so one user's long sweep of model work does not hold up
// another's generate. A generation pauses its hold while it writes a token,
// so concurrent generations interleave token by token.
//
// With a byte budget (--request-memory-bytes), a holder also reserves the
// working memory its computation will allocate (an estimate, Reserve);
// reservations wait until they fit beside the others, and one that could
// never fit is RESOURCE_EXHAUSTED naming the budget. Reserved bytes stay
// reserved through a pause (a generation's KV cache lives on).
#ifndef GARDEN_SERVER_ENGINE_COMPUTE_GATE_H_
#define GARDEN_SERVER_ENGINE_COMPUTE_GATE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/engine/lane_queue.h"

namespace garden {

class ComputeGate {
 public:
  // `slots` computations at once; 0 lets every caller through at once.
  // `budget_bytes` of reserved working memory at once; 0: no budget.
  explicit ComputeGate(uint32_t slots, uint64_t budget_bytes = 0)
      : slots_(slots), budget_(budget_bytes) {}

  // A slot, held until destroyed (or paused).
  class Hold {
   public:
    Hold(Hold&& other) noexcept
        : gate_(other.gate_), held_(other.held_), bytes_(other.bytes_) {
      other.gate_ = nullptr;
    }
    Hold& operator=(Hold&&) = delete;
    ~Hold() {
      if (gate_ == nullptr) return;
      if (bytes_ > 0) gate_->Unreserve(bytes_);
      if (held_) gate_->Release();
    }
    // Reserves `bytes` more of the budget for this holder: the slot is given
    // up while it waits, so that it never holds a slot that a holder of
    // bytes needs in order to finish. RESOURCE_EXHAUSTED (at once) if
    // `bytes` exceed the whole budget; CANCELLED if `cancelled` says so.
    absl::Status Reserve(uint64_t bytes, const std::function<bool()>& cancelled);
    // Gives the slot up while doing something else (writing to a client).
    void Pause();
    // Takes a slot again, waiting its turn; CANCELLED if `cancelled` says so
    // while it waits.
    absl::Status Resume(const std::function<bool()>& cancelled);

   private:
    friend class ComputeGate;
    explicit Hold(ComputeGate* gate) : gate_(gate), held_(true) {}
    ComputeGate* gate_;
    bool held_;
    uint64_t bytes_ = 0;
  };

  // Waits for a slot, in the calling thread's pool lane (CurrentPoolLane);
  // CANCELLED if `cancelled` turns true while waiting.
  absl::StatusOr<Hold> Enter(const std::function<bool()>& cancelled);

  // Computations running now, callers waiting for a slot, bytes reserved
  // (for tests and metrics).
  uint32_t running() const;
  size_t waiting() const;
  uint64_t reserved() const;

 private:
  absl::Status Acquire(const std::function<bool()>& cancelled);
  void Release();
  void Unreserve(uint64_t bytes);
  // Grants free slots to the next waiters, lanes in turn; mu_ held.
  void GrantLocked();

  const uint32_t slots_;
  const uint64_t budget_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  uint32_t running_ = 0;
  uint64_t reserved_ = 0;
  uint64_t next_ticket_ = 0;
  LaneQueue<uint64_t> waiting_;       // tickets, by lane
  std::map<uint64_t, bool> granted_;  // ticket -> granted (waiting tickets only)
};

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_COMPUTE_GATE_H_
