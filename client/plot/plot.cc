#include "client/plot/plot.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numbers>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status.h"
#include "common/base/utf8.h"

namespace garden::plot {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// --- Layout metrics, in figure units.
constexpr double kMargin = 10;
constexpr double kFigureTitleHeight = 34;
constexpr double kPlotLeft = 74;  // y tick labels and the y label
constexpr double kPlotRight = 22;
constexpr double kPlotTopTitled = 34;
constexpr double kPlotTop = 16;
constexpr double kPlotBottom = 52;  // x tick labels and the x label
constexpr double kColorbarGap = 14;
constexpr double kColorbarWidth = 14;
constexpr double kColorbarRight = 72;  // its tick labels and label
constexpr double kMinPanelWidth = 240, kMinPanelHeight = 150;
// Figure units per labelled tick along x (y), so that labels do not collide.
constexpr double kXLabelSpacing = 60, kYLabelSpacing = 45;
// Axis margin around points and markers, as a fraction of their extent.
constexpr double kPad = 0.04;

constexpr double kFigureTitleSize = 16, kTitleSize = 13, kLabelSize = 12,
                 kTickSize = 10.5, kSmallSize = 10;

// Heatmaps in SVGs are images of this many pixels a unit (a point).
constexpr double kSvgHeatScale = 3;

// cairo's image surfaces are at most this many pixels a side.
constexpr double kMaxPixels = 32767;

// --- Scales.

double Inverse(Scale scale, double t) {
  switch (scale) {
    case Scale::kLinear:
      return t;
    case Scale::kLog10:
      return std::pow(10.0, t);
    case Scale::kLog1p:
      return std::expm1(t);
  }
  return kNaN;
}

// Transformed units within which Inverse stays finite (and a little below).
std::pair<double, double> TransformLimits(Scale scale) {
  switch (scale) {
    case Scale::kLinear:
      return {-1e300, 1e300};
    case Scale::kLog10:
      return {-300, 300};
    case Scale::kLog1p:
      return {-700, 700};
  }
  return {0, 1};
}

// The extent of some values, in transformed units; empty when lo > hi.
struct Extent {
  double lo = kInf, hi = -kInf;
  void Add(double t) {
    if (!std::isfinite(t)) return;
    lo = std::min(lo, t);
    hi = std::max(hi, t);
  }
  void Add(const Extent& other) {
    Add(other.lo);
    Add(other.hi);
  }
  bool empty() const { return lo > hi; }
};

Extent Padded(Extent e, Scale scale) {
  if (e.empty()) return e;
  double pad = kPad * (e.hi - e.lo);
  if (pad == 0) {
    // One value: half a unit either side in transformed units, or a tenth
    // of the value on a linear axis, so that 1e-6 does not get a range of 1.
    pad = scale == Scale::kLinear && e.lo != 0 ? 0.1 * std::abs(e.lo) : 0.5;
  }
  e.lo -= pad;
  e.hi += pad;
  return e;
}

// The axis range: the explicit bounds where set, else the padded extent of
// points and markers joined with the exact extent of heatmap cells.
AxisRange ResolveAxis(const Axis& axis, const Extent& points,
                      const Extent& cells) {
  const Scale scale = axis.scale;
  Extent data = Padded(points, scale);
  data.Add(cells);
  if (data.empty()) {
    data = scale == Scale::kLog1p ? Extent{0, std::log1p(10.0)}
                                  : Extent{0, 1};
  }
  double lo = axis.min ? Transform(scale, *axis.min) : data.lo;
  double hi = axis.max ? Transform(scale, *axis.max) : data.hi;
  // One explicit bound beyond all the data: keep a unit of range.
  if (!(lo < hi)) {
    if (axis.min) {
      hi = lo + 1;
    } else {
      lo = hi - 1;
    }
  }
  const auto [limit_lo, limit_hi] = TransformLimits(scale);
  lo = std::clamp(lo, limit_lo, limit_hi);
  hi = std::clamp(hi, limit_lo, limit_hi);
  if (!(lo < hi)) hi = lo + 1;
  return AxisRange{scale, Inverse(scale, lo), Inverse(scale, hi)};
}

// --- Ticks.

bool Inside(double v, double lo, double hi) {
  const double slack = 1e-9 * (hi - lo);
  return v >= lo - slack && v <= hi + slack;
}

// "1.5e-05" -> "1.5e-5", "1e+06" -> "1e6".
std::string TidyExponent(std::string s) {
  const size_t e = s.find('e');
  if (e == std::string::npos) return s;
  std::string mantissa = s.substr(0, e);
  std::string exponent = s.substr(e + 1);
  bool negative = false;
  if (!exponent.empty() && (exponent[0] == '+' || exponent[0] == '-')) {
    negative = exponent[0] == '-';
    exponent.erase(0, 1);
  }
  exponent.erase(0, std::min(exponent.find_first_not_of('0'),
                             exponent.size() - 1));
  return absl::StrCat(mantissa, "e", negative ? "-" : "", exponent);
}

// A label for `v` on ticks `step` apart: no more digits than the step needs.
std::string LinearLabel(double v, double step, double max_abs) {
  if (std::abs(v) < 1e-9 * step) v = 0;  // no "-0"
  const int decimals =
      std::max(0, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  if (decimals <= 4 && max_abs < 1e6) {
    return absl::StrFormat("%.*f", decimals, v);
  }
  const int digits = std::clamp(
      static_cast<int>(std::floor(std::log10(max_abs)) -
                       std::floor(std::log10(step) + 1e-9)) + 1,
      1, 15);
  return TidyExponent(absl::StrFormat("%.*g", digits, v));
}

std::string DecadeLabel(int k) {
  if (k >= 0 && k <= 5) return absl::StrFormat("%.0f", std::pow(10.0, k));
  if (k < 0 && k >= -3) return absl::StrFormat("%.*f", -k, std::pow(10.0, k));
  return absl::StrCat("1e", k);
}

std::vector<Tick> LinearTicks(double lo, double hi, int max_labels) {
  const double span = hi - lo;
  if (!(span > 0) || !std::isfinite(span)) return {};
  const double raw = span / std::max(1, max_labels);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * magnitude;
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  const double first = std::ceil(lo / step - 1e-9);
  const double last = std::floor(hi / step + 1e-9);
  if (!(last - first <= 10.0 * max_labels + 10)) return {};  // step underflow
  const double max_abs = std::max(std::abs(lo), std::abs(hi));
  std::vector<Tick> ticks;
  for (double k = first; k <= last; ++k) {
    const double v = k * step;
    ticks.push_back({v, LinearLabel(v, step, max_abs)});
  }
  return ticks;
}

// Labelled decades 10^k for k in [k_lo, k_hi], every `stride`-th when there
// are many, and unlabelled ticks at the others and at 2..9 x 10^k.
std::vector<Tick> DecadeTicks(int k_lo, int k_hi, double lo, double hi,
                              int max_labels) {
  const int count = k_hi - k_lo + 1;
  const int stride = (count + max_labels - 1) / std::max(1, max_labels);
  std::vector<Tick> ticks;
  for (int k = k_lo - 1; k <= k_hi; ++k) {
    const double decade = std::pow(10.0, k);
    if (k >= k_lo) {
      const bool labelled = ((k % stride) + stride) % stride == 0;
      ticks.push_back({decade, labelled ? DecadeLabel(k) : ""});
    }
    if (stride > 1) continue;
    for (int m = 2; m <= 9; ++m) {
      if (Inside(m * decade, lo, hi)) ticks.push_back({m * decade, ""});
    }
  }
  return ticks;
}

std::vector<Tick> Log10Ticks(double lo, double hi, int max_labels) {
  if (!(lo > 0)) return {};
  const int k_lo = static_cast<int>(std::ceil(std::log10(lo) - 1e-9));
  const int k_hi = static_cast<int>(std::floor(std::log10(hi) + 1e-9));
  if (k_hi - k_lo + 1 < 2) return LinearTicks(lo, hi, max_labels);
  return DecadeTicks(k_lo, k_hi, lo, hi, max_labels);
}

std::vector<Tick> Log1pTicks(double lo, double hi, int max_labels) {
  const bool zero = Inside(0, lo, hi);
  if (hi < 1) return LinearTicks(lo, hi, max_labels);
  const int k_lo = lo <= 1 ? 0 : static_cast<int>(std::ceil(std::log10(lo) - 1e-9));
  const int k_hi = static_cast<int>(std::floor(std::log10(hi) + 1e-9));
  // "0, 1" (or "100") alone says little: count plain numbers instead.
  if (k_hi - k_lo + 1 + (zero ? 1 : 0) < 3) {
    return LinearTicks(lo, hi, max_labels);
  }
  std::vector<Tick> ticks;
  if (zero) ticks.push_back({0, "0"});
  for (Tick& tick :
       DecadeTicks(k_lo, k_hi, lo, hi, max_labels - (zero ? 1 : 0))) {
    // Between 0 and 1 the axis is nearly linear: no minor ticks there.
    if (tick.value >= 1) ticks.push_back(std::move(tick));
  }
  return ticks;
}

// --- Colours.

constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kWhite{1, 1, 1};
constexpr Rgb kGrid{0.9, 0.9, 0.9};
constexpr Rgb kMarker{0.2, 0.2, 0.2};

constexpr Rgb Hex(uint32_t rgb) {
  return Rgb{((rgb >> 16) & 0xff) / 255.0, ((rgb >> 8) & 0xff) / 255.0,
             (rgb & 0xff) / 255.0};
}

// Eleven samples of viridis, evenly spaced; linear in between.
constexpr std::array<Rgb, 11> kHeatStops = {
    Hex(0x440154), Hex(0x482475), Hex(0x414487), Hex(0x355f8d),
    Hex(0x2a788e), Hex(0x21918c), Hex(0x22a884), Hex(0x44bf70),
    Hex(0x7ad151), Hex(0xbddf26), Hex(0xfde725)};

// matplotlib's RdBu_r at eleven points, white in the middle.
constexpr std::array<Rgb, 11> kDivergingStops = {
    Hex(0x053061), Hex(0x2166ac), Hex(0x4393c3), Hex(0x92c5de),
    Hex(0xd1e5f0), Hex(0xffffff), Hex(0xfddbc7), Hex(0xf4a582),
    Hex(0xd6604d), Hex(0xb2182b), Hex(0x67001f)};

constexpr std::array<Rgb, 10> kPalette = {
    Hex(0x1f77b4), Hex(0xff7f0e), Hex(0x2ca02c), Hex(0xd62728),
    Hex(0x9467bd), Hex(0x8c564b), Hex(0xe377c2), Hex(0x7f7f7f),
    Hex(0xbcbd22), Hex(0x17becf)};

// --- Heatmap geometry.

// A heatmap column's extent along x, in transformed units.
struct ColumnSpan {
  const HeatColumn* column;
  double left, right;
};

bool Usable(const HeatColumn& c, Scale x_scale) {
  return std::isfinite(Transform(x_scale, c.x)) && std::isfinite(c.lo) &&
         std::isfinite(c.hi) && c.lo < c.hi && !c.counts.empty();
}

// Columns sorted along x, each reaching halfway to its neighbours (the ends
// as far out as inwards). A lone column gets left == right: it fills the
// axis, which is only known later.
std::vector<ColumnSpan> ColumnSpans(const std::vector<HeatColumn>& heat,
                                    Scale x_scale) {
  std::vector<std::pair<double, const HeatColumn*>> sorted;
  for (const HeatColumn& c : heat) {
    if (Usable(c, x_scale)) sorted.emplace_back(Transform(x_scale, c.x), &c);
  }
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<ColumnSpan> spans;
  const size_t n = sorted.size();
  for (size_t i = 0; i < n; ++i) {
    const double t = sorted[i].first;
    double left = t, right = t;
    if (n > 1) {
      const double before = i > 0 ? (t - sorted[i - 1].first) / 2
                                  : (sorted[1].first - t) / 2;
      const double after = i + 1 < n ? (sorted[i + 1].first - t) / 2
                                     : (t - sorted[n - 2].first) / 2;
      left = t - before;
      right = t + after;
    }
    spans.push_back({sorted[i].second, left, right});
  }
  return spans;
}

// Lower edge of bin j of a column.
double BinEdge(const HeatColumn& c, size_t j) {
  const size_t bins = c.counts.size();
  if (j == bins) return c.hi;
  return c.lo + (c.hi - c.lo) * static_cast<double>(j) / bins;
}

// The column's value range in y's transformed units, from its lowest edge
// the scale can show.
Extent ColumnYExtent(const HeatColumn& c, Scale y_scale) {
  Extent e;
  e.Add(Transform(y_scale, c.hi));
  for (size_t j = 0; j < c.counts.size(); ++j) {
    const double t = Transform(y_scale, BinEdge(c, j));
    if (std::isfinite(t)) {
      e.Add(t);
      break;
    }
  }
  return e;
}

// A bin's log10 density, or NaN when it is empty.
double LogDensity(const HeatColumn& c, size_t j, double total) {
  const double count = c.counts[j];
  if (!(count > 0) || !std::isfinite(count) || !(total > 0)) return kNaN;
  const double width = (c.hi - c.lo) / c.counts.size();
  return std::log10(count / (total * width));
}

double ColumnTotal(const HeatColumn& c) {
  double total = 0;
  for (double count : c.counts) {
    if (count > 0 && std::isfinite(count)) total += count;
  }
  return total;
}

// --- Validation.

const char* ScaleDomain(Scale scale) {
  switch (scale) {
    case Scale::kLinear:
      return "a linear axis (needs a finite value)";
    case Scale::kLog10:
      return "a log10 axis (needs > 0)";
    case Scale::kLog1p:
      return "a log1p axis (needs > -1)";
  }
  return "";
}

absl::Status CheckAxis(const Axis& axis, const std::string& where) {
  for (const auto& [bound, name] :
       {std::pair{axis.min, "min"}, std::pair{axis.max, "max"}}) {
    if (bound && !std::isfinite(Transform(axis.scale, *bound))) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " ", name, " ", *bound, " cannot be shown on ",
                       ScaleDomain(axis.scale)));
    }
  }
  if (axis.min && axis.max && !(*axis.min < *axis.max)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, " min ", *axis.min, " is not below max ", *axis.max));
  }
  return absl::OkStatus();
}

