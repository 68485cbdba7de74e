// Histograms of one tensor across the training steps of a model.
#ifndef GARDEN_SERVER_ENGINE_HISTOGRAM_SWEEP_H_
#define GARDEN_SERVER_ENGINE_HISTOGRAM_SWEEP_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/stats/analysis_defaults.h"
#include "common/stats/histogram.h"
#include "server/engine/step_tensors.h"
#include "server/engine/thread_pool.h"

namespace garden {

struct HistogramSweepOptions {
  std::shared_ptr<const StepTensors> steps;  // the tensor at each step
  uint32_t bins = kDefaultBins;
  // Absent: one range for all steps, AutoRange(min, max) over their finite
  // values. Needs every step scanned before the first frame; 16-bit tensors
  // are still read once (their value counts are kept), wider ones twice.
  std::optional<std::pair<double, double>> range;
  // Without `range`: each step binned over its own AutoRange instead of one
  // common range (for shapes rather than comparisons).
  bool per_step_range = false;
};

struct StepHistogram {
  int64_t step = 0;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  Histogram histogram;
  ValueSummary summary;
};

struct HistogramSweepCallbacks {
  // Called in ascending step order; false stops the sweep.
  std::function<bool(const StepHistogram&)> frame;
  // Called while an automatic range is being determined; false stops.
  std::function<bool(uint32_t done, uint32_t total)> progress;
  // Polled while waiting; true stops the sweep with CANCELLED.
  std::function<bool()> cancelled;
};

// Streams the sweep through the callbacks. Steps run in parallel on `pool`,
// at most twice its size of this sweep's steps at a time, so memory stays
// bounded by a few tensors whatever the number of steps. A step whose file
// fails to open or read ends the sweep with that error after the frames of
// the steps before it; a tensor of another dtype than F64, F32, F16 or BF16
// is FAILED_PRECONDITION.
absl::Status RunHistogramSweep(ThreadPool& pool,
                               const HistogramSweepOptions& options,
                               const HistogramSweepCallbacks& callbacks);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_HISTOGRAM_SWEEP_H_
