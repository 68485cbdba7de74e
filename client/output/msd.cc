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
}

void MsdRenderer::Point(const pb::MSDPoint& p) {
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

void MsdRenderer::EndModel() {
  nlohmann::json peak = nullptr;
  if (peak_) {
    peak = {{"step", peak_->step()}, {"msd", JsonNumber(peak_->msd())}};
  }
  if (format_ == Format::kJson) {
    nlohmann::json points = records_.TakeKept();
    if (label_models_) {
      models_.push_back(
          {{"model", model_}, {"points", std::move(points)}, {"peak", peak}});
    } else {
      WriteJson({{"points", std::move(points)}, {"peak", peak}}, out_);
    }
  } else if (format_ == Format::kTable && peak_) {
    out_ << absl::StrFormat("%speak: %s %d, msd %.6g\n",
                            label_models_ ? model_ + " " : "",
                            lag_ ? "lag" : "step", peak_->step(), peak_->msd())
         << std::flush;
  }
}

void MsdRenderer::Finish() {
  if (format_ == Format::kJson && label_models_) {
    WriteJson({{"models", models_}}, out_);
  }
}

}  // namespace garden::client
