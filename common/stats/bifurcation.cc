#include "common/stats/bifurcation.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace garden {

double BimodalityCoefficient(double skewness, double excess_kurtosis,
                             double n) {
  if (!(n >= 4) || !std::isfinite(skewness) ||
      !std::isfinite(excess_kurtosis)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  const double correction = 3 * (n - 1) * (n - 1) / ((n - 2) * (n - 3));
  return (skewness * skewness + 1) / (excess_kurtosis + correction);
}

namespace {

// Value below which `fraction` of the in-range counts lie, by linear
// interpolation inside the bin that crosses it.
double Quantile(const Histogram& h, double fraction) {
  uint64_t total = 0;
  for (uint64_t c : h.counts) total += c;
  if (total == 0) return h.lo;
  const double target = fraction * static_cast<double>(total);
  const double width = (h.hi - h.lo) / h.counts.size();
  double below = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    const double c = static_cast<double>(h.counts[i]);
    if (below + c >= target && c > 0) {
      return h.lo + width * (i + (target - below) / c);
    }
    below += c;
  }
  return h.hi;
}

}  // namespace

StepShape AnalyzeShape(const Histogram& histogram, const ValueSummary& summary,
                       const BifurcationOptions& options) {
  StepShape shape;
  shape.bc = BimodalityCoefficient(summary.moments.Skewness(),
                                   summary.moments.ExcessKurtosis(),
                                   summary.moments.n);
  const size_t bins = histogram.counts.size();
  uint64_t total = 0;
  for (uint64_t c : histogram.counts) total += c;
  if (bins == 0 || total == 0) return shape;
  const double width = (histogram.hi - histogram.lo) / bins;

  // Silverman's rule of thumb, floored at one bin.
  const double iqr = Quantile(histogram, 0.75) - Quantile(histogram, 0.25);
  double spread = summary.moments.StdDev();
  if (iqr > 0 && std::isfinite(spread)) spread = std::min(spread, iqr / 1.34);
  if (!(spread > 0)) spread = width;
  const double n = static_cast<double>(total);
  const double h = std::max(0.9 * spread * std::pow(n, -0.2), width);
  shape.bandwidth = h;

  // Gaussian smoothing of the bin densities, kernel cut at 4 h.
  const double sigma_bins = h / width;
  const int64_t reach = static_cast<int64_t>(std::ceil(4 * sigma_bins));
  std::vector<double> kernel(2 * reach + 1);
  double kernel_sum = 0;
  for (int64_t k = -reach; k <= reach; ++k) {
    kernel[k + reach] = std::exp(-0.5 * (k / sigma_bins) * (k / sigma_bins));
    kernel_sum += kernel[k + reach];
  }
  std::vector<double> density(bins, 0.0);
  for (size_t i = 0; i < bins; ++i) {
    if (histogram.counts[i] == 0) continue;
    const double mass = histogram.counts[i] / (n * width * kernel_sum);
    const int64_t from = std::max<int64_t>(0, static_cast<int64_t>(i) - reach);
    const int64_t to =
        std::min<int64_t>(bins - 1, static_cast<int64_t>(i) + reach);
    for (int64_t j = from; j <= to; ++j) {
      density[j] += mass * kernel[j - static_cast<int64_t>(i) + reach];
    }
  }

  // Modes: local maxima (plateaus count once, at their middle) above the
  // noise floor.
  const double top = *std::max_element(density.begin(), density.end());
  std::vector<size_t> peaks;
  for (size_t i = 0; i < bins;) {
    size_t j = i;
    while (j + 1 < bins && density[j + 1] == density[i]) ++j;
    const bool left_lower = i == 0 || density[i - 1] < density[i];
    const bool right_lower = j + 1 == bins || density[j + 1] < density[i];
    if (left_lower && right_lower &&
        density[i] >= options.min_mode_height * top) {
      peaks.push_back((i + j) / 2);
    }
    i = j + 1;
  }
  for (size_t p : peaks) {
    shape.modes.push_back(Mode{histogram.lo + width * (p + 0.5), density[p]});
  }
  if (peaks.size() >= 2) {
    // The two highest modes, in order of location.
    std::vector<size_t> by_height = peaks;
    std::sort(by_height.begin(), by_height.end(),
              [&](size_t a, size_t b) { return density[a] > density[b]; });
    const size_t a = std::min(by_height[0], by_height[1]);
    const size_t b = std::max(by_height[0], by_height[1]);
    const double low =
        *std::min_element(density.begin() + a, density.begin() + b + 1);
    const double smaller = std::min(density[a], density[b]);
    shape.dip = (smaller - low) / smaller;
  }
  shape.bimodal = shape.dip >= options.min_dip;
  return shape;
}

std::optional<size_t> BifurcationOnset(const std::vector<bool>& bimodal,
                                       size_t persist) {
  if (persist == 0) persist = 1;
  size_t run = 0;
  for (size_t i = 0; i < bimodal.size(); ++i) {
    run = bimodal[i] ? run + 1 : 0;
    if (run == persist) return i + 1 - persist;
  }
  return std::nullopt;
}

}  // namespace garden
