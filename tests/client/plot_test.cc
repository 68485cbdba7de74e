// Plots: ticks and layout computed directly; rendered PNGs read back with
// cairo and checked pixel by pixel where the layout says things must be.
#include "client/plot/plot.h"

#include "client/plot/figures.h"

#include <cairo.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_files.h"

namespace garden::plot {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A PNG read back into memory.
class Png {
 public:
  explicit Png(const std::string& path)
      : surface_(cairo_image_surface_create_from_png(path.c_str()),
                 &cairo_surface_destroy) {
    cairo_surface_flush(surface_.get());
  }
  bool ok() const {
    return cairo_surface_status(surface_.get()) == CAIRO_STATUS_SUCCESS;
  }
  int width() const { return cairo_image_surface_get_width(surface_.get()); }
  int height() const { return cairo_image_surface_get_height(surface_.get()); }

  // The pixel holding page point (x, y) of a figure drawn at `scale`.
  Rgb At(double x, double y, double scale) const {
    return Pixel(static_cast<int>(x * scale), static_cast<int>(y * scale));
  }
  Rgb Pixel(int px, int py) const {
    const unsigned char* data = cairo_image_surface_get_data(surface_.get());
    const int stride = cairo_image_surface_get_stride(surface_.get());
    const uint32_t argb =
        *reinterpret_cast<const uint32_t*>(data + py * stride + px * 4);
    return Rgb{((argb >> 16) & 0xff) / 255.0, ((argb >> 8) & 0xff) / 255.0,
               (argb & 0xff) / 255.0};
  }

 private:
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface_;
};

double Distance(const Rgb& a, const Rgb& b) {
  return std::max({std::abs(a.r - b.r), std::abs(a.g - b.g),
                   std::abs(a.b - b.b)});
}

MATCHER_P(NearColor, expected, "") {
  const double d = Distance(arg, expected);
  *result_listener << "rgb(" << arg.r * 255 << ", " << arg.g * 255 << ", "
                   << arg.b * 255 << "), off by " << d * 255 << "/255";
  return d <= 2.5 / 255;
}

constexpr Rgb kWhite{1, 1, 1};

// The names in `dir`, sorted.
std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<double> Values(const std::vector<Tick>& ticks, bool labelled) {
  std::vector<double> values;
  for (const Tick& t : ticks) {
    if (t.label.empty() != labelled) values.push_back(t.value);
  }
  return values;
}

std::vector<std::string> Labels(const std::vector<Tick>& ticks) {
  std::vector<std::string> labels;
  for (const Tick& t : ticks) {
    if (!t.label.empty()) labels.push_back(t.label);
  }
  return labels;
}

// --- Scales and ticks.

TEST(PlotTransformTest, ScalesAndWhatTheyCannotShow) {
  EXPECT_EQ(Transform(Scale::kLinear, -2.5), -2.5);
  EXPECT_DOUBLE_EQ(Transform(Scale::kLog10, 1000), 3);
  EXPECT_DOUBLE_EQ(Transform(Scale::kLog1p, 0), 0);
  EXPECT_DOUBLE_EQ(Transform(Scale::kLog1p, 143000), std::log1p(143000.0));
  EXPECT_TRUE(std::isnan(Transform(Scale::kLog10, 0)));
  EXPECT_TRUE(std::isnan(Transform(Scale::kLog10, -1)));
  EXPECT_TRUE(std::isnan(Transform(Scale::kLog1p, -1)));
  EXPECT_TRUE(std::isnan(Transform(Scale::kLinear, kNaN)));
  EXPECT_TRUE(std::isnan(Transform(Scale::kLinear, kInf)));
}

TEST(PlotTicksTest, Log1pLabelsStepsAtZeroAndDecades) {
  const std::vector<Tick> ticks = Ticks(Scale::kLog1p, 0, 143000, 8);
  EXPECT_THAT(Values(ticks, true),
              ElementsAre(0, 1, 10, 100, 1000, 10000, 100000));
  EXPECT_THAT(Labels(ticks), ElementsAre("0", "1", "10", "100", "1000",
                                         "10000", "100000"));
  const std::vector<double> minor = Values(ticks, false);
  EXPECT_THAT(minor, ::testing::Contains(20));
  EXPECT_THAT(minor, ::testing::Contains(90000));
  for (double v : minor) EXPECT_GT(v, 1) << "no minor ticks between 0 and 1";
}

TEST(PlotTicksTest, Log1pWithFewDecadesCountsPlainly) {
  EXPECT_THAT(Labels(Ticks(Scale::kLog1p, 0, 5, 8)),
              ElementsAre("0", "1", "2", "3", "4", "5"));
}

TEST(PlotTicksTest, LinearStepsAreOneTwoOrFiveTimesAPowerOfTen) {
  EXPECT_THAT(Labels(Ticks(Scale::kLinear, -0.013, 0.047, 8)),
              ElementsAre("-0.01", "0.00", "0.01", "0.02", "0.03", "0.04"));
  EXPECT_THAT(Values(Ticks(Scale::kLinear, 0, 100, 8), true),
              ElementsAre(0, 20, 40, 60, 80, 100));
  EXPECT_THAT(Labels(Ticks(Scale::kLinear, 0, 3e6, 4)),
              ElementsAre("0", "1e6", "2e6", "3e6"));
}

TEST(PlotTicksTest, Log10Decades) {
  const std::vector<Tick> ticks = Ticks(Scale::kLog10, 1e-3, 100, 8);
  EXPECT_THAT(Labels(ticks),
              ElementsAre("0.001", "0.01", "0.1", "1", "10", "100"));
  EXPECT_THAT(Values(ticks, false), ::testing::Contains(0.05));
  // 17 decades, at most 8 labels: every third, the others unlabelled.
  const std::vector<Tick> wide = Ticks(Scale::kLog10, 1e-8, 1e8, 8);
  EXPECT_THAT(Labels(wide), ElementsAre("1e-6", "0.001", "1", "1000", "1e6"));
  EXPECT_EQ(wide.size(), 17u);
  // Less than a decade: linear ticks.
  EXPECT_THAT(Values(Ticks(Scale::kLog10, 2, 8, 8), true),
              ElementsAre(2, 3, 4, 5, 6, 7, 8));
}

TEST(PlotTicksTest, DegenerateRangesHaveNoTicks) {
  EXPECT_TRUE(Ticks(Scale::kLinear, 1, 1).empty());
  EXPECT_TRUE(Ticks(Scale::kLinear, 2, 1).empty());
  EXPECT_TRUE(Ticks(Scale::kLinear, kNaN, 1).empty());
  EXPECT_TRUE(Ticks(Scale::kLog10, -1, 10).empty());
}

// --- Layout.

TEST(PlotLayoutTest, Log1pAxisPlacesStepsByLogOfOnePlusStep) {
  Figure figure;
  Panel& panel = figure.panels.emplace_back();
  panel.x = {.label = "step", .scale = Scale::kLog1p, .min = 0, .max = 143000};
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok()) << layout.status();
  const PanelLayout& p = layout->panels[0];
  EXPECT_DOUBLE_EQ(p.PageX(0), p.plot.x);
  EXPECT_DOUBLE_EQ(p.PageX(143000), p.plot.x + p.plot.width);
  EXPECT_NEAR(p.PageX(1000),
              p.plot.x + p.plot.width * std::log1p(1000.0) /
                             std::log1p(143000.0),
              1e-9);
  EXPECT_TRUE(std::isnan(p.PageX(-2)));
  EXPECT_THAT(Labels(p.x_ticks), ElementsAre("0", "1", "10", "100", "1000",
                                             "10000", "100000"));
}