std::string PanelName(const Panel& panel, size_t index) {
  return panel.title.empty()
             ? absl::StrCat("panel ", index)
             : absl::StrCat("panel ", index, " (\"", panel.title, "\")");
}

absl::Status CheckFigure(const Figure& figure) {
  if (figure.columns < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("figure columns must be >= 1, got ", figure.columns));
  }
  if (!(figure.panel_width >= kMinPanelWidth &&
        figure.panel_height >= kMinPanelHeight &&
        figure.panel_width <= 1e5 && figure.panel_height <= 1e5)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "panel size ", figure.panel_width, "x", figure.panel_height,
        " is outside ", kMinPanelWidth, "x", kMinPanelHeight, " to 1e5x1e5"));
  }
  if (!(figure.png_scale > 0 && figure.png_scale <= 16)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "png_scale must be in (0, 16], got ", figure.png_scale));
  }
  for (size_t i = 0; i < figure.panels.size(); ++i) {
    const Panel& panel = figure.panels[i];
    const std::string name = PanelName(panel, i);
    if (absl::Status s = CheckAxis(panel.x, name + " x axis"); !s.ok()) return s;
    if (absl::Status s = CheckAxis(panel.y, name + " y axis"); !s.ok()) return s;
    if (!(panel.heat_decades > 0 && panel.heat_decades <= 300)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " heat_decades must be in (0, 300], got ", panel.heat_decades));
    }
    for (const Series& s : panel.series) {
      if (s.x.size() != s.y.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, " series \"", s.label, "\" has ", s.x.size(), " x and ",
            s.y.size(), " y values"));
      }
      if (!s.y_low.empty() && s.y_low.size() != s.x.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, " band \"", s.label, "\" has ", s.x.size(), " x and ",
            s.y_low.size(), " y_low values"));
      }
    }
    if (panel.image) {
      const MatrixImage& m = *panel.image;
      if (m.rows < 0 || m.cols < 0 || m.rows > 1e8 || m.cols > 1e8 ||
          static_cast<double>(m.rows) * m.cols != m.values.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, " image is ", m.rows, "x", m.cols, " but has ",
            m.values.size(), " values"));
      }
      if (!(std::isfinite(m.vmin) && std::isfinite(m.vmax) && m.vmin < m.vmax)) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, " image vmin ", m.vmin, " must be below vmax ", m.vmax,
            ", both finite"));
      }
      if (!std::isfinite(m.row0) || !std::isfinite(m.col0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, " image corner (", m.row0, ", ", m.col0, ") is not finite"));
      }
    }
  }
  return absl::OkStatus();
}

