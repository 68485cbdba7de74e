#include "client/commands/dynamics.h"

#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/commands/options.h"
#include "client/output/audit.h"
#include "client/output/msd.h"
#include "client/plot/figures.h"
#include "common/base/status.h"
#include "common/stats/analysis_defaults.h"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;
using Stub = Connection::Stub;

class Msd : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ = app.add_subcommand(
        "msd", "mean square displacement of a tensor over training");
    address_.AddTo(*subcommand_);
    steps_.AddTo(*subcommand_);
    tensor_.AddTo(*subcommand_);
    subcommand_
        ->add_option("--mode", mode_,
                     "reference: to t0; consecutive: step to step; lag: "
                     "time-averaged over pairs tau apart (one point per tau)")
        ->check(CLI::IsMember({"reference", "consecutive", "lag"}))
        ->capture_default_str();
    exclude_.AddTo(*subcommand_);
    subcommand_->add_option(
        "--reference", reference_,
        "reference step t0 (default: the first selected step)");
    figure_.AddTo(*subcommand_);
    format_.AddTo(*subcommand_, {"jsonl", "json", "csv", "table"}, "table");
    // The MSD stream carries no progress yet: accepted like the other sweeps.
    progress_.AddTo(*subcommand_);
  }

  absl::Status Run(Connection& connection) override {
    ASSIGN_OR_RETURN(const std::vector<NamedModel> models,
                     figure_.Models(address_));
    pb::StreamMSDRequest request;
    ASSIGN_OR_RETURN(*request.mutable_steps(), steps_.Selection());
    request.set_tensor(tensor_.name);
    request.set_mode(mode_ == "consecutive" ? pb::StreamMSDRequest::CONSECUTIVE
                     : mode_ == "lag"       ? pb::StreamMSDRequest::LAG
                                            : pb::StreamMSDRequest::REFERENCE);
    if (reference_) request.set_reference_step(*reference_);
    request.set_exclude_flagged(exclude_.exclude);
    MsdRenderer renderer(format_.format(),
                         request.mode() == pb::StreamMSDRequest::LAG,
                         models.size() > 1, std::cout);
    std::vector<ModelSeries> figure;
    for (const NamedModel& model : models) {
      *request.mutable_model() = model.ref;
      ModelSeries& series = figure.emplace_back();
      series.model = model.name;
      renderer.BeginModel(model.name);
      auto stream = connection.Stream(&Stub::StreamMSD, request);
      pb::StreamMSDResponse message;
      while (stream.Read(&message)) {
        if (message.has_peak()) {
          renderer.Peak(message.peak());
          series.peak_x = static_cast<double>(message.peak().step());
          continue;
        }
        series.x.push_back(static_cast<double>(message.point().step()));
        series.y.push_back(message.point().msd());
        renderer.Point(message.point());
      }
      RETURN_IF_ERROR(stream.Finish());
      renderer.EndModel();
    }
    renderer.Finish();
    if (!figure_.drawing()) return absl::OkStatus();
    return figure_.Draw(MsdFigure(figure, tensor_.name, mode_));
  }

 private:
  AddressOptions address_;
  StepsOption steps_;
  TensorOption tensor_;
  std::string mode_ = "reference";
  ExcludeFlaggedOption exclude_;
  std::optional<int64_t> reference_;
  FigureOptions figure_;
  FormatOption format_;
  ProgressOption progress_;
};

class Audit : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ = app.add_subcommand(
        "audit",
        "identical steps, discontinuities and missing steps of a suite");
    address_.AddTo(*subcommand_);
    steps_.AddTo(*subcommand_);
    tensor_.AddTo(*subcommand_);
    subcommand_->add_flag("--all-tensors", all_tensors_,
                          "hash every float tensor, not only --tensor");
    subcommand_->add_option(
        "--z", z_,
        absl::StrCat("robust z of a discontinuity (default ", kDefaultAuditZ,
                     ")"));
    format_.AddTo(*subcommand_, {"json", "table"}, "table");
  }

  absl::Status Run(Connection& connection) override {
    pb::AuditRequest request;
    address_.Fill(request.mutable_model());
    ASSIGN_OR_RETURN(*request.mutable_steps(), steps_.Selection());
    request.set_tensor(tensor_.name);
    request.set_all_tensors(all_tensors_);
    if (z_) request.set_z_threshold(*z_);
    pb::AuditResponse response;
    RETURN_IF_ERROR(connection.Call(&Stub::Audit, request, &response));
    RenderAudit(response, format_.format(), std::cout);
    return absl::OkStatus();
  }

 private:
  AddressOptions address_;
  StepsOption steps_;
  TensorOption tensor_;
  bool all_tensors_ = false;
  std::optional<double> z_;
  FormatOption format_;
};

}  // namespace

std::unique_ptr<Command> MsdCommand() { return std::make_unique<Msd>(); }
std::unique_ptr<Command> AuditCommand() { return std::make_unique<Audit>(); }

}  // namespace garden::client
