// The stats RPCs of GardenService: histograms, MSD, bifurcation and audit
// of one tensor across a model's steps. Each opens with StatsCall, runs an
// engine and converts what it yields.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/base/transfer_meter.h"
#include "common/stats/analysis_defaults.h"
#include "common/stats/bifurcation.h"
#include "common/stats/curve_peak.h"
#include "server/engine/audit.h"
#include "server/engine/histogram_sweep.h"
#include "server/engine/msd_sweep.h"
#include "server/service/convert.h"
#include "server/service/garden_service.h"
#include "server/service/request_prologue.h"
#include "server/service/rpc_log.h"
#include "server/service/stream_write.h"

namespace garden {
namespace {

namespace pb = ::garden::v1;

absl::Status ParseHistogramOptions(const pb::StreamHistogramsRequest& request,
                                   HistogramSweepOptions& options) {
  if (request.has_bins()) {
    RETURN_IF_ERROR(ValidateBins(request.bins()));
    options.bins = request.bins();
  }
  if (request.has_range()) {
    const double lo = request.range().lo(), hi = request.range().hi();
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi) ||
        !std::isfinite(hi - lo)) {
      return absl::InvalidArgumentError(
          absl::StrCat("range ", lo, ":", hi,
                       " is invalid: lo and hi must be finite with lo < hi"));
    }
    options.range.emplace(lo, hi);
  }
  return absl::OkStatus();
}

absl::Status ParseBifurcationOptions(
    const pb::StreamBifurcationRequest& request, HistogramSweepOptions& sweep,
    uint32_t& persist, BifurcationOptions& shape) {
  sweep.per_step_range = true;
  sweep.bins = request.has_bins() ? request.bins() : kDefaultBifurcationBins;
  RETURN_IF_ERROR(ValidateBins(sweep.bins));
  persist =
      request.has_persist() ? request.persist() : kDefaultBifurcationPersist;
  if (persist < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("persist must be at least 1, got ", persist));
  }
  if (request.has_min_dip()) shape.min_dip = request.min_dip();
  if (!(shape.min_dip > 0 && shape.min_dip < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_dip must be in (0, 1), got ", shape.min_dip));
  }
  return absl::OkStatus();
}

absl::Status ParseAuditOptions(const pb::AuditRequest& request,
                               AuditOptions& options) {
  options.all_tensors = request.all_tensors();
  if (request.has_z_threshold()) {
    options.z_threshold = request.z_threshold();
    if (!(options.z_threshold > 0) || !std::isfinite(options.z_threshold)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "z_threshold must be a positive number, got ", options.z_threshold));
    }
  }
  return absl::OkStatus();
}

// A sweep's progress callback, writing progress messages.
template <typename Response>
std::function<bool(uint32_t, uint32_t)> ProgressTo(
    grpc::ServerContext* context, grpc::ServerWriter<Response>* writer) {
  return [context, writer](uint32_t done, uint32_t total) {
    Response message;
    message.mutable_progress()->set_done(done);
    message.mutable_progress()->set_total(total);
    if (const TransferMeter* meter = CurrentTransferMeter()) {
      message.mutable_progress()->set_bytes_expected(meter->expected.load());
      message.mutable_progress()->set_bytes_received(meter->received.load());
    }
    return WriteToStream(context, writer, message);
  };
}

// The message that ends a stream, written after its engine succeeded.
template <typename Message>
absl::Status WriteLast(absl::Status status, const Message& message,
                       grpc::ServerContext* context,
                       grpc::ServerWriter<Message>* writer) {
  if (status.ok() && !WriteToStream(context, writer, message)) {
    return absl::CancelledError("the client went away");
  }
  return status;
}

}  // namespace

grpc::Status GardenService::StreamHistograms(
    grpc::ServerContext* context, const pb::StreamHistogramsRequest* request,
    grpc::ServerWriter<pb::StreamHistogramsResponse>* writer) {
  return RunLogged("StreamHistograms", context, [&](std::string& what) {
    HistogramSweepOptions options;
    StatsRequest call(store_, pool_, context);
    RETURN_IF_ERROR(call.Open(
        *request, [&] { return ParseHistogramOptions(*request, options); },
        what));
    options.steps = call.steps();
    const uint32_t total = static_cast<uint32_t>(options.steps->size());
    uint32_t sent = 0;
    HistogramSweepCallbacks callbacks;
    callbacks.cancelled = call.cancelled();
    callbacks.progress = ProgressTo(context, writer);
    callbacks.frame = [&](const StepHistogram& h) {
      pb::StreamHistogramsResponse message;
      ToProto(h, message.mutable_frame());
      message.mutable_frame()->set_index(sent++);
      message.mutable_frame()->set_total(total);
      return WriteToStream(context, writer, message);
    };
    const absl::Status status = RunHistogramSweep(pool_, options, callbacks);
    what = absl::StrCat(call.what(), ", ", sent, " sent");
    return status;
  });
}

