// The one tensor a request reads at each of its steps, opened lazily and at
// most once per request: every pass over the steps (an audit, the range
// scan, the binning, the MSD passes) shares the parsed headers.
#ifndef GARDEN_SERVER_ENGINE_STEP_TENSORS_H_
#define GARDEN_SERVER_ENGINE_STEP_TENSORS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/store/checkpoint_store.h"

namespace garden {

class StepTensors {
 public:
  // `steps` ascending; the store must outlive this object (and any task
  // still holding it).
  StepTensors(const CheckpointStore& store,
              std::vector<CheckpointLocation> steps, std::string tensor);

  size_t size() const { return locations_.size(); }
  const std::string& tensor() const { return tensor_; }
  const CheckpointStore& store() const { return *store_; }
  const CheckpointLocation& location(size_t i) const { return locations_[i]; }
  int64_t step(size_t i) const { return locations_[i].step; }
  // Every step number, in order.
  std::vector<int64_t> steps() const;

  // The tensor at step i: its file opened (header parsed and validated) on
  // the first call, the same handle or error (CheckpointStore::OpenTensor's)
  // on later ones. Thread-safe.
  absl::StatusOr<TensorHandle> Open(size_t i) const;
  // Open(i), refusing a tensor that is not F64, F32, F16 or BF16 with
  // FAILED_PRECONDITION "... has dtype I64; <needs> F64, F32, F16 or BF16",
  // `needs` naming the analysis ("histograms need", "MSD needs").
  absl::StatusOr<TensorHandle> OpenFloat(size_t i, std::string_view needs) const;

  // The same tensor at the steps with the given indices (ascending), sharing
  // the files opened so far.
  std::shared_ptr<const StepTensors> Subset(
      const std::vector<size_t>& indices) const;

 private:
  struct Slot {
    std::once_flag once;
    absl::StatusOr<TensorHandle> handle;
  };
  StepTensors(const CheckpointStore& store, std::string tensor)
      : store_(&store), tensor_(std::move(tensor)) {}

  const CheckpointStore* store_;
  std::string tensor_;
  std::vector<CheckpointLocation> locations_;
  std::vector<std::shared_ptr<Slot>> slots_;
};

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_STEP_TENSORS_H_
