#include "server/service/garden_service.h"

#include <chrono>
#include <cmath>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/naming/step_spec.h"
#include "common/stats/bifurcation.h"
#include "server/engine/audit.h"
#include "server/engine/histogram_sweep.h"
#include "server/engine/msd_sweep.h"
#include "server/store/dataset_registry.h"
#include "spdlog/spdlog.h"

namespace garden {
namespace {

namespace pb = ::garden::v1;

}  // namespace

absl::StatusOr<ModelKey> KeyOf(const pb::ModelRef& ref) {
  return MakeModelKey(ref.suite(), ref.size(), ref.variant());
}

void FillRef(const ModelKey& key, pb::ModelRef* ref) {
  ref->set_suite(key.suite);
  ref->set_size(key.size);
  ref->set_variant(key.variant);
}

absl::StatusOr<StepSpec> SpecOf(const pb::StepSelection& selection) {
  StepSpec spec;
  switch (selection.selection_case()) {
    case pb::StepSelection::kAll:
      if (!selection.all()) {
        return absl::InvalidArgumentError(
            "steps: all=false selects nothing; give a list or a range");
      }
      return spec;
    case pb::StepSelection::kList:
      spec.kind = StepSpec::Kind::kList;
      spec.list.assign(selection.list().steps().begin(),
                       selection.list().steps().end());
      if (spec.list.empty()) {
        return absl::InvalidArgumentError("steps: the list is empty");
      }
      return spec;
    case pb::StepSelection::kRange:
      spec.kind = StepSpec::Kind::kRange;
      spec.first = selection.range().first();
      spec.last = selection.range().last();
      if (spec.first < 0 || spec.first > spec.last) {
        return absl::InvalidArgumentError(
            absl::StrCat("steps: range ", spec.first, ":", spec.last,
                         " needs 0 <= first <= last"));
      }
      return spec;
    case pb::StepSelection::SELECTION_NOT_SET:
      return absl::InvalidArgumentError(
          "steps: no selection; give all, a list or a range");
  }
  return absl::InvalidArgumentError("steps: unknown selection");
}

absl::StatusOr<std::string> TensorOf(const std::string& requested) {
  const std::string tensor =
      requested.empty() ? std::string(kDefaultTensor) : requested;
  if (auto s = ValidateName("tensor", tensor); !s.ok()) return s;
  return tensor;
}

absl::StatusOr<SelectedSteps> SelectSteps(CheckpointStore& store,
                                          const ModelKey& key,
                                          const pb::StepSelection& selection) {
  auto spec = SpecOf(selection);
  if (!spec.ok()) return spec.status();
  auto model = store.FindModel(key);
  if (!model.ok()) return model.status();
  auto steps = spec->Resolve(model->steps, key.Name());
  if (!steps.ok()) return steps.status();
  return SelectedSteps{*std::move(spec), *std::move(steps)};
}

RpcLog::RpcLog(std::string_view method, grpc::ServerContext* context)
    : method_(method),
      peer_(context->peer()),
      start_(std::chrono::steady_clock::now()) {}

grpc::Status RpcLog::Done(const absl::Status& status, std::string_view what) {
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start_)
                        .count();
  if (status.ok()) {
    spdlog::info("{} {} from {}: OK in {:.1f} ms", method_, what, peer_, ms);
  } else {
    spdlog::warn("{} {} from {}: {} in {:.1f} ms", method_, what, peer_,
                 status.ToString(), ms);
  }
  return ToGrpcStatus(status);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

grpc::Status GardenService::ListDatasets(grpc::ServerContext* context,
                                         const pb::ListDatasetsRequest*,
                                         pb::ListDatasetsResponse* response) {
  RpcLog log("ListDatasets", context);
  if (datasets_ != nullptr) {
    for (const auto& dataset : datasets_->List()) {
      pb::DatasetInfo* info = response->add_datasets();
      info->set_name(dataset->name);
      info->set_examples(dataset->texts.size());
    }
  }
  return log.Done(absl::OkStatus(),
                  absl::StrCat(response->datasets_size(), " datasets"));
}

grpc::Status GardenService::ListModels(grpc::ServerContext* context,
                                       const pb::ListModelsRequest* request,
                                       pb::ListModelsResponse* response) {
  RpcLog log("ListModels", context);
  if (!request->suite().empty()) {
    if (auto s = ValidateName("suite", request->suite()); !s.ok()) {
      return log.Done(s, request->suite());
    }
  }
  store_.Refresh();
  for (const auto& listing : store_.ListModels(request->suite())) {
    pb::ModelInfo* info = response->add_models();
    FillRef(listing.key, info->mutable_model());
    for (int64_t step : listing.steps) info->add_steps(step);
    info->set_repo_id(listing.repo_id);
    info->set_layout(listing.layout);
    if (listing.key.suite == kDefaultSuite) {
      for (int64_t step : PythiaSchedule()) {
        if (!std::binary_search(listing.steps.begin(), listing.steps.end(),
                                step)) {
          info->add_missing_from_schedule(step);
        }
      }
    }
  }
  return log.Done(absl::OkStatus(),
                  absl::StrCat(response->models_size(), " models"));
}

grpc::Status GardenService::ListTensors(grpc::ServerContext* context,
                                        const pb::ListTensorsRequest* request,
                                        pb::ListTensorsResponse* response) {
  RpcLog log("ListTensors", context);
  auto key = KeyOf(request->checkpoint().model());
  if (!key.ok()) return log.Done(key.status(), "");
  const int64_t step = request->checkpoint().step();
  const std::string what = absl::StrCat(key->Name(), " step ", step);
  if (step < 0 || step > kMaxStep) {
    return log.Done(absl::InvalidArgumentError(absl::StrCat(
                        "step ", step, " is outside [0, ", kMaxStep, "]")),
                    what);
  }
  auto where = store_.Locate(*key, request->checkpoint().step());
  if (!where.ok()) return log.Done(where.status(), what);
  auto tensors = store_.ListTensors(*where);
  if (!tensors.ok()) return log.Done(tensors.status(), what);
  auto config = store_.ReadConfig(*where);
  if (!config.ok()) return log.Done(config.status(), what);
  FillRef(*key, response->mutable_checkpoint()->mutable_model());
  response->mutable_checkpoint()->set_step(where->step);
  response->set_config_json(*config);
  for (const auto& t : *tensors) {
    pb::TensorInfo* info = response->add_tensors();
    info->set_name(t.info.name);
    info->set_dtype(std::string(DTypeName(t.info.dtype)));
    for (int64_t d : t.info.shape) info->add_shape(d);
    info->set_num_bytes(t.info.num_bytes());
    info->set_file(t.file);
  }
  return log.Done(absl::OkStatus(), what);
}

grpc::Status GardenService::StreamHistograms(
    grpc::ServerContext* context, const pb::StreamHistogramsRequest* request,
    grpc::ServerWriter<pb::StreamHistogramsResponse>* writer) {
  RpcLog log("StreamHistograms", context);
  auto key = KeyOf(request->model());
  if (!key.ok()) return log.Done(key.status(), "");
  HistogramSweepOptions options;
  options.model = *key;
  auto tensor = TensorOf(request->tensor());
  if (!tensor.ok()) return log.Done(tensor.status(), key->Name());
  options.tensor = *tensor;
  if (request->has_bins()) {
    if (auto s = ValidateBins(request->bins()); !s.ok()) {
      return log.Done(s, key->Name());
    }
    options.bins = request->bins();
  }
  if (request->has_range()) {
    const double lo = request->range().lo(), hi = request->range().hi();
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi) ||
        !std::isfinite(hi - lo)) {
      return log.Done(
          absl::InvalidArgumentError(absl::StrCat(
              "range ", lo, ":", hi,
              " is invalid: lo and hi must be finite with lo < hi")),
          key->Name());
    }
    options.range.emplace(lo, hi);
  }
  auto to_sweep = StepsToSweep(context, *key, options.tensor, request->steps(),
                               request->exclude_flagged());
  if (!to_sweep.ok()) return log.Done(to_sweep.status(), key->Name());
  options.steps = to_sweep->steps;
  const std::string& what = to_sweep->what;

  const uint32_t total = static_cast<uint32_t>(options.steps.size());
  uint32_t sent = 0;
  HistogramSweepCallbacks callbacks;
  callbacks.cancelled = [context] { return context->IsCancelled(); };
  callbacks.progress = [&](uint32_t done, uint32_t of) {
    pb::StreamHistogramsResponse message;
    message.mutable_progress()->set_done(done);
    message.mutable_progress()->set_total(of);
    return writer->Write(message);
  };
  callbacks.frame = [&](const StepHistogram& h) {
    pb::StreamHistogramsResponse message;
    pb::HistogramFrame* f = message.mutable_frame();
    f->set_step(h.step);
    f->set_lo(h.histogram.lo);
    f->set_hi(h.histogram.hi);
    f->mutable_counts()->Add(h.histogram.counts.begin(),
                             h.histogram.counts.end());
    f->set_underflow(h.histogram.underflow);
    f->set_overflow(h.histogram.overflow);
    const ValueSummary& s = h.summary;
    f->set_n(s.finite());
    f->set_mean(s.finite() ? s.moments.mean : std::nan(""));
    f->set_std(s.moments.StdDev());
    f->set_min(s.finite() ? s.min : std::nan(""));
    f->set_max(s.finite() ? s.max : std::nan(""));
    f->set_skewness(s.moments.Skewness());
    f->set_kurtosis(s.moments.ExcessKurtosis());
    f->set_nan(s.nan);
    f->set_posinf(s.posinf);
    f->set_neginf(s.neginf);
    f->set_dtype(std::string(DTypeName(h.dtype)));
    for (int64_t d : h.shape) f->add_shape(d);
    f->set_index(sent++);
    f->set_total(total);
    return writer->Write(message);
  };
  auto status = RunHistogramSweep(store_, pool_, options, callbacks);
  return log.Done(status, absl::StrCat(what, ", ", sent, " sent"));
}

