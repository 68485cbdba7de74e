// Slow, obviously-correct references the fast code is checked against.
#ifndef GARDEN_TESTS_TESTING_BRUTE_FORCE_H_
#define GARDEN_TESTS_TESTING_BRUTE_FORCE_H_

#include <cmath>
#include <cstdint>
#include <vector>

namespace garden::testing {

// numpy.histogram's rule, written the slow way: the edges as numpy.linspace
// makes them, then a linear search for e_i <= x < e_i+1 (last bin closed).
struct BruteHistogram {
  std::vector<uint64_t> counts;
  uint64_t underflow = 0, overflow = 0;
};

inline BruteHistogram Brute(const std::vector<double>& xs, double lo, double hi,
                            int bins) {
  std::vector<double> edges(bins + 1);
  const double step = (hi - lo) / bins;
  for (int i = 0; i <= bins; ++i) edges[i] = i * step + lo;
  edges[bins] = hi;
  BruteHistogram h;
  h.counts.assign(bins, 0);
  for (double x : xs) {
    if (std::isnan(x)) continue;
    if (x < lo) {
      ++h.underflow;
    } else if (x > hi) {
      ++h.overflow;
    } else {
      for (int i = 0; i < bins; ++i) {
        if (edges[i] <= x && (x < edges[i + 1] || i == bins - 1)) {
          ++h.counts[i];
          break;
        }
      }
    }
  }
  return h;
}

// Central moments in long double, two passes over the finite values.
struct BruteMoments {
  long double mean, var, skew, kurt;
};

inline BruteMoments BruteStats(const std::vector<double>& xs) {
  long double sum = 0;
  size_t n = 0;
  for (double x : xs) {
    if (std::isfinite(x)) {
      sum += x;
      ++n;
    }
  }
  const long double mean = sum / n;
  long double m2 = 0, m3 = 0, m4 = 0;
  for (double x : xs) {
    if (!std::isfinite(x)) continue;
    const long double d = x - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  return {mean, m2, m3 / std::pow(m2, 1.5L), m4 / (m2 * m2) - 3};
}

}  // namespace garden::testing

#endif  // GARDEN_TESTS_TESTING_BRUTE_FORCE_H_