// --- Text measurement, for the layout (labels, text rows) and drawing.

void SetFont(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

// `text` with bytes that are not UTF-8 replaced by '?': cairo refuses such
// strings and stays in error for the rest of the figure.
std::string ValidUtf8(const std::string& text) {
  return ReplaceInvalidUtf8(text, "?");
}

double TextWidth(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t extents;
  cairo_text_extents(cr, ValidUtf8(text).c_str(), &extents);
  return extents.x_advance;
}

// A scratch cairo context to measure text with, as drawing will.
class Measurer {
 public:
  Measurer()
      : surface_(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1),
                 &cairo_surface_destroy),
        cr_(cairo_create(surface_.get()), &cairo_destroy) {}
  cairo_t* cr() const { return cr_.get(); }
  double Width(const std::string& text, double size) {
    SetFont(cr(), size);
    return TextWidth(cr(), text);
  }

 private:
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface_;
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr_;
};

// At most kMaxLabelChars characters (UTF-8), cut with "…".
std::string CutLabel(const std::string& text) {
  size_t chars = 0, cut = std::string::npos;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) == 0x80) continue;
    if (chars == kMaxLabelChars - 1) cut = i;
    if (++chars > kMaxLabelChars) return text.substr(0, cut) + "\u2026";
  }
  return text;
}

// Control characters (a newline in a token) as spaces: one line each.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return text;
}

constexpr double kTextSize = 11, kTextLine = 16, kTextRowGap = 5;
constexpr double kTextLabelGap = 10;

// Places the text rows within `box`, wrapping at spaces; lines below the
// box are left out.
std::vector<PlacedText> PlaceText(const std::vector<TextRow>& rows,
                                  const Rect& box) {
  std::vector<PlacedText> placed;
  if (rows.empty()) return placed;
  Measurer m;
  SetFont(m.cr(), kTextSize);
  cairo_font_extents_t font;
  cairo_font_extents(m.cr(), &font);
  double label_width = 0;
  for (const TextRow& row : rows) {
    label_width = std::max(label_width, TextWidth(m.cr(), OneLine(row.label)));
  }
  const double start =
      box.x + (label_width > 0 ? label_width + kTextLabelGap : 0);
  const double right = box.x + box.width;
  const double bottom = box.y + box.height;
  double top = box.y;
  for (size_t r = 0; r < rows.size(); ++r) {
    const TextRow& row = rows[r];
    double baseline = top + font.ascent;
    if (baseline + font.descent > bottom) break;
    if (!row.label.empty()) {
      const std::string label = OneLine(row.label);
      placed.push_back({r, PlacedText::kRowLabel, label, box.x, baseline,
                        TextWidth(m.cr(), label), Rgb{0, 0, 0}, false});
    }
    double x = start;
    bool fits = true;
    for (size_t k = 0; k < row.runs.size() && fits; ++k) {
      const TextRun& run = row.runs[k];
      const std::string text = OneLine(run.text);
      // Words: leading spaces with what follows, up to the next space.
      size_t i = 0;
      while (i < text.size() && fits) {
        size_t j = i;
        while (j < text.size() && text[j] == ' ') ++j;
        while (j < text.size() && text[j] != ' ') ++j;
        std::string word = text.substr(i, j - i);
        i = j;
        double w = TextWidth(m.cr(), word);
        if (x + w > right && x > start) {
          baseline += kTextLine;
          if (baseline + font.descent > bottom) {
            fits = false;
            break;
          }
          x = start;
          word.erase(0, word.find_first_not_of(' '));
          if (word.empty()) continue;
          w = TextWidth(m.cr(), word);
        }
        PlacedText* last = placed.empty() ? nullptr : &placed.back();
        if (last != nullptr && last->row == r && last->run == k &&
            last->baseline == baseline) {
          last->text += word;
          last->width += w;
        } else {
          placed.push_back({r, k, word, x, baseline, w, run.color, run.marked});
        }
        x += w;
      }
    }
    if (!fits) break;
    top = baseline + font.descent + kTextRowGap;
  }
  return placed;
}

struct LabelSize {
  double widest = 0;  // figure units, at kTickSize
  double box = 0;     // the font's ascent + descent
};

LabelSize MeasureLabels(const std::vector<std::string>& labels) {
  LabelSize size;
  if (labels.empty()) return size;
  Measurer m;
  SetFont(m.cr(), kTickSize);
  cairo_font_extents_t font;
  cairo_font_extents(m.cr(), &font);
  size.box = font.ascent + font.descent;
  for (const std::string& label : labels) {
    size.widest = std::max(size.widest, TextWidth(m.cr(), CutLabel(OneLine(label))));
  }
  return size;
}

// Label i at i + 0.5, every `stride`-th, those inside the range.
std::vector<Tick> CategoryTicks(const std::vector<std::string>& labels,
                                const AxisRange& range, size_t stride) {
  std::vector<Tick> ticks;
  for (size_t i = 0; i < labels.size(); i += std::max<size_t>(1, stride)) {
    const double v = i + 0.5;
    if (!Inside(v, range.min, range.max)) continue;
    ticks.push_back({v, CutLabel(OneLine(labels[i]))});
  }
  return ticks;
}

// How many labels `need` units apart fit in cells `cell` units wide: every
// stride-th.
size_t Stride(double need, double cell) {
  if (!(cell > 0) || !std::isfinite(cell)) return 1;
  const double s = std::ceil(need / cell - 1e-9);
  return s >= 1 && s < 1e9 ? static_cast<size_t>(s) : 1;
}

bool HasData(const Panel& panel) {
  return !panel.series.empty() || !panel.heat.empty() ||
         !panel.vlines.empty() || panel.image.has_value();
}

