#include "server/engine/audit.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <memory>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status.h"
#include "common/naming/names.h"
#include "common/naming/step_spec.h"
#include "server/engine/chunk_reader.h"
#include "server/engine/msd_sweep.h"
#include "server/engine/ordered_tasks.h"
#include "xxhash.h"

namespace garden {
namespace {

// What identifies a tensor's content.
struct Fingerprint {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t hash = 0;
};

// The fingerprints of `tensors` at step i: the sweep's own tensor through
// its handle, others opened by name.
absl::StatusOr<std::vector<Fingerprint>> HashStep(
    const StepTensors& steps, size_t i, const std::vector<std::string>& tensors,
    const CancelFlag* cancel) {
  std::vector<Fingerprint> out;
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(
      XXH3_createState(), &XXH3_freeState);
  for (const std::string& name : tensors) {
    ASSIGN_OR_RETURN(const TensorHandle handle,
                     name == steps.tensor()
                         ? steps.Open(i)
                         : steps.store().OpenTensor(steps.location(i), name));
    XXH3_64bits_reset(state.get());
    RETURN_IF_ERROR(ReadTensorChunks(
        handle, cancel, "audit", [&](absl::Span<const uint8_t> chunk) {
          XXH3_64bits_update(state.get(), chunk.data(), chunk.size());
          return absl::OkStatus();
        }));
    out.push_back(Fingerprint{name, handle.info->dtype, handle.info->shape,
                              XXH3_64bits_digest(state.get())});
  }
  return out;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// The tensors to fingerprint: the sweep's, or every float parameter of the
// first step (buffers such as rotary_emb.inv_freq never change).
absl::StatusOr<std::vector<std::string>> TensorsToHash(
    const AuditOptions& options) {
  const StepTensors& steps = *options.steps;
  if (!options.all_tensors) return std::vector<std::string>{steps.tensor()};
  ASSIGN_OR_RETURN(const auto listed,
                   steps.store().ListTensors(steps.location(0)));
  std::vector<std::string> names;
  for (const auto& t : listed) {
    if (IsAnalysableFloat(t.info.dtype) && !IsNonParameterBuffer(t.info.name)) {
      names.push_back(t.info.name);
    }
  }
  return names;
}

// identical: steps grouped by each tensor's fingerprint.
absl::Status FindIdentical(ThreadPool& pool, const AuditOptions& options,
                           std::shared_ptr<const std::vector<std::string>> names,
                           const std::function<bool()>& cancelled,
                           AuditReport& report) {
  std::map<std::tuple<std::string, uint64_t, DType, std::vector<int64_t>>,
           std::vector<int64_t>>
      groups;
  std::shared_ptr<const StepTensors> steps = options.steps;
  RETURN_IF_ERROR(RunOrdered<std::vector<Fingerprint>>(
      pool, steps->size(), {.window = std::max<size_t>(2, pool.size())},
      [steps, names](size_t i, const CancelFlag* cancel) {
        return HashStep(*steps, i, *names, cancel);
      },
      [&](size_t i, std::vector<Fingerprint>& prints) {
        for (const auto& f : prints) {
          groups[{f.name, f.hash, f.dtype, f.shape}].push_back(steps->step(i));
        }
        return true;
      },
      cancelled));
  for (const auto& [key, group] : groups) {
    if (group.size() < 2) continue;
    report.findings.push_back(AuditFinding{
        "identical", group, std::get<0>(key),
        absl::StrCat("byte-identical at ", group.size(), " steps (xxh3 ",
                     absl::Hex(std::get<1>(key), absl::kZeroPad16), ")"),
        static_cast<double>(group.size())});
  }
  return absl::OkStatus();
}

// Consecutive MSD rates (msd / steps between) whose log is an outlier.
void FindRateOutliers(const std::vector<MsdPoint>& points,
                      const std::string& tensor, double z_threshold,
                      AuditReport& report) {
  // Rates of the pairs that moved at all (identical pairs are reported
  // as such), on a log scale: training slows by orders of magnitude.
  std::vector<double> logs;
  for (size_t k = 1; k < points.size(); ++k) {
    if (points[k].rate > 0) logs.push_back(std::log(points[k].rate));
  }
  if (logs.size() < 4) return;
  const double median = Median(logs);
  std::vector<double> deviations;
  for (double x : logs) deviations.push_back(std::abs(x - median));
  const double sigma = 1.4826 * Median(deviations);
  for (size_t k = 1; sigma > 0 && k < points.size(); ++k) {
    if (!(points[k].rate > 0)) continue;
    const double z = (std::log(points[k].rate) - median) / sigma;
    if (std::abs(z) > z_threshold) {
      report.findings.push_back(AuditFinding{
          "discontinuity",
          {points[k].from_step, points[k].step},
          tensor,
          absl::StrFormat("MSD rate %.4g per step is %.1f robust standard "
                          "deviations from the median of the suite",
                          points[k].rate, z),
          z});
    }
  }
}

// Steps closer to the step before the previous one than to the previous.
void FindJumpsBack(const std::vector<MsdPoint>& points,
                   const std::string& tensor, AuditReport& report) {
  for (const MsdPoint& p : points) {
    if (p.msd_before_previous.has_value() && *p.msd_before_previous < p.msd) {
      report.findings.push_back(AuditFinding{
          "discontinuity",
          {p.before_previous_step, p.from_step, p.step},
          tensor,
          absl::StrFormat("step %d is closer to step %d (MSD %.4g) than to "
                          "step %d (MSD %.4g): step %d jumped away and back",
                          p.step, p.before_previous_step,
                          *p.msd_before_previous, p.from_step, p.msd,
                          p.from_step),
          p.msd / *p.msd_before_previous});
    }
  }
}

// discontinuity: the consecutive MSD of the sweep's tensor.
absl::Status FindDiscontinuities(ThreadPool& pool, const AuditOptions& options,
                                 const std::function<bool()>& cancelled,
                                 AuditReport& report) {
  if (options.steps->size() < 2) return absl::OkStatus();
  MsdSweepOptions msd;
  msd.steps = options.steps;
  msd.mode = MsdSweepOptions::Mode::kConsecutive;
  std::vector<MsdPoint> points;
  RETURN_IF_ERROR(RunMsdSweep(
      pool, msd,
      [&](const MsdPoint& p) {
        points.push_back(p);
        return true;
      },
      cancelled));
  FindRateOutliers(points, options.steps->tensor(), options.z_threshold,
                   report);
  FindJumpsBack(points, options.steps->tensor(), report);
  return absl::OkStatus();
}

// missing: the published schedule between the first and last steps.
void FindMissing(const AuditOptions& options, AuditReport& report) {
  const StepTensors& steps = *options.steps;
  if (options.present_steps.empty() ||
      steps.location(0).model.suite != kDefaultSuite) {
    return;
  }
  const std::vector<int64_t>& present = options.present_steps;
  std::vector<int64_t> missing;
  for (int64_t s : PythiaSchedule()) {
    if (s < steps.step(0) || s > steps.step(steps.size() - 1)) continue;
    if (!std::binary_search(present.begin(), present.end(), s)) {
      missing.push_back(s);
    }
  }
  if (!missing.empty()) {
    report.findings.push_back(AuditFinding{
        "missing", missing, "",
        absl::StrCat(missing.size(), " published Pythia steps are absent: ",
                     FormatSteps(missing)),
        static_cast<double>(missing.size())});
  }
}

}  // namespace

absl::StatusOr<AuditReport> RunAudit(ThreadPool& pool,
                                     const AuditOptions& options,
                                     const std::function<bool()>& cancelled) {
  if (options.steps->size() == 0) {
    return absl::InvalidArgumentError("no steps");
  }
  ASSIGN_OR_RETURN(auto names, TensorsToHash(options));
  AuditReport report;
  report.tensors_checked = static_cast<uint32_t>(names.size());
  RETURN_IF_ERROR(FindIdentical(
      pool, options,
      std::make_shared<const std::vector<std::string>>(std::move(names)),
      cancelled, report));
  RETURN_IF_ERROR(FindDiscontinuities(pool, options, cancelled, report));
  FindMissing(options, report);
  return report;
}

std::vector<int64_t> FlaggedSteps(const AuditReport& report) {
  std::vector<int64_t> flagged;
  for (const AuditFinding& f : report.findings) {
    if (f.kind == "identical") {
      flagged.insert(flagged.end(), f.steps.begin() + 1, f.steps.end());
    } else if (f.kind == "discontinuity" && f.steps.size() == 3) {
      flagged.push_back(f.steps[1]);
    }
  }
  std::sort(flagged.begin(), flagged.end());
  flagged.erase(std::unique(flagged.begin(), flagged.end()), flagged.end());
  return flagged;
}

absl::StatusOr<UnflaggedSteps> WithoutFlaggedSteps(
    ThreadPool& pool, std::shared_ptr<const StepTensors> steps,
    const std::function<bool()>& cancelled) {
  AuditOptions audit;
  audit.steps = steps;
  ASSIGN_OR_RETURN(const AuditReport report, RunAudit(pool, audit, cancelled));
  UnflaggedSteps out;
  out.flagged = FlaggedSteps(report);
  std::vector<size_t> keep;
  for (size_t i = 0; i < steps->size(); ++i) {
    if (!std::binary_search(out.flagged.begin(), out.flagged.end(),
                            steps->step(i))) {
      keep.push_back(i);
    }
  }
  if (keep.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "every selected step of ", steps->location(0).model.Name(),
        " is flagged by the audit: ", FormatSteps(out.flagged)));
  }
  out.kept = steps->Subset(keep);
  return out;
}

}  // namespace garden
