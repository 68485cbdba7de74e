// How a tensor moves over training, and whether the steps can be trusted:
// msd, audit, envelope (see commands.h).
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands/commands.h"
#include "client/output/audit.h"
#include "client/output/envelope.h"
#include "client/output/msd.h"
#include "client/plot/figures.h"
#include "common/stats/analysis_defaults.h"
#include "common/stats/envelope.h"

namespace garden::client {
namespace {

// --mode, which CLI11 has checked is one of these.
pb::StreamMSDRequest::Mode MsdMode(const std::string& name) {
  if (name == "consecutive") return pb::StreamMSDRequest::CONSECUTIVE;
  if (name == "lag") return pb::StreamMSDRequest::LAG;
  return pb::StreamMSDRequest::REFERENCE;
}

class Msd : public Command {
 public:
  Msd()
      : Command("msd", "mean square displacement of a tensor over training") {}

  absl::Status Run(Connection& connection) override {
    MsdRenderer renderer(format_.format(),
                         MsdMode(mode_) == pb::StreamMSDRequest::LAG,
                         figure_.comparing(), std::cout);
    ASSIGN_OR_RETURN(
        const std::vector<ModelSeries> figure,
        figure_.Sweep(
            model_steps_.address, [this] { return Request(); },
            [&](const pb::StreamMSDRequest& request, ModelSeries& series) {
              renderer.BeginModel(series.model);
              RETURN_IF_ERROR(Points(connection, request, renderer, series));
              renderer.EndModel();
              return absl::OkStatus();
            }));
    renderer.Finish();
    return figure_.Draw([&] { return MsdFigure(figure, tensor_.name, mode_); });
  }

 private:
  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command);
    tensor_.AddTo(command);
    command
        .add_option("--mode", mode_,
                    "reference: to t0; consecutive: step to step; lag: "
                    "time-averaged over pairs tau apart (one point per tau)")
        ->check(CLI::IsMember({"reference", "consecutive", "lag"}))
        ->capture_default_str();
    exclude_.AddTo(command);
    command.add_option("--reference", reference_,
                       "reference step t0 (default: the first selected step)");
    figure_.AddTo(command);
    format_.AddTo(command, {"jsonl", "json", "csv", "table"}, "table");
    // The MSD stream carries no progress yet: accepted like the other sweeps.
    progress_.AddTo(command);
  }

  // The request for the main model (Sweep sets each model in turn).
  absl::StatusOr<pb::StreamMSDRequest> Request() const {
    pb::StreamMSDRequest request;
    RETURN_IF_ERROR(model_steps_.Fill(&request));
    request.set_tensor(tensor_.name);
    request.set_mode(MsdMode(mode_));
    if (reference_) request.set_reference_step(*reference_);
    request.set_exclude_flagged(exclude_.exclude);
    return request;
  }

  // One model's points, printed as they come; the curve and its peak.
  static absl::Status Points(Connection& connection,
                             const pb::StreamMSDRequest& request,
                             MsdRenderer& renderer, ModelSeries& series) {
    return connection.Stream(&Stub::StreamMSD, request)
        .ReadAll([&](const pb::StreamMSDResponse& message) {
          if (message.has_peak()) {
            renderer.Peak(message.peak());
            // The figure marks a peak only where there is one.
            if (message.peak().interior()) {
              series.peak_x = static_cast<double>(message.peak().step());
            }
            return;
          }
          series.x.push_back(static_cast<double>(message.point().step()));
          series.y.push_back(message.point().msd());
          renderer.Point(message.point());
        });
  }

  ModelStepsOptions model_steps_;
  TensorOption tensor_;
  std::string mode_ = "reference";
  ExcludeFlaggedOption exclude_;
  std::optional<int64_t> reference_;
  FigureOptions figure_;
  ProgressOption progress_;
};

class Audit : public Command {
 public:
  Audit()
      : Command("audit",
                "identical steps, discontinuities and missing steps of a "
                "suite") {}

  absl::Status Run(Connection& connection) override {
    pb::AuditRequest request;
    RETURN_IF_ERROR(model_steps_.Fill(&request));
    request.set_tensor(tensor_.name);
    request.set_all_tensors(all_tensors_);
    if (z_) request.set_z_threshold(*z_);
    return CallAndRender(connection, &Stub::Audit, request, RenderAudit);
  }

 private:
  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command);
    tensor_.AddTo(command);
    command.add_flag("--all-tensors", all_tensors_,
                     "hash every float tensor, not only --tensor");
    command.add_option("--z", z_,
                       absl::StrCat("robust z of a discontinuity (default ",
                                    kDefaultAuditZ, ")"));
    format_.AddTo(command, {"json", "table"}, "table");
  }

  ModelStepsOptions model_steps_;
  TensorOption tensor_;
  bool all_tensors_ = false;
  std::optional<double> z_;
};

// The metrics envelope draws, by the stream that carries them.
const std::vector<std::string>& MomentMetrics() {
  static const auto* metrics = new std::vector<std::string>{"mean", "std", "skewness", "kurtosis"};
  return *metrics;
}

double Moment(const pb::HistogramFrame& frame, const std::string& metric) {
  if (metric == "mean") return frame.mean();
  if (metric == "std") return frame.std();
  if (metric == "skewness") return frame.skewness();
  return frame.kurtosis();
}

class Envelope : public Command {
 public:
  Envelope()
      : Command("envelope",
                "a metric's band across every training run of a model "
                "(PolyPythias' seeds), then each run's bifurcation onset") {}

