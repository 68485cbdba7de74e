// StreamLayerStats: per-layer statistics and spectra over steps (the
// engine is server/engine/layer_sweep.h).
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status.h"
#include "server/service/convert.h"
#include "server/service/garden_service.h"
#include "server/service/request_prologue.h"
#include "server/service/rpc_log.h"
#include "server/service/stream_write.h"

namespace garden {
namespace {

namespace pb = ::garden::v1;

const std::vector<std::string>& ElementMetrics() {
  static const std::vector<std::string> kMetrics = {"n",   "mean",      "std",     "rms",
                                                    "max_abs", "frobenius", "sparsity"};
  return kMetrics;
}

const std::vector<std::string>& SpectralMetrics() {
  static const std::vector<std::string> kMetrics = {
      "spectral_norm", "stable_rank", "effective_rank", "alpha",
      "alpha_weighted", "ks_distance", "xmin",          "num_spikes"};
  return kMetrics;
}

// The metrics asked for (all when none); INVALID_ARGUMENT naming the known
// ones for any other.
absl::StatusOr<std::set<std::string>> MetricsOf(const pb::LayerStatsRequest& request) {
  std::set<std::string> known(ElementMetrics().begin(), ElementMetrics().end());
  known.insert(SpectralMetrics().begin(), SpectralMetrics().end());
  if (request.metrics().empty()) return known;
  std::set<std::string> out;
  for (const std::string& m : request.metrics()) {
    if (!known.contains(m)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown metric \"", m, "\"; the metrics are ", absl::StrJoin(ElementMetrics(), ", "),
          ", ", absl::StrJoin(SpectralMetrics(), ", ")));
    }
    out.insert(m);
  }
  return out;
}

void ToProto(const LayerRecord& r, const std::set<std::string>& metrics,
             pb::LayerStatsRecord* out) {
  const auto want = [&](const char* m) { return metrics.contains(m); };
  out->set_step(r.step);
  out->set_tensor(r.tensor);
  out->set_layer(r.name.layer);
  out->set_kind(r.name.kind);
  for (int64_t d : r.shape) out->add_shape(d);
  const MatrixStats& s = r.stats;
  if (want("n")) out->set_n(s.n);
  if (want("mean")) out->set_mean(s.mean);
  if (want("std")) out->set_std(s.std);
  if (want("rms")) out->set_rms(s.rms);
  if (want("max_abs")) out->set_max_abs(s.max_abs);
  if (want("frobenius")) out->set_frobenius(s.frobenius);
  if (want("sparsity")) {
    for (const auto& [t, fraction] : s.sparsity) {
      pb::SparsityAt* at = out->add_sparsity();
      at->set_threshold(t);
      at->set_fraction(fraction);
    }
  }
  if (!r.spectrum) return;
  const SpectrumStats& sp = *r.spectrum;
  out->set_spectrum_method(r.spectrum_method);
  out->mutable_eigenvalues()->Add(r.eigenvalues.begin(), r.eigenvalues.end());
  if (want("spectral_norm")) out->set_spectral_norm(sp.spectral_norm);
  if (want("stable_rank")) out->set_stable_rank(sp.stable_rank);
  if (want("effective_rank")) out->set_effective_rank(sp.effective_rank);
  if (want("num_spikes")) out->set_num_spikes(sp.num_spikes);
  if (!sp.fit) return;
  if (want("alpha")) out->set_alpha(sp.fit->alpha);
  if (want("alpha_weighted")) out->set_alpha_weighted(sp.alpha_weighted);
  if (want("ks_distance")) out->set_ks_distance(sp.fit->ks_distance);
  if (want("xmin")) out->set_xmin(sp.fit->xmin);
}

}  // namespace

grpc::Status GardenService::StreamLayerStats(grpc::ServerContext* context,
                                             const pb::LayerStatsRequest* request,
                                             grpc::ServerWriter<pb::LayerStatsRecord>* writer) {
  return RunLogged("StreamLayerStats", context, [&](std::string& what) -> absl::Status {
    ASSIGN_OR_RETURN(const std::set<std::string> metrics, MetricsOf(*request));
    ASSIGN_OR_RETURN(const ModelKey key, KeyOf(request->model()));
    what = key.Name();
    ASSIGN_OR_RETURN(const SelectedSteps selected, SelectSteps(store_, key, request->steps()));
    LayerSweepOptions options;
    options.tensors_regex = request->tensors();
    options.spectral = false;
    for (const std::string& m : SpectralMetrics()) options.spectral |= metrics.contains(m);
    options.eigenvalues = request->eigenvalues();
    if (request->spectrum() == "exact") {
      options.singular_values.method = SpectrumMethod::kExact;
    } else if (!request->spectrum().empty() && request->spectrum() != "auto") {
      return absl::InvalidArgumentError(absl::StrCat(
          "spectrum \"", request->spectrum(), "\" is unknown; use auto or exact"));
    }
    uint32_t sent = 0;
    for (const CheckpointLocation& where : selected.steps) {
      // A compute slot per step: spectra are model-sized work.
      ASSIGN_OR_RETURN(ComputeGate::Hold hold, compute_.Enter(CancelledBy(context)));
      options.steps = {where};
      RETURN_IF_ERROR(RunLayerSweep(
          store_, layer_stats_, options, CancelledBy(context),
          [&](const LayerRecord& record) -> absl::Status {
            pb::LayerStatsRecord message;
            ToProto(record, metrics, &message);
            if (!WriteToStream(context, writer, message)) {
              return absl::CancelledError("the client went away");
            }
            ++sent;
            return absl::OkStatus();
          }));
    }
    what = absl::StrCat(key.Name(), ", ", selected.steps.size(), " steps, ", sent, " records");
    return absl::OkStatus();
  });
}

}  // namespace garden