grpc::Status GardenService::StreamMSD(
    grpc::ServerContext* context, const pb::StreamMSDRequest* request,
    grpc::ServerWriter<pb::StreamMSDResponse>* writer) {
  RpcLog log("StreamMSD", context);
  auto key = KeyOf(request->model());
  if (!key.ok()) return log.Done(key.status(), "");
  MsdSweepOptions options;
  options.model = *key;
  auto tensor = TensorOf(request->tensor());
  if (!tensor.ok()) return log.Done(tensor.status(), key->Name());
  options.tensor = *tensor;
  switch (request->mode()) {
    case pb::StreamMSDRequest::REFERENCE:
      options.mode = MsdSweepOptions::Mode::kReference;
      break;
    case pb::StreamMSDRequest::CONSECUTIVE:
      options.mode = MsdSweepOptions::Mode::kConsecutive;
      break;
    case pb::StreamMSDRequest::LAG:
      options.mode = MsdSweepOptions::Mode::kLag;
      break;
    default:
      return log.Done(absl::InvalidArgumentError(
                          absl::StrCat("unknown MSD mode ", request->mode())),
                      key->Name());
  }
  auto to_sweep = StepsToSweep(context, *key, options.tensor, request->steps(),
                               request->exclude_flagged());
  if (!to_sweep.ok()) return log.Done(to_sweep.status(), key->Name());
  options.steps = to_sweep->steps;
  if (request->has_reference_step()) {
    if (options.mode != MsdSweepOptions::Mode::kReference) {
      return log.Done(absl::InvalidArgumentError(
                          "reference_step applies to the reference mode only"),
                      key->Name());
    }
    options.reference_step = request->reference_step();
  } else {
    options.reference_step = options.steps.front();
  }
  const std::string& what = to_sweep->what;
  MsdPoint peak;
  peak.msd = -1;
  uint32_t sent = 0;
  auto status = RunMsdSweep(
      store_, pool_, options,
      [&](const MsdPoint& p) {
        if (p.msd > peak.msd) peak = p;
        pb::StreamMSDResponse message;
        pb::MSDPoint* out = message.mutable_point();
        out->set_step(p.step);
        out->set_msd(p.msd);
        out->set_from_step(p.from_step);
        out->set_rate(p.rate);
        out->set_n(p.n);
        out->set_pairs(p.pairs);
        if (p.msd_before_previous.has_value()) {
          out->set_msd_before_previous(*p.msd_before_previous);
          out->set_before_previous_step(p.before_previous_step);
        }
        ++sent;
        return writer->Write(message);
      },
      [context] { return context->IsCancelled(); });
  if (status.ok()) {
    pb::StreamMSDResponse message;
    message.mutable_peak()->set_step(peak.step);
    message.mutable_peak()->set_msd(peak.msd);
    if (!writer->Write(message)) {
      status = absl::CancelledError("the client went away");
    }
  }
  return log.Done(status, absl::StrCat(what, ", ", sent, " sent"));
}

