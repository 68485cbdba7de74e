// Cooperative cancellation: long loops (scans, sweeps, generation) poll a
// flag that another thread sets, and stop with CANCELLED soon after.
#ifndef GARDEN_COMMON_BASE_CANCEL_H_
#define GARDEN_COMMON_BASE_CANCEL_H_

#include <atomic>

namespace garden {

using CancelFlag = std::atomic<bool>;

// True once `cancel` (which may be null: never cancelled) is set.
inline bool IsCancelled(const CancelFlag* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

}  // namespace garden

#endif  // GARDEN_COMMON_BASE_CANCEL_H_
