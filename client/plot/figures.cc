#include "client/plot/figures.h"

#include "absl/strings/str_cat.h"

namespace garden::client {

using plot::Axis;
using plot::Figure;
using plot::Panel;
using plot::Scale;
using plot::Series;
using plot::VLine;

plot::Figure HistogramFigure(const std::vector<ModelSeries>& models,
                             const std::string& tensor) {
  Figure figure{.title = absl::StrCat(tensor, ": distribution over training")};
  for (const ModelSeries& m : models) {
    Panel& panel = figure.panels.emplace_back();
    panel.title = m.model;
    panel.x = {.label = "training step", .scale = Scale::kLog1p};
    panel.y = {.label = "weight value"};
    panel.heat = m.heat;
    if (!m.branch_steps.empty()) {
      panel.series.push_back({.label = "modes",
                              .x = m.branch_steps,
                              .y = m.branch_values,
                              .points = true,
                              .color = plot::Rgb{1, 0.25, 0.2}});
    }
    if (m.onset) {
      panel.vlines.push_back({.x = static_cast<double>(*m.onset),
                              .label = absl::StrCat("onset ", *m.onset)});
    }
  }
  return figure;
}

plot::Figure MsdFigure(const std::vector<ModelSeries>& models,
                       const std::string& tensor, const std::string& mode) {
  const bool lag = mode == "lag";
  Figure figure{.title = absl::StrCat(tensor, ": mean square displacement (",
                                      mode, ")")};
  for (const ModelSeries& m : models) {
    Panel& panel = figure.panels.emplace_back();
    panel.title = m.model;
    panel.x = {.label = lag ? "lag (steps)" : "training step",
               .scale = Scale::kLog1p};
    panel.y = {.label = lag ? "time-averaged MSD" : "MSD"};
    panel.series.push_back({.label = "MSD", .x = m.x, .y = m.y});
    if (m.peak_x) {
      panel.vlines.push_back(
          {.x = *m.peak_x,
           .label = absl::StrCat("peak ", static_cast<int64_t>(*m.peak_x))});
    }
  }
  return figure;
}

plot::Figure PerplexityFigure(const std::vector<ModelSeries>& models,
                              const std::string& dataset) {
  Figure figure{.title = absl::StrCat("perplexity on ", dataset),
                .columns = 2};
  for (const ModelSeries& m : models) {
    for (Scale y : {Scale::kLinear, Scale::kLog10}) {
      Panel& panel = figure.panels.emplace_back();
      panel.title = absl::StrCat(m.model, y == Scale::kLog10 ? " (log)" : "");
      panel.x = {.label = "training step", .scale = Scale::kLog1p};
      panel.y = {.label = "perplexity", .scale = y};
      panel.series.push_back({.label = "perplexity", .x = m.x, .y = m.y});
    }
  }
  return figure;
}

}  // namespace garden::client
