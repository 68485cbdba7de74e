// How a tensor moves over training, and whether the steps can be trusted:
// msd, audit (see commands.h).
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/commands/commands.h"
#include "client/output/audit.h"
#include "client/output/msd.h"
#include "client/plot/figures.h"
#include "common/stats/analysis_defaults.h"

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

}  // namespace

Commands DynamicsCommands() { return MakeCommands<Msd, Audit>(); }

}  // namespace garden::client
