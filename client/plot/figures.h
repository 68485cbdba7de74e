// The paper's figures from what the garden commands collect, one row of
// panels per model (--compare adds rows, as the paper stacks the standard
// and deduplicated suites):
//   hist  -> density heatmap, x = step on a log(1 + step) axis, y = weight
//            value, colour = log density; with branches, the modes of the
//            smoothed density per step as points and the onset dashed
//            (Figure 2);
//   msd   -> the MSD curve with its peak dashed (Figure 3);
//   ppl   -> perplexity on linear and log axes side by side (Figure 4).
#ifndef GARDEN_CLIENT_PLOT_FIGURES_H_
#define GARDEN_CLIENT_PLOT_FIGURES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "client/plot/plot.h"

namespace garden::client {

// What one model's stream gave, for its row of the figure.
struct ModelSeries {
  std::string model;  // "pythia-70m-deduped"
  // hist: one column per step.
  std::vector<plot::HeatColumn> heat;
  // hist --branches: every mode location at its step; the onset, if any.
  std::vector<double> branch_steps, branch_values;
  std::optional<int64_t> onset;
  // msd, ppl: the curve, and the peak to mark.
  std::vector<double> x, y;
  std::optional<double> peak_x;
};

plot::Figure HistogramFigure(const std::vector<ModelSeries>& models,
                             const std::string& tensor);
// `mode` is "reference", "consecutive" or "lag" (x is then the lag, on a
// log(1 + lag) axis like the steps).
plot::Figure MsdFigure(const std::vector<ModelSeries>& models,
                       const std::string& tensor, const std::string& mode);
plot::Figure PerplexityFigure(const std::vector<ModelSeries>& models,
                              const std::string& dataset);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_PLOT_FIGURES_H_
