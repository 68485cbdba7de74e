// Per-matrix statistics of `garden layers` that need no spectrum: moments,
// norms and sparsity, computed exactly (double accumulation) over every
// entry. The spectral ones are spectrum.h's.
#ifndef GARDEN_COMMON_STATS_MATRIX_STATS_H_
#define GARDEN_COMMON_STATS_MATRIX_STATS_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/types/span.h"

namespace garden {

struct MatrixStats {
  uint64_t n = 0;            // entries
  double mean = 0;
  double std = 0;            // population standard deviation (divides by n)
  double rms = 0;            // sqrt(mean of w^2)
  double max_abs = 0;
  double frobenius = 0;      // sqrt(sum of w^2)
  // (t, fraction of entries with |w| < t * max_abs), one per threshold t.
  std::vector<std::pair<double, double>> sparsity;
};

// The thresholds `garden layers` reports by default: 1e-3 and 1e-2.
inline const std::vector<double>& DefaultSparsityThresholds() {
  static const std::vector<double> kThresholds = {1e-3, 1e-2};
  return kThresholds;
}

// The statistics of `values` (every entry of a matrix, any order), the
// sparsity at each of `thresholds`. NaN entries make the moments NaN, as
// numpy's do; an empty matrix gives n = 0 and zeros.
MatrixStats ComputeMatrixStats(absl::Span<const double> values,
                               absl::Span<const double> thresholds);

}  // namespace garden

#endif  // GARDEN_COMMON_STATS_MATRIX_STATS_H_