grpc::Status GardenService::StreamBifurcation(
    grpc::ServerContext* context, const pb::StreamBifurcationRequest* request,
    grpc::ServerWriter<pb::StreamBifurcationResponse>* writer) {
  RpcLog log("StreamBifurcation", context);
  auto key = KeyOf(request->model());
  if (!key.ok()) return log.Done(key.status(), "");
  HistogramSweepOptions sweep;
  sweep.model = *key;
  sweep.per_step_range = true;
  sweep.bins = request->has_bins() ? request->bins() : 1024;
  auto tensor = TensorOf(request->tensor());
  if (!tensor.ok()) return log.Done(tensor.status(), key->Name());
  sweep.tensor = *tensor;
  if (auto s = ValidateBins(sweep.bins); !s.ok()) {
    return log.Done(s, key->Name());
  }
  const uint32_t persist = request->has_persist() ? request->persist() : 2;
  if (persist < 1) {
    return log.Done(absl::InvalidArgumentError(absl::StrCat(
                        "persist must be at least 1, got ", persist)),
                    key->Name());
  }
  BifurcationOptions shape_options;
  if (request->has_min_dip()) shape_options.min_dip = request->min_dip();
  if (!(shape_options.min_dip > 0 && shape_options.min_dip < 1)) {
    return log.Done(
        absl::InvalidArgumentError(absl::StrCat(
            "min_dip must be in (0, 1), got ", shape_options.min_dip)),
        key->Name());
  }
  auto to_sweep = StepsToSweep(context, *key, sweep.tensor, request->steps(),
                               request->exclude_flagged());
  if (!to_sweep.ok()) return log.Done(to_sweep.status(), key->Name());
  sweep.steps = to_sweep->steps;
  const std::string& what = to_sweep->what;

  std::vector<bool> bimodal;
  HistogramSweepCallbacks callbacks;
  callbacks.cancelled = [context] { return context->IsCancelled(); };
  callbacks.progress = [&](uint32_t done, uint32_t total) {
    pb::StreamBifurcationResponse message;
    message.mutable_progress()->set_done(done);
    message.mutable_progress()->set_total(total);
    return writer->Write(message);
  };
  callbacks.frame = [&](const StepHistogram& h) {
    const StepShape shape = AnalyzeShape(h.histogram, h.summary, shape_options);
    bimodal.push_back(shape.bimodal);
    pb::StreamBifurcationResponse message;
    pb::BifurcationStep* out = message.mutable_step();
    out->set_step(h.step);
    out->set_bc(shape.bc);
    for (const Mode& mode : shape.modes) {
      out->add_mode_locations(mode.location);
      out->add_mode_heights(mode.height);
    }
    out->set_dip(shape.dip);
    out->set_bimodal(shape.bimodal);
    out->set_bandwidth(shape.bandwidth);
    return writer->Write(message);
  };
  auto status = RunHistogramSweep(store_, pool_, sweep, callbacks);
  if (status.ok()) {
    pb::StreamBifurcationResponse message;
    if (auto onset = BifurcationOnset(bimodal, persist)) {
      message.mutable_summary()->set_onset(sweep.steps[*onset]);
    } else {
      message.mutable_summary();
    }
    if (!writer->Write(message)) {
      status = absl::CancelledError("the client went away");
    }
  }
  return log.Done(status, what);
}

