// Mean square displacement of one tensor across the training steps of a
// model: how far its entries have moved, from a reference step or from the
// previous step. Accumulated in float64; each step's tensor is read once.
#ifndef GARDEN_SERVER_ENGINE_MSD_SWEEP_H_
#define GARDEN_SERVER_ENGINE_MSD_SWEEP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "server/engine/step_tensors.h"
#include "server/engine/thread_pool.h"

namespace garden {

struct MsdSweepOptions {
  enum class Mode {
    kReference,    // mean((w(t) - w(t0))^2), steps in parallel
    kConsecutive,  // mean((w(t_k) - w(t_k-1))^2), one step after another
    // Time-averaged MSD(tau): the mean, over every pair of steps exactly tau
    // apart, of mean((w(t + tau) - w(t))^2); one point per tau, ascending.
    kLag,
  };
  std::shared_ptr<const StepTensors> steps;  // the tensor at each step
  Mode mode = Mode::kReference;
  // kReference: t0, one of `steps` (INVALID_ARGUMENT otherwise).
  int64_t reference_step = 0;
};

struct MsdPoint {
  int64_t step = 0;
  double msd = 0;
  int64_t from_step = 0;  // t0, or the previous step; the first step of a
                          // consecutive sweep has no previous: itself, msd 0
  double rate = 0;        // consecutive: msd / (step - from_step)
  uint64_t n = 0;         // entries compared
  // Consecutive sweeps, from the third step on: the MSD to the step before
  // the previous one (a step closer to it than to the previous one jumped
  // back toward an earlier state).
  std::optional<double> msd_before_previous;
  int64_t before_previous_step = 0;
  // kLag: `step` is the lag tau and `pairs` the number of step pairs tau
  // apart that were averaged.
  uint32_t pairs = 0;
};

// Calls `point` in ascending step order (false stops the sweep; lags for
// kLag, all computed before the first is sent). Every step's header is
// checked before any data is read: a missing tensor, a dtype other than
// F64, F32, F16 or BF16 (FAILED_PRECONDITION), or a shape other than the
// first step's (FAILED_PRECONDITION naming both steps and shapes) fails
// before the first point. The reference (or previous) tensor is held in
// memory exactly, as its stored bytes.
// kLag reads every step's tensor once, a block of entries of all steps at a
// time: the Gram matrix of the displacements from the first step, summed
// over blocks in float64, gives every pair's MSD as
// (G_ii + G_jj - 2 G_ij) / n; memory is O(steps x block + steps^2).
absl::Status RunMsdSweep(ThreadPool& pool, const MsdSweepOptions& options,
                         const std::function<bool(const MsdPoint&)>& point,
                         const std::function<bool()>& cancelled);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_MSD_SWEEP_H_
