// Defects real suites have: "different" steps that serve byte-identical
// tensors, trajectories that jump, and steps missing from the schedule.
#ifndef GARDEN_SERVER_ENGINE_AUDIT_H_
#define GARDEN_SERVER_ENGINE_AUDIT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/stats/analysis_defaults.h"
#include "server/engine/step_tensors.h"
#include "server/engine/thread_pool.h"

namespace garden {

struct AuditOptions {
  // The tensor at each step audited (at least one); MSD rates are taken on
  // it, and it is the one hashed unless `all_tensors`.
  std::shared_ptr<const StepTensors> steps;
  // Every step the model has (the catalog's), for "missing"; empty skips
  // that check.
  std::vector<int64_t> present_steps;
  bool all_tensors = false;  // hash every float tensor of the first step
  // Consecutive MSD rates (msd / steps between) whose log lies further than
  // this many robust standard deviations (1.4826 MAD) from the median.
  double z_threshold = kDefaultAuditZ;
};

struct AuditFinding {
  std::string kind;            // "identical", "discontinuity", "missing"
  std::vector<int64_t> steps;  // ascending
  std::string tensor;
  std::string detail;
  double score = 0;
};

struct AuditReport {
  std::vector<AuditFinding> findings;
  uint32_t tensors_checked = 0;
};

// identical: for each checked tensor, steps whose bytes hash alike (xxh3,
// same dtype and shape). discontinuity: on `tensor`, a consecutive MSD rate
// that is an outlier, or a step k closer to step k-2 than to step k-1 (step
// k-1 jumped away and back). missing: for suite "pythia", the published
// steps between the first and last selected ones that are not present.
absl::StatusOr<AuditReport> RunAudit(ThreadPool& pool,
                                     const AuditOptions& options,
                                     const std::function<bool()>& cancelled);

// The steps a report flags for exclusion: every step of an identical group
// but its first, and the middle step of each jump away and back. Rate
// outliers are reported, not excluded: a pair does not say which step is
// wrong.
std::vector<int64_t> FlaggedSteps(const AuditReport& report);

// `steps` less the steps an audit of their tensor flags (FlaggedSteps), for
// sweeps that leave suspect checkpoints out.
struct UnflaggedSteps {
  std::shared_ptr<const StepTensors> kept;
  std::vector<int64_t> flagged;  // ascending
};
// FAILED_PRECONDITION naming the flagged steps when every step is flagged.
absl::StatusOr<UnflaggedSteps> WithoutFlaggedSteps(
    ThreadPool& pool, std::shared_ptr<const StepTensors> steps,
    const std::function<bool()>& cancelled);

}  // namespace garden

#endif  // GARDEN_SERVER_ENGINE_AUDIT_H_
