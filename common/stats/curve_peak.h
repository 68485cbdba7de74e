// Where a curve (an MSD series in step order) peaks. A maximum at the first
// or last point is no peak: the curve may go on rising past the last
// selected step, and the paper's MSD peak is where the weights turn back.
#ifndef GARDEN_COMMON_STATS_CURVE_PEAK_H_
#define GARDEN_COMMON_STATS_CURVE_PEAK_H_

#include <cstddef>
#include <optional>

#include "absl/types/span.h"

namespace garden {

enum class Trend {
  kNeither,     // up and down, or flat
  kIncreasing,  // up at least once, never down from one point to the next
  kDecreasing,  // down at least once, never up
};

struct CurvePeak {
  size_t largest = 0;          // index of the largest value (the first, on ties)
  bool interior = false;       // neither the first nor the last point
  Trend trend = Trend::kNeither;
};

// Empty for an empty curve; NaN values are skipped.
std::optional<CurvePeak> FindCurvePeak(absl::Span<const double> y);

}  // namespace garden

#endif  // GARDEN_COMMON_STATS_CURVE_PEAK_H_
