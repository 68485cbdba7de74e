// Figures for the garden CLI, drawn with cairo to PNG or SVG: curves, point
// overlays, dashed vertical markers, per-step density heatmaps, matrix images
// (a weight block, an attention matrix) and lines of coloured text (causal
// unmasking), in a grid of panels.
//
// A Figure is plain data, so a command collects what the server streams into
// one and renders it once:
//
//   Figure figure{.title = "embed_out.weight"};
//   Panel& panel = figure.panels.emplace_back();
//   panel.x = {.label = "step", .scale = Scale::kLog1p};
//   panel.y = {.label = "MSD"};
//   panel.series.push_back({.label = "msd", .x = steps, .y = msd});
//   panel.vlines.push_back({.x = peak_step, .label = "peak"});
//   absl::Status status = Render(figure, "msd.png");
//
// Geometry is in figure units: SVG points, and Figure::png_scale pixels each
// in a PNG. The y coordinate grows downwards, as on the page.
//
// Data that cannot be shown is skipped, never an error: NaN or infinite
// values, non-positive values on a log10 axis, values <= -1 on a log1p axis,
// empty series and panels, NaN matrix cells, categorical labels that do not
// fit (they are thinned). Options that make no sense (a log10 axis with
// min <= 0, min >= max, series whose x and y differ in length, a matrix
// whose values are not rows x cols or whose vmin >= vmax) are
// INVALID_ARGUMENT.
#ifndef GARDEN_CLIENT_PLOT_PLOT_H_
#define GARDEN_CLIENT_PLOT_PLOT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace garden::plot {

enum class Scale {
  kLinear,
  kLog10,  // decades; only positive values
  kLog1p,  // position log(1 + x), ticks labelled in x: 0, 1, 10, 100, ...
           // How the paper plots training steps, which start at 0.
};

struct Axis {
  std::string label;
  Scale scale = Scale::kLinear;
  // Unset: the data's extent (points and markers with a small margin,
  // heatmap cells exactly).
  std::optional<double> min, max;
  // The minimum at the top for y (a matrix: row 0 at the top), at the right
  // for x.
  bool flipped = false;
  // Categorical tick labels instead of numbers: label i at i + 0.5, the
  // centre of cell i (tokens on the axes of an attention matrix); the range
  // then defaults to [0, labels.size()] joined with the data. x labels turn
  // vertical when they are wider than a cell; labels that do not fit are
  // thinned (every 2nd, 3rd, ... is kept). Long labels are cut to
  // kMaxLabelChars characters with "…".
  std::vector<std::string> labels;
};

struct Rgb {
  double r = 0, g = 0, b = 0;  // each in [0, 1]
};

struct Series {
  std::string label;  // in the legend, which shows when >= 2 are labelled
  std::vector<double> x, y;
  // Markers instead of a line. A line breaks where a point is skipped.
  bool points = false;
  // Unset: PaletteColor(index of the series in its panel).
  std::optional<Rgb> color;
  // Non-empty (one per x): a band, the area between y_low and y filled
  // translucent, instead of a line (the spread across runs); a point with
  // either end not finite breaks it.
  std::vector<double> y_low;
};

// A dashed vertical marker (an MSD peak, a bifurcation onset).
struct VLine {
  double x = 0;
  std::string label;
};

// One column of a density heatmap: the histogram of the values at one
// training step, counts over equal-width bins between lo and hi. Columns may
// have different ranges and bin counts.
struct HeatColumn {
  double x = 0;
  double lo = 0, hi = 0;
  std::vector<double> counts;
};

// A matrix drawn as coloured cells: cell (r, c) covers x in
// [col0 + c, col0 + c + 1) and y in [row0 + r, row0 + r + 1) (set y flipped
// for row 0 at the top). NaN cells are not drawn. Drawn with a colour bar
// labelled `colorbar_label`.
struct MatrixImage {
  int64_t rows = 0, cols = 0;
  std::vector<double> values;  // row-major, rows x cols
  double row0 = 0, col0 = 0;   // data coordinates of cell (0, 0)'s corner
  double vmin = -1, vmax = 1;  // the colour scale; values beyond clamp
  // Blue-white-red, white at 0 (MatrixColor); false: viridis (HeatColor)
  // from vmin to vmax.
  bool diverging = true;
  std::string colorbar_label;
};

// Text in a text row: `marked` runs are underlined.
struct TextRun {
  std::string text;
  Rgb color;
  bool marked = false;
};

// A line of text (wrapped within the panel when long): `label` at the left
// ("k=3"), then the runs one after another.
struct TextRow {
  std::string label;
  std::vector<TextRun> runs;
};

struct Panel {
  std::string title;
  Axis x, y;
  // Drawn first. A bin's colour is log10 of its density, count / (n width)
  // with n the column's total, so columns with different ranges compare;
  // the colour bar runs from the densest bin down `heat_decades` decades,
  // and sparser bins take its lowest colour. Empty bins are not drawn.
  // Columns meet halfway between their x positions as the axis places them
  // (a log1p axis widens the early steps); a lone column fills the axis.
  // Columns whose x cannot be shown, or whose range is not finite with
  // lo < hi, are skipped.
  std::vector<HeatColumn> heat;
  double heat_decades = 4;
  std::vector<Series> series;  // over the heatmap
  std::vector<VLine> vlines;   // over everything
  // Drawn first, like a heatmap; the axes' ranges default to its extent.
  std::optional<MatrixImage> image;
  // Lines of text, top to bottom. A panel with only text rows (no series,
  // heatmap, image or markers) has no axes or grid: its text fills the
  // panel below the title; rows that do not fit are left out.
  std::vector<TextRow> text_rows;
};

