// A tensor's distribution over training: hist, bifurcation (see
// commands.h).
#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/commands/commands.h"
#include "client/output/bifurcation.h"
#include "client/output/histogram.h"
#include "client/output/progress.h"
#include "client/plot/figures.h"
#include "common/stats/analysis_defaults.h"
#include "common/stats/histogram.h"

namespace garden::client {
namespace {

// 0 and values past kMaxBins go to the server, which names the limit;
// values no request can carry are refused here the same way.
absl::StatusOr<uint32_t> RequestBins(int64_t bins) {
  if (bins < 0 || bins > std::numeric_limits<uint32_t>::max()) {
    return ValidateBins(bins);
  }
  return static_cast<uint32_t>(bins);
}

// "lo:hi" with lo possibly negative; finite values are checked by the server.
absl::StatusOr<std::pair<double, double>> ParseRange(const std::string& text) {
  const size_t colon = text.find(':', 1);
  double lo, hi;
  if (colon == std::string::npos ||
      !absl::SimpleAtod(text.substr(0, colon), &lo) ||
      !absl::SimpleAtod(text.substr(colon + 1), &hi)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed range \"", text, "\": expected LO:HI"));
  }
  return std::make_pair(lo, hi);
}

class Hist : public Command {
 public:
  Hist() : Command("hist", "histogram of a tensor at each step") {}

  absl::Status Run(Connection& connection) override {
    if (branches_ && !figure_.drawing()) {
      return absl::InvalidArgumentError("--branches draws on a --plot");
    }
    HistogramRenderer renderer(format_.format(), figure_.comparing(),
                               std::cout);
    ASSIGN_OR_RETURN(
        const std::vector<ModelSeries> figure,
        figure_.Sweep(
            model_steps_.address, [this] { return Request(); },
            [&](const pb::StreamHistogramsRequest& request,
                ModelSeries& series) {
              RETURN_IF_ERROR(Frames(connection, request, renderer, series));
              if (!branches_) return absl::OkStatus();
              return Branches(connection, request, series);
            }));
    return figure_.Draw([&] { return HistogramFigure(figure, tensor_.name); });
  }

 private:
  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command, "all, a list 0,1,2,512, or a range 1000:5000");
    tensor_.AddTo(command);
    command.add_option("--bins", bins_, absl::StrCat("1..", kMaxBins))
        ->capture_default_str();
    command.add_option(
        "--range", range_,
        "LO:HI (write --range=-0.1:0.1); default: min..max over all steps");
    format_.AddTo(command, {"jsonl", "csv", "table"}, "table");
    progress_.AddTo(command);
    exclude_.AddTo(command);
    figure_.AddTo(command);
    command.add_flag("--branches", branches_,
                     "with --plot: overlay the modes of the smoothed "
                     "density and the bifurcation onset");
  }

  // The request for the main model (Sweep sets each model in turn).
  absl::StatusOr<pb::StreamHistogramsRequest> Request() const {
    pb::StreamHistogramsRequest request;
    request.set_tensor(tensor_.name);
    request.set_exclude_flagged(exclude_.exclude);
    ASSIGN_OR_RETURN(const uint32_t bins, RequestBins(bins_));
    request.set_bins(bins);
    RETURN_IF_ERROR(model_steps_.Fill(&request));
    if (!range_.empty()) {
      ASSIGN_OR_RETURN(const auto range, ParseRange(range_));
      request.mutable_range()->set_lo(range.first);
      request.mutable_range()->set_hi(range.second);
    }
    return request;
  }

  // One model's frames, printed as they come; with --plot, its heatmap.
  absl::Status Frames(Connection& connection,
                      const pb::StreamHistogramsRequest& request,
                      HistogramRenderer& renderer, ModelSeries& series) const {
    return progress_.ReadAll(
        connection.Stream(&Stub::StreamHistograms, request),
        "scanning for the common range",
        [&](const pb::StreamHistogramsResponse& message, ProgressBar& bar) {
          const pb::HistogramFrame& frame = message.frame();
          if (figure_.drawing()) {
            series.heat.push_back(
                {.x = static_cast<double>(frame.step()),
                 .lo = frame.lo(),
                 .hi = frame.hi(),
                 .counts = std::vector<double>(frame.counts().begin(),
                                               frame.counts().end())});
          }
          renderer.Frame(frame, series.model);
          bar.Update(frame.index() + 1, frame.total(),
                     absl::StrCat(series.model, " step ", frame.step()));
        });
  }

  // --branches: the modes at each step and the onset, for the figure.
  static absl::Status Branches(Connection& connection,
                               const pb::StreamHistogramsRequest& hist,
                               ModelSeries& series) {
    pb::StreamBifurcationRequest request;
    *request.mutable_model() = hist.model();
    *request.mutable_steps() = hist.steps();
    request.set_tensor(hist.tensor());
    request.set_exclude_flagged(hist.exclude_flagged());
    return connection.Stream(&Stub::StreamBifurcation, request)
        .ReadAll([&](const pb::StreamBifurcationResponse& message) {
          if (message.has_summary() && message.summary().has_onset()) {
            series.onset = message.summary().onset();
          } else if (message.has_step()) {
            for (double mode : message.step().mode_locations()) {
              series.branch_steps.push_back(
                  static_cast<double>(message.step().step()));
              series.branch_values.push_back(mode);
            }
          }
        });
  }

  ModelStepsOptions model_steps_;
  TensorOption tensor_;
  int64_t bins_ = kDefaultBins;
  std::string range_;
  ProgressOption progress_;
  ExcludeFlaggedOption exclude_;
  FigureOptions figure_;
  bool branches_ = false;
};

