// How well a model predicts over training: ppl, and prune, the
// sparsification experiment (see commands.h).
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/commands/commands.h"
#include "client/output/perplexity.h"
#include "client/output/prune.h"
#include "client/plot/figures.h"
#include "client/plot/plot.h"
#include "common/naming/names.h"

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
    return figure_.Draw([&] { return PerplexityFigure(figure, dataset_.name); });
  }

 private:
  // The request for the main model (Sweep sets each model in turn).
  absl::StatusOr<pb::StreamPerplexityRequest> Request() const {
    pb::StreamPerplexityRequest request;
    RETURN_IF_ERROR(model_steps_.Fill(&request));
    dataset_.Fill(&request);
    return request;
  }

  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command);
    dataset_.AddTo(command);
    figure_.AddTo(command);
    format_.AddTo(command, {"jsonl", "json", "csv", "table"}, "table");
    // The perplexity stream carries no progress yet: accepted like the other
    // sweeps.
    progress_.AddTo(command);
  }

  ModelStepsOptions model_steps_;
  DatasetOption dataset_;
  FigureOptions figure_;
  ProgressOption progress_;
};

// --fractions as the request carries them: 0 first, then the others in
// the order given (a 0 among them is not repeated). INVALID_ARGUMENT for
// text that is not a number; the server checks the range.
absl::StatusOr<std::vector<double>> ParseFractions(const std::string& text) {
  std::vector<double> out = {0};
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    double f = 0;
    if (!absl::SimpleAtod(item, &f)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--fractions \"", text, "\": \"", item,
          "\" is not a number (a comma-separated list in [0, 1))"));
    }
    if (f != 0) out.push_back(f);
  }
  return out;
}

class Prune : public Command {
 public:
  Prune()
      : Command("prune",
                "perplexity after zeroing the smallest-magnitude fraction of "
                "weights, per step and fraction") {}

  absl::Status Run(Connection& connection) override {
    // A bad plot path fails before any RPC, as ppl's does.
    RETURN_IF_ERROR(plot_.Check());
    pb::PruneRequest request;
    RETURN_IF_ERROR(model_steps_.Fill(&request));
    dataset_.Fill(&request);
    request.set_tensors(tensors_);
    ASSIGN_OR_RETURN(const std::vector<double> fractions, ParseFractions(fractions_));
    for (double f : fractions) request.add_fractions(f);
    PruneRenderer renderer(format_.format(), std::cout);
    std::vector<PruneCurve> curves;
    RETURN_IF_ERROR(connection.Stream(&Stub::StreamPrune, request)
                        .ReadAll([&](const pb::PrunePoint& point) {
                          renderer.Point(point);
                          if (curves.empty() || curves.back().step != point.step()) {
                            curves.push_back({.step = point.step()});
                          }
                          curves.back().fraction.push_back(point.fraction());
                          curves.back().perplexity.push_back(point.perplexity());
                        }));
    renderer.Finish();
    if (!plot_.drawing()) return absl::OkStatus();
    // Each curve left to right, whatever order --fractions gave.
    for (PruneCurve& c : curves) {
      std::map<double, double> sorted;
      for (size_t i = 0; i < c.fraction.size(); ++i) sorted[c.fraction[i]] = c.perplexity[i];
      c.fraction.clear();
      c.perplexity.clear();
      for (const auto& [f, ppl] : sorted) {
        c.fraction.push_back(f);
        c.perplexity.push_back(ppl);
      }
    }
    return plot::Render(PruneFigure(curves, ModelName(model_steps_.address), dataset_.name),
                        plot_.path);
  }

 private:
  void AddOptions(CLI::App& command) override {
    model_steps_.AddTo(command);
    dataset_.AddTo(command);
    command.add_option("--fractions", fractions_,
                       "fractions of each tensor's entries to zero, each in [0, 1), "
                       "comma-separated; 0 (the model as it is) always comes first")
        ->capture_default_str();
    command.add_option("--tensors", tensors_,
                       "RE2 regex matched anywhere in parameter names "
                       "(default: every 2-D weight, embeddings included)");
    plot_.AddTo(command, "perplexity against fraction, a curve per step,");
    format_.AddTo(command, {"jsonl", "json", "csv", "table"}, "table");
  }

  ModelStepsOptions model_steps_;
  DatasetOption dataset_;
  std::string fractions_ = "0.1,0.3,0.5,0.7,0.9";
  std::string tensors_;
  PlotOption plot_;
};

}  // namespace

Commands EvaluationCommands() { return MakeCommands<Perplexity, Prune>(); }

}  // namespace garden::client
