#include "server/engine/audit.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/naming/step_spec.h"
#include "server/engine/msd_sweep.h"
#include "server/engine/ordered_tasks.h"
#include "xxhash.h"

namespace garden {
namespace {

constexpr size_t kChunkBytes = size_t{4} << 20;

// What identifies a tensor's content.
struct Fingerprint {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t hash = 0;
};

absl::StatusOr<std::vector<Fingerprint>> HashStep(
    const CheckpointStore& store, const CheckpointLocation& where,
    const std::vector<std::string>& tensors, const CancelFlag* cancel) {
  thread_local std::vector<uint8_t> buffer(kChunkBytes);
  std::vector<Fingerprint> out;
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(
      XXH3_createState(), &XXH3_freeState);
  for (const std::string& name : tensors) {
    auto handle = store.OpenTensor(where, name);
    if (!handle.ok()) return handle.status();
    XXH3_64bits_reset(state.get());
    auto status = handle->file->ReadChunks(
        *handle->info, absl::MakeSpan(buffer),
        [&](absl::Span<const uint8_t> chunk) -> absl::Status {
          if (IsCancelled(cancel)) {
            return absl::CancelledError("audit cancelled");
          }
          XXH3_64bits_update(state.get(), chunk.data(), chunk.size());
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    out.push_back(Fingerprint{name, handle->info->dtype, handle->info->shape,
                              XXH3_64bits_digest(state.get())});
  }
  return out;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

absl::StatusOr<AuditReport> RunAudit(CheckpointStore& store, ThreadPool& pool,
                                     const AuditOptions& options,
                                     const std::function<bool()>& cancelled) {
  if (options.steps.empty()) return absl::InvalidArgumentError("no steps");
  auto located = store.LocateAll(options.model, options.steps);
  if (!located.ok()) return located.status();
  auto locations =
      std::make_shared<std::vector<CheckpointLocation>>(*std::move(located));

  // The tensors to fingerprint: one, or every float tensor of the first step.
  auto tensors = std::make_shared<std::vector<std::string>>();
  if (options.all_tensors) {
    auto listed = store.ListTensors(locations->front());
    if (!listed.ok()) return listed.status();
    for (const auto& t : *listed) {
      if (IsAnalysableFloat(t.info.dtype)) tensors->push_back(t.info.name);
    }
  } else {
    tensors->push_back(options.tensor);
  }
  AuditReport report;
  report.tensors_checked = static_cast<uint32_t>(tensors->size());

  // identical: steps grouped by each tensor's fingerprint.
  std::map<std::tuple<std::string, uint64_t, DType, std::vector<int64_t>>,
           std::vector<int64_t>>
      groups;
  const CheckpointStore* store_ptr = &store;
  auto hashed = RunOrdered<std::vector<Fingerprint>>(
      pool, locations->size(), {.window = std::max<size_t>(2, pool.size())},
      [store_ptr, locations, tensors](size_t i, const CancelFlag* cancel) {
        return HashStep(*store_ptr, (*locations)[i], *tensors, cancel);
      },
      [&](size_t i, std::vector<Fingerprint>& prints) {
        for (const auto& f : prints) {
          groups[{f.name, f.hash, f.dtype, f.shape}].push_back(
              options.steps[i]);
        }
        return true;
      },
      cancelled);
  if (!hashed.ok()) return hashed;
  for (const auto& [key, steps] : groups) {
    if (steps.size() < 2) continue;
    report.findings.push_back(AuditFinding{
        "identical", steps, std::get<0>(key),
        absl::StrCat("byte-identical at ", steps.size(), " steps (xxh3 ",
                     absl::Hex(std::get<1>(key), absl::kZeroPad16), ")"),
        static_cast<double>(steps.size())});
  }

  // discontinuity: the consecutive MSD of `tensor`.
  if (options.steps.size() >= 2) {
    MsdSweepOptions msd;
    msd.model = options.model;
    msd.steps = options.steps;
    msd.tensor = options.tensor;
    msd.mode = MsdSweepOptions::Mode::kConsecutive;
    std::vector<MsdPoint> points;
    auto status = RunMsdSweep(
        store, pool, msd,
        [&](const MsdPoint& p) {
          points.push_back(p);
          return true;
        },
        cancelled);
    if (!status.ok()) return status;
    // Rates of the pairs that moved at all (identical pairs are reported
    // above), on a log scale: training slows by orders of magnitude.
    std::vector<double> logs;
    for (size_t k = 1; k < points.size(); ++k) {
      if (points[k].rate > 0) logs.push_back(std::log(points[k].rate));
    }
    if (logs.size() >= 4) {
      const double median = Median(logs);
      std::vector<double> deviations;
      for (double x : logs) deviations.push_back(std::abs(x - median));
      const double sigma = 1.4826 * Median(deviations);
      for (size_t k = 1; sigma > 0 && k < points.size(); ++k) {
        if (!(points[k].rate > 0)) continue;
        const double z = (std::log(points[k].rate) - median) / sigma;
        if (std::abs(z) > options.z_threshold) {
          report.findings.push_back(AuditFinding{
              "discontinuity",
              {points[k].from_step, points[k].step},
              options.tensor,
              absl::StrFormat("MSD rate %.4g per step is %.1f robust standard "
                              "deviations from the median of the suite",
                              points[k].rate, z),
              z});
        }
      }
    }
    for (const MsdPoint& p : points) {
      if (p.msd_before_previous.has_value() && *p.msd_before_previous < p.msd) {
        report.findings.push_back(AuditFinding{
            "discontinuity",
            {p.before_previous_step, p.from_step, p.step},
            options.tensor,
            absl::StrFormat("step %d is closer to step %d (MSD %.4g) than to "
                            "step %d (MSD %.4g): step %d jumped away and back",
                            p.step, p.before_previous_step,
                            *p.msd_before_previous, p.from_step, p.msd,
                            p.from_step),
            p.msd / *p.msd_before_previous});
      }
    }
  }

  // missing: the published schedule between the first and last steps.
  if (options.model.suite == kDefaultSuite) {
    auto model = store.FindModel(options.model);
    if (!model.ok()) return model.status();
    std::vector<int64_t> missing;
    for (int64_t s : PythiaSchedule()) {
      if (s < options.steps.front() || s > options.steps.back()) continue;
      if (!std::binary_search(model->steps.begin(), model->steps.end(), s)) {
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

}  // namespace garden