TEST(PlotLayoutTest, GridOfPanelsRowByRow) {
  Figure figure{.title = "t", .columns = 2};
  figure.panels.resize(3);
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok()) << layout.status();
  ASSERT_EQ(layout->panels.size(), 3u);
  const Rect& a = layout->panels[0].cell;
  const Rect& b = layout->panels[1].cell;
  const Rect& c = layout->panels[2].cell;
  EXPECT_EQ(b.x - a.x, figure.panel_width);
  EXPECT_EQ(b.y, a.y);
  EXPECT_EQ(c.x, a.x);
  EXPECT_EQ(c.y - a.y, figure.panel_height);
  EXPECT_GE(layout->width, 2 * figure.panel_width);
  EXPECT_LT(layout->width, 2 * figure.panel_width + 40);
  EXPECT_GE(layout->height, 2 * figure.panel_height);
  for (const PanelLayout& p : layout->panels) {
    EXPECT_GT(p.plot.x, p.cell.x);
    EXPECT_LT(p.plot.x + p.plot.width, p.cell.x + p.cell.width);
    EXPECT_GT(p.plot.y, p.cell.y);
    EXPECT_LT(p.plot.y + p.plot.height, p.cell.y + p.cell.height);
  }
}

TEST(PlotLayoutTest, RangesFollowTheData) {
  Figure figure;
  Panel& points = figure.panels.emplace_back();
  points.series.push_back({.x = {0, 10}, .y = {-1, 1}});
  Panel& heat = figure.panels.emplace_back();
  heat.heat = {{.x = 0, .lo = -2, .hi = 2, .counts = {1, 2}},
               {.x = 1, .lo = -1, .hi = 3, .counts = {1}},
               {.x = 3, .lo = -1, .hi = 1, .counts = {5, 5, 5}}};
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok()) << layout.status();
  // Points: a small margin beyond them.
  const PanelLayout& p = layout->panels[0];
  EXPECT_LT(p.x.min, 0);
  EXPECT_GT(p.x.min, -1);
  EXPECT_GT(p.x.max, 10);
  EXPECT_LT(p.x.max, 11);
  EXPECT_LT(p.y.min, -1);
  EXPECT_GT(p.y.max, 1);
  EXPECT_FALSE(p.colorbar.has_value());
  // Heat cells: exactly their extent, columns meeting halfway.
  const PanelLayout& h = layout->panels[1];
  EXPECT_DOUBLE_EQ(h.x.min, -0.5);
  EXPECT_DOUBLE_EQ(h.x.max, 4);
  EXPECT_DOUBLE_EQ(h.y.min, -2);
  EXPECT_DOUBLE_EQ(h.y.max, 3);
  ASSERT_TRUE(h.colorbar.has_value());
  EXPECT_GT(h.colorbar->x, h.plot.x + h.plot.width);
}

TEST(PlotLayoutTest, RejectsOptionsThatMakeNoSense) {
  Figure figure;
  figure.panels.emplace_back().y = {.scale = Scale::kLog10, .min = 0};
  EXPECT_EQ(Layout(figure).status().code(),
            absl::StatusCode::kInvalidArgument);

  figure.panels[0].y = {.min = 2, .max = 1};
  EXPECT_EQ(Layout(figure).status().code(),
            absl::StatusCode::kInvalidArgument);

  figure.panels[0].y = {};
  figure.panels[0].series.push_back({.label = "bad", .x = {1, 2}, .y = {1}});
  const absl::Status mismatch = Layout(figure).status();
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mismatch.message()), HasSubstr("\"bad\""));

  Figure no_columns{.columns = 0};
  EXPECT_EQ(Layout(no_columns).status().code(),
            absl::StatusCode::kInvalidArgument);
  Figure tiny{.panel_width = 10};
  EXPECT_EQ(Layout(tiny).status().code(), absl::StatusCode::kInvalidArgument);
}

// --- Rendering.

TEST(PlotRenderTest, HeatmapColoursFollowLogDensity) {
  testing::TempDir dir;
  Figure figure;
  Panel& panel = figure.panels.emplace_back();
  panel.x = {.label = "step", .scale = Scale::kLog1p};
  panel.y = {.label = "value"};
  // Bin 1 holds the densest values; bin 3 is 100x sparser (2 of the 4
  // decades below it); bins 0 and 2 are empty.
  for (double step : {0.0, 10.0, 1000.0}) {
    panel.heat.push_back(
        {.x = step, .lo = -1, .hi = 1, .counts = {0, 100, 0, 1}});
  }
  const std::string path = dir.Join("heat.png");
  ASSERT_TRUE(Render(figure, path).ok());
  Png png(path);
  ASSERT_TRUE(png.ok());
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(png.width(), std::ceil(layout->width * figure.png_scale));
  EXPECT_EQ(png.height(), std::ceil(layout->height * figure.png_scale));

  const PanelLayout& p = layout->panels[0];
  const double s = figure.png_scale;
  auto bin_y = [&](int j) { return p.PageY(-1 + 0.5 * (j + 0.5)); };
  for (double step : {0.0, 10.0, 1000.0}) {
    const double x = p.PageX(step);
    EXPECT_THAT(png.At(x, bin_y(1), s), NearColor(HeatColor(1))) << step;
    EXPECT_THAT(png.At(x, bin_y(3), s), NearColor(HeatColor(0.5))) << step;
    EXPECT_THAT(png.At(x, bin_y(0), s), NearColor(kWhite)) << step;
    EXPECT_THAT(png.At(x, bin_y(2), s), NearColor(kWhite)) << step;
  }
  // Uneven steps leave no gap: halfway between 10 and 1000 on the axis.
  const double between = (p.PageX(10) + p.PageX(1000)) / 2;
  EXPECT_THAT(png.At(between - 2, bin_y(1), s), NearColor(HeatColor(1)));
  EXPECT_THAT(png.At(between + 2, bin_y(1), s), NearColor(HeatColor(1)));
  // The colour bar runs from the lowest colour at the bottom to the top one.
  const Rect& bar = *p.colorbar;
  for (double y : {bar.y + 3, bar.y + bar.height / 3, bar.y + bar.height - 3}) {
    const double centre = (std::floor(y * s) + 0.5) / s;  // of the pixel
    EXPECT_THAT(png.At(bar.x + bar.width / 2, y, s),
                NearColor(HeatColor((bar.y + bar.height - centre) / bar.height)))
        << y;
  }
}