  absl::Status Run(Connection& connection) override {
    if (!model_steps_.address.run.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--run ", model_steps_.address.run,
          ": envelope spans every run of the model; leave --run out"));
    }
    RETURN_IF_ERROR(plot_.Check());
    ASSIGN_OR_RETURN(const ModelKey model, model_steps_.address.Key());
    ASSIGN_OR_RETURN(const std::vector<ModelKey> runs, Runs(connection, model));
    std::vector<std::map<int64_t, double>> values;
    std::vector<RunOnset> onsets;
    std::vector<EnvelopeRun> curves;
    for (const ModelKey& run : runs) {
      std::map<int64_t, double>& metric = values.emplace_back();
      RunOnset& onset = onsets.emplace_back();
      onset.run = run.run.empty() ? "main" : run.run;
      onset.model = run.Name();
      RETURN_IF_ERROR(Sweep(connection, run, metric, onset.onset));
      EnvelopeRun& curve = curves.emplace_back();
      curve.run = onset.run;
      curve.onset = onset.onset;
      for (const auto& [step, value] : metric) {
        curve.x.push_back(static_cast<double>(step));
        curve.y.push_back(value);
      }
    }
    const std::vector<EnvelopePoint> points = garden::Envelope(values);
    RenderEnvelope(points, onsets, metric_, tensor_.name, format_.format(), std::cout);
    if (!plot_.drawing()) return absl::OkStatus();
    EnvelopeBand band;
    for (const EnvelopePoint& p : points) {
      band.step.push_back(static_cast<double>(p.step));
      band.mean.push_back(p.mean);
      band.min.push_back(p.min);
      band.max.push_back(p.max);
      band.std.push_back(p.std);
    }
    return plot::Render(EnvelopeFigure(band, curves, model.Name(), metric_, tensor_.name),
                        plot_.path);
  }

 private:
  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command);
    std::vector<std::string> metrics = MomentMetrics();
    metrics.push_back("msd");
    metrics.push_back("bc");
    command
        .add_option("--metric", metric_,
                    "msd (each run's from its own first selected step), bc "
                    "(bimodality coefficient), mean, std, skewness, kurtosis")
        ->check(CLI::IsMember(metrics))
        ->required();
    tensor_.AddTo(command);
    plot_.AddTo(command, "the band with each run's curve and onset");
    format_.AddTo(command, {"jsonl", "json", "csv", "table"}, "table");
  }

  // Every run of `model` the server holds, in its order (the main run first).
  static absl::StatusOr<std::vector<ModelKey>> Runs(Connection& connection,
                                                    const ModelKey& model) {
    pb::ListModelsRequest request;
    request.set_suite(model.suite);
    pb::ListModelsResponse response;
    RETURN_IF_ERROR(connection.Call(&Stub::ListModels, request, &response));
    std::vector<ModelKey> runs;
    for (const pb::ModelInfo& info : response.models()) {
      const pb::ModelRef& m = info.model();
      if (m.suite() == model.suite && m.size() == model.size && m.variant() == model.variant) {
        runs.push_back(ModelKey{m.suite(), m.size(), m.variant(), m.run()});
      }
    }
    if (runs.empty()) {
      return absl::NotFoundError(absl::StrCat("no run of ", model.Name(),
                                              " on the server (garden models lists "
                                              "what it holds)"));
    }
    return runs;
  }

  // One run's metric at each of its selected steps, and its onset.
  absl::Status Sweep(Connection& connection, const ModelKey& run,
                     std::map<int64_t, double>& metric, std::optional<int64_t>& onset) const {
    auto fill = [&](auto* request) -> absl::Status {
      RETURN_IF_ERROR(model_steps_.Fill(request));
      request->mutable_model()->set_run(run.run);
      request->set_tensor(tensor_.name);
      return absl::OkStatus();
    };
    pb::StreamBifurcationRequest bifurcation;
    RETURN_IF_ERROR(fill(&bifurcation));
    RETURN_IF_ERROR(connection.Stream(&Stub::StreamBifurcation, bifurcation)
                        .ReadAll([&](const pb::StreamBifurcationResponse& m) {
                          if (m.has_summary() && m.summary().has_onset()) {
                            onset = m.summary().onset();
                          }
                          if (m.has_step() && metric_ == "bc") {
                            metric[m.step().step()] = m.step().bc();
                          }
                        }));
    if (metric_ == "msd") {
      pb::StreamMSDRequest msd;
      RETURN_IF_ERROR(fill(&msd));
      msd.set_mode(pb::StreamMSDRequest::REFERENCE);
      return connection.Stream(&Stub::StreamMSD, msd)
          .ReadAll([&](const pb::StreamMSDResponse& m) {
            if (m.has_point()) metric[m.point().step()] = m.point().msd();
          });
    }
    if (metric_ == "bc") return absl::OkStatus();
    pb::StreamHistogramsRequest hist;
    RETURN_IF_ERROR(fill(&hist));
    hist.set_bins(1);  // only the moments are used
    return connection.Stream(&Stub::StreamHistograms, hist)
        .ReadAll([&](const pb::StreamHistogramsResponse& m) {
          if (m.has_frame()) metric[m.frame().step()] = Moment(m.frame(), metric_);
        });
  }

  ModelStepsOptions model_steps_;
  std::string metric_;
  TensorOption tensor_;
  PlotOption plot_;
};

}  // namespace

Commands DynamicsCommands() { return MakeCommands<Msd, Audit, Envelope>(); }

}  // namespace garden::client