class Bifurcation : public Command {
 public:
  Bifurcation()
      : Command("bifurcation",
                "bimodality of a tensor's distribution over training") {}

  absl::Status Run(Connection& connection) override {
    ASSIGN_OR_RETURN(const pb::StreamBifurcationRequest request, Request());
    BifurcationRenderer renderer(format_.format(), std::cout);
    RETURN_IF_ERROR(progress_.ReadAll(
        connection.Stream(&Stub::StreamBifurcation, request), "scanning",
        [&](const pb::StreamBifurcationResponse& message, ProgressBar&) {
          if (message.has_summary()) {
            renderer.Summary(message.summary());
          } else {
            renderer.Step(message.step());
          }
        }));
    renderer.Finish();
    return absl::OkStatus();
  }

 private:
  void AddOptions(CLI::App& command) override {
    exclude_.AddTo(command);
    model_steps_.AddTo(command);
    tensor_.AddTo(command);
    command
        .add_option("--persist", persist_,
                    "consecutive bimodal steps that make the onset")
        ->capture_default_str();
    command.add_option("--min-dip", min_dip_,
                       absl::StrCat("dip that makes a step bimodal (default ",
                                    kDefaultMinDip, ")"));
    command.add_option("--bins", bins_,
                       absl::StrCat("density resolution (default ",
                                    kDefaultBifurcationBins, ")"));
    format_.AddTo(command, {"json", "jsonl", "table"}, "table");
    progress_.AddTo(command);
  }

  absl::StatusOr<pb::StreamBifurcationRequest> Request() const {
    pb::StreamBifurcationRequest request;
    RETURN_IF_ERROR(model_steps_.Fill(&request));
    request.set_tensor(tensor_.name);
    request.set_exclude_flagged(exclude_.exclude);
    if (persist_ < 1 || persist_ > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrCat("persist must be at least 1, got ", persist_));
    }
    request.set_persist(static_cast<uint32_t>(persist_));
    if (min_dip_) request.set_min_dip(*min_dip_);
    if (bins_) {
      ASSIGN_OR_RETURN(const uint32_t bins, RequestBins(*bins_));
      request.set_bins(bins);
    }
    return request;
  }

  ExcludeFlaggedOption exclude_;
  ModelStepsOptions model_steps_;
  TensorOption tensor_;
  int64_t persist_ = kDefaultBifurcationPersist;
  std::optional<double> min_dip_;
  std::optional<int64_t> bins_;
  ProgressOption progress_;
};

}  // namespace

Commands DistributionCommands() { return MakeCommands<Hist, Bifurcation>(); }

}  // namespace garden::client