grpc::Status GardenService::Audit(grpc::ServerContext* context,
                                  const pb::AuditRequest* request,
                                  pb::AuditResponse* response) {
  RpcLog log("Audit", context);
  auto key = KeyOf(request->model());
  if (!key.ok()) return log.Done(key.status(), "");
  AuditOptions options;
  options.model = *key;
  auto tensor = TensorOf(request->tensor());
  if (!tensor.ok()) return log.Done(tensor.status(), key->Name());
  options.tensor = *tensor;
  options.all_tensors = request->all_tensors();
  if (request->has_z_threshold()) {
    options.z_threshold = request->z_threshold();
    if (!(options.z_threshold > 0) || !std::isfinite(options.z_threshold)) {
      return log.Done(absl::InvalidArgumentError(absl::StrCat(
                          "z_threshold must be a positive number, got ",
                          options.z_threshold)),
                      key->Name());
    }
  }
  auto selected = SelectSteps(store_, *key, request->steps());
  if (!selected.ok()) return log.Done(selected.status(), key->Name());
  options.steps = selected->steps;
  auto report = RunAudit(store_, pool_, options,
                         [context] { return context->IsCancelled(); });
  if (!report.ok()) return log.Done(report.status(), key->Name());
  for (const AuditFinding& f : report->findings) {
    pb::AuditFinding* out = response->add_findings();
    out->set_kind(f.kind);
    for (int64_t step : f.steps) out->add_steps(step);
    out->set_tensor(f.tensor);
    out->set_detail(f.detail);
    out->set_score(f.score);
  }
  response->set_steps_checked(static_cast<uint32_t>(options.steps.size()));
  response->set_tensors_checked(report->tensors_checked);
  return log.Done(
      absl::OkStatus(),
      absl::StrCat(key->Name(), " ", options.steps.size(), " steps, ",
                   response->findings_size(), " findings"));
}

