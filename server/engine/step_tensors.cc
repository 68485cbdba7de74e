#include "server/engine/step_tensors.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/absl_compat.h"
#include "common/base/status.h"

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

absl::StatusOr<TensorHandle> StepTensors::OpenFloat(
    size_t i, std::string_view needs) const {
  ASSIGN_OR_RETURN(TensorHandle handle, Open(i));
  const DType dtype = handle.info->dtype;
  if (!IsAnalysableFloat(dtype)) {
    const CheckpointLocation& where = locations_[i];
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor \"", tensor_, "\" of ", where.model.Name(), " step ",
        where.step, " has dtype ", ToAbsl(DTypeName(dtype)), "; ",
        ToAbsl(needs), " F64, F32, F16 or BF16"));
  }
  return handle;
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
