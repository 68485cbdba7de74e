// Bytes a request waits for from remote sources (the Hub), counted where they
// arrive for whichever request the current thread works for: a request sets
// its meter on its thread, the thread pool carries it into the tasks the
// request submits, and the Hub client adds to it. Progress messages read it.
// Shared ownership: a request's tasks may still run after it returned.
#ifndef GARDEN_COMMON_BASE_TRANSFER_METER_H_
#define GARDEN_COMMON_BASE_TRANSFER_METER_H_

#include <atomic>
#include <cstdint>
#include <memory>

namespace garden {

struct TransferMeter {
  std::atomic<uint64_t> expected{0};  // bytes of transfers started
  std::atomic<uint64_t> received{0};  // bytes of them arrived
};

// The meter of the request this thread works for, or null.
TransferMeter* CurrentTransferMeter();
// The same, to carry into work done for the request on another thread.
std::shared_ptr<TransferMeter> ShareCurrentTransferMeter();

// Makes `meter` (may be null) the current one for this scope.
class ScopedTransferMeter {
 public:
  explicit ScopedTransferMeter(std::shared_ptr<TransferMeter> meter);
  ~ScopedTransferMeter();
  ScopedTransferMeter(const ScopedTransferMeter&) = delete;
  ScopedTransferMeter& operator=(const ScopedTransferMeter&) = delete;

 private:
  std::shared_ptr<TransferMeter> previous_;
};

}  // namespace garden

#endif  // GARDEN_COMMON_BASE_TRANSFER_METER_H_