// One panel, 0 to 10 on both axes, drawing `series`.
Figure TenByTen(std::vector<Series> series) {
  Figure figure;
  Panel& panel = figure.panels.emplace_back();
  panel.x = {.min = 0, .max = 10};
  panel.y = {.min = 0, .max = 10};
  panel.series = std::move(series);
  return figure;
}

TEST(PlotRenderTest, LineSeriesFollowsItsPath) {
  testing::TempDir dir;
  const Figure figure =
      TenByTen({{.label = "diagonal", .x = {1, 9}, .y = {1, 9}}});
  const std::string path = dir.Join("line.png");
  ASSERT_TRUE(Render(figure, path).ok());
  Png png(path);
  ASSERT_TRUE(png.ok());
  const PanelLayout& p = Layout(figure)->panels[0];
  for (double v = 1.5; v < 9; v += 0.7) {
    EXPECT_THAT(png.At(p.PageX(v), p.PageY(v), figure.png_scale),
                NearColor(PaletteColor(0)))
        << v;
  }
  // Off the line, nothing of its colour.
  for (double v = 1.5; v < 9; v += 0.7) {
    EXPECT_GT(Distance(png.At(p.PageX(v), p.PageY(10 - v + 0.3),
                              figure.png_scale),
                       PaletteColor(0)),
              0.2)
        << v;
  }
}