PanelLayout LayOutPanel(const Panel& panel, const Rect& cell) {
  PanelLayout layout;
  layout.cell = cell;
  const double top = panel.title.empty() ? kPlotTop : kPlotTopTitled;
  if (!panel.text_rows.empty() && !HasData(panel)) {
    // Text only: no axes, the text below the title.
    layout.axes = false;
    layout.plot = Rect{cell.x + 12, cell.y + top, cell.width - 24,
                       cell.height - top - 8};
    layout.text = PlaceText(panel.text_rows, layout.plot);
    return layout;
  }
  const bool heat = !panel.heat.empty();
  const bool bar = heat || panel.image.has_value();
  layout.x_flipped = panel.x.flipped;
  layout.y_flipped = panel.y.flipped;

  Extent x_points, y_points, x_cells, y_cells;
  for (const Series& s : panel.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double tx = Transform(panel.x.scale, s.x[i]);
      const double ty = Transform(panel.y.scale, s.y[i]);
      if (std::isfinite(tx) && std::isfinite(ty)) {
        x_points.Add(tx);
        y_points.Add(ty);
      }
      if (i < s.y_low.size()) {
        const double tlow = Transform(panel.y.scale, s.y_low[i]);
        if (std::isfinite(tx) && std::isfinite(tlow)) y_points.Add(tlow);
      }
    }
  }
  for (const VLine& v : panel.vlines) x_points.Add(Transform(panel.x.scale, v.x));
  const std::vector<ColumnSpan> spans = ColumnSpans(panel.heat, panel.x.scale);
  if (spans.size() == 1) {
    x_points.Add(spans[0].left);
  } else if (!spans.empty()) {
    x_cells.Add(spans.front().left);
    x_cells.Add(spans.back().right);
  }
  for (const ColumnSpan& span : spans) {
    y_cells.Add(ColumnYExtent(*span.column, panel.y.scale));
  }
  if (panel.image && panel.image->rows > 0 && panel.image->cols > 0) {
    const MatrixImage& m = *panel.image;
    x_cells.Add(Transform(panel.x.scale, m.col0));
    x_cells.Add(Transform(panel.x.scale, m.col0 + m.cols));
    y_cells.Add(Transform(panel.y.scale, m.row0));
    y_cells.Add(Transform(panel.y.scale, m.row0 + m.rows));
  }
  if (!panel.x.labels.empty()) {
    x_cells.Add(Transform(panel.x.scale, 0));
    x_cells.Add(Transform(panel.x.scale, panel.x.labels.size()));
  }
  if (!panel.y.labels.empty()) {
    y_cells.Add(Transform(panel.y.scale, 0));
    y_cells.Add(Transform(panel.y.scale, panel.y.labels.size()));
  }
  layout.x = ResolveAxis(panel.x, x_points, x_cells);
  layout.y = ResolveAxis(panel.y, y_points, y_cells);

  // Margins: room for categorical labels.
  const LabelSize x_size = MeasureLabels(panel.x.labels);
  const LabelSize y_size = MeasureLabels(panel.y.labels);
  const double left = std::min(std::max(kPlotLeft, 7 + y_size.widest + 28),
                               cell.width / 3);
  const double right =
      bar ? kColorbarGap + kColorbarWidth + kColorbarRight : kPlotRight;
  const double width = cell.width - left - right;
  // A category's width on the page (categorical axes are linear in
  // practice; elsewhere the cell at the axis start).
  auto cell_size = [](const AxisRange& r, double length) {
    return length * std::abs(r.Fraction(r.min + 1) - r.Fraction(r.min));
  };
  double bottom = kPlotBottom;
  if (!panel.x.labels.empty()) {
    const double cw = cell_size(layout.x, width);
    layout.x_ticks_vertical = x_size.widest + 4 > cw;
    if (layout.x_ticks_vertical) {
      bottom = std::min(std::max(kPlotBottom, 7 + x_size.widest + 30),
                        cell.height / 3);
    }
  }
  layout.plot = Rect{cell.x + left, cell.y + top, width,
                     cell.height - top - bottom};
  if (bar) {
    layout.colorbar = Rect{layout.plot.x + layout.plot.width + kColorbarGap,
                           layout.plot.y, kColorbarWidth, layout.plot.height};
  }
  const int x_labels =
      std::max(2, static_cast<int>(layout.plot.width / kXLabelSpacing));
  const int y_labels =
      std::max(2, static_cast<int>(layout.plot.height / kYLabelSpacing));
  if (panel.x.labels.empty()) {
    layout.x_ticks = Ticks(layout.x.scale, layout.x.min, layout.x.max, x_labels);
  } else {
    const double need =
        layout.x_ticks_vertical ? x_size.box + 2 : x_size.widest + 8;
    layout.x_ticks = CategoryTicks(
        panel.x.labels, layout.x,
        Stride(need, cell_size(layout.x, layout.plot.width)));
  }
  if (panel.y.labels.empty()) {
    layout.y_ticks = Ticks(layout.y.scale, layout.y.min, layout.y.max, y_labels);
  } else {
    layout.y_ticks = CategoryTicks(
        panel.y.labels, layout.y,
        Stride(y_size.box + 2, cell_size(layout.y, layout.plot.height)));
  }
  if (panel.image) {
    layout.colorbar_min = panel.image->vmin;
    layout.colorbar_max = panel.image->vmax;
    layout.colorbar_ticks =
        Ticks(Scale::kLinear, panel.image->vmin, panel.image->vmax,
              std::max(2, std::min(6, y_labels)));
  }
  layout.text = PlaceText(panel.text_rows, layout.plot);
  return layout;
}

// --- Drawing.

using CairoPtr = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;
using SurfacePtr =
    std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;

void SetColor(cairo_t* cr, const Rgb& c, double alpha = 1) {
  cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

// Draws `text` with its anchor at (x, y): `h` 0 left, 0.5 centre, 1 right;
// `v` 0 top, 0.5 middle, 1 bottom of the font's ascent..descent box.
void DrawText(cairo_t* cr, const std::string& text, double x, double y,
              double h, double v) {
  if (text.empty()) return;
  cairo_font_extents_t font;
  cairo_font_extents(cr, &font);
  const double box = font.ascent + font.descent;
  cairo_move_to(cr, x - h * TextWidth(cr, text), y - v * box + font.ascent);
  cairo_show_text(cr, ValidUtf8(text).c_str());
}

// The same, turned a quarter anticlockwise (reading upwards), centred at
// (x, y).
void DrawTextUp(cairo_t* cr, const std::string& text, double x, double y) {
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, -std::numbers::pi / 2);
  DrawText(cr, text, 0, 0, 0.5, 0.5);
  cairo_restore(cr);
}

// Page position of a transformed value on an axis running from a to b.
double Along(const AxisRange& axis, double t, double a, double b) {
  const double t0 = Transform(axis.scale, axis.min);
  const double t1 = Transform(axis.scale, axis.max);
  return a + (t - t0) / (t1 - t0) * (b - a);
}

// The same along a panel's x (y) axis, flipped as it is.
double XAlong(const PanelLayout& layout, double t) {
  const Rect& plot = layout.plot;
  return layout.x_flipped ? Along(layout.x, t, plot.x + plot.width, plot.x)
                          : Along(layout.x, t, plot.x, plot.x + plot.width);
}
double YAlong(const PanelLayout& layout, double t) {
  const Rect& plot = layout.plot;
  return layout.y_flipped ? Along(layout.y, t, plot.y, plot.y + plot.height)
                          : Along(layout.y, t, plot.y + plot.height, plot.y);
}

// Keeps far-off coordinates within cairo's fixed-point range; the clip
// hides them anyway.
double Tame(double v, const Rect& plot) {
  const double reach = 1e4 + 4 * std::max(plot.width, plot.height);
  return std::clamp(v, std::min(plot.x, plot.y) - reach,
                    std::max(plot.x + plot.width, plot.y + plot.height) + reach);
}

void ClipTo(cairo_t* cr, const Rect& r) {
  cairo_rectangle(cr, r.x, r.y, r.width, r.height);
  cairo_clip(cr);
}

// The densest bin's log10 density over all columns; -inf when all are empty.
double MaxLogDensity(const std::vector<ColumnSpan>& spans) {
  double best = -kInf;
  for (const ColumnSpan& span : spans) {
    const double total = ColumnTotal(*span.column);
    for (size_t j = 0; j < span.column->counts.size(); ++j) {
      const double v = LogDensity(*span.column, j, total);
      if (std::isfinite(v)) best = std::max(best, v);
    }
  }
  return best;
}

