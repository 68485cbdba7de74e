// The paper's figures from what the garden commands collect, one row of
// panels per model (--compare adds rows, as the paper stacks the standard
// and deduplicated suites):
//   hist  -> density heatmap, x = step on a log(1 + step) axis, y = weight
//            value, colour = log density; with branches, the modes of the
//            smoothed density per step as points and the onset dashed
//            (Figure 2);
//   msd   -> the MSD curve with its peak dashed (Figure 3);
//   ppl   -> perplexity on linear and log axes side by side (Figure 4);
// and, one panel per step:
//   matrix    -> a block of a weight matrix, diverging colours on one
//                symmetric scale (Figure 1 B);
//   attention -> the attention matrix, tokens on both axes (Figure 1 C);
//   logits    -> the mean logit of every vocabulary id, one curve per step
//                (Figure 1 D, in one panel);
//   unmask    -> a line of text per prefix length (Figure 5).
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

// garden prune: one step's perplexity at each pruned fraction.
struct PruneCurve {
  int64_t step = 0;
  std::vector<double> fraction, perplexity;
};
// Perplexity against the fraction pruned, one curve per step (labelled
// "step N"), on linear and log axes side by side.
plot::Figure PruneFigure(const std::vector<PruneCurve>& curves,
                         const std::string& model, const std::string& dataset);

// A block of a matrix: rows [row_begin, row_begin + rows) and columns
// [col_begin, col_begin + cols), row-major.
struct MatrixPanel {
  std::string title;
  int64_t row_begin = 0, col_begin = 0, rows = 0, cols = 0;
  std::vector<double> values;
};

// The panels side by side on ONE symmetric diverging scale, +-max |value|
// over all panels (NaN and infinities left out), row 0 at the top; x is
// "column", y "row", in the matrix's own indices.
plot::Figure MatrixFigure(const std::vector<MatrixPanel>& panels,
                          const std::string& title);

// One attention response: weights[h][i][j], heads x tokens x tokens.
struct AttentionMap {
  int64_t step = 0;
  int64_t heads = 0, tokens = 0;
  std::vector<std::string> pieces;  // as the server spells them ("Ġthe")
  std::vector<double> weights;
};

// One panel per head (one when `averaged`), a row of them per step: query
// tokens down (row 0 at the top), key tokens across, viridis from 0 to 1.
plot::Figure AttentionFigure(const std::vector<AttentionMap>& maps,
                             const std::string& model, uint32_t layer,
                             bool averaged);

// One logits response: the mean logit of each id over the text's positions.
struct LogitsCurve {
  int64_t step = 0;
  std::vector<double> mean_logits;
};

// One panel: x = token id, y = mean logit, a curve per step (a legend with
// two or more).
plot::Figure LogitsFigure(const std::vector<LogitsCurve>& curves,
                          const std::string& model);

// One unmasking frame: the prefix, and the generated tokens' texts with
// whether each agrees with the original. When `generated` does not hold a
// text per `agree`, `generated_text` is shown whole, unmarked.
struct UnmaskLine {
  int64_t k = 0;
  std::string prefix;
  std::vector<std::string> generated;
  std::vector<bool> agree;
  std::string generated_text;
};

struct UnmaskStep {
  int64_t step = 0;
  std::vector<UnmaskLine> lines;  // in the order of the stream
};

// One panel per step, one text row "k=K" per frame: the prefix in black,
// the generated tokens in grey, those that agree with the original
// underlined.
plot::Figure UnmaskFigure(const std::vector<UnmaskStep>& steps,
                          const std::string& model);

// A byte-level BPE piece ("Ġthe", "Ċ") as the text it stands for (" the",
// "\n"); characters outside the byte alphabet are kept.
std::string DecodePiece(const std::string& piece);

// One model's values of one layers metric: per record its step, layer, kind.
struct LayerValue {
  int64_t step = 0;
  int64_t layer = -1;
  std::string kind;
  double value = 0;
};

struct LayerSeries {
  std::string model;  // a row of panels each
  std::vector<LayerValue> values;
};

// A heatmap of `metric` per matrix kind (a panel each, the kinds in the
// order first seen), layers down (the embeddings' -1 on top), the steps
// across (labelled, one column each), viridis between the metric's smallest
// and largest value over the whole figure; one row of panels per model.
plot::Figure LayersFigure(const std::vector<LayerSeries>& models, const std::string& metric);

// One matrix's empirical spectral density at one step, and its fit.
struct EsdAtStep {
  int64_t step = 0;
  std::vector<double> eigenvalues;
  std::optional<double> alpha, xmin;  // the power-law fit, when there is one
};

// The ESDs of one matrix on log-log axes (x = eigenvalue, y = density over
// 40 log-spaced bins, a point series per step) with each step's fitted
// power law as a line over its tail: density (k / n) (alpha - 1) / x_min
// (x / x_min)^-alpha, k the eigenvalues >= x_min of the n.
plot::Figure EsdFigure(const std::vector<EsdAtStep>& steps, const std::string& title);

// garden envelope: one metric across training runs.
struct EnvelopeBand {
  std::vector<double> step, mean, min, max, std;  // one per step
};
struct EnvelopeRun {
  std::string run;            // "seed3", "main"
  std::vector<double> x, y;   // the run's own curve
  std::optional<int64_t> onset;
};
// One panel, steps on a log(1 + step) axis: the min-max band, the mean +- std
// band, each run's curve (thin, labelled by run), the mean over them, and
// a dashed marker at each run's bifurcation onset ("onset RUN").
plot::Figure EnvelopeFigure(const EnvelopeBand& band, const std::vector<EnvelopeRun>& runs,
                            const std::string& model, const std::string& metric,
                            const std::string& tensor);

}  // namespace garden::client

#endif  // GARDEN_CLIENT_PLOT_FIGURES_H_
