// How well a model predicts over training: ppl (see commands.h).
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "client/commands/commands.h"
#include "client/output/perplexity.h"
#include "client/plot/figures.h"

namespace garden::client {
namespace {

class Perplexity : public Command {
 public:
  Perplexity()
      : Command("ppl", "LAMBADA-style perplexity and accuracy at each step") {}

  absl::Status Run(Connection& connection) override {
    PerplexityRenderer renderer(format_.format(), figure_.comparing(),
                                std::cout);
    ASSIGN_OR_RETURN(
        const std::vector<ModelSeries> figure,
        figure_.Sweep(
            model_steps_.address, [this] { return Request(); },
            [&](const pb::StreamPerplexityRequest& request,
                ModelSeries& series) {
              return connection.Stream(&Stub::StreamPerplexity, request)
                  .ReadAll([&](const pb::PerplexityPoint& point) {
                    series.x.push_back(static_cast<double>(point.step()));
                    series.y.push_back(point.perplexity());
                    renderer.Point(point, series.model);
                  });
            }));
    renderer.Finish();
    return figure_.Draw([&] { return PerplexityFigure(figure, dataset_); });
  }

 private:
  // The request for the main model (Sweep sets each model in turn).
  absl::StatusOr<pb::StreamPerplexityRequest> Request() const {
    pb::StreamPerplexityRequest request;
    RETURN_IF_ERROR(model_steps_.Fill(&request));
    request.set_dataset(dataset_);
    if (limit_) request.set_limit(*limit_);
    return request;
  }

  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command);
    command
        .add_option("--dataset", dataset_,
                    "a dataset name the server registered (garden datasets)")
        ->required();
    command.add_option("--limit", limit_,
                       "score the first N examples (default: all)");
    figure_.AddTo(command);
    format_.AddTo(command, {"jsonl", "json", "csv", "table"}, "table");
    // The perplexity stream carries no progress yet: accepted like the other
    // sweeps.
    progress_.AddTo(command);
  }

  ModelStepsOptions model_steps_;
  std::string dataset_;
  std::optional<int64_t> limit_;
  FigureOptions figure_;
  ProgressOption progress_;
};

}  // namespace

Commands EvaluationCommands() { return MakeCommands<Perplexity>(); }

}  // namespace garden::client