TEST(PlotRenderTest, BandFillsBetweenItsEdges) {
  testing::TempDir dir;
  const Figure figure = TenByTen(
      {{.label = "band", .x = {1, 9}, .y = {6, 6}, .color = Rgb{0, 0, 1}, .y_low = {2, 2}}});
  const std::string path = dir.Join("band.png");
  ASSERT_TRUE(Render(figure, path).ok());
  Png png(path);
  ASSERT_TRUE(png.ok());
  const PanelLayout& p = Layout(figure)->panels[0];
  // Inside: blue at a quarter over white; outside, above and below: white
  // (sampled off the grid lines).
  const Rgb tint{0.75, 0.75, 1};
  for (double x : {1.5, 4.7, 8.3}) {
    for (double y : {2.7, 4.7, 5.3}) {
      EXPECT_THAT(png.At(p.PageX(x), p.PageY(y), figure.png_scale), NearColor(tint))
          << x << "," << y;
    }
    for (double y : {1.3, 7.3}) {
      EXPECT_THAT(png.At(p.PageX(x), p.PageY(y), figure.png_scale),
                  NearColor(Rgb{1, 1, 1}))
          << x << "," << y;
    }
  }
  // The extent includes the lower edge.
  Figure open = figure;
  open.panels[0].y = {};
  EXPECT_LE(Layout(open)->panels[0].y.min, 2.0);
  // One y_low per x, or none.
  Figure bad = figure;
  bad.panels[0].series[0].y_low = {2};
  EXPECT_EQ(Layout(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PlotRenderTest, PointsAndLegend) {
  testing::TempDir dir;
  const Figure figure =
      TenByTen({{.label = "a", .x = {2}, .y = {2}, .points = true},
                {.label = "b",
                 .x = {4},
                 .y = {4},
                 .points = true,
                 .color = Rgb{1, 0, 0}}});
  const std::string path = dir.Join("points.png");
  ASSERT_TRUE(Render(figure, path).ok());
  Png png(path);
  const PanelLayout& p = Layout(figure)->panels[0];
  EXPECT_THAT(png.At(p.PageX(2), p.PageY(2), 2), NearColor(PaletteColor(0)));
  EXPECT_THAT(png.At(p.PageX(4), p.PageY(4), 2), NearColor((Rgb{1, 0, 0})));
  // Two labelled series: a legend in the top right corner shows both colours.
  bool first = false, second = false;
  const Rect& plot = p.plot;
  for (double x = plot.x + plot.width * 0.6; x < plot.x + plot.width; x += 0.5) {
    for (double y = plot.y; y < plot.y + 60; y += 0.5) {
      const Rgb c = png.At(x, y, 2);
      first |= Distance(c, PaletteColor(0)) < 0.02;
      second |= Distance(c, Rgb{1, 0, 0}) < 0.02;
    }
  }
  EXPECT_TRUE(first);
  EXPECT_TRUE(second);
}

TEST(PlotRenderTest, VLineIsDashedAtItsX) {
  testing::TempDir dir;
  Figure figure;
  Panel& panel = figure.panels.emplace_back();
  panel.x = {.scale = Scale::kLog1p, .min = 0, .max = 143000};
  panel.y = {.min = 0, .max = 1};
  panel.vlines.push_back({.x = 3000, .label = "peak"});
  const std::string path = dir.Join("vline.png");
  ASSERT_TRUE(Render(figure, path).ok());
  Png png(path);
  const PanelLayout& p = Layout(figure)->panels[0];
  const double s = figure.png_scale;
  auto dark_fraction = [&](double x) {
    int dark = 0, total = 0;
    // Below the label.
    for (double y = p.plot.y + 30; y < p.plot.y + p.plot.height - 2; y += 0.5) {
      const Rgb c = png.At(x, y, s);
      dark += (c.r + c.g + c.b) / 3 < 0.5;
      ++total;
    }
    return static_cast<double>(dark) / total;
  };
  const double on = dark_fraction(p.PageX(3000));
  EXPECT_GT(on, 0.4);  // dashes 5 on, 4 off
  EXPECT_LT(on, 0.8);
  EXPECT_EQ(dark_fraction(p.PageX(3000) + 6), 0);
}

TEST(PlotRenderTest, SvgIsXml) {
  testing::TempDir dir;
  Figure figure{.title = "Garden"};
  Panel& panel = figure.panels.emplace_back();
  panel.series.push_back({.x = {1, 2, 3}, .y = {3, 1, 2}});
  panel.heat.push_back({.x = 1, .lo = 0, .hi = 1, .counts = {1, 2}});
  const std::string path = dir.Join("figure.SVG");
  ASSERT_TRUE(Render(figure, path).ok());
  const std::string svg = ReadAll(path);
  EXPECT_THAT(svg, StartsWith("<?xml"));
  EXPECT_THAT(svg, HasSubstr("<svg"));
  EXPECT_THAT(svg, HasSubstr("</svg>"));
  EXPECT_THAT(Listing(dir.path()), ElementsAre("figure.SVG"));
}

TEST(PlotRenderTest, SvgHeatmapIsOneImage) {
  testing::TempDir dir;
  Figure figure;
  Panel& panel = figure.panels.emplace_back();
  panel.x.scale = Scale::kLog1p;
  for (int step = 0; step < 200; ++step) {
    HeatColumn& c = panel.heat.emplace_back();
    c = {.x = step * 1000.0, .lo = -1, .hi = 1};
    for (int j = 0; j < 256; ++j) c.counts.push_back(1 + (j * step) % 97);
  }
  const std::string path = dir.Join("heat.svg");
  ASSERT_TRUE(Render(figure, path).ok());
  const std::string svg = ReadAll(path);
  EXPECT_THAT(svg, HasSubstr("<image"));
  // 51200 cells as paths would take several megabytes.
  EXPECT_LT(svg.size(), 2u << 20);
}

TEST(PlotRenderTest, ShowsWhatItCanAndSkipsTheRest) {
  testing::TempDir dir;
  Figure figure{.title = "odd data", .columns = 3, .png_scale = 1};
  figure.panels.emplace_back();  // empty
  Panel& nans = figure.panels.emplace_back();
  nans.series.push_back({.label = "nan", .x = {kNaN, 1, 2, 3, kInf},
                         .y = {1, kNaN, 2, 3, 4}});
  nans.series.push_back({.label = "empty"});
  nans.series.push_back({.x = {kNaN}, .y = {kNaN}, .points = true});
  nans.vlines.push_back({.x = kNaN, .label = "nowhere"});
  Panel& logs = figure.panels.emplace_back();
  logs.x = {.scale = Scale::kLog10};
  logs.y = {.scale = Scale::kLog10};
  logs.series.push_back({.x = {-1, 0, 1, 10}, .y = {1, 0, -5, 100}});
  logs.heat = {{.x = 0, .lo = -1, .hi = 1, .counts = {1, 1}},  // x skipped
               {.x = 10, .lo = -1, .hi = 1, .counts = {1, 1, 1, 1}},
               {.x = 100, .lo = 1, .hi = 1, .counts = {1}},      // lo == hi
               {.x = 1000, .lo = kNaN, .hi = 1, .counts = {1}},  // NaN range
               {.x = 1e4, .lo = 0, .hi = 1, .counts = {}},
               {.x = 1e5, .lo = 0, .hi = 1, .counts = {0, kNaN, -3}}};
  Panel& lone = figure.panels.emplace_back();
  lone.heat = {{.x = 5, .lo = 0, .hi = 1, .counts = {3, 1}}};
  Panel& same = figure.panels.emplace_back();
  same.x.scale = Scale::kLog1p;
  same.heat = {{.x = 7, .lo = 0, .hi = 1, .counts = {3, 1}},
               {.x = 7, .lo = 0, .hi = 2, .counts = {1, 3}}};
  same.series.push_back({.x = {-5, 7}, .y = {0.5, 0.5}});
  Panel& constant = figure.panels.emplace_back();
  constant.series.push_back({.x = {2, 2}, .y = {1e-7, 1e-7}});
  Panel& far = figure.panels.emplace_back();
  far.title = "bad UTF-8 \xff\xc3( and fine \xc3\xa9";
  far.x = {.label = "\xed\xa0\x80", .min = 0, .max = 1};
  far.y = {.min = 0, .max = 1};
  far.series.push_back({.label = "\xf8", .x = {0.5, 0.6, 0.7},
                        .y = {0.5, 1e300, -1e300}});
  far.series.push_back({.label = "b", .x = {0.5}, .y = {0.5}});

  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok()) << layout.status();
  for (const PanelLayout& p : layout->panels) {
    EXPECT_LT(p.x.min, p.x.max);
    EXPECT_LT(p.y.min, p.y.max);
    EXPECT_TRUE(std::isfinite(p.x.min) && std::isfinite(p.x.max));
  }
  // A constant series gets a range around it, not one of width 1.
  EXPECT_LT(layout->panels[5].y.max, 1e-6);
  EXPECT_GT(layout->panels[5].y.min, 0);
  ASSERT_TRUE(Render(figure, dir.Join("odd.png")).ok());
  ASSERT_TRUE(Render(figure, dir.Join("odd.svg")).ok());
  EXPECT_TRUE(Png(dir.Join("odd.png")).ok());
  // No panels at all.
  ASSERT_TRUE(Render(Figure{}, dir.Join("none.png")).ok());
  ASSERT_TRUE(Render(Figure{.title = "only a title"}, dir.Join("t.svg")).ok());
}

TEST(PlotRenderTest, ReplacesAnExistingFileAndLeavesNothingElse) {
  testing::TempDir dir;
  const std::string path = dir.Join("plot.png");
  testing::WriteFile(path, "old contents");
  Figure figure;
  figure.panels.emplace_back().series.push_back({.x = {0, 1}, .y = {0, 1}});
  ASSERT_TRUE(Render(figure, path).ok());
  EXPECT_THAT(ReadAll(path), StartsWith("\x89PNG"));
  EXPECT_THAT(Listing(dir.path()), ElementsAre("plot.png"));
}

TEST(PlotRenderTest, FollowsASymlink) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("real.png"), "old");
  ASSERT_EQ(symlink("real.png", dir.Join("link.png").c_str()), 0);
  ASSERT_TRUE(Render(Figure{}, dir.Join("link.png")).ok());
  struct stat st;
  ASSERT_EQ(lstat(dir.Join("link.png").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_THAT(ReadAll(dir.Join("real.png")), StartsWith("\x89PNG"));
  EXPECT_THAT(Listing(dir.path()), ElementsAre("link.png", "real.png"));
}

TEST(PlotRenderTest, RejectsOtherExtensions) {
  testing::TempDir dir;
  for (const char* name : {"plot.pdf", "plot", "png", "plot.png.txt"}) {
    const std::string path = dir.Join(name);
    const absl::Status status = Render(Figure{}, path);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(std::string(status.message()), HasSubstr(path));
    EXPECT_THAT(std::string(status.message()), HasSubstr(".png"));
    EXPECT_THAT(std::string(status.message()), HasSubstr(".svg"));
    EXPECT_EQ(CheckWritable(path).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(Listing(dir.path()).empty());
}

TEST(PlotRenderTest, MissingDirectoryIsNotFoundAndCreatesNothing) {
  testing::TempDir dir;
  const std::string path = dir.Join("missing/plot.png");
  const absl::Status status = Render(Figure{}, path);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  EXPECT_TRUE(Listing(dir.path()).empty());
}

TEST(PlotCheckWritableTest, FinePathsLeaveNothingBehind) {
  testing::TempDir dir;
  EXPECT_TRUE(CheckWritable(dir.Join("new.png")).ok());
  EXPECT_TRUE(CheckWritable(dir.Join("new.svg")).ok());
  EXPECT_TRUE(Listing(dir.path()).empty());
  // An existing file is neither truncated nor touched.
  testing::WriteFile(dir.Join("old.png"), "keep me");
  EXPECT_TRUE(CheckWritable(dir.Join("old.png")).ok());
  EXPECT_EQ(ReadAll(dir.Join("old.png")), "keep me");
  EXPECT_THAT(Listing(dir.path()), ElementsAre("old.png"));
}

TEST(PlotCheckWritableTest, MissingDirectory) {
  testing::TempDir dir;
  const std::string path = dir.Join("nope/deeper/plot.svg");
  const absl::Status status = CheckWritable(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  EXPECT_TRUE(Listing(dir.path()).empty());
}

TEST(PlotCheckWritableTest, NotARegularFile) {
  testing::TempDir dir;
  ASSERT_EQ(mkdir(dir.Join("dir.png").c_str(), 0755), 0);
  EXPECT_EQ(CheckWritable(dir.Join("dir.png")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Render(Figure{}, dir.Join("dir.png")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Listing(dir.path()), ElementsAre("dir.png"));
  EXPECT_TRUE(Listing(dir.Join("dir.png")).empty());
}

TEST(PlotCheckWritableTest, PermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root may write anywhere";
  testing::TempDir dir;
  const std::string locked = dir.Join("locked");
  ASSERT_EQ(mkdir(locked.c_str(), 0555), 0);
  EXPECT_EQ(CheckWritable(locked + "/plot.png").code(),
            absl::StatusCode::kPermissionDenied);
  testing::WriteFile(dir.Join("ro.png"), "x");
  ASSERT_EQ(chmod(dir.Join("ro.png").c_str(), 0444), 0);
  EXPECT_EQ(CheckWritable(dir.Join("ro.png")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Render(Figure{}, dir.Join("ro.png")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReadAll(dir.Join("ro.png")), "x");
  chmod(locked.c_str(), 0755);  // so that TempDir can remove it
}

TEST(PlotRenderTest, PngTooLargeForCairo) {
  testing::TempDir dir;
  Figure figure{.columns = 100, .png_scale = 4};
  figure.panels.resize(100);
  const absl::Status status = Render(figure, dir.Join("huge.png"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Listing(dir.path()).empty());
}

// --- Matrix images, categorical labels, text rows.

// A 2x3 matrix at rows 10..11, columns 100..102, row 0 at the top.
Figure SmallMatrix(bool diverging) {
  Figure figure;
  Panel& panel = figure.panels.emplace_back();
  panel.y = {.label = "row", .flipped = true};
  panel.x = {.label = "column"};
  panel.image = MatrixImage{.rows = 2,
                            .cols = 3,
                            .values = {-2, 0, 2, 1, kNaN, -1},
                            .row0 = 10,
                            .col0 = 100,
                            .vmin = diverging ? -2.0 : 0.0,
                            .vmax = 2,
                            .diverging = diverging,
                            .colorbar_label = "value"};
  return figure;
}

TEST(PlotLayoutTest, MatrixRangeIsItsExtentAndRowZeroIsOnTop) {
  auto layout = Layout(SmallMatrix(true));
  ASSERT_TRUE(layout.ok()) << layout.status();
  const PanelLayout& p = layout->panels[0];
  EXPECT_EQ(p.x.min, 100);
  EXPECT_EQ(p.x.max, 103);
  EXPECT_EQ(p.y.min, 10);
  EXPECT_EQ(p.y.max, 12);
  EXPECT_TRUE(p.y_flipped);
  EXPECT_DOUBLE_EQ(p.PageY(10), p.plot.y);  // the first row at the top
  EXPECT_DOUBLE_EQ(p.PageY(12), p.plot.y + p.plot.height);
  EXPECT_DOUBLE_EQ(p.PageX(100), p.plot.x);
  ASSERT_TRUE(p.colorbar.has_value());
  EXPECT_EQ(p.colorbar_min, -2);
  EXPECT_EQ(p.colorbar_max, 2);
  EXPECT_THAT(Values(p.colorbar_ticks, true), ::testing::Contains(0));
  EXPECT_DOUBLE_EQ(p.ColorbarY(0), p.colorbar->y + p.colorbar->height / 2);
}

TEST(PlotLayoutTest, RejectsBadMatrices) {
  Figure figure = SmallMatrix(true);
  figure.panels[0].image->values.pop_back();
  const absl::Status size = Layout(figure).status();
  EXPECT_EQ(size.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(size.message()), HasSubstr("2x3"));
  figure = SmallMatrix(true);
  figure.panels[0].image->vmin = 2;
  EXPECT_EQ(Layout(figure).status().code(), absl::StatusCode::kInvalidArgument);
  figure.panels[0].image->vmin = kNaN;
  EXPECT_EQ(Layout(figure).status().code(), absl::StatusCode::kInvalidArgument);
  figure = SmallMatrix(true);
  figure.panels[0].image->rows = -1;
  EXPECT_EQ(Layout(figure).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PlotColorTest, DivergingIsBlueWhiteRed) {
  EXPECT_THAT(DivergingColor(0), NearColor(kWhite));
  const Rgb blue = DivergingColor(-1), red = DivergingColor(1);
  EXPECT_GT(blue.b, blue.r);
  EXPECT_GT(red.r, red.b);
  EXPECT_THAT(DivergingColor(-5), NearColor(blue));  // clamped
  const MatrixImage m{.vmin = -4, .vmax = 2};
  EXPECT_THAT(MatrixColor(m, -4), NearColor(blue));  // scale: max |bound|
  EXPECT_THAT(MatrixColor(m, 2), NearColor(DivergingColor(0.5)));
  const MatrixImage v{.vmin = 0, .vmax = 1, .diverging = false};
  EXPECT_THAT(MatrixColor(v, 0.25), NearColor(HeatColor(0.25)));
}

TEST(PlotRenderTest, MatrixCellsHoldTheirValuesColours) {
  testing::TempDir dir;
  for (bool diverging : {true, false}) {
    const Figure figure = SmallMatrix(diverging);
    const std::string path = dir.Join(diverging ? "rdbu.png" : "viridis.png");
    ASSERT_TRUE(Render(figure, path).ok());
    Png png(path);
    ASSERT_TRUE(png.ok());
    auto layout = Layout(figure);
    ASSERT_TRUE(layout.ok());
    const PanelLayout& p = layout->panels[0];
    const MatrixImage& m = *figure.panels[0].image;
    const double s = figure.png_scale;
    for (int r = 0; r < 2; ++r) {
      for (int c = 0; c < 3; ++c) {
        const double v = m.values[r * 3 + c];
        const Rgb want = std::isnan(v) ? kWhite : MatrixColor(m, v);
        EXPECT_THAT(png.At(p.PageX(100.5 + c), p.PageY(10.5 + r), s),
                    NearColor(want))
            << "cell " << r << "," << c << " diverging " << diverging;
      }
    }
    // Row 0 is at the top: its first cell is the lowest value.
    EXPECT_LT(p.PageY(10.5), p.PageY(11.5));
    // The colour bar: vmax at the top, vmin at the bottom.
    const Rect& bar = *p.colorbar;
    for (double y : {bar.y + 1, bar.y + bar.height / 3, bar.y + bar.height - 1}) {
      const double centre = (std::floor(y * s) + 0.5) / s;  // of the pixel
      EXPECT_THAT(png.At(bar.x + bar.width / 2, y, s),
                  NearColor(MatrixColor(
                      m, m.vmax - (centre - bar.y) / bar.height * (m.vmax - m.vmin))))
          << y;
    }
    EXPECT_THAT(png.At(bar.x + bar.width / 2, p.ColorbarY(1), s),
                NearColor(MatrixColor(m, 1)));
  }
}

TEST(PlotRenderTest, SvgMatrixIsOneImage) {
  testing::TempDir dir;
  const std::string path = dir.Join("m.svg");
  ASSERT_TRUE(Render(SmallMatrix(true), path).ok());
  const std::string svg = ReadAll(path);
  EXPECT_THAT(svg, HasSubstr("<image"));
  EXPECT_LT(svg.size(), 400000u);
}

TEST(PlotLayoutTest, CategoricalLabelsSitAtCellCentres) {
  Figure figure{.panel_width = 500, .panel_height = 500};
  Panel& panel = figure.panels.emplace_back();
  const std::vector<std::string> tokens = {"The", " cat", " sat"};
  panel.x = {.labels = tokens};
  panel.y = {.flipped = true, .labels = tokens};
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok());
  const PanelLayout& p = layout->panels[0];
  EXPECT_EQ(p.x.min, 0);
  EXPECT_EQ(p.x.max, 3);
  ASSERT_EQ(p.x_ticks.size(), 3u);
  ASSERT_EQ(p.y_ticks.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(p.x_ticks[i].value, i + 0.5);
    EXPECT_EQ(p.x_ticks[i].label, tokens[i]);
    EXPECT_EQ(p.y_ticks[i].label, tokens[i]);
  }
  EXPECT_FALSE(p.x_ticks_vertical);  // short labels in wide cells
  EXPECT_LT(p.PageY(0.5), p.PageY(2.5));  // "The" on top
}

TEST(PlotLayoutTest, ManyLongLabelsTurnVerticalAndThin) {
  Figure figure;
  Panel& panel = figure.panels.emplace_back();
  std::vector<std::string> labels;
  for (int i = 0; i < 200; ++i) labels.push_back("token" + std::to_string(i));
  labels[1] = "a label far longer than sixteen characters";
  panel.x = {.labels = labels};
  panel.y = {.labels = labels};
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok());
  const PanelLayout& p = layout->panels[0];
  EXPECT_TRUE(p.x_ticks_vertical);
  ASSERT_GE(p.x_ticks.size(), 5u);
  EXPECT_LT(p.x_ticks.size(), 60u);
  EXPECT_LT(p.y_ticks.size(), 40u);
  const double stride = p.x_ticks[1].value - p.x_ticks[0].value;
  EXPECT_GT(stride, 1);
  for (size_t i = 0; i < p.x_ticks.size(); ++i) {
    EXPECT_EQ(p.x_ticks[i].value, 0.5 + i * stride);
    EXPECT_EQ(p.x_ticks[i].label,
              labels[static_cast<size_t>(p.x_ticks[i].value)]);
  }
  // The long label is cut with an ellipsis (when it is shown at all).
  Figure two;
  two.panels.emplace_back().x = {.labels = {"x", labels[1]}};
  auto cut = Layout(two);
  ASSERT_TRUE(cut.ok());
  ASSERT_EQ(cut->panels[0].x_ticks.size(), 2u);
  EXPECT_EQ(cut->panels[0].x_ticks[1].label, "a label far lon\u2026");
}

TEST(PlotRenderTest, VerticalLabelsAreDrawnBelowTheAxis) {
  testing::TempDir dir;
  Figure figure;
  Panel& panel = figure.panels.emplace_back();
  std::vector<std::string> labels(40, "WWWWWWWW");
  panel.x = {.labels = labels};
  const std::string path = dir.Join("labels.png");
  ASSERT_TRUE(Render(figure, path).ok());
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok());
  const PanelLayout& p = layout->panels[0];
  ASSERT_TRUE(p.x_ticks_vertical);
  Png png(path);
  // Ink in a thin column under the first label, a few units below the axis.
  const double x = p.PageX(p.x_ticks[0].value);
  const double bottom = p.plot.y + p.plot.height;
  int dark = 0;
  for (double y = bottom + 10; y < bottom + 40; y += 0.5) {
    for (double dx = -3; dx <= 3; dx += 0.5) {
      dark += Distance(png.At(x + dx, y, figure.png_scale), kWhite) > 0.5;
    }
  }
  EXPECT_GT(dark, 10);
}

TEST(PlotLayoutTest, TextRowsHoldTheirRunsAndWrap) {
  Figure figure{.panel_width = 300, .panel_height = 300};
  Panel& panel = figure.panels.emplace_back();
  panel.title = "step 1000";
  const Rgb grey{0.5, 0.5, 0.5};
  panel.text_rows.push_back(
      {.label = "k=1",
       .runs = {{.text = "The"}, {.text = " cat", .color = grey, .marked = true},
                {.text = " sat", .color = grey}}});
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += " word";
  panel.text_rows.push_back({.label = "k=12", .runs = {{.text = long_text}}});
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok()) << layout.status();
  const PanelLayout& p = layout->panels[0];
  EXPECT_FALSE(p.axes);
  ASSERT_GE(p.text.size(), 6u);
  EXPECT_EQ(p.text[0].run, PlacedText::kRowLabel);
  EXPECT_EQ(p.text[0].text, "k=1");
  EXPECT_EQ(p.text[1].text, "The");
  EXPECT_EQ(p.text[2].text, " cat");
  EXPECT_TRUE(p.text[2].marked);
  EXPECT_FALSE(p.text[3].marked);
  EXPECT_THAT(p.text[2].color, NearColor(grey));
  // Runs follow one another on the line.
  EXPECT_DOUBLE_EQ(p.text[2].x, p.text[1].x + p.text[1].width);
  EXPECT_EQ(p.text[2].baseline, p.text[1].baseline);
  // Both rows' text starts after the widest label.
  EXPECT_GT(p.text[1].x, p.text[0].x + p.text[0].width);
  // The long row wraps within the panel: several lines, all the words.
  std::string joined;
  std::set<double> baselines;
  for (const PlacedText& t : p.text) {
    if (t.row != 1 || t.run == PlacedText::kRowLabel) continue;
    EXPECT_LE(t.x + t.width, p.plot.x + p.plot.width + 1e-9);
    EXPECT_GT(t.baseline, p.text[1].baseline);
    baselines.insert(t.baseline);
    joined += (joined.empty() || t.text[0] == ' ' ? "" : " ") + t.text;
  }
  EXPECT_GE(baselines.size(), 2u);
  EXPECT_EQ(joined, long_text);
}

TEST(PlotLayoutTest, TextThatDoesNotFitIsLeftOut) {
  Figure figure{.panel_height = 150};
  Panel& panel = figure.panels.emplace_back();
  for (int k = 0; k < 50; ++k) {
    panel.text_rows.push_back({.label = "k", .runs = {{.text = "row"}}});
  }
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok());
  const PanelLayout& p = layout->panels[0];
  ASSERT_FALSE(p.text.empty());
  EXPECT_LT(p.text.back().row, 20u);
  for (const PlacedText& t : p.text) {
    EXPECT_LE(t.baseline, p.cell.y + p.cell.height);
  }
}

TEST(PlotRenderTest, TextRowsAreDrawnWithMarks) {
  testing::TempDir dir;
  Figure figure;
  Panel& panel = figure.panels.emplace_back();
  const Rgb red{1, 0, 0};
  panel.text_rows.push_back(
      {.label = "k=1",
       .runs = {{.text = "MMMM", .color = red, .marked = true},
                {.text = "MMMM"}}});
  const std::string path = dir.Join("text.png");
  ASSERT_TRUE(Render(figure, path).ok());
  auto layout = Layout(figure);
  ASSERT_TRUE(layout.ok());
  const PanelLayout& p = layout->panels[0];
  ASSERT_EQ(p.text.size(), 3u);
  Png png(path);
  const double s = figure.png_scale;
  const PlacedText& marked = p.text[1];
  // The underline, red under the marked run, none under the other.
  EXPECT_THAT(png.At(marked.x + marked.width / 2, marked.baseline + 2, s),
              NearColor(red));
  const PlacedText& plain = p.text[2];
  EXPECT_THAT(png.At(plain.x + plain.width / 2, plain.baseline + 2.2, s),
              NearColor(kWhite));
  // Red ink within the marked run's glyphs; no axes box.
  int red_ink = 0;
  for (double x = marked.x; x < marked.x + marked.width; x += 0.5) {
    red_ink += Distance(png.At(x, marked.baseline - 4, s), red) < 0.2;
  }
  EXPECT_GT(red_ink, 3);
  EXPECT_THAT(png.At(p.cell.x + p.cell.width / 2, p.cell.y + p.cell.height - 30, s),
              NearColor(kWhite));
}

}  // namespace
}  // namespace garden::plot

// --- The paper's figures.
namespace garden::client {
namespace {

using ::testing::ElementsAre;

TEST(FiguresTest, MatrixPanelsShareOneSymmetricScale) {
  const plot::Figure figure = MatrixFigure(
      {{.title = "step 0", .row_begin = 0, .col_begin = 0, .rows = 1, .cols = 2,
        .values = {0.5, -1}},
       {.title = "step 143000", .row_begin = 0, .col_begin = 0, .rows = 1,
        .cols = 2, .values = {3, std::nan("")}}},
      "embed_out.weight");
  ASSERT_EQ(figure.panels.size(), 2u);
  EXPECT_EQ(figure.columns, 2);
  for (const plot::Panel& p : figure.panels) {
    ASSERT_TRUE(p.image.has_value());
    EXPECT_EQ(p.image->vmin, -3);
    EXPECT_EQ(p.image->vmax, 3);
    EXPECT_TRUE(p.image->diverging);
    EXPECT_TRUE(p.y.flipped);
    EXPECT_EQ(p.x.label, "column");
    EXPECT_EQ(p.y.label, "row");
  }
  EXPECT_EQ(figure.panels[1].title, "step 143000");
  auto layout = plot::Layout(figure);
  ASSERT_TRUE(layout.ok()) << layout.status();
}

TEST(FiguresTest, AttentionPanelPerHeadWithTokens) {
  AttentionMap map{.step = 1000, .heads = 2, .tokens = 2,
                   .pieces = {"Hello", "Ġworld"},
                   .weights = {1, 0, 0.25, 0.75, 1, 0, 0.5, 0.5}};
  const plot::Figure figure = AttentionFigure({map}, "pythia-70m", 3, false);
  ASSERT_EQ(figure.panels.size(), 2u);
  EXPECT_EQ(figure.columns, 2);
  const plot::Panel& head1 = figure.panels[1];
  EXPECT_EQ(head1.title, "step 1000, head 1");
  EXPECT_THAT(head1.x.labels, ElementsAre("Hello", " world"));
  EXPECT_THAT(head1.y.labels, ElementsAre("Hello", " world"));
  EXPECT_TRUE(head1.y.flipped);
  ASSERT_TRUE(head1.image.has_value());
  EXPECT_THAT(head1.image->values, ElementsAre(1, 0, 0.5, 0.5));
  EXPECT_FALSE(head1.image->diverging);
  EXPECT_EQ(head1.image->vmin, 0);
  EXPECT_EQ(head1.image->vmax, 1);
  EXPECT_THAT(figure.title, ::testing::HasSubstr("layer 3"));
  // Averaged, two steps: one panel a step.
  map.heads = 1;
  map.weights.resize(4);
  AttentionMap other = map;
  other.step = 2000;
  const plot::Figure mean = AttentionFigure({map, other}, "m", 0, true);
  ASSERT_EQ(mean.panels.size(), 2u);
  EXPECT_EQ(mean.panels[1].title, "step 2000");
  EXPECT_EQ(mean.columns, 1);
}

TEST(FiguresTest, LogitsCurvePerStep) {
  const plot::Figure figure =
      LogitsFigure({{.step = 0, .mean_logits = {1, 2, 3}},
                    {.step = 143000, .mean_logits = {-1, 0, 4}}},
                   "pythia-70m");
  ASSERT_EQ(figure.panels.size(), 1u);
  const plot::Panel& p = figure.panels[0];
  ASSERT_EQ(p.series.size(), 2u);
  EXPECT_EQ(p.series[1].label, "step 143000");
  EXPECT_THAT(p.series[1].x, ElementsAre(0, 1, 2));
  EXPECT_THAT(p.series[1].y, ElementsAre(-1, 0, 4));
  EXPECT_EQ(p.x.label, "token id");
}

TEST(FiguresTest, EnvelopeBandsRunsAndOnsets) {
  const plot::Figure figure = EnvelopeFigure(
      {.step = {0, 10}, .mean = {1, 2}, .min = {0.5, 1}, .max = {1.5, 4}, .std = {0.25, 1}},
      {{.run = "main", .x = {0, 10}, .y = {1, 1}},
       {.run = "seed1", .x = {0, 10}, .y = {0.5, 4}, .onset = 10}},
      "pythia-160m", "bc", "embed_out.weight");
  ASSERT_EQ(figure.panels.size(), 1u);
  const plot::Panel& p = figure.panels[0];
  ASSERT_EQ(p.series.size(), 5u);
  EXPECT_EQ(p.series[0].label, "min-max");
  EXPECT_THAT(p.series[0].y, ElementsAre(1.5, 4));
  EXPECT_THAT(p.series[0].y_low, ElementsAre(0.5, 1));
  EXPECT_EQ(p.series[1].label, "mean +- std");
  EXPECT_THAT(p.series[1].y, ElementsAre(1.25, 3));
  EXPECT_THAT(p.series[1].y_low, ElementsAre(0.75, 1));
  EXPECT_EQ(p.series[3].label, "seed1");
  EXPECT_THAT(p.series[3].y, ElementsAre(0.5, 4));
  EXPECT_TRUE(p.series[3].y_low.empty());
  EXPECT_EQ(p.series[4].label, "mean");
  EXPECT_THAT(p.series[4].y, ElementsAre(1, 2));
  ASSERT_EQ(p.vlines.size(), 1u);
  EXPECT_EQ(p.vlines[0].x, 10);
  EXPECT_EQ(p.vlines[0].label, "onset seed1");
  EXPECT_EQ(p.x.scale, plot::Scale::kLog1p);
}

TEST(FiguresTest, LayersHeatmapPerKind) {
  const std::vector<LayerSeries> models = {
      {.model = "pythia-70m",
       .values = {{.step = 0, .layer = 0, .kind = "qkv", .value = 2.0},
                  {.step = 0, .layer = 1, .kind = "qkv", .value = 3.0},
                  {.step = 1000, .layer = 1, .kind = "qkv", .value = 5.0},
                  {.step = 1000, .layer = -1, .kind = "embed_out", .value = 4.0}}},
      {.model = "pythia-70m-deduped",
       .values = {{.step = 0, .layer = 0, .kind = "qkv", .value = 6.0}}}};
  const plot::Figure figure = LayersFigure(models, "alpha");
  EXPECT_EQ(figure.title, "alpha");
  EXPECT_EQ(figure.columns, 2);
  ASSERT_EQ(figure.panels.size(), 4u);  // (qkv, embed_out) x 2 models
  const plot::Panel& qkv = figure.panels[0];
  EXPECT_EQ(qkv.title, "pythia-70m: qkv");
  EXPECT_THAT(qkv.x.labels, ElementsAre("0", "1000"));
  EXPECT_THAT(qkv.y.labels, ElementsAre("emb", "0", "1"));
  ASSERT_TRUE(qkv.image.has_value());
  const plot::MatrixImage& m = *qkv.image;
  EXPECT_EQ((std::pair(m.rows, m.cols)), (std::pair<int64_t, int64_t>(3, 2)));
  // Row = layer (emb, 0, 1), column = step (0, 1000); NaN where a record is missing.
  EXPECT_TRUE(std::isnan(m.values[0]));
  EXPECT_EQ(m.values[2], 2.0);
  EXPECT_EQ(m.values[4], 3.0);
  EXPECT_EQ(m.values[5], 5.0);
  EXPECT_TRUE(std::isnan(m.values[3]));
  // One colour scale over the whole figure.
  EXPECT_EQ((std::pair(m.vmin, m.vmax)), (std::pair(2.0, 6.0)));
  EXPECT_FALSE(m.diverging);
  EXPECT_EQ(figure.panels[1].image->values[1], 4.0);  // embed_out, layer -1, step 1000
  EXPECT_EQ(figure.panels[2].image->values[2], 6.0);
  ASSERT_TRUE(plot::Layout(figure).ok());
}

TEST(FiguresTest, EsdPointsAndTheFittedTail) {
  // Four eigenvalues, one a decade apart: each alone in its log bin.
  const std::vector<EsdAtStep> steps = {
      {.step = 0, .eigenvalues = {1e-3, 1e-2, 1e-1, 1.0}, .alpha = 2.0, .xmin = 1e-2},
      {.step = 1000, .eigenvalues = {0.5, 2.0}}};
  const plot::Figure figure = EsdFigure(steps, "m embed_out.weight");
  ASSERT_EQ(figure.panels.size(), 1u);
  const plot::Panel& p = figure.panels[0];
  EXPECT_EQ(p.x.scale, plot::Scale::kLog10);
  EXPECT_EQ(p.y.scale, plot::Scale::kLog10);
  ASSERT_EQ(p.series.size(), 3u);  // step 0, its fit, step 1000 (no fit)
  const plot::Series& esd = p.series[0];
  EXPECT_TRUE(esd.points);
  ASSERT_EQ(esd.x.size(), 4u);
  // Densities integrate to one: sum of density x bin width.
  double total = 0;
  for (size_t i = 0; i < esd.x.size(); ++i) {
    const double width = std::pow(10, std::log10(2000.0) / 40);  // the bins' ratio
    const double left = esd.x[i] / std::sqrt(width), right = esd.x[i] * std::sqrt(width);
    total += esd.y[i] * (right - left);
  }
  EXPECT_NEAR(total, 1.0, 1e-9);
  const plot::Series& fit = p.series[1];
  EXPECT_EQ(fit.label, "step 0 fit, alpha 2.00");
  // At x_min the fit is (k / n) (alpha - 1) / x_min: 3 of 4 in the tail.
  EXPECT_NEAR(fit.y.front(), 0.75 * 1.0 / 1e-2, 1e-9);
  EXPECT_NEAR(fit.x.back(), 1.0, 1e-12);
  EXPECT_EQ(p.series[2].label, "step 1000");
  ASSERT_TRUE(plot::Layout(figure).ok());
}

TEST(FiguresTest, UnmaskRowsMarkAgreeingTokens) {
  UnmaskStep step{.step = 1000};
  step.lines.push_back({.k = 1, .prefix = "The", .generated = {" cat", " ran"},
                        .agree = {true, false}, .generated_text = " cat ran"});
  step.lines.push_back({.k = 2, .prefix = "The cat", .agree = {false},
                        .generated_text = " ran"});
  const plot::Figure figure = UnmaskFigure({step}, "pythia-70m");
  ASSERT_EQ(figure.panels.size(), 1u);
  const plot::Panel& p = figure.panels[0];
  EXPECT_EQ(p.title, "step 1000");
  ASSERT_EQ(p.text_rows.size(), 2u);
  EXPECT_EQ(p.text_rows[0].label, "k=1");
  ASSERT_EQ(p.text_rows[0].runs.size(), 3u);
  EXPECT_EQ(p.text_rows[0].runs[0].text, "The");
  EXPECT_EQ(p.text_rows[0].runs[0].color.r, 0);
  EXPECT_FALSE(p.text_rows[0].runs[0].marked);
  EXPECT_EQ(p.text_rows[0].runs[1].text, " cat");
  EXPECT_TRUE(p.text_rows[0].runs[1].marked);
  EXPECT_GT(p.text_rows[0].runs[1].color.r, 0.3);  // grey
  EXPECT_FALSE(p.text_rows[0].runs[2].marked);
  // Without per-token texts: the completion whole, unmarked.
  ASSERT_EQ(p.text_rows[1].runs.size(), 2u);
  EXPECT_EQ(p.text_rows[1].runs[1].text, " ran");
  EXPECT_FALSE(p.text_rows[1].runs[1].marked);
  auto layout = plot::Layout(figure);
  ASSERT_TRUE(layout.ok());
  EXPECT_FALSE(layout->panels[0].axes);
}

TEST(FiguresTest, DecodePieceUndoesTheByteAlphabet) {
  EXPECT_EQ(DecodePiece("Ġthe"), " the");
  EXPECT_EQ(DecodePiece("Ċ"), "\n");
  EXPECT_EQ(DecodePiece("hello"), "hello");
  EXPECT_EQ(DecodePiece("Ã©"), "\xc3\xa9");  // "é" as two byte tokens
  EXPECT_EQ(DecodePiece("<|endoftext|>"), "<|endoftext|>");
}

}  // namespace
}  // namespace garden::client