absl::StatusOr<GardenService::SweepSteps> GardenService::StepsToSweep(
    grpc::ServerContext* context, const ModelKey& key,
    const std::string& tensor, const pb::StepSelection& selection,
    bool exclude_flagged) {
  auto selected = SelectSteps(store_, key, selection);
  if (!selected.ok()) return selected.status();
  SweepSteps out;
  out.steps = selected->steps;
  if (exclude_flagged) {
    AuditOptions audit;
    audit.model = key;
    audit.steps = selected->steps;
    audit.tensor = tensor;
    auto report = RunAudit(store_, pool_, audit,
                           [context] { return context->IsCancelled(); });
    if (!report.ok()) return report.status();
    const std::vector<int64_t> flagged = FlaggedSteps(*report);
    out.steps.clear();
    std::set_difference(selected->steps.begin(), selected->steps.end(),
                        flagged.begin(), flagged.end(),
                        std::back_inserter(out.steps));
    if (out.steps.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("every selected step of ", key.Name(),
                       " is flagged by the audit: ", FormatSteps(flagged)));
    }
    if (!flagged.empty()) {
      spdlog::info("{}: leaving out flagged steps {}", key.Name(),
                   FormatSteps(flagged));
    }
  }
  out.what = absl::StrCat(key.Name(), " ", tensor, " ",
                          selected->spec.ToString(), " (", out.steps.size(),
                          " steps)");
  return out;
}

}  // namespace garden
