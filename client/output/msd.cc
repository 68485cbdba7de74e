#include "client/output/msd.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output/csv.h"
#include "client/output/json.h"

namespace garden::client {

namespace pb = ::garden::v1;

void MsdRenderer::BeginModel(const std::string& model) {
  model_ = model;
  peak_.reset();
  first_step_.reset();
}

void MsdRenderer::Point(const pb::MSDPoint& p) {
  if (!first_step_) first_step_ = p.step();
  nlohmann::json record = {{"step", p.step()},
                           {"msd", JsonNumber(p.msd())},
                           {"from_step", p.from_step()},
                           {"rate", JsonNumber(p.rate())},
                           {"n", p.n()}};
  if (p.has_msd_before_previous()) {
    record["msd_before_previous"] = JsonNumber(p.msd_before_previous());
    record["before_previous_step"] = p.before_previous_step();
  }
  if (lag_) {
    record["lag"] = p.step();
    record["pairs"] = p.pairs();
  }
  if (label_models_) record["model"] = model_;
  records_.Print(std::move(record), [&] {
    if (format_ == Format::kCsv) {
      return RecordText{
          absl::StrCat(label_models_ ? "model," : "",
                       "step,msd,from_step,rate,n\n"),
          absl::StrCat(label_models_ ? model_ + "," : "", p.step(), ",",
                       CsvNumber(p.msd()), ",", p.from_step(), ",",
                       CsvNumber(p.rate()), ",", p.n(), "\n")};
    }
    return RecordText{
        absl::StrFormat("%-28s %8s %8s %14s %14s\n", "MODEL", "STEP", "FROM",
                        "MSD", "RATE"),
        absl::StrFormat("%-28s %8d %8d %14.6g %14.6g\n", model_, p.step(),
                        p.from_step(), p.msd(), p.rate())};
  });
}

namespace {

// "increasing", "decreasing", or null for a curve that is neither.
nlohmann::json TrendJson(pb::MSDPeak::Trend trend) {
  switch (trend) {
    case pb::MSDPeak::TREND_INCREASING:
      return "increasing";
    case pb::MSDPeak::TREND_DECREASING:
      return "decreasing";
    default:
      return nullptr;
  }
}

}  // namespace

void MsdRenderer::EndModel() {
  // "peak" only for an interior maximum; "largest" and "monotonic" say what
  // the curve does otherwise.
  nlohmann::json peak = nullptr, largest = nullptr, monotonic = nullptr;
  if (peak_) {
    largest = {{"step", peak_->step()}, {"msd", JsonNumber(peak_->msd())}};
    if (peak_->interior()) peak = largest;
    monotonic = TrendJson(peak_->trend());
  }
  if (format_ == Format::kJson) {
    nlohmann::json entry = {{"points", records_.TakeKept()},
                            {"peak", peak},
                            {"largest", largest},
                            {"monotonic", monotonic}};
    if (label_models_) {
      entry["model"] = model_;
      models_.push_back(std::move(entry));
    } else {
      WriteJson(entry, out_);
    }
  } else if (format_ == Format::kTable && peak_) {
    const std::string who = label_models_ ? model_ + " " : "";
    const char* axis = lag_ ? "lag" : "step";
    if (peak_->interior()) {
      out_ << absl::StrFormat("%speak: %s %d, msd %.6g\n", who, axis, peak_->step(),
                              peak_->msd());
    } else {
      const std::string shape = monotonic.is_string()
                                    ? absl::StrCat(", ", monotonic.get<std::string>())
                                    : "";
      out_ << absl::StrFormat("%sno peak%s: the largest msd %.6g is at the %s %s %d\n",
                              who, shape, peak_->msd(),
                              peak_->step() == first_step_ ? "first" : "last", axis,
                              peak_->step());
    }
    out_ << std::flush;
  }
}

void MsdRenderer::Finish() {
  if (format_ == Format::kJson && label_models_) {
    WriteJson({{"models", models_}}, out_);
  }
}

}  // namespace garden::client
