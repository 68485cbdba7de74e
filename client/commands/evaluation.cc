#include "client/commands/evaluation.h"

#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "client/commands/options.h"
#include "client/output/perplexity.h"
#include "client/plot/figures.h"
#include "common/base/status.h"

namespace garden::client {
namespace {

namespace pb = ::garden::v1;
using Stub = Connection::Stub;

class Perplexity : public Command {
 public:
  void Register(CLI::App& app) override {
    subcommand_ = app.add_subcommand(
        "ppl", "LAMBADA-style perplexity and accuracy at each step");
    address_.AddTo(*subcommand_);
    steps_.AddTo(*subcommand_);
    subcommand_
        ->add_option("--dataset", dataset_,
                     "a dataset name the server registered (garden datasets)")
        ->required();
    subcommand_->add_option("--limit", limit_,
                            "score the first N examples (default: all)");
    figure_.AddTo(*subcommand_);
    format_.AddTo(*subcommand_, {"jsonl", "json", "csv", "table"}, "table");
    // The perplexity stream carries no progress yet: accepted like the other
    // sweeps.
    progress_.AddTo(*subcommand_);
  }

  absl::Status Run(Connection& connection) override {
    ASSIGN_OR_RETURN(const std::vector<NamedModel> models,
                     figure_.Models(address_));
    pb::StreamPerplexityRequest request;
    ASSIGN_OR_RETURN(*request.mutable_steps(), steps_.Selection());
    request.set_dataset(dataset_);
    if (limit_) request.set_limit(*limit_);
    PerplexityRenderer renderer(format_.format(), models.size() > 1,
                                std::cout);
    std::vector<ModelSeries> figure;
    for (const NamedModel& model : models) {
      *request.mutable_model() = model.ref;
      ModelSeries& series = figure.emplace_back();
      series.model = model.name;
      auto stream = connection.Stream(&Stub::StreamPerplexity, request);
      pb::PerplexityPoint point;
      while (stream.Read(&point)) {
        series.x.push_back(static_cast<double>(point.step()));
        series.y.push_back(point.perplexity());
        renderer.Point(point, model.name);
      }
      RETURN_IF_ERROR(stream.Finish());
    }
    renderer.Finish();
    if (!figure_.drawing()) return absl::OkStatus();
    return figure_.Draw(PerplexityFigure(figure, dataset_));
  }

 private:
  AddressOptions address_;
  StepsOption steps_;
  std::string dataset_;
  std::optional<int64_t> limit_;
  FigureOptions figure_;
  FormatOption format_;
  ProgressOption progress_;
};

}  // namespace

std::unique_ptr<Command> PerplexityCommand() {
  return std::make_unique<Perplexity>();
}

}  // namespace garden::client