void DrawHeatCells(cairo_t* cr, const Panel& panel, const PanelLayout& layout,
                   const std::vector<ColumnSpan>& spans, double v_max) {
  const Rect& plot = layout.plot;
  const double v_min = v_max - panel.heat_decades;
  cairo_save(cr);
  ClipTo(cr, plot);
  // Neighbouring cells share edges: antialiasing would show seams there.
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
  const double x_lo = Transform(layout.x.scale, layout.x.min);
  const double x_hi = Transform(layout.x.scale, layout.x.max);
  const bool alone = spans.size() == 1;
  for (const ColumnSpan& span : spans) {
    const double left = Tame(XAlong(layout, alone ? x_lo : span.left), plot);
    const double right = Tame(XAlong(layout, alone ? x_hi : span.right), plot);
    const HeatColumn& c = *span.column;
    const double total = ColumnTotal(c);
    for (size_t j = 0; j < c.counts.size(); ++j) {
      const double v = LogDensity(c, j, total);
      const double top_t = Transform(layout.y.scale, BinEdge(c, j + 1));
      if (!std::isfinite(v) || !std::isfinite(top_t)) continue;
      double bottom_t = Transform(layout.y.scale, BinEdge(c, j));
      if (!std::isfinite(bottom_t)) bottom_t = -kInf;  // below a log axis
      const double axis_bottom =
          layout.y_flipped ? plot.y : plot.y + plot.height;
      const double top = Tame(YAlong(layout, top_t), plot);
      const double bottom = std::isfinite(bottom_t)
                                ? Tame(YAlong(layout, bottom_t), plot)
                                : axis_bottom;
      SetColor(cr, HeatColor((v - v_min) / panel.heat_decades));
      cairo_rectangle(cr, std::min(left, right), std::min(top, bottom),
                      std::abs(right - left), std::abs(bottom - top));
      cairo_fill(cr);
    }
  }
  cairo_restore(cr);
}

// A matrix image's cells, each a rectangle between its edges' page
// positions; NaN cells and cells off the scales are skipped.
void DrawMatrixCells(cairo_t* cr, const MatrixImage& m,
                     const PanelLayout& layout) {
  if (m.rows <= 0 || m.cols <= 0) return;
  std::vector<double> xs(m.cols + 1), ys(m.rows + 1);
  for (int64_t c = 0; c <= m.cols; ++c) {
    xs[c] = Tame(layout.PageX(m.col0 + c), layout.plot);
  }
  for (int64_t r = 0; r <= m.rows; ++r) {
    ys[r] = Tame(layout.PageY(m.row0 + r), layout.plot);
  }
  cairo_save(cr);
  ClipTo(cr, layout.plot);
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
  for (int64_t r = 0; r < m.rows; ++r) {
    if (!std::isfinite(ys[r]) || !std::isfinite(ys[r + 1])) continue;
    for (int64_t c = 0; c < m.cols; ++c) {
      const double v = m.values[r * m.cols + c];
      if (std::isnan(v) || !std::isfinite(xs[c]) || !std::isfinite(xs[c + 1])) {
        continue;
      }
      SetColor(cr, MatrixColor(m, v));
      cairo_rectangle(cr, std::min(xs[c], xs[c + 1]), std::min(ys[r], ys[r + 1]),
                      std::abs(xs[c + 1] - xs[c]), std::abs(ys[r + 1] - ys[r]));
      cairo_fill(cr);
    }
  }
  cairo_restore(cr);
}

// draw(cr) through an image of `scale` pixels a unit, for vector output:
// thousands of abutting rectangles make large files, and viewers draw them
// with hairline seams.
template <typename Draw>
void DrawRasterised(cairo_t* cr, const PanelLayout& layout, double scale,
                    Draw draw) {
  const Rect& plot = layout.plot;
  scale = std::min(scale, 0.9 * kMaxPixels / std::max(plot.width, plot.height));
  SurfacePtr image(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32,
                                 static_cast<int>(std::ceil(plot.width * scale)),
                                 static_cast<int>(std::ceil(plot.height * scale))),
      &cairo_surface_destroy);
  {
    CairoPtr image_cr(cairo_create(image.get()), &cairo_destroy);
    cairo_scale(image_cr.get(), scale, scale);
    cairo_translate(image_cr.get(), -plot.x, -plot.y);
    draw(image_cr.get());
    if (cairo_status(image_cr.get()) != CAIRO_STATUS_SUCCESS) {
      draw(cr);  // out of memory
      return;
    }
  }
  cairo_surface_flush(image.get());
  cairo_save(cr);
  ClipTo(cr, plot);
  cairo_translate(cr, plot.x, plot.y);
  cairo_scale(cr, 1 / scale, 1 / scale);
  cairo_set_source_surface(cr, image.get(), 0, 0);
  cairo_paint(cr);
  cairo_restore(cr);
}

// A colour bar from v_min (bottom) to v_max (top), colour(v) along it, with
// `ticks` and `label`.
template <typename Color>
void DrawColorbar(cairo_t* cr, const Rect& bar, double v_min, double v_max,
                  Color color, const std::vector<Tick>& ticks,
                  const std::string& label) {
  cairo_pattern_t* ramp =
      cairo_pattern_create_linear(0, bar.y + bar.height, 0, bar.y);
  constexpr int kStops = 40;  // a multiple of 10: the ramps' stops exactly
  for (int i = 0; i <= kStops; ++i) {
    const double f = static_cast<double>(i) / kStops;
    const Rgb c = color(v_min + f * (v_max - v_min));
    cairo_pattern_add_color_stop_rgb(ramp, f, c.r, c.g, c.b);
  }
  cairo_rectangle(cr, bar.x, bar.y, bar.width, bar.height);
  cairo_set_source(cr, ramp);
  cairo_fill(cr);
  cairo_pattern_destroy(ramp);

  SetColor(cr, kBlack);
  cairo_set_line_width(cr, 0.8);
  cairo_rectangle(cr, bar.x, bar.y, bar.width, bar.height);
  cairo_stroke(cr);
  SetFont(cr, kTickSize);
  const double right = bar.x + bar.width;
  double widest = 0;
  for (const Tick& tick : ticks) {
    const double y = bar.y + bar.height * (v_max - tick.value) / (v_max - v_min);
    cairo_move_to(cr, right, y);
    cairo_line_to(cr, right + 4, y);
    cairo_stroke(cr);
    DrawText(cr, tick.label, right + 6, y, 0, 0.5);
    widest = std::max(widest, TextWidth(cr, tick.label));
  }
  SetFont(cr, kLabelSize);
  DrawTextUp(cr, label, right + 6 + widest + 14, bar.y + bar.height / 2);
}

void DrawHeatColorbar(cairo_t* cr, const Rect& bar, double v_max,
                      double decades) {
  const double v_min = v_max - decades;
  DrawColorbar(
      cr, bar, v_min, v_max,
      [&](double v) { return HeatColor((v - v_min) / decades); },
      Ticks(Scale::kLinear, v_min, v_max, 6), "log10 density");
}

void DrawTextRows(cairo_t* cr, const std::vector<PlacedText>& text) {
  if (text.empty()) return;
  SetFont(cr, kTextSize);
  cairo_set_line_width(cr, 1);
  for (const PlacedText& t : text) {
    SetColor(cr, t.color);
    cairo_move_to(cr, t.x, t.baseline);
    cairo_show_text(cr, ValidUtf8(t.text).c_str());
    if (t.marked) {
      cairo_move_to(cr, t.x, t.baseline + 2);
      cairo_line_to(cr, t.x + t.width, t.baseline + 2);
      cairo_stroke(cr);
    }
  }
}

void DrawTitle(cairo_t* cr, const Panel& panel, const PanelLayout& layout) {
  SetColor(cr, kBlack);
  SetFont(cr, kTitleSize, /*bold=*/true);
  DrawText(cr, panel.title, layout.plot.x + layout.plot.width / 2,
           layout.plot.y - 8, 0.5, 1);
}

