// Central moments accumulated in float64, mergeable across chunks and threads.
#ifndef GARDEN_COMMON_STATS_MOMENTS_H_
#define GARDEN_COMMON_STATS_MOMENTS_H_

#include <cstddef>
#include <cstdint>

namespace garden {

// Count, mean and central sums of powers 2..4 (M2 = sum (x - mean)^2, ...).
// Chunks are summarised two-pass in cache (mean first, then centred powers)
// and merged with Pebay's pairwise formulas, which keeps skewness and
// kurtosis accurate even when |mean| >> std.
struct Moments {
  double n = 0;
  double mean = 0;
  double m2 = 0;
  double m3 = 0;
  double m4 = 0;

  // Moments of values[0..count), each repeated weights[i] times when weights
  // is non-null.
  static Moments Of(const double* values, const double* weights, size_t count);

  void Merge(const Moments& other);

  // Population statistics (ddof 0); NaN when undefined (n == 0, or zero
  // variance for skewness and kurtosis), like scipy.stats with bias=True.
  double Variance() const;
  double StdDev() const;
  double Skewness() const;
  double ExcessKurtosis() const;
};

}  // namespace garden

#endif  // GARDEN_COMMON_STATS_MOMENTS_H_
