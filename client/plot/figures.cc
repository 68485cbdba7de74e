#include "client/plot/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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

plot::Figure PruneFigure(const std::vector<PruneCurve>& curves,
                         const std::string& model, const std::string& dataset) {
  Figure figure{.title = absl::StrCat(model, ": perplexity on ", dataset,
                                      " after magnitude pruning"),
                .columns = 2};
  for (Scale y : {Scale::kLinear, Scale::kLog10}) {
    Panel& panel = figure.panels.emplace_back();
    panel.title = y == Scale::kLog10 ? "log scale" : "linear scale";
    panel.x = {.label = "fraction of entries zeroed", .scale = Scale::kLinear};
    panel.y = {.label = "perplexity", .scale = y};
    for (const PruneCurve& c : curves) {
      panel.series.push_back({.label = absl::StrCat("step ", c.step),
                              .x = c.fraction,
                              .y = c.perplexity});
    }
  }
  return figure;
}

namespace {

// The panels' shape for square matrices.
constexpr double kMatrixPanel = 460;

// A token's label on an axis: its text, with control characters escaped.
std::string TokenLabel(const std::string& piece) {
  std::string out;
  for (char c : DecodePiece(piece)) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

// Appends code point `cp` as UTF-8.
void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xc0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xe0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    *out += static_cast<char>(0xf0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// GPT-2's byte alphabet: bytes printable in Latin-1 stand for themselves,
// the others for 256 + their rank among them.
bool SelfMapped(uint32_t b) {
  return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) ||
         (b >= 0xae && b <= 0xff);
}

}  // namespace

std::string DecodePiece(const std::string& piece) {
  // Code point -> byte for the remapped bytes.
  static const std::vector<int> remapped = [] {
    std::vector<int> table;
    for (uint32_t b = 0; b < 256; ++b) {
      if (!SelfMapped(b)) table.push_back(static_cast<int>(b));
    }
    return table;
  }();
  std::string out;
  size_t i = 0;
  while (i < piece.size()) {
    const unsigned char c = piece[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
                                                : (c >> 3) == 30 ? 4 : 1;
    if (i + len > piece.size()) len = 1;
    uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    bool valid = len > 1 || c < 0x80;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char d = piece[i + k];
      if ((d & 0xc0) != 0x80) valid = false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (!valid) {
      out += piece[i];
      ++i;
      continue;
    }
    if (cp < 256 && SelfMapped(cp)) {
      out += static_cast<char>(cp);
    } else if (cp >= 256 && cp < 256 + remapped.size()) {
      out += static_cast<char>(remapped[cp - 256]);
    } else {
      AppendUtf8(cp, &out);
    }
    i += len;
  }
  return out;
}

plot::Figure MatrixFigure(const std::vector<MatrixPanel>& panels,
                          const std::string& title) {
  double largest = 0;
  for (const MatrixPanel& p : panels) {
    for (double v : p.values) {
      if (std::isfinite(v)) largest = std::max(largest, std::abs(v));
    }
  }
  if (!(largest > 0)) largest = 1;
  Figure figure{.title = title,
                .columns = std::max(1, static_cast<int>(panels.size())),
                .panel_width = kMatrixPanel + 120,
                .panel_height = kMatrixPanel};
  for (const MatrixPanel& p : panels) {
    Panel& panel = figure.panels.emplace_back();
    panel.title = p.title;
    panel.x = {.label = "column"};
    panel.y = {.label = "row", .flipped = true};
    panel.image = plot::MatrixImage{
        .rows = p.rows,
        .cols = p.cols,
        .values = p.values,
        .row0 = static_cast<double>(p.row_begin),
        .col0 = static_cast<double>(p.col_begin),
        .vmin = -largest,
        .vmax = largest,
        .diverging = true,
        .colorbar_label = "weight value"};
  }
  return figure;
}

plot::Figure AttentionFigure(const std::vector<AttentionMap>& maps,
                             const std::string& model, uint32_t layer,
                             bool averaged) {
  int64_t columns = 1;
  for (const AttentionMap& m : maps) columns = std::max(columns, m.heads);
  Figure figure{
      .title = absl::StrCat(model, ": attention, layer ", layer,
                            averaged ? " (mean of the heads)" : ""),
      .columns = static_cast<int>(std::min<int64_t>(columns, 64)),
      .panel_width = kMatrixPanel + 120,
      .panel_height = kMatrixPanel + 40};
  for (const AttentionMap& m : maps) {
    std::vector<std::string> labels;
    for (const std::string& piece : m.pieces) labels.push_back(TokenLabel(piece));
    const int64_t n = m.tokens;
    for (int64_t h = 0; h < m.heads; ++h) {
      Panel& panel = figure.panels.emplace_back();
      panel.title = averaged ? absl::StrCat("step ", m.step)
                             : absl::StrCat("step ", m.step, ", head ", h);
      panel.x = {.label = "key token", .labels = labels};
      panel.y = {.label = "query token", .flipped = true, .labels = labels};
      plot::MatrixImage image{.rows = n,
                              .cols = n,
                              .vmin = 0,
                              .vmax = 1,
                              .diverging = false,
                              .colorbar_label = "attention weight"};
      const size_t begin = static_cast<size_t>(h * n * n);
      if (begin + n * n <= m.weights.size()) {
        image.values.assign(m.weights.begin() + begin,
                            m.weights.begin() + begin + n * n);
      } else {
        image.rows = image.cols = 0;  // a short response: nothing to show
      }
      panel.image = std::move(image);
    }
  }
  return figure;
}

plot::Figure LogitsFigure(const std::vector<LogitsCurve>& curves,
                          const std::string& model) {
  Figure figure{.title = absl::StrCat(model, ": mean logits over the text")};
  Panel& panel = figure.panels.emplace_back();
  panel.x = {.label = "token id"};
  panel.y = {.label = "mean logit"};
  for (const LogitsCurve& c : curves) {
    Series& s = panel.series.emplace_back();
    s.label = absl::StrCat("step ", c.step);
    s.y = c.mean_logits;
    s.x.resize(s.y.size());
    for (size_t i = 0; i < s.x.size(); ++i) s.x[i] = static_cast<double>(i);
  }
  return figure;
}

plot::Figure UnmaskFigure(const std::vector<UnmaskStep>& steps,
                          const std::string& model) {
  constexpr plot::Rgb kPrefix{0, 0, 0}, kGenerated{0.55, 0.55, 0.55};
  // Enough height for each frame's text at about 100 characters a line.
  size_t lines = 1;
  for (const UnmaskStep& s : steps) {
    size_t here = 0;
    for (const UnmaskLine& l : s.lines) {
      size_t chars = l.prefix.size() + l.generated_text.size();
      for (const std::string& g : l.generated) chars += g.size();
      if (!l.generated.empty()) chars -= l.generated_text.size();
      here += 1 + chars / 100;
    }
    lines = std::max(lines, here);
  }
  Figure figure{
      .title = absl::StrCat(model, ": causal unmasking"),
      .panel_width = 760,
      .panel_height = std::clamp(50.0 + 21.0 * lines, 150.0, 1e5)};
  for (const UnmaskStep& s : steps) {
    Panel& panel = figure.panels.emplace_back();
    panel.title = absl::StrCat("step ", s.step);
    for (const UnmaskLine& l : s.lines) {
      plot::TextRow& row = panel.text_rows.emplace_back();
      row.label = absl::StrCat("k=", l.k);
      row.runs.push_back({.text = l.prefix, .color = kPrefix});
      if (l.generated.size() == l.agree.size() && !l.generated.empty()) {
        for (size_t i = 0; i < l.generated.size(); ++i) {
          row.runs.push_back({.text = l.generated[i],
                              .color = kGenerated,
                              .marked = l.agree[i]});
        }
      } else {
        row.runs.push_back({.text = l.generated_text, .color = kGenerated});
      }
    }
  }
  return figure;
}

plot::Figure LayersFigure(const std::vector<LayerSeries>& models, const std::string& metric) {
  std::vector<std::string> kinds;
  std::vector<int64_t> steps, layers;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const LayerSeries& m : models) {
    for (const LayerValue& v : m.values) {
      if (std::find(kinds.begin(), kinds.end(), v.kind) == kinds.end()) kinds.push_back(v.kind);
      steps.push_back(v.step);
      layers.push_back(v.layer);
      if (std::isfinite(v.value)) {
        lo = std::min(lo, v.value);
        hi = std::max(hi, v.value);
      }
    }
  }
  const auto unique = [](std::vector<int64_t>& xs) {
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  };
  unique(steps);
  unique(layers);
  if (!(lo < hi)) {
    lo = std::isfinite(lo) ? lo - 0.5 : 0;
    hi = lo + 1;
  }
  std::vector<std::string> step_labels, layer_labels;
  for (int64_t s : steps) step_labels.push_back(absl::StrCat(s));
  for (int64_t l : layers) layer_labels.push_back(l < 0 ? "emb" : absl::StrCat(l));
  Figure figure{.title = metric,
                .columns = std::max(1, static_cast<int>(kinds.size())),
                .panel_width = 420,
                .panel_height = 120 + 22.0 * static_cast<double>(layers.size())};
  for (const LayerSeries& m : models) {
    for (const std::string& kind : kinds) {
      Panel& panel = figure.panels.emplace_back();
      panel.title = models.size() > 1 ? absl::StrCat(m.model, ": ", kind) : kind;
      panel.x = {.label = "step", .labels = step_labels};
      panel.y = {.label = "layer", .flipped = true, .labels = layer_labels};
      plot::MatrixImage image{.rows = static_cast<int64_t>(layers.size()),
                              .cols = static_cast<int64_t>(steps.size()),
                              .vmin = lo,
                              .vmax = hi,
                              .diverging = false,
                              .colorbar_label = metric};
      image.values.assign(layers.size() * steps.size(),
                          std::numeric_limits<double>::quiet_NaN());
      for (const LayerValue& v : m.values) {
        if (v.kind != kind) continue;
        const auto r = std::lower_bound(layers.begin(), layers.end(), v.layer) - layers.begin();
        const auto c = std::lower_bound(steps.begin(), steps.end(), v.step) - steps.begin();
        image.values[static_cast<size_t>(r) * steps.size() + static_cast<size_t>(c)] = v.value;
      }
      panel.image = std::move(image);
    }
  }
  return figure;
}

plot::Figure EsdFigure(const std::vector<EsdAtStep>& steps, const std::string& title) {
  constexpr int kBins = 40;
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const EsdAtStep& s : steps) {
    for (double l : s.eigenvalues) {
      if (l > 0 && std::isfinite(l)) {
        lo = std::min(lo, l);
        hi = std::max(hi, l);
      }
    }
  }
  Figure figure{.title = title};
  Panel& panel = figure.panels.emplace_back();
  panel.x = {.label = "eigenvalue of W^T W / N", .scale = Scale::kLog10};
  panel.y = {.label = "density", .scale = Scale::kLog10};
  if (!(lo < hi)) return figure;
  const double a = std::log10(lo), width = (std::log10(hi) - a) / kBins;
  for (size_t i = 0; i < steps.size(); ++i) {
    const EsdAtStep& s = steps[i];
    std::vector<double> counts(kBins, 0);
    double n = 0;
    for (double l : s.eigenvalues) {
      if (!(l > 0) || !std::isfinite(l)) continue;
      const int bin = std::clamp(static_cast<int>((std::log10(l) - a) / width), 0, kBins - 1);
      counts[bin] += 1;
      n += 1;
    }
    Series esd{.label = absl::StrCat("step ", s.step), .points = true, .color = plot::PaletteColor(i)};
    for (int b = 0; b < kBins; ++b) {
      if (counts[b] == 0) continue;
      const double left = std::pow(10, a + b * width), right = std::pow(10, a + (b + 1) * width);
      esd.x.push_back(std::sqrt(left * right));
      esd.y.push_back(counts[b] / (n * (right - left)));
    }
    panel.series.push_back(std::move(esd));
    if (s.alpha && s.xmin && *s.xmin > 0 && n > 0) {
      double k = 0, top = 0;
      for (double l : s.eigenvalues) {
        if (l >= *s.xmin) {
          k += 1;
          top = std::max(top, l);
        }
      }
      Series fit{.label = absl::StrCat("step ", s.step, " fit, alpha ",
                                       absl::StrFormat("%.2f", *s.alpha)),
                 .color = plot::PaletteColor(i)};
      for (int j = 0; j <= 20; ++j) {
        const double x = *s.xmin * std::pow(top / *s.xmin, j / 20.0);
        fit.x.push_back(x);
        fit.y.push_back(k / n * (*s.alpha - 1) / *s.xmin * std::pow(x / *s.xmin, -*s.alpha));
      }
      panel.series.push_back(std::move(fit));
    }
  }
  return figure;
}