void DrawGrid(cairo_t* cr, const PanelLayout& layout) {
  const Rect& plot = layout.plot;
  SetColor(cr, kGrid);
  cairo_set_line_width(cr, 0.6);
  for (const Tick& tick : layout.x_ticks) {
    if (tick.label.empty()) continue;
    const double x = layout.PageX(tick.value);
    cairo_move_to(cr, x, plot.y);
    cairo_line_to(cr, x, plot.y + plot.height);
  }
  for (const Tick& tick : layout.y_ticks) {
    if (tick.label.empty()) continue;
    const double y = layout.PageY(tick.value);
    cairo_move_to(cr, plot.x, y);
    cairo_line_to(cr, plot.x + plot.width, y);
  }
  cairo_stroke(cr);
}

Rgb SeriesColor(const Series& s, size_t index) {
  return s.color ? *s.color : PaletteColor(index);
}

// A band: each run of points with both ends finite, filled between them.
void DrawBand(cairo_t* cr, const Series& s, const Rgb& color, const PanelLayout& layout) {
  const Rect& plot = layout.plot;
  SetColor(cr, color, 0.25);
  size_t i = 0;
  while (i < s.x.size()) {
    std::vector<std::pair<double, double>> top, bottom;
    for (; i < s.x.size(); ++i) {
      const double x = layout.PageX(s.x[i]);
      const double hi = layout.PageY(s.y[i]), lo = layout.PageY(s.y_low[i]);
      if (!std::isfinite(x) || !std::isfinite(hi) || !std::isfinite(lo)) break;
      top.emplace_back(Tame(x, plot), Tame(hi, plot));
      bottom.emplace_back(Tame(x, plot), Tame(lo, plot));
    }
    ++i;
    if (top.empty()) continue;
    cairo_move_to(cr, top[0].first, top[0].second);
    for (const auto& [x, y] : top) cairo_line_to(cr, x, y);
    for (auto it = bottom.rbegin(); it != bottom.rend(); ++it) {
      cairo_line_to(cr, it->first, it->second);
    }
    cairo_close_path(cr);
    cairo_fill(cr);
  }
}

void DrawSeries(cairo_t* cr, const Panel& panel, const PanelLayout& layout) {
  const Rect& plot = layout.plot;
  cairo_save(cr);
  ClipTo(cr, plot);
  cairo_set_line_width(cr, 1.6);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (size_t k = 0; k < panel.series.size(); ++k) {
    const Series& s = panel.series[k];
    if (!s.y_low.empty()) {
      DrawBand(cr, s, SeriesColor(s, k), layout);
      continue;
    }
    SetColor(cr, SeriesColor(s, k));
    bool pen_down = false;  // a skipped point breaks the line
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double x = layout.PageX(s.x[i]);
      const double y = layout.PageY(s.y[i]);
      if (!std::isfinite(x) || !std::isfinite(y)) {
        pen_down = false;
        continue;
      }
      const double px = Tame(x, plot), py = Tame(y, plot);
      if (s.points) {
        cairo_new_sub_path(cr);
        cairo_arc(cr, px, py, 2.2, 0, 2 * std::numbers::pi);
      } else if (pen_down) {
        cairo_line_to(cr, px, py);
      } else {
        cairo_move_to(cr, px, py);
        pen_down = true;
      }
    }
    if (s.points) {
      cairo_fill(cr);
    } else {
      cairo_stroke(cr);
    }
  }
  cairo_restore(cr);
}

void DrawVLines(cairo_t* cr, const Panel& panel, const PanelLayout& layout) {
  const Rect& plot = layout.plot;
  // Light on a heatmap's dark colours, dark on white.
  const Rgb color = panel.heat.empty() ? kMarker : kWhite;
  const double dash[] = {5, 4};
  cairo_save(cr);
  ClipTo(cr, plot);
  SetFont(cr, kSmallSize);
  for (size_t i = 0; i < panel.vlines.size(); ++i) {
    const VLine& v = panel.vlines[i];
    const double x = layout.PageX(v.x);
    if (!std::isfinite(x)) continue;
    SetColor(cr, color);
    cairo_set_line_width(cr, 1.2);
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, x, plot.y);
    cairo_line_to(cr, x, plot.y + plot.height);
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    // Labels stack downwards so that close markers stay readable; near the
    // right edge they go left of their line.
    const bool flip = x > plot.x + 0.7 * plot.width;
    DrawText(cr, v.label, flip ? x - 4 : x + 4, plot.y + 4 + 14.0 * i,
             flip ? 1 : 0, 0);
  }
  cairo_restore(cr);
}

void DrawAxes(cairo_t* cr, const Panel& panel, const PanelLayout& layout) {
  const Rect& plot = layout.plot;
  const double bottom = plot.y + plot.height;
  SetColor(cr, kBlack);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, plot.x, plot.y, plot.width, plot.height);
  cairo_stroke(cr);

  SetFont(cr, kTickSize);
  cairo_set_line_width(cr, 0.8);
  double x_widest = 0;
  for (const Tick& tick : layout.x_ticks) {
    const double x = layout.PageX(tick.value);
    if (!Inside(x, plot.x, plot.x + plot.width)) continue;
    cairo_move_to(cr, x, bottom);
    cairo_line_to(cr, x, bottom + (tick.label.empty() ? 3 : 5));
    cairo_stroke(cr);
    if (layout.x_ticks_vertical) {
      // Reading upwards, its end just below the tick.
      cairo_save(cr);
      cairo_translate(cr, x, bottom + 7);
      cairo_rotate(cr, -std::numbers::pi / 2);
      DrawText(cr, tick.label, 0, 0, 1, 0.5);
      cairo_restore(cr);
      x_widest = std::max(x_widest, TextWidth(cr, tick.label));
    } else {
      DrawText(cr, tick.label, x, bottom + 7, 0.5, 0);
    }
  }
  double widest = 0;
  for (const Tick& tick : layout.y_ticks) {
    const double y = layout.PageY(tick.value);
    if (!Inside(y, plot.y, bottom)) continue;
    cairo_move_to(cr, plot.x, y);
    cairo_line_to(cr, plot.x - (tick.label.empty() ? 3 : 5), y);
    cairo_stroke(cr);
    DrawText(cr, tick.label, plot.x - 7, y, 1, 0.5);
    widest = std::max(widest, TextWidth(cr, tick.label));
  }

  SetFont(cr, kLabelSize);
  DrawText(cr, panel.x.label, plot.x + plot.width / 2,
           layout.x_ticks_vertical ? bottom + 7 + x_widest + 6 : bottom + 26,
           0.5, 0);
  // Beside the widest tick label, but never outside the cell.
  DrawTextUp(cr, panel.y.label,
             std::max(layout.cell.x + 8, plot.x - 7 - widest - 12),
             plot.y + plot.height / 2);
  DrawTitle(cr, panel, layout);
}

// The top left of a width x height box in the corner of the plot that
// covers the least data (points, and lines sampled along their length): top
// right, top left, bottom right, bottom left, the first on ties.
std::pair<double, double> LegendCorner(const Panel& panel,
                                       const PanelLayout& layout, double width,
                                       double height) {
  const Rect& plot = layout.plot;
  const double right = plot.x + plot.width - width;
  const double bottom = plot.y + plot.height - height;
  const std::array<std::pair<double, double>, 4> corners = {
      std::pair{right, plot.y}, std::pair{plot.x, plot.y},
      std::pair{right, bottom}, std::pair{plot.x, bottom}};
  std::array<size_t, 4> covered = {};
  auto count = [&](double px, double py) {
    if (!std::isfinite(px) || !std::isfinite(py)) return;
    for (size_t c = 0; c < corners.size(); ++c) {
      const auto [cx, cy] = corners[c];
      covered[c] += px >= cx && px <= cx + width && py >= cy && py <= cy + height;
    }
  };
  for (const Series& s : panel.series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double px = layout.PageX(s.x[i]), py = layout.PageY(s.y[i]);
      count(px, py);
      if (s.points || i + 1 == s.x.size()) continue;
      // Along the segment to the next point, every few units.
      const double qx = layout.PageX(s.x[i + 1]), qy = layout.PageY(s.y[i + 1]);
      const double length = std::hypot(qx - px, qy - py);
      if (!std::isfinite(length)) continue;
      const int steps = static_cast<int>(std::min(200.0, length / 4));
      for (int k = 1; k <= steps; ++k) {
        const double f = static_cast<double>(k) / (steps + 1);
        count(px + f * (qx - px), py + f * (qy - py));
      }
    }
  }
  const size_t best = static_cast<size_t>(
      std::min_element(covered.begin(), covered.end()) - covered.begin());
  return corners[best];
}

