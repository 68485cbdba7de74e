#include "common/base/transfer_meter.h"

namespace garden {
namespace {

thread_local TransferMeter* current_meter = nullptr;

}  // namespace

TransferMeter* CurrentTransferMeter() { return current_meter; }

ScopedTransferMeter::ScopedTransferMeter(TransferMeter* meter)
    : previous_(current_meter) {
  current_meter = meter;
}

ScopedTransferMeter::~ScopedTransferMeter() { current_meter = previous_; }

}  // namespace garden
