#include "server/service/convert.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace garden {

namespace pb = ::garden::v1;

absl::StatusOr<ModelKey> KeyOf(const pb::ModelRef& ref) {
  return MakeModelKey(ref.suite(), ref.size(), ref.variant(), ref.run());
}

void FillRef(const ModelKey& key, pb::ModelRef* ref) {
  ref->set_suite(key.suite);
  ref->set_size(key.size);
  ref->set_variant(key.variant);
  ref->set_run(key.run);
}

absl::Status ValidateStep(int64_t step) {
  if (step < 0 || step > kMaxStep) {
    return absl::InvalidArgumentError(
        absl::StrCat("step ", step, " is outside [0, ", kMaxStep, "]"));
  }
  return absl::OkStatus();
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
  std::string tensor =
      requested.empty() ? std::string(kDefaultTensor) : requested;
  RETURN_IF_ERROR(ValidateName("tensor", tensor));
  return tensor;
}

absl::StatusOr<MsdSweepOptions::Mode> MsdModeOf(
    pb::StreamMSDRequest::Mode mode) {
  switch (mode) {
    case pb::StreamMSDRequest::REFERENCE:
      return MsdSweepOptions::Mode::kReference;
    case pb::StreamMSDRequest::CONSECUTIVE:
      return MsdSweepOptions::Mode::kConsecutive;
    case pb::StreamMSDRequest::LAG:
      return MsdSweepOptions::Mode::kLag;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown MSD mode ", mode));
  }
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void ToProto(const StepHistogram& h, pb::HistogramFrame* f) {
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
}

void ToProto(const MsdPoint& p, pb::MSDPoint* out) {
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
}

void ToProto(int64_t step, const StepShape& shape, pb::BifurcationStep* out) {
  out->set_step(step);
  out->set_bc(shape.bc);
  for (const Mode& mode : shape.modes) {
    out->add_mode_locations(mode.location);
    out->add_mode_heights(mode.height);
  }
  out->set_dip(shape.dip);
  out->set_bimodal(shape.bimodal);
  out->set_bandwidth(shape.bandwidth);
}

void ToProto(const AuditFinding& f, pb::AuditFinding* out) {
  out->set_kind(f.kind);
  for (int64_t step : f.steps) out->add_steps(step);
  out->set_tensor(f.tensor);
  out->set_detail(f.detail);
  out->set_score(f.score);
}

void ToProto(const TensorListing& t, pb::TensorInfo* out) {
  out->set_name(t.info.name);
  out->set_dtype(std::string(DTypeName(t.info.dtype)));
  for (int64_t d : t.info.shape) out->add_shape(d);
  out->set_num_bytes(t.info.num_bytes());
  out->set_file(t.file);
}

}  // namespace garden