void DrawLegend(cairo_t* cr, const Panel& panel, const PanelLayout& layout) {
  std::vector<size_t> shown;
  for (size_t k = 0; k < panel.series.size(); ++k) {
    if (!panel.series[k].label.empty()) shown.push_back(k);
  }
  if (shown.size() < 2) return;
  SetFont(cr, kSmallSize);
  double widest = 0;
  for (size_t k : shown) {
    widest = std::max(widest, TextWidth(cr, panel.series[k].label));
  }
  constexpr double kRow = 15, kSample = 20, kInset = 8;
  const double width = widest + kSample + 3 * 6;
  const double height = kRow * shown.size() + 8;
  const auto [x, y] = LegendCorner(panel, layout, width + 2 * kInset,
                                    height + 2 * kInset);
  cairo_rectangle(cr, x + kInset, y + kInset, width, height);
  SetColor(cr, kWhite, 0.85);
  cairo_fill_preserve(cr);
  SetColor(cr, Rgb{0.6, 0.6, 0.6});
  cairo_set_line_width(cr, 0.6);
  cairo_stroke(cr);
  const double left = x + kInset;
  for (size_t row = 0; row < shown.size(); ++row) {
    const Series& s = panel.series[shown[row]];
    const double cy = y + kInset + 4 + kRow * (row + 0.5);
    SetColor(cr, SeriesColor(s, shown[row]));
    if (s.points) {
      cairo_arc(cr, left + 6 + kSample / 2, cy, 2.5, 0, 2 * std::numbers::pi);
      cairo_fill(cr);
    } else if (!s.y_low.empty()) {
      SetColor(cr, SeriesColor(s, shown[row]), 0.25);
      cairo_rectangle(cr, left + 6, cy - 4, kSample, 8);
      cairo_fill(cr);
    } else {
      cairo_set_line_width(cr, 1.6);
      cairo_move_to(cr, left + 6, cy);
      cairo_line_to(cr, left + 6 + kSample, cy);
      cairo_stroke(cr);
    }
    SetColor(cr, kBlack);
    DrawText(cr, s.label, left + 12 + kSample, cy, 0, 0.5);
  }
}

// heat_image_scale: 0 to draw heatmaps cell by cell, else DrawRasterised's.
void DrawPanel(cairo_t* cr, const Panel& panel, const PanelLayout& layout,
               double heat_image_scale) {
  if (!layout.axes) {
    DrawTitle(cr, panel, layout);
    DrawTextRows(cr, layout.text);
    return;
  }
  const std::vector<ColumnSpan> spans = ColumnSpans(panel.heat, panel.x.scale);
  const double v_max = MaxLogDensity(spans);
  if (panel.heat.empty() && !panel.image) DrawGrid(cr, layout);
  if (panel.image) {
    const MatrixImage& m = *panel.image;
    auto draw = [&](cairo_t* to) { DrawMatrixCells(to, m, layout); };
    if (heat_image_scale > 0) {
      DrawRasterised(cr, layout, heat_image_scale, draw);
    } else {
      draw(cr);
    }
    if (layout.colorbar) {
      DrawColorbar(
          cr, *layout.colorbar, m.vmin, m.vmax,
          [&](double v) { return MatrixColor(m, v); }, layout.colorbar_ticks,
          m.colorbar_label);
    }
  }
  if (std::isfinite(v_max)) {
    auto draw = [&](cairo_t* to) {
      DrawHeatCells(to, panel, layout, spans, v_max);
    };
    if (heat_image_scale > 0) {
      DrawRasterised(cr, layout, heat_image_scale, draw);
    } else {
      draw(cr);
    }
    if (layout.colorbar && !panel.image) {
      DrawHeatColorbar(cr, *layout.colorbar, v_max, panel.heat_decades);
    }
  }
  DrawSeries(cr, panel, layout);
  DrawVLines(cr, panel, layout);
  DrawAxes(cr, panel, layout);
  DrawLegend(cr, panel, layout);
  DrawTextRows(cr, layout.text);
}

void DrawFigure(cairo_t* cr, const Figure& figure, const FigureLayout& layout,
                double heat_image_scale) {
  SetColor(cr, kWhite);
  cairo_paint(cr);
  if (!figure.title.empty()) {
    SetColor(cr, kBlack);
    SetFont(cr, kFigureTitleSize, /*bold=*/true);
    DrawText(cr, figure.title, layout.width / 2, kMargin + kFigureTitleHeight / 2,
             0.5, 0.5);
  }
  for (size_t i = 0; i < figure.panels.size(); ++i) {
    DrawPanel(cr, figure.panels[i], layout.panels[i], heat_image_scale);
  }
}

// --- Files.

enum class Format { kPng, kSvg };

absl::StatusOr<Format> FormatOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string base =
      slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = base.rfind('.');
  const std::string ext =
      dot == std::string::npos ? "" : absl::AsciiStrToLower(base.substr(dot));
  if (ext == ".png") return Format::kPng;
  if (ext == ".svg") return Format::kSvg;
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot plot to \"", path,
      "\": the file name must end in .png or .svg, which choose the format"));
}

absl::Status OsError(const std::string& path, int err, std::string_view what) {
  // A read-only file system is as much a "no" as a permission bit.
  if (err == EROFS) {
    return absl::PermissionDeniedError(absl::StrCat(
        path, ": ", ToAbsl(what), ": ", std::strerror(err)));
  }
  return ErrnoStatus(path, err, what);
}

// The file to replace: `path`, or what an existing symlink there points to
// (renaming over the link would cut it). Rejects what is not a regular file
// or cannot be written.
absl::StatusOr<std::string> TargetOf(const std::string& path) {
  std::string target = path;
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    if (char* resolved = realpath(path.c_str(), nullptr)) {
      target = resolved;
      free(resolved);
    }
  }
  if (stat(target.c_str(), &st) != 0) {
    if (errno == ENOENT) return target;  // new file; its directory is probed
    return OsError(path, errno, "cannot inspect");
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot plot to \"", path, "\": it exists and is not a regular file"));
  }
  if (access(target.c_str(), W_OK) != 0) {
    return OsError(path, errno, "cannot write");
  }
  return target;
}

