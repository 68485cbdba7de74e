#include "server/engine/step_tensors.h"

#include <utility>

namespace garden {

StepTensors::StepTensors(const CheckpointStore& store,
                         std::vector<CheckpointLocation> steps,
                         std::string tensor)
    : store_(&store),
      tensor_(std::move(tensor)),
      locations_(std::move(steps)) {
  for (size_t i = 0; i < locations_.size(); ++i) {
    slots_.push_back(std::make_shared<Slot>());
  }
}

std::vector<int64_t> StepTensors::steps() const {
  std::vector<int64_t> out;
  for (const auto& where : locations_) out.push_back(where.step);
  return out;
}

absl::StatusOr<TensorHandle> StepTensors::Open(size_t i) const {
  Slot& slot = *slots_[i];
  std::call_once(slot.once, [&] {
    slot.handle = store_->OpenTensor(locations_[i], tensor_);
  });
  return slot.handle;
}

std::shared_ptr<const StepTensors> StepTensors::Subset(
    const std::vector<size_t>& indices) const {
  std::shared_ptr<StepTensors> out(new StepTensors(*store_, tensor_));
  for (size_t i : indices) {
    out->locations_.push_back(locations_[i]);
    out->slots_.push_back(slots_[i]);
  }
  return out;
}

}  // namespace garden