struct Figure {
  std::string title;
  int columns = 1;  // panels go row by row, `columns` to a row
  std::vector<Panel> panels;
  // One panel's cell, its title, labels and colour bar included.
  double panel_width = 640, panel_height = 420;
  double png_scale = 2;  // PNG pixels per figure unit
};

// Writes `figure` to `path`, a .png or .svg file (case-insensitive), which
// is replaced atomically: the image is written beside it and renamed over
// it, so a failure leaves no partial file. An existing symlink is followed.
// Errors are CheckWritable's, INVALID_ARGUMENT for a bad figure, and cairo's
// or the OS's failures naming `path`. An SVG is vectors except for
// heatmaps, which are embedded as images of 3 pixels a point (thousands of
// cells would make a large file that viewers draw with seams).
absl::Status Render(const Figure& figure, const std::string& path);

// Whether Render could write `path`, checked without changing anything (a
// probe file is created beside it and removed), so that a command can fail
// before it streams data: INVALID_ARGUMENT for an extension other than .png
// and .svg or for something other than a regular file at `path`, NOT_FOUND
// when its directory does not exist, PERMISSION_DENIED when it or its
// directory cannot be written. Messages name `path`.
absl::Status CheckWritable(const std::string& path);

// --- Geometry, exposed so that callers and tests can find a value's place
// --- on the page.

// A value's position along a `scale` axis before the affine map to the page:
// x, log10(x) or log(1 + x). NaN where the scale cannot show it.
double Transform(Scale scale, double value);

struct Tick {
  double value = 0;  // data units
  std::string label;  // empty for a minor tick
};

// Ticks inside [lo, hi] (data units): linear axes every 1, 2 or 5 times a
// power of ten, at most about `max_labels` labelled; log10 axes at decades
// (every few when there are many) with minor ticks at 2..9; log1p axes at 0
// and the decades from 1, likewise. Log axes spanning too few decades fall
// back to linear ticks. Labels are as short as the spacing allows.
std::vector<Tick> Ticks(Scale scale, double lo, double hi, int max_labels = 8);

// A resolved axis range, in data units.
struct AxisRange {
  Scale scale = Scale::kLinear;
  double min = 0, max = 1;
  // 0 at min, 1 at max, linear in Transform(scale, value); NaN where the
  // scale cannot show `value`.
  double Fraction(double value) const;
};

struct Rect {
  double x = 0, y = 0;  // top left
  double width = 0, height = 0;
};

// A piece of a text row as placed: one run, or the part of it on one line
// of the wrapped row; or the row's label (run == kRowLabel).
struct PlacedText {
  static constexpr size_t kRowLabel = static_cast<size_t>(-1);
  size_t row = 0, run = 0;  // indices into Panel::text_rows and its runs
  std::string text;
  double x = 0, baseline = 0;  // where the text starts
  double width = 0;            // its advance
  Rgb color;
  bool marked = false;  // underlined
};

struct PanelLayout {
  Rect cell;                     // the panel's share of the figure
  Rect plot;                     // the axes' box, where data is drawn
  std::optional<Rect> colorbar;  // with a heatmap or a matrix image
  AxisRange x, y;
  bool x_flipped = false, y_flipped = false;
  // Without axes (a text-only panel) nothing of them is drawn.
  bool axes = true;
  std::vector<Tick> x_ticks, y_ticks;
  // Categorical x labels drawn reading upwards, ending just below the axis.
  bool x_ticks_vertical = false;
  // With a matrix image: the colour bar's range (its bottom and top) and
  // ticks.
  double colorbar_min = 0, colorbar_max = 1;
  std::vector<Tick> colorbar_ticks;
  // Text rows, as drawn.
  std::vector<PlacedText> text;

  // Where a data value lands, in figure units; NaN where it cannot be shown.
  // Values outside the range land outside `plot` (and are clipped).
  double PageX(double value) const {
    const double f = x.Fraction(value);
    return plot.x + (x_flipped ? 1 - f : f) * plot.width;
  }
  double PageY(double value) const {
    const double f = y.Fraction(value);
    return plot.y + (y_flipped ? f : 1 - f) * plot.height;
  }
  // A colour bar value's height on the bar.
  double ColorbarY(double value) const {
    return colorbar ? colorbar->y + colorbar->height *
                                        (colorbar_max - value) /
                                        (colorbar_max - colorbar_min)
                    : std::numeric_limits<double>::quiet_NaN();
  }
};

struct FigureLayout {
  double width = 0, height = 0;     // figure units
  std::vector<PanelLayout> panels;  // as in Figure::panels
};

// Validates `figure` and places everything; Render draws exactly this.
absl::StatusOr<FigureLayout> Layout(const Figure& figure);

// The heatmap's colour ramp at t in [0, 1] (clamped): perceptually uniform,
// dark violet through blue and green to yellow, like matplotlib's viridis.
Rgb HeatColor(double t);

// The diverging ramp at t in [-1, 1] (clamped): blue at -1, white at 0,
// red at 1, like matplotlib's RdBu_r.
Rgb DivergingColor(double t);

// A matrix value's colour: diverging, t = value / max(|vmin|, |vmax|);
// else HeatColor((value - vmin) / (vmax - vmin)).
Rgb MatrixColor(const MatrixImage& image, double value);

// Categorical labels longer than this many characters are cut.
inline constexpr size_t kMaxLabelChars = 16;

// Series colours: ten distinct ones, then again from the first.
Rgb PaletteColor(size_t index);

}  // namespace garden::plot

#endif  // GARDEN_CLIENT_PLOT_PLOT_H_
