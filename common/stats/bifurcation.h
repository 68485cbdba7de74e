// Is a weight distribution one bump or two? The paper's bifurcation of the
// unembedding: per step a bimodality coefficient and the modes of a smoothed
// density, and the step from which the split persists.
#ifndef GARDEN_COMMON_STATS_BIFURCATION_H_
#define GARDEN_COMMON_STATS_BIFURCATION_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "common/stats/analysis_defaults.h"
#include "common/stats/histogram.h"

namespace garden {

struct BifurcationOptions {
  // See kDefaultMinDip.
  double min_dip = kDefaultMinDip;
  // Maxima lower than this fraction of the highest are noise, not modes.
  double min_mode_height = 0.01;
};

struct Mode {
  double location = 0;  // value at the density's local maximum
  double height = 0;    // smoothed density there (integrates to 1)
};

struct StepShape {
  // Sarle's bimodality coefficient (g^2 + 1) / (k + 3 (n-1)^2 / ((n-2)(n-3)))
  // from skewness g and excess kurtosis k; above 5/9 ~ 0.556 hints at two
  // modes. NaN when undefined.
  double bc = 0;
  std::vector<Mode> modes;  // ascending location
  // (smaller of the two largest modes - lowest density between them) /
  // smaller mode; 0 with fewer than two modes.
  double dip = 0;
  bool bimodal = false;
  double bandwidth = 0;  // of the Gaussian smoothing, in value units
};

// Sarle's coefficient for n values; NaN for n < 4 or undefined moments.
double BimodalityCoefficient(double skewness, double excess_kurtosis, double n);

// Smooths a histogram (counts over equal bins between lo and hi) into a
// density with a Gaussian kernel whose standard deviation follows
// Silverman's rule, 0.9 min(std, IQR / 1.34) n^(-1/5) (IQR from the
// histogram's cumulative counts), but never narrower than one bin; then
// finds its modes and the dip between the two largest.
StepShape AnalyzeShape(const Histogram& histogram, const ValueSummary& summary,
                       const BifurcationOptions& options);

// The first index from which `persist` consecutive entries are bimodal
// (persist >= 1); nullopt when there is none.
std::optional<size_t> BifurcationOnset(const std::vector<bool>& bimodal,
                                       size_t persist);

}  // namespace garden

#endif  // GARDEN_COMMON_STATS_BIFURCATION_H_