plot::Figure EnvelopeFigure(const EnvelopeBand& band, const std::vector<EnvelopeRun>& runs,
                            const std::string& model, const std::string& metric,
                            const std::string& tensor) {
  Figure figure{.title = absl::StrCat(model, ": ", metric, " of ", tensor, " across ",
                                      runs.size(), " runs")};
  Panel& panel = figure.panels.emplace_back();
  panel.title = "min-max and mean +- std across runs";
  panel.x = {.label = "training step", .scale = Scale::kLog1p};
  panel.y = {.label = metric};
  const plot::Rgb band_color = plot::PaletteColor(0);
  panel.series.push_back(
      {.label = "min-max", .x = band.step, .y = band.max, .color = band_color,
       .y_low = band.min});
  std::vector<double> above, below;
  for (size_t i = 0; i < band.step.size(); ++i) {
    above.push_back(band.mean[i] + band.std[i]);
    below.push_back(band.mean[i] - band.std[i]);
  }
  // Darker, so that its swatch differs from the min-max one.
  panel.series.push_back({.label = "mean +- std",
                          .x = band.step,
                          .y = above,
                          .color = plot::Rgb{band_color.r * 0.6, band_color.g * 0.6,
                                             band_color.b * 0.6},
                          .y_low = below});
  for (size_t k = 0; k < runs.size(); ++k) {
    panel.series.push_back({.label = runs[k].run, .x = runs[k].x, .y = runs[k].y,
                            .color = plot::PaletteColor(k + 1)});
    if (runs[k].onset) {
      panel.vlines.push_back({.x = static_cast<double>(*runs[k].onset),
                              .label = absl::StrCat("onset ", runs[k].run)});
    }
  }
  panel.series.push_back({.label = "mean", .x = band.step, .y = band.mean,
                          .color = plot::Rgb{0.1, 0.1, 0.1}});
  return figure;
}

}  // namespace garden::client
