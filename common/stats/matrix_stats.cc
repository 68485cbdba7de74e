#include "common/stats/matrix_stats.h"

#include <cmath>

namespace garden {

MatrixStats ComputeMatrixStats(absl::Span<const double> values,
                               absl::Span<const double> thresholds) {
  MatrixStats s;
  s.n = values.size();
  // Welford's running mean and squared deviations: exact enough with a large mean.
  double mean = 0, m2 = 0, squares = 0, max_abs = 0;
  uint64_t k = 0;
  for (double v : values) {
    ++k;
    const double d = v - mean;
    mean += d / static_cast<double>(k);
    m2 += d * (v - mean);
    squares += v * v;
    max_abs = std::isnan(v) ? v : std::max(max_abs, std::abs(v));
  }
  if (s.n > 0) {
    const auto n = static_cast<double>(s.n);
    s.mean = mean;
    s.std = std::sqrt(m2 / n);
    s.rms = std::sqrt(squares / n);
    s.frobenius = std::sqrt(squares);
  }
  s.max_abs = max_abs;
  for (double t : thresholds) {
    uint64_t below = 0;
    const double cut = t * max_abs;
    for (double v : values) below += std::abs(v) < cut;
    s.sparsity.emplace_back(t, s.n > 0 ? static_cast<double>(below) / static_cast<double>(s.n) : 0.0);
  }
  return s;
}

}  // namespace garden
