#include "common/base/transfer_meter.h"

#include <utility>

namespace garden {
namespace {

thread_local std::shared_ptr<TransferMeter> current_meter;

}  // namespace

TransferMeter* CurrentTransferMeter() { return current_meter.get(); }

std::shared_ptr<TransferMeter> ShareCurrentTransferMeter() {
  return current_meter;
}

ScopedTransferMeter::ScopedTransferMeter(std::shared_ptr<TransferMeter> meter)
    : previous_(std::exchange(current_meter, std::move(meter))) {}

ScopedTransferMeter::~ScopedTransferMeter() {
  current_meter = std::move(previous_);
}

}  // namespace garden