// A new file beside `target`, removed on destruction unless renamed over
// `target` by Commit.
class TempFile {
 public:
  static absl::StatusOr<std::unique_ptr<TempFile>> Create(
      const std::string& target, const std::string& path_for_errors) {
    static std::atomic<uint64_t> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string name =
          absl::StrCat(target, ".tmp.", getpid(), ".", counter.fetch_add(1));
      const int fd = open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                          0666);  // the umask applies, as for any new file
      if (fd >= 0) {
        return std::unique_ptr<TempFile>(new TempFile(fd, std::move(name)));
      }
      if (errno != EEXIST) return OsError(path_for_errors, errno, "cannot write");
    }
    return absl::AlreadyExistsError(absl::StrCat(
        path_for_errors, ": cannot create a temporary file beside it"));
  }

  ~TempFile() {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(name_.c_str());
  }

  int fd() const { return fd_; }

  absl::Status Commit(const std::string& target,
                      const std::string& path_for_errors) {
    const int fd = std::exchange(fd_, -1);
    if (close(fd) != 0) return OsError(path_for_errors, errno, "cannot write");
    if (rename(name_.c_str(), target.c_str()) != 0) {
      return OsError(path_for_errors, errno, "cannot replace");
    }
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  TempFile(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int fd_;
  std::string name_;
  bool committed_ = false;
};

// Where cairo's output streams go; remembers the first OS error.
struct Sink {
  int fd;
  int error = 0;
};

cairo_status_t WriteToSink(void* closure, const unsigned char* data,
                           unsigned int length) {
  Sink* sink = static_cast<Sink*>(closure);
  while (length > 0) {
    const ssize_t n = write(sink->fd, data, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      sink->error = n < 0 ? errno : EIO;
      return CAIRO_STATUS_WRITE_ERROR;
    }
    data += n;
    length -= static_cast<unsigned int>(n);
  }
  return CAIRO_STATUS_SUCCESS;
}

absl::Status CairoError(cairo_status_t status, const Sink& sink,
                        const std::string& path) {
  if (status == CAIRO_STATUS_SUCCESS) return absl::OkStatus();
  if (status == CAIRO_STATUS_WRITE_ERROR && sink.error != 0) {
    return OsError(path, sink.error, "cannot write");
  }
  const std::string message =
      absl::StrCat(path, ": cairo: ", cairo_status_to_string(status));
  switch (status) {
    case CAIRO_STATUS_NO_MEMORY:
      return absl::ResourceExhaustedError(message);
    case CAIRO_STATUS_INVALID_SIZE:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status WritePng(const Figure& figure, const FigureLayout& layout,
                      Sink& sink, const std::string& path) {
  const int width = static_cast<int>(std::ceil(layout.width * figure.png_scale));
  const int height =
      static_cast<int>(std::ceil(layout.height * figure.png_scale));
  SurfacePtr surface(
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height),
      &cairo_surface_destroy);
  if (absl::Status s = CairoError(cairo_surface_status(surface.get()), sink, path);
      !s.ok()) {
    return s;
  }
  {
    CairoPtr cr(cairo_create(surface.get()), &cairo_destroy);
    cairo_scale(cr.get(), figure.png_scale, figure.png_scale);
    DrawFigure(cr.get(), figure, layout, /*heat_image_scale=*/0);
    if (absl::Status s = CairoError(cairo_status(cr.get()), sink, path); !s.ok()) {
      return s;
    }
  }
  cairo_surface_flush(surface.get());
  return CairoError(
      cairo_surface_write_to_png_stream(surface.get(), &WriteToSink, &sink),
      sink, path);
}

absl::Status WriteSvg(const Figure& figure, const FigureLayout& layout,
                      Sink& sink, const std::string& path) {
  SurfacePtr surface(cairo_svg_surface_create_for_stream(
                         &WriteToSink, &sink, layout.width, layout.height),
                     &cairo_surface_destroy);
  cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_PT);
  {
    CairoPtr cr(cairo_create(surface.get()), &cairo_destroy);
    DrawFigure(cr.get(), figure, layout, kSvgHeatScale);
    if (absl::Status s = CairoError(cairo_status(cr.get()), sink, path); !s.ok()) {
      return s;
    }
  }
  cairo_surface_finish(surface.get());  // the SVG is written here
  return CairoError(cairo_surface_status(surface.get()), sink, path);
}

}  // namespace

double Transform(Scale scale, double value) {
  if (!std::isfinite(value)) return kNaN;
  switch (scale) {
    case Scale::kLinear:
      return value;
    case Scale::kLog10:
      return value > 0 ? std::log10(value) : kNaN;
    case Scale::kLog1p:
      return value > -1 ? std::log1p(value) : kNaN;
  }
  return kNaN;
}

std::vector<Tick> Ticks(Scale scale, double lo, double hi, int max_labels) {
  if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi)) return {};
  max_labels = std::max(2, max_labels);
  switch (scale) {
    case Scale::kLinear:
      return LinearTicks(lo, hi, max_labels);
    case Scale::kLog10:
      return Log10Ticks(lo, hi, max_labels);
    case Scale::kLog1p:
      return Log1pTicks(lo, hi, max_labels);
  }
  return {};
}

double AxisRange::Fraction(double value) const {
  const double t = Transform(scale, value);
  const double t0 = Transform(scale, min);
  const double t1 = Transform(scale, max);
  return (t - t0) / (t1 - t0);
}

Rgb HeatColor(double t) {
  if (!(t > 0)) return kHeatStops.front();  // NaN too
  if (t >= 1) return kHeatStops.back();
  const double at = t * (kHeatStops.size() - 1);
  const size_t i = static_cast<size_t>(at);
  const double f = at - i;
  const Rgb& a = kHeatStops[i];
  const Rgb& b = kHeatStops[i + 1];
  return Rgb{a.r + f * (b.r - a.r), a.g + f * (b.g - a.g),
             a.b + f * (b.b - a.b)};
}

Rgb PaletteColor(size_t index) { return kPalette[index % kPalette.size()]; }

Rgb DivergingColor(double t) {
  if (std::isnan(t)) t = 0;
  t = std::clamp(t, -1.0, 1.0);
  const double at = (t + 1) / 2 * (kDivergingStops.size() - 1);
  const size_t i = std::min(static_cast<size_t>(at), kDivergingStops.size() - 2);
  const double f = at - i;
  const Rgb& a = kDivergingStops[i];
  const Rgb& b = kDivergingStops[i + 1];
  return Rgb{a.r + f * (b.r - a.r), a.g + f * (b.g - a.g),
             a.b + f * (b.b - a.b)};
}

Rgb MatrixColor(const MatrixImage& image, double value) {
  if (image.diverging) {
    const double scale = std::max(std::abs(image.vmin), std::abs(image.vmax));
    return DivergingColor(scale > 0 ? value / scale : 0);
  }
  return HeatColor((value - image.vmin) / (image.vmax - image.vmin));
}

absl::StatusOr<FigureLayout> Layout(const Figure& figure) {
  if (absl::Status s = CheckFigure(figure); !s.ok()) return s;
  const size_t n = figure.panels.size();
  const size_t columns =
      std::max<size_t>(1, std::min<size_t>(figure.columns, n));
  const size_t rows = (n + columns - 1) / columns;
  const double title = figure.title.empty() ? 0 : kFigureTitleHeight;
  FigureLayout layout;
  layout.width = 2 * kMargin + columns * figure.panel_width;
  layout.height = 2 * kMargin + title + rows * figure.panel_height;
  for (size_t i = 0; i < n; ++i) {
    const Rect cell{kMargin + (i % columns) * figure.panel_width,
                    kMargin + title + (i / columns) * figure.panel_height,
                    figure.panel_width, figure.panel_height};
    layout.panels.push_back(LayOutPanel(figure.panels[i], cell));
  }
  return layout;
}

absl::Status CheckWritable(const std::string& path) {
  RETURN_IF_ERROR(FormatOf(path).status());
  ASSIGN_OR_RETURN(const std::string target, TargetOf(path));
  // Creating a file is the one sure test (ACLs, read-only mounts, ...).
  return TempFile::Create(target, path).status();
}

absl::Status Render(const Figure& figure, const std::string& path) {
  ASSIGN_OR_RETURN(const Format format, FormatOf(path));
  ASSIGN_OR_RETURN(const FigureLayout layout, Layout(figure));
  if (format == Format::kPng &&
      std::max(layout.width, layout.height) * figure.png_scale > kMaxPixels) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the figure is ", layout.width * figure.png_scale, "x",
        layout.height * figure.png_scale, " pixels; PNG allows at most ",
        kMaxPixels, " a side (lower png_scale, or write .svg)"));
  }
  ASSIGN_OR_RETURN(const std::string target, TargetOf(path));
  ASSIGN_OR_RETURN(const std::unique_ptr<TempFile> temp,
                   TempFile::Create(target, path));
  Sink sink{temp->fd()};
  RETURN_IF_ERROR(format == Format::kPng ? WritePng(figure, layout, sink, path)
                                         : WriteSvg(figure, layout, sink, path));
  return temp->Commit(target, path);
}

}  // namespace garden::plot