grpc::Status GardenService::StreamMSD(
    grpc::ServerContext* context, const pb::StreamMSDRequest* request,
    grpc::ServerWriter<pb::StreamMSDResponse>* writer) {
  return RunLogged("StreamMSD", context, [&](std::string& what) {
    MsdSweepOptions options;
    StatsRequest call(store_, pool_, context);
    RETURN_IF_ERROR(call.Open(
        *request,
        [&]() -> absl::Status {
          ASSIGN_OR_RETURN(options.mode, MsdModeOf(request->mode()));
          return absl::OkStatus();
        },
        what));
    options.steps = call.steps();
    if (request->has_reference_step()) {
      if (options.mode != MsdSweepOptions::Mode::kReference) {
        return absl::InvalidArgumentError(
            "reference_step applies to the reference mode only");
      }
      options.reference_step = request->reference_step();
    } else {
      options.reference_step = options.steps->step(0);
    }
    std::vector<int64_t> steps;  // the curve, for its peak
    std::vector<double> msds;
    uint32_t sent = 0;
    absl::Status status = RunMsdSweep(
        pool_, options,
        [&](const MsdPoint& p) {
          steps.push_back(p.step);
          msds.push_back(p.msd);
          pb::StreamMSDResponse message;
          ToProto(p, message.mutable_point());
          ++sent;
          return WriteToStream(context, writer, message);
        },
        call.cancelled());
    what = absl::StrCat(call.what(), ", ", sent, " sent");
    const std::optional<CurvePeak> peak = FindCurvePeak(msds);
    if (!peak) return status;  // no point had a value
    pb::StreamMSDResponse last;
    {
      pb::MSDPeak& out = *last.mutable_peak();
      out.set_step(steps[peak->largest]);
      out.set_msd(msds[peak->largest]);
      out.set_interior(peak->interior);
      out.set_trend(peak->trend == Trend::kIncreasing   ? pb::MSDPeak::TREND_INCREASING
                    : peak->trend == Trend::kDecreasing ? pb::MSDPeak::TREND_DECREASING
                                                        : pb::MSDPeak::TREND_NEITHER);
    }
    return WriteLast(status, last, context, writer);
  });
}

grpc::Status GardenService::StreamBifurcation(
    grpc::ServerContext* context, const pb::StreamBifurcationRequest* request,
    grpc::ServerWriter<pb::StreamBifurcationResponse>* writer) {
  return RunLogged("StreamBifurcation", context, [&](std::string& what) {
    HistogramSweepOptions sweep;
    uint32_t persist = 0;
    BifurcationOptions shape_options;
    StatsRequest call(store_, pool_, context);
    RETURN_IF_ERROR(call.Open(
        *request,
        [&] {
          return ParseBifurcationOptions(*request, sweep, persist,
                                         shape_options);
        },
        what));
    sweep.steps = call.steps();
    std::vector<bool> bimodal;
    HistogramSweepCallbacks callbacks;
    callbacks.cancelled = call.cancelled();
    callbacks.progress = ProgressTo(context, writer);
    callbacks.frame = [&](const StepHistogram& h) {
      const StepShape shape =
          AnalyzeShape(h.histogram, h.summary, shape_options);
      bimodal.push_back(shape.bimodal);
      pb::StreamBifurcationResponse message;
      ToProto(h.step, shape, message.mutable_step());
      return WriteToStream(context, writer, message);
    };
    const absl::Status status = RunHistogramSweep(pool_, sweep, callbacks);
    what = call.what();
    pb::StreamBifurcationResponse last;  // the summary
    last.mutable_summary();
    if (auto onset = BifurcationOnset(bimodal, persist)) {
      last.mutable_summary()->set_onset(sweep.steps->step(*onset));
    }
    return WriteLast(status, last, context, writer);
  });
}

grpc::Status GardenService::Audit(grpc::ServerContext* context,
                                  const pb::AuditRequest* request,
                                  pb::AuditResponse* response) {
  return RunLogged("Audit", context, [&](std::string& what) -> absl::Status {
    AuditOptions options;
    StatsRequest call(store_, pool_, context);
    RETURN_IF_ERROR(call.Open(
        request->model(), request->tensor(), request->steps(),
        /*exclude_flagged=*/false,
        [&] { return ParseAuditOptions(*request, options); }, what));
    options.steps = call.steps();
    options.present_steps = call.model().listing.steps;
    ASSIGN_OR_RETURN(const AuditReport report,
                     RunAudit(pool_, options, call.cancelled()));
    for (const AuditFinding& f : report.findings) {
      ToProto(f, response->add_findings());
    }
    response->set_steps_checked(static_cast<uint32_t>(options.steps->size()));
    response->set_tensors_checked(report.tensors_checked);
    what = absl::StrCat(call.key().Name(), " ", options.steps->size(),
                        " steps, ", response->findings_size(), " findings");
    return absl::OkStatus();
  });
}

}  // namespace garden
